"""Retry behaviour of the Client, counted request by request with respx (no sleeping)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

import mlrelay

BASE = "http://mlflow.test"
RUN = {"run": {"info": {"run_id": "r1", "experiment_id": "1"}}}
EXP = {"experiment": {"experiment_id": "0", "name": "Default"}}


class Sleeps(list[float]):
    """Records the waits the retry loop asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """A fresh sleep recorder."""
    return Sleeps()


def _client(sleeps: Sleeps, **policy: object) -> mlrelay.Client:
    return mlrelay.Client(
        tracking_uri=BASE,
        retry_policy=mlrelay.RetryPolicy(sleep=sleeps, **policy),  # type: ignore[arg-type]
    )


@respx.mock
def test_503_three_times_then_success(sleeps: Sleeps) -> None:
    """Three 503s are retried; the fourth attempt's answer is returned."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/experiments/get").mock(
        side_effect=[httpx.Response(503)] * 3 + [httpx.Response(200, json=EXP)]
    )
    assert _client(sleeps).get_experiment("0").name == "Default"
    assert route.call_count == 4
    assert len(sleeps) == 3
    assert sleeps[0] <= sleeps[2]


@respx.mock
def test_retry_after_seconds_and_http_date_are_honoured(sleeps: Sleeps) -> None:
    """429 with Retry-After: 2 waits exactly 2 s; an HTTP date in the past waits 0 s."""
    respx.get(f"{BASE}/api/2.0/mlflow/experiments/get").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            httpx.Response(200, json=EXP),
        ]
    )
    _client(sleeps).get_experiment("0")
    assert sleeps == [2.0, 0.0]


@respx.mock
def test_attempt_limit_then_the_typed_error(sleeps: Sleeps) -> None:
    """After max_retries the last error surfaces as ServerError with the server's message."""
    route = respx.post(f"{BASE}/api/2.0/mlflow/runs/log-batch").mock(
        return_value=httpx.Response(502, text="<html>Bad Gateway</html>")
    )
    with pytest.raises(mlrelay.ServerError, match="Bad Gateway") as info:
        _client(sleeps, max_retries=2).log_batch("r1", params=[mlrelay.Param(key="a", value="b")])
    assert route.call_count == 3
    assert info.value.status_code == 502


@respx.mock
def test_time_budget_stops_before_a_wait_that_would_cross_it(sleeps: Sleeps) -> None:
    """A Retry-After longer than the remaining budget ends the loop without waiting."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/experiments/get").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "60"})
    )
    with pytest.raises(mlrelay.RateLimitError):
        _client(sleeps, budget=10.0, max_wait=120.0).get_experiment("0")
    assert route.call_count == 1
    assert sleeps == []


@respx.mock
@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(sleeps: Sleeps, status: int) -> None:
    """4xx other than 408/429 fail on the first attempt."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(
        return_value=httpx.Response(status, json={"error_code": "BAD_REQUEST", "message": "no"})
    )
    with pytest.raises(mlrelay.APIStatusError):
        _client(sleeps).get_run("r1")
    assert route.call_count == 1


@respx.mock
def test_connection_errors_are_wrapped_and_retried(sleeps: Sleeps) -> None:
    """httpx errors never leak: a reset becomes APIConnectionError after the retries."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(
        side_effect=httpx.ReadError("connection reset")
    )
    with pytest.raises(mlrelay.APIConnectionError) as info:
        _client(sleeps, max_retries=3).get_run("r1")
    assert route.call_count == 4
    assert not isinstance(info.value, httpx.HTTPError)
    assert isinstance(info.value.__cause__, httpx.ReadError)


@respx.mock
def test_timeouts_become_api_timeout_errors(sleeps: Sleeps) -> None:
    """A read timeout is an APITimeoutError (a connection error subclass)."""
    respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(mlrelay.APITimeoutError):
        _client(sleeps, max_retries=1).get_run("r1")


@respx.mock
def test_create_run_is_resent_after_a_refusal(sleeps: Sleeps) -> None:
    """A 503 means the server did not act, so runs/create is simply sent again."""
    route = respx.post(f"{BASE}/api/2.0/mlflow/runs/create").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=RUN)]
    )
    assert _client(sleeps).create_run("1").info.run_id == "r1"
    assert route.call_count == 2


@respx.mock
def test_create_run_looks_before_resending_after_an_ambiguous_failure(sleeps: Sleeps) -> None:
    """After a 500 the client searches for its key and returns the run the server made."""
    create = respx.post(f"{BASE}/api/2.0/mlflow/runs/create").mock(return_value=httpx.Response(500))
    search = respx.post(f"{BASE}/api/2.0/mlflow/runs/search").mock(
        return_value=httpx.Response(200, json={"runs": [RUN["run"]]})
    )
    assert _client(sleeps).create_run("1").info.run_id == "r1"
    assert create.call_count == 1
    sent_key = next(
        t
        for t in json.loads(create.calls[0].request.content)["tags"]
        if t["key"] == "mlflow.mlrelay.clientKey"
    )["value"]
    assert sent_key in json.loads(search.calls[0].request.content)["filter"]


@respx.mock
def test_create_run_resends_when_the_search_finds_nothing(sleeps: Sleeps) -> None:
    """An ambiguous failure where nothing was created leads to exactly one more create."""
    create = respx.post(f"{BASE}/api/2.0/mlflow/runs/create").mock(
        side_effect=[httpx.ReadError("reset"), httpx.Response(200, json=RUN)]
    )
    respx.post(f"{BASE}/api/2.0/mlflow/runs/search").mock(return_value=httpx.Response(200, json={}))
    assert _client(sleeps).create_run("1").info.run_id == "r1"
    assert create.call_count == 2


@respx.mock
def test_max_retries_from_the_environment(sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_HTTP_REQUEST_MAX_RETRIES sets the attempt limit."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", BASE)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    route = respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(return_value=httpx.Response(503))
    client = mlrelay.Client()
    assert client.retry_policy.max_retries == 1
    with pytest.raises(mlrelay.ServerError):
        client.with_options(retry_policy=client.retry_policy.with_changes(sleep=sleeps)).get_run(
            "r"
        )
    assert route.call_count == 2


@respx.mock
def test_with_options_shares_the_connection_pool(sleeps: Sleeps) -> None:
    """with_options(max_retries=0) sends once and reuses the same httpx client."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(return_value=httpx.Response(503))
    client = _client(sleeps)
    quick = client.with_options(max_retries=0)
    assert quick._http is client._http
    with pytest.raises(mlrelay.ServerError):
        quick.get_run("r")
    assert route.call_count == 1


@respx.mock
def test_wire_format_of_requests(sleeps: Sleeps) -> None:
    """GETs put arguments in the query; POSTs send JSON with the content type MLflow demands."""
    get = respx.get(f"{BASE}/api/2.0/mlflow/metrics/get-history").mock(
        return_value=httpx.Response(200, json={})
    )
    post = respx.post(f"{BASE}/api/2.0/mlflow/runs/log-metric").mock(
        return_value=httpx.Response(200, json={})
    )
    client = _client(sleeps)
    assert client.get_metric_history("r1", "loss") == []
    client.log_metric("r1", "loss", float("nan"), timestamp=5, step=2)
    assert dict(get.calls[0].request.url.params) == {
        "run_id": "r1",
        "metric_key": "loss",
        "max_results": "25000",
    }
    request = post.calls[0].request
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("mlrelay/")
    assert b'"value":"NaN"' in request.content


@respx.mock
def test_credentials_reach_the_wire_as_auth_headers(sleeps: Sleeps) -> None:
    """Basic auth when user and password are set; Bearer for a token alone."""
    route = respx.get(f"{BASE}/api/2.0/mlflow/runs/get").mock(
        return_value=httpx.Response(200, json=RUN)
    )
    mlrelay.Client(tracking_uri=BASE, username="u", password="p").get_run("r1")
    mlrelay.Client(tracking_uri=BASE, token="tok").get_run("r1")
    assert route.calls[0].request.headers["authorization"] == "Basic dTpw"
    assert route.calls[1].request.headers["authorization"] == "Bearer tok"


def test_a_closed_client_raises_an_mlrelay_error() -> None:
    """Using a Client after close() is an MlrelayError, not httpx's RuntimeError."""
    client = mlrelay.Client(tracking_uri=BASE)
    client.close()
    with pytest.raises(mlrelay.MlrelayError, match="closed"):
        client.get_run("r1")
