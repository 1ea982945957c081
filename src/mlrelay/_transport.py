"""The only module that sends HTTP.

:class:`Transport` turns an endpoint and a request model into an HTTP request, sends
it through an injected ``httpx.Client`` under the retry policy, maps failures onto
the mlrelay error tree (no httpx exception escapes), and decodes the response into
the endpoint's response model.

Wire rules (research/mlflow-protocol.md §0): GET arguments go in the query string
with repeated keys for lists; other methods send a JSON body with
``Content-Type: application/json``; bodies are serialised by pydantic with NaN and
infinities as MLflow's strings, never as bare tokens; an empty success body is
``{}``. Nothing here logs headers or bodies, so credentials never reach a log.

Options that may be left to a default take :data:`~mlrelay._config.NOT_GIVEN` for "the
default" (the transport's retry policy, the HTTP client's timeout), so that ``None`` can
mean "off": ``retry=None`` sends once without retrying, ``timeout=None`` waits forever.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import httpx

from ._config import NOT_GIVEN, NotGiven
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    MlrelayError,
    TLSVerificationError,
    UnexpectedResponseError,
    error_for_status,
    redact_url,
)
from ._protocol.messages import Endpoint, Request, Response
from ._retry import RetryPolicy, call_with_retries, parse_retry_after
from ._version import __version__

__all__ = ["API_PREFIX", "USER_AGENT", "HTTPResponse", "Transport", "build_ssl_context"]

logger = logging.getLogger("mlrelay.http")

API_PREFIX = "/api/2.0/mlflow/"
USER_AGENT = f"mlrelay/{__version__} httpx/{httpx.__version__}"
_REQUEST_ID_HEADERS = ("x-request-id", "x-databricks-org-id", "x-amzn-requestid")

HTTPResponse: TypeAlias = httpx.Response
"""What :meth:`Transport.send` returns, for modules that must not import httpx themselves."""

ReqT = TypeVar("ReqT", bound=Request)
RespT = TypeVar("RespT", bound=Response)


def build_ssl_context(
    *, insecure: bool, ca_path: str | None, client_cert_path: str | None
) -> ssl.SSLContext | bool:
    """Return what ``httpx.Client(verify=...)`` needs for these TLS settings.

    Verification is on unless ``insecure``; a CA bundle (file or directory) replaces
    the default trust store; a client certificate (PEM with its key) enables mTLS.
    With no settings, True lets httpx use certifi or ``SSL_CERT_FILE``.

    Raises:
        ConfigurationError: a certificate file cannot be loaded.
    """
    if not (insecure or ca_path or client_cert_path):
        return True
    try:
        if ca_path:
            import os

            if os.path.isdir(ca_path):
                ctx = ssl.create_default_context(capath=ca_path)
            else:
                ctx = ssl.create_default_context(cafile=ca_path)
        else:
            ctx = httpx.create_ssl_context(verify=not insecure)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client_cert_path:
            ctx.load_cert_chain(client_cert_path)
    except (OSError, ssl.SSLError) as exc:
        which = "MLFLOW_TRACKING_CLIENT_CERT_PATH" if client_cert_path else "SERVER_CERT_PATH"
        raise ConfigurationError(
            f"cannot load the TLS certificate for {which}: {exc.strerror or exc}"
        ) from exc
    return ctx


def _query_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in request.model_dump(exclude_none=True, by_alias=True).items():
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, list):
            params[key] = [str(v) for v in value]
        else:
            params[key] = str(value)
    return params


class Transport:
    """Sends MLflow REST requests to one tracking server.

    Args:
        base_url: the tracking URI (``http(s)://host[:port][/prefix]``), no user-info.
        http_client: the ``httpx.Client`` to send through; it carries auth, TLS and
            timeouts. The transport does not close it.
        retry: the default retry policy.
        timeout: seconds for each request; ``NOT_GIVEN`` leaves the HTTP client's
            timeouts, ``None`` means no timeout.
    """

    def __init__(
        self,
        *,
        base_url: str,
        http_client: httpx.Client,
        retry: RetryPolicy,
        timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http_client = http_client
        self.retry = retry
        self.timeout = timeout

    def with_options(
        self,
        *,
        retry: RetryPolicy | NotGiven | None = NOT_GIVEN,
        timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> Transport:
        """A transport sharing this one's HTTP client, with another retry policy or timeout.

        Args:
            retry: the retry policy; ``NOT_GIVEN`` keeps this transport's, ``None`` turns
                retrying off.
            timeout: seconds for each request, overriding the HTTP client's;
                ``NOT_GIVEN`` keeps this transport's, ``None`` means no timeout.
        """
        return Transport(
            base_url=self.base_url,
            http_client=self.http_client,
            retry=self._policy(retry),
            timeout=self.timeout if isinstance(timeout, NotGiven) else timeout,
        )

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/2.0/mlflow/runs/get``."""
        return self.base_url + path

    def _policy(self, retry: RetryPolicy | NotGiven | None) -> RetryPolicy:
        """The policy a call uses: this transport's, none (one attempt), or the one given."""
        if isinstance(retry, NotGiven):
            return self.retry
        if retry is None:
            return self.retry.with_changes(max_retries=0)
        return retry

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        retry: RetryPolicy | NotGiven | None = NOT_GIVEN,
        sink: Callable[[httpx.Response], None] | None = None,
    ) -> httpx.Response:
        """Send one request with retries and return the successful response.

        Args:
            method: HTTP method.
            path: path below the tracking URI, starting with ``/``.
            params: query-string arguments.
            content: the raw body, or a function returning a fresh iterator over it for
                each attempt (a file streamed from disk, in constant memory).
            headers: extra headers.
            idempotent: whether a replay is harmless (decides what is retried).
            retry: a policy for this call instead of the transport's (``None``: no retries).
            sink: stream a successful response's body into this function instead of
                reading it into memory (it is called once per attempt; a download that
                breaks midway is retried whole).

        Raises:
            APIConnectionError: no response (after retries).
            APIStatusError: a non-success response (after retries), as its subclass.
        """
        url = self.url(path)
        outgoing = _Outgoing(method, url, params, content, headers, sink)
        return call_with_retries(
            lambda: self._attempt(outgoing),
            policy=self._policy(retry),
            idempotent=idempotent,
            what=f"{method} {redact_url(url)}",
        )

    def _attempt(self, a: _Outgoing) -> httpx.Response:
        """Send ``a`` once; map a failure onto the mlrelay error tree.

        Raises:
            MlrelayError: the HTTP client is closed.
            APIConnectionError: no response.
            APIStatusError: a status of 400 or more, as its subclass.
        """
        if self.http_client.is_closed:
            raise MlrelayError(f"cannot send {a.method} {redact_url(a.url)}: this Client is closed")
        # NOT_GIVEN: the HTTP client's timeouts; None: no timeout.
        timeout = httpx.USE_CLIENT_DEFAULT if isinstance(self.timeout, NotGiven) else self.timeout
        started = time.perf_counter()
        try:
            request = self.http_client.build_request(
                a.method,
                a.url,
                params=a.params,
                content=a.content() if callable(a.content) else a.content,
                headers=a.headers,
                timeout=timeout,
            )
            # A write is never redirected silently: following a 301/302 turns the POST
            # into a body-less GET, and a login portal's page would pass for an answer.
            response = self.http_client.send(
                request, stream=a.sink is not None, follow_redirects=not _is_write(a.method)
            )
            if a.sink is not None:
                _drain(response, a.sink)
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise connection_error(exc, a.method, a.url) from exc
        logger.debug(
            "%s %s -> %d in %.1f ms",
            a.method,
            redact_url(a.url),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        _raise_for_status(a.method, a.url, response)
        if _is_write(a.method):
            check_write_answer(a.method, a.url, response)
        return response

    def put_foreign(
        self,
        url: str,
        *,
        content: Callable[[], Iterator[bytes]],
        headers: Mapping[str, str],
        what: str = "upload",
    ) -> httpx.Response:
        """PUT a body to a URL that is not this server's (a pre-signed upload URL).

        Sent through the same HTTP client (TLS, proxies, the client's timeouts) but
        without our credentials, which are not for that store; retried as a whole under
        this transport's policy as an idempotent request. The URL is never logged nor put
        in a message (it carries a signature).

        Args:
            url: the absolute URL.
            content: returns a fresh iterator over the body for each attempt.
            headers: the headers to send (those the URL was signed with, a length).
            what: what is uploaded, for messages ("uploading a part").

        Raises:
            APIConnectionError: the last attempt got no response or a non-success status
                (named by type only, ``url`` is ``"-"``).
        """

        def attempt() -> httpx.Response:
            try:
                request = self.http_client.build_request(
                    "PUT", url, content=content(), headers=headers
                )
                response = self.http_client.send(request, auth=None)  # not our credentials
                response.raise_for_status()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                raise APIConnectionError(
                    f"{what} failed ({type(exc).__name__})", method="PUT", url="-"
                ) from exc
            return response

        return call_with_retries(attempt, policy=self.retry, idempotent=True, what=what)

    def call(
        self,
        endpoint: Endpoint[ReqT, RespT],
        request: ReqT,
        *,
        retry: RetryPolicy | NotGiven | None = NOT_GIVEN,
        idempotent: bool | None = None,
    ) -> RespT:
        """Send ``request`` to ``endpoint`` and decode the endpoint's response model.

        Args:
            endpoint: the operation.
            request: its request message.
            retry: a policy for this call instead of the transport's (``None``: no retries).
            idempotent: override the endpoint's own flag (callers that make an
                operation safe to replay, such as a run create with a client key).

        Raises:
            APIError: as :meth:`send`; :class:`UnexpectedResponseError` when a success
                body is not the JSON the endpoint promises.
        """
        path = API_PREFIX + endpoint.path
        if endpoint.method == "GET":
            response = self.send(
                "GET",
                path,
                params=_query_params(request),
                idempotent=endpoint.idempotent if idempotent is None else idempotent,
                retry=retry,
            )
        else:
            response = self.send(
                endpoint.method,
                path,
                content=request.model_dump_json(exclude_none=True, by_alias=True).encode(),
                headers={"Content-Type": "application/json"},
                idempotent=endpoint.idempotent if idempotent is None else idempotent,
                retry=retry,
            )
        return decode(endpoint, response)


@dataclass(frozen=True)
class _Outgoing:
    """What :meth:`Transport.send` sends, on each attempt."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    content: bytes | Callable[[], Iterator[bytes]] | None
    headers: Mapping[str, str] | None
    sink: Callable[[httpx.Response], None] | None


def _drain(response: httpx.Response, sink: Callable[[httpx.Response], None]) -> None:
    """Stream a success body into ``sink`` (an error body is read, for its message); close."""
    try:
        if response.status_code < 400:
            sink(response)
        else:
            response.read()
    finally:
        response.close()


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind an httpx error, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def connection_error(
    exc: httpx.TransportError | httpx.InvalidURL, method: str, url: str
) -> APIConnectionError | TLSVerificationError:
    """The mlrelay error for an httpx failure that left no response.

    A timeout is :class:`APITimeoutError`; ``request_sent`` is False when the request
    certainly never left (connect or pool timeout, connection refused, a URL or
    protocol httpx cannot use). A certificate that cannot be verified is a
    :class:`TLSVerificationError` naming the settings that fix it. Messages show ``url``
    without user-info.
    """
    safe_url = redact_url(url)
    failure = _certificate_failure(exc)
    if failure is not None:
        reason = failure.verify_message or failure.reason or str(failure)
        return TLSVerificationError(
            f"{method} {safe_url}: the server's TLS certificate could not be verified "
            f"({reason}). This is a setting, not an outage: set "
            "MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle that signed the server's "
            "certificate (a company CA, a self-signed certificate), or, only on a network "
            "you trust, MLFLOW_TRACKING_INSECURE_TLS=true",
            method=method,
            url=url,
        )
    if isinstance(exc, httpx.TimeoutException):
        sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        return APITimeoutError(
            f"{method} {safe_url} timed out ({type(exc).__name__})",
            method=method,
            url=url,
            request_sent=sent,
        )
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(
            f"{method} {safe_url}: cannot connect ({exc})",
            method=method,
            url=url,
            request_sent=False,
        )
    return APIConnectionError(
        f"{method} {safe_url}: connection failed ({type(exc).__name__}: {exc})",
        method=method,
        url=url,
        request_sent=not isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL),
    )


def _is_write(method: str) -> bool:
    return method not in ("GET", "HEAD", "OPTIONS")


def _excerpt(body: bytes) -> str:
    return " ".join(body[:200].decode("utf-8", errors="replace").split())


def _without_query(url: str) -> str:
    """A URL for a message: no user-info, no query string or fragment (they may carry tokens)."""
    return redact_url(url.split("?", 1)[0].split("#", 1)[0])


def check_write_answer(method: str, url: str, response: httpx.Response) -> None:
    """Raise unless a write's answer is MLflow's: a 2xx whose body is a JSON object.

    The artifact proxy (``/api/2.0/mlflow-artifacts/``) answers an upload with an empty
    body, so there an empty body is MLflow's answer too; every REST write answers at
    least ``{}``. Anything else (a redirect, an HTML page, an empty body from a host that
    is not MLflow) means the write may not have happened, so it is not delivered.

    Raises:
        UnexpectedResponseError: the answer is not MLflow's; the message says what it was.
    """
    status = response.status_code
    safe = f"{method} {_without_query(url)}"
    if 300 <= status < 400:
        location = response.headers.get("location")
        target = _without_query(str(response.url.join(location))) if location else "nowhere"
        raise UnexpectedResponseError(
            f"{safe} was redirected (HTTP {status} to {target}); mlrelay does not follow "
            "redirects on writes, so nothing was delivered. A login portal (an expired "
            "single sign-on session) or a tracking URI that the server moves (http to "
            "https, a missing path) answers like this: set the tracking URI to the "
            "server's own address, or sign in again",
            method=method,
            url=url,
        )
    body = response.content
    kind = response.headers.get("content-type", "no content type")
    if not body.strip():
        if "/api/2.0/mlflow-artifacts/" in url:
            return
        problem = f"an empty body ({kind}) instead of MLflow's JSON answer"
    elif "html" in kind.lower():
        problem = f"an HTML page instead of MLflow's JSON answer: {_excerpt(body)!r}"
    else:
        try:
            if isinstance(json.loads(body), dict):
                return
        except ValueError:
            pass
        problem = f"a body that is not MLflow's JSON answer ({kind}): {_excerpt(body)!r}"
    raise UnexpectedResponseError(
        f"{safe} answered HTTP {status} with {problem}; nothing was counted as delivered "
        "and the entries are kept. Is the tracking URI an MLflow server, or is a login "
        "portal or proxy answering in its place?",
        method=method,
        url=url,
    )


def _raise_for_status(method: str, url: str, response: httpx.Response) -> None:
    """Raise the :class:`APIStatusError` subclass for a status of 400 or more."""
    if response.status_code < 400:
        return
    request_id = next(
        (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
    )
    raise error_for_status(
        method=method,
        url=url,
        status_code=response.status_code,
        body=response.content,
        request_id=request_id,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def decode(endpoint: Endpoint[Any, RespT], response: httpx.Response) -> RespT:
    """Decode a success body into the endpoint's response model (``{}`` when empty).

    Raises:
        UnexpectedResponseError: the body is not JSON, or not the expected shape.
    """
    from pydantic import ValidationError as PydanticValidationError

    body = response.content
    url = str(response.request.url)
    try:
        data: Any = json.loads(body) if body.strip() else {}
        return endpoint.response.model_validate(data)
    except (ValueError, PydanticValidationError) as exc:
        excerpt = _excerpt(body)
        kind = response.headers.get("content-type", "no content type")
        raise UnexpectedResponseError(
            f"{response.request.method} {redact_url(url)} answered HTTP {response.status_code} "
            f"with a body that is not a valid MLflow {endpoint.path} response ({kind}): "
            f"{excerpt!r}. Is the tracking URI an MLflow server?",
            method=response.request.method,
            url=url,
        ) from exc
