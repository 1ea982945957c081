"""Which answers to a write count as MLflow's (against httpx.MockTransport): a JSON object,
or the artifact proxy's empty upload answer; redirects are followed for reads only."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mlrelay._errors import UnexpectedResponseError
from mlrelay._retry import RetryPolicy
from mlrelay._transport import Transport

BASE = "http://mlflow.test"
JSON = {"Content-Type": "application/json"}


def _transport(handler: Callable[[httpx.Request], httpx.Response]) -> Transport:
    """A transport over a mock HTTP client that follows redirects, as mlrelay's Client does."""
    client = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    return Transport(
        base_url=BASE, http_client=client, retry=RetryPolicy(max_retries=2, sleep=lambda _s: 0)
    )


def _post(transport: Transport, path: str = "/api/2.0/mlflow/runs/log-batch") -> None:
    transport.send("POST", path, content=b"{}", headers=JSON, idempotent=True)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"}),
            "HTML page",
        ),
        (httpx.Response(200, text="OK", headers={"Content-Type": "text/plain"}), "'OK'"),
        (httpx.Response(200, json=[1, 2]), "not MLflow's JSON answer"),
        (httpx.Response(204), "empty body"),
    ],
    ids=["html", "text", "json-array", "empty"],
)
def test_a_write_answer_that_is_not_mlflows_raises(answer: httpx.Response, said: str) -> None:
    """HTML, plain text, a JSON array or an empty body on a REST write raise, once, saying so."""
    calls: list[int] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer

    with pytest.raises(UnexpectedResponseError, match="nothing was counted as delivered") as raised:
        _post(_transport(handler))
    assert said in str(raised.value)
    assert len(calls) == 1, "not retried: the answer would be the same"


def test_mlflows_answers_are_accepted() -> None:
    """``{}`` on a REST write and an empty body on an artifact upload are MLflow's answers."""
    transport = _transport(
        lambda r: httpx.Response(200) if r.method == "PUT" else httpx.Response(200, json={})
    )
    _post(transport)
    transport.send(
        "PUT",
        "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/f.txt",
        content=b"x",
        idempotent=True,
    )


def test_reads_follow_redirects_and_writes_do_not() -> None:
    """A GET follows a redirect to its target; a POST answered 301 raises naming the target."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/moved"):
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(301, headers={"Location": f"{BASE}/moved{request.url.path}"})

    transport = _transport(handler)
    assert transport.send("GET", "/api/2.0/mlflow/x", idempotent=True).json() == {"ok": True}
    with pytest.raises(
        UnexpectedResponseError,
        match=r"redirected \(HTTP 301 to "
        r"http://mlflow.test/moved/api/2.0/mlflow/runs/log-batch\)",
    ):
        _post(transport)
