"""Transport options (NOT_GIVEN keeps the default, None turns off), httpx error mapping, and
PUTs to pre-signed URLs, against httpx.MockTransport (no network, no sleeping)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from mlrelay._config import NOT_GIVEN
from mlrelay._errors import APIConnectionError, APITimeoutError, ServerError
from mlrelay._retry import RetryPolicy
from mlrelay._transport import Transport, connection_error

BASE = "http://mlflow.test"
PRESIGNED = "https://store.test/bucket/part-1?X-Signature=s3cr3t"


def _transport(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[Transport, list[httpx.Request]]:
    """A transport whose HTTP client (Basic auth, 7 s timeouts) records every request."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    client = httpx.Client(
        transport=httpx.MockTransport(record), auth=("user", "pw"), timeout=httpx.Timeout(7.0)
    )
    policy = RetryPolicy(max_retries=2, sleep=lambda _s: None)
    return Transport(base_url=BASE, http_client=client, retry=policy), seen


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="3.1.0")


def _timeouts(request: httpx.Request) -> set[float | None]:
    return set(request.extensions["timeout"].values())


def test_timeout_not_given_keeps_the_default_and_none_turns_it_off() -> None:
    """Unset, the client's timeout applies; with_options() keeps the transport's; None: none."""
    transport, seen = _transport(_ok)
    transport.send("GET", "/version", idempotent=True)
    transport.with_options(timeout=2.5).send("GET", "/version", idempotent=True)
    transport.with_options(timeout=2.5).with_options().send("GET", "/version", idempotent=True)
    transport.with_options(timeout=None).send("GET", "/version", idempotent=True)
    assert [_timeouts(r) for r in seen] == [{7.0}, {2.5}, {2.5}, {None}]
    assert transport.with_options(timeout=NOT_GIVEN).timeout is NOT_GIVEN


def test_retry_not_given_keeps_the_policy_and_none_turns_retrying_off() -> None:
    """A 503 is retried under the transport's policy, sent once with retry=None."""
    transport, seen = _transport(lambda _r: httpx.Response(503))
    with pytest.raises(ServerError):
        transport.send("GET", "/version", idempotent=True)
    assert len(seen) == 3
    seen.clear()
    with pytest.raises(ServerError):
        transport.send("GET", "/version", idempotent=True, retry=None)
    assert len(seen) == 1
    seen.clear()
    with pytest.raises(ServerError):
        transport.with_options(retry=None).send("GET", "/version", idempotent=True)
    assert len(seen) == 1
    assert transport.with_options().retry is transport.retry


@pytest.mark.parametrize(
    ("error", "kind", "sent"),
    [
        (httpx.ConnectTimeout("t"), APITimeoutError, False),
        (httpx.PoolTimeout("t"), APITimeoutError, False),
        (httpx.ReadTimeout("t"), APITimeoutError, True),
        (httpx.ConnectError("refused"), APIConnectionError, False),
        (httpx.UnsupportedProtocol("ftp"), APIConnectionError, False),
        (httpx.InvalidURL("bad"), APIConnectionError, False),
        (httpx.RemoteProtocolError("reset"), APIConnectionError, True),
    ],
)
def test_connection_errors_are_mapped(
    error: httpx.TransportError | httpx.InvalidURL, kind: type[Exception], sent: bool
) -> None:
    """Each httpx failure maps to its mlrelay error, saying whether the request left."""
    mapped = connection_error(error, "GET", "https://u:secret@h.test/x")
    assert type(mapped) is kind
    assert mapped.request_sent is sent
    assert "secret" not in str(mapped)


def _body() -> Callable[[], Iterator[bytes]]:
    return lambda: iter([b"part-", b"bytes"])


def test_put_foreign_sends_no_credentials_and_returns_the_response() -> None:
    """A PUT to a pre-signed URL carries its own headers and body but not our auth header."""
    transport, seen = _transport(lambda _r: httpx.Response(200, headers={"ETag": '"e1"'}))
    response = transport.put_foreign(
        PRESIGNED, content=_body(), headers={"x-amz-acl": "private", "Content-Length": "10"}
    )
    assert response.headers["ETag"] == '"e1"'
    [request] = seen
    assert (request.method, str(request.url)) == ("PUT", PRESIGNED)
    assert "authorization" not in request.headers
    assert request.headers["x-amz-acl"] == "private"
    assert request.content == b"part-bytes"
    assert _timeouts(request) == {7.0}


def test_put_foreign_retries_and_names_the_failure_without_the_url() -> None:
    """Failed PUTs (status or connection) are retried with a fresh body each time; the last
    failure is an APIConnectionError naming what failed, never the signed URL."""
    answers = iter([httpx.Response(500), httpx.Response(200)])
    transport, seen = _transport(lambda _r: next(answers))
    transport.put_foreign(PRESIGNED, content=_body(), headers={})
    assert [r.content for r in seen] == [b"part-bytes"] * 2
    seen.clear()
    transport, seen = _transport(lambda _r: httpx.Response(403))
    with pytest.raises(APIConnectionError) as info:
        transport.put_foreign(PRESIGNED, content=_body(), headers={}, what="uploading a part")
    assert len(seen) == 3
    assert str(info.value) == "uploading a part failed (HTTPStatusError)"
    assert info.value.url == "-"
    assert "s3cr3t" not in str(info.value)

    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    transport, seen = _transport(refuse)
    with pytest.raises(APIConnectionError, match=r"failed \(ConnectError\)"):
        transport.put_foreign(PRESIGNED, content=_body(), headers={})
    assert len(seen) == 3


def test_a_with_options_copy_keeps_the_request_timeout() -> None:
    """A copy made by ``Client.with_options`` (as the pipeline's sender makes) still times out
    a request the server never answers, after the client's own timeout."""
    import socket
    import time

    import mlrelay

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the kernel; nothing is ever answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with mlrelay.Client(tracking_uri=url, timeout=0.5, max_retries=0) as client:
            copy = client.with_options(max_retries=0)
            started = time.monotonic()
            with pytest.raises(mlrelay.APITimeoutError):
                copy.get_experiment("0")
            assert time.monotonic() - started < 5.0
