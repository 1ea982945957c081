"""The ASGI app: MLflow's routes behind a front door that does prefix, journal, faults and auth.

Request flow (everything under the reserved ``/_mock`` prefix skips the front door)::

    client -> [prefix strip] -> [journal] -> [fault rules] -> [auth] -> [body limit] -> routes

The front door runs *outside* Starlette's own middleware so that it gets the server's ``send``
callable; from it, ``drop``/``reset`` faults reach the connection's transport (uvicorn's h11 and
httptools protocols both expose it). Under a server that does not, a dropped connection
surfaces as a ``ConnectionAbortedError`` raised into the server instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import urllib.parse
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from mlrelay_mock._api import AppState, error_response, json_response, mlflow_routes, open_storage
from mlrelay_mock._artifact_views import artifact_view_routes
from mlrelay_mock._auth import AuthConfig
from mlrelay_mock._control import control_routes
from mlrelay_mock._errors import STATUS_BY_CODE, MlflowError
from mlrelay_mock._faults import FaultController, FaultRule
from mlrelay_mock._journal import Journal, RecordedRequest
from mlrelay_mock._proxy import AJAX_BASE, BASE, PARTS, artifact_routes
from mlrelay_mock._sources import local_path
from mlrelay_mock._store import Store
from mlrelay_mock._unsupported import unsupported_feature

__all__ = ["MockApp", "create_app", "normalise_prefix"]

CONTROL_PREFIX = "/_mock"
_NOSNIFF = b"x-content-type-options"
DEFAULT_MAX_BODY_BYTES = 64 << 20
"""The largest request body the API takes by default: far above what MLflow's clients send
(a full log-batch is under 2 MB; a dataset's schema and profile are capped well below)."""
_CODE_BY_STATUS: dict[int, str] = {}
for _code, _status in STATUS_BY_CODE.items():
    _CODE_BY_STATUS.setdefault(_status, _code)
_CODE_BY_STATUS[429] = "REQUEST_LIMIT_EXCEEDED"


def normalise_prefix(prefix: str) -> str:
    """``a/b/`` -> ``/a/b``; ``""`` and ``/`` -> ``""``."""
    prefix = prefix.strip()
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")


def _fault_response(rule: FaultRule) -> Response:
    headers = dict(rule.headers)
    if rule.retry_after is not None:
        value = rule.retry_after
        headers["Retry-After"] = (
            str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        )
    if rule.body is None:
        code = _CODE_BY_STATUS.get(rule.status, "INTERNAL_ERROR")
        body: Any = {"error_code": code, "message": f"Injected fault: HTTP {rule.status}"}
        return (
            json_response(body, rule.status)
            if not headers
            else _with(json_response(body, rule.status), headers)
        )
    if isinstance(rule.body, dict):
        return _with(json_response(rule.body, rule.status), headers)
    media = "text/plain" if isinstance(rule.body, str) else "application/octet-stream"
    return Response(rule.body, status_code=rule.status, media_type=media, headers=headers)


def _with(response: Response, headers: dict[str, str]) -> Response:
    for key, value in headers.items():
        response.headers[key] = value
    return response


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _kill_connection(send: Send, receive: Receive, *, reset: bool) -> None:
    """Close the client's connection without an answer (``reset``: with a TCP RST)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("mock fault: connection dropped")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Wait until the server has seen the connection go, so it does not try to answer on it.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(_until_disconnect(receive), timeout=5.0)


def _streamed_upload(method: str, endpoint: str) -> bool:
    """Artifact uploads stream to storage and, as on MLflow's server, have no size limit."""
    return method == "PUT" and endpoint.startswith((BASE + "/", AJAX_BASE + "/", PARTS + "/"))


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None when the body exceeds ``limit`` (read to its end)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            messages.append(message)
            return messages if size <= limit else None
        size += len(message.get("body", b""))
        if size <= limit:
            messages.append(message)
        if not message.get("more_body", False):
            return messages if size <= limit else None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` first, then the server's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class MockApp(Starlette):
    """A Starlette app serving MLflow's REST API from fresh state, plus the mock's extras.

    Attributes:
        faults: the :class:`FaultController` consulted for every request.
        journal: the :class:`Journal` of requests.
        prefix: the path prefix the API is served under (``""`` for none).
        auth: the :class:`AuthConfig`, or ``None`` for an open server.
    """

    def __init__(
        self,
        *,
        state: AppState,
        prefix: str,
        auth: AuthConfig | None,
        faults: FaultController,
        journal: Journal,
        max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.mock = state
        self.max_body_bytes = max_body_bytes
        self.prefix = prefix
        self.auth = auth
        self.faults = faults
        self.journal = journal
        routes = [
            Route("/health", lambda _: PlainTextResponse("OK"), methods=["GET"]),
            Route("/version", lambda _: PlainTextResponse(state.version), methods=["GET"]),
            *control_routes(state=state, faults=faults, journal=journal),
            *mlflow_routes(state),
            *artifact_routes(state),
            *artifact_view_routes(state),
        ]
        super().__init__(
            routes=routes,
            exception_handlers={HTTPException: self._http_error},
        )

    @property
    def store(self) -> Store:
        """The tracking and registry state."""
        return self.mock.store

    def reset_state(self) -> None:
        """Forget every experiment, run, model and artifact (and their files on disk)."""
        self.mock.reset()

    @staticmethod
    async def _http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            feature = unsupported_feature(request.url.path)
            error = MlflowError(
                "ENDPOINT_NOT_FOUND",
                f"No endpoint {request.method} {request.url.path}"
                + (f": the mlrelay mock server does not support {feature}" if feature else ""),
                404,
            )
        elif status == 405:
            error = MlflowError(
                "BAD_REQUEST", f"Method {request.method} not allowed on {request.url.path}", 405
            )
        else:
            error = MlflowError(_CODE_BY_STATUS.get(status, "BAD_REQUEST"), str(exc), status)
        return error_response(error)

    def _endpoint_of(self, path: str) -> str | None:
        path = "/" + path.lstrip("/")  # as on MLflow, "//get-artifact" is "/get-artifact"
        if not self.prefix:
            return path
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :] or "/"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection event through the front door."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        path: str = scope["path"]
        endpoint = self._endpoint_of(path)
        if endpoint is not None and (
            endpoint == CONTROL_PREFIX or endpoint.startswith(CONTROL_PREFIX + "/")
        ):
            await super().__call__(dict(scope, path=endpoint), receive, send)
            return
        if path.startswith(CONTROL_PREFIX + "/"):
            await super().__call__(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        entry = self.journal.start(
            method=scope["method"],
            path=path,
            endpoint=endpoint if endpoint is not None else path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            now=time.time(),
        )
        # Faults are decided here: a capacity rule's place is held until the answer is sent.
        admitted: list[int] = []
        rule = self.faults.decide(
            scope["method"], endpoint if endpoint is not None else scope["path"], admitted
        )
        try:
            await self._front_door(scope, receive, send, entry, endpoint, headers, rule)
        finally:
            if admitted:
                self.faults.release(admitted)
            self.journal.account(entry)
            entry.finish()

    async def _front_door(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: RecordedRequest,
        endpoint: str | None,
        headers: dict[str, str],
        rule: FaultRule | None,
    ) -> None:
        max_body = self.journal.max_body

        async def tee_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                entry.body_size += len(chunk)
                if entry.body is not None:
                    entry.body = entry.body + chunk if entry.body_size <= max_body else None
            return message

        async def drain() -> None:
            while True:
                message = await tee_receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        async def answer(message: Message) -> None:
            # MLflow 3 sends nosniff on every response it makes (2.7 only on downloads);
            # injected faults are sent exactly as configured.
            if message["type"] == "http.response.start" and self.mock.v3:
                sent = message.get("headers", [])
                if not any(k.lower() == b"x-content-type-options" for k, _ in sent):
                    message = {**message, "headers": [*sent, (_NOSNIFF, b"nosniff")]}
            await recording_send(message)

        if rule is not None:
            entry.fault = rule.action
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.action in ("status", "capacity"):
                await drain()
                await _fault_response(rule)(scope, receive, recording_send)
                return
            if rule.action == "reset":
                # Mid-body: take the first chunk of the request body, then reset, as a
                # network failure during a large upload does.
                await receive()
                await _kill_connection(send, receive, reset=True)
                return
            if rule.action == "drop":
                await drain()
                await _kill_connection(send, receive, reset=False)
                return
        if endpoint is None:
            await drain()
            error = MlflowError("ENDPOINT_NOT_FOUND", f"No endpoint at {scope['path']}", 404)
            await error_response(error)(scope, receive, answer)
            return
        if self.auth is not None and not endpoint.startswith(PARTS + "/"):
            denial = self.auth.check(headers.get("authorization"), scope["method"], endpoint)
            if denial is not None:
                await drain()
                await denial(scope, receive, answer)
                return
        app_receive: Receive = tee_receive
        if self.max_body_bytes is not None and not _streamed_upload(scope["method"], endpoint):
            buffered = await _read_body(tee_receive, self.max_body_bytes)
            if buffered is None:
                error = MlflowError(
                    "BAD_REQUEST",
                    f"Request body of {entry.body_size} bytes exceeds the limit of "
                    f"{self.max_body_bytes} bytes",
                    413,
                )
                await error_response(error)(scope, receive, answer)
                return
            app_receive = _replay(buffered, receive)
        inner = dict(scope, path=endpoint)
        if rule is not None and rule.action == "lose_response":

            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry.status = message["status"]

            await super().__call__(inner, app_receive, swallow)
            await _kill_connection(send, receive, reset=False)
            return
        await super().__call__(inner, app_receive, answer)


def file_artifact_root(root: str | None) -> str | None:
    """A ``--default-artifact-root`` as the absolute ``file:`` URI of its folder (created if
    missing); ``None`` for none. Only local folders are taken: the mock stores no remote files."""
    if root is None:
        return None
    parsed = urllib.parse.urlparse(root)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"default_artifact_root must be a local folder or file: URI, not {root!r}")
    folder = local_path(root)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def create_app(
    *,
    prefix: str = "",
    auth: AuthConfig | None = None,
    data_dir: Path | None = None,
    mlflow_version: str = "3.17.2",
    multipart: bool = False,
    faults: FaultController | None = None,
    journal: Journal | None = None,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    default_artifact_root: str | None = None,
) -> MockApp:
    """A fresh MLflow-compatible app (a Starlette app; serve it with uvicorn).

    Args:
        prefix: serve the API under this path, e.g. ``/alice/repo.mlflow`` (DagsHub style).
        auth: require these credentials; ``None`` for an open server.
        data_dir: keep state (``ops.jsonl``) and artifacts here across restarts; memory if ``None``.
        mlflow_version: what ``/version`` says; below 3, MLflow 3-only routes are absent and
            2.7's NaN-duplicate quirk is copied (protocol notes §15).
        multipart: offer multipart uploads (``mpu/*`` routes, ``server-info`` says so).
        faults: a fault controller to share (e.g. across restarts); a new one if ``None``.
        journal: a request journal to share; a new one if ``None``.
        max_body_bytes: answer 413 to a request whose body is larger (artifact uploads,
            streamed to storage, are not limited); ``None`` for no limit.
        default_artifact_root: a local folder (path or ``file:`` URI) to keep artifacts in,
            as ``mlflow server --default-artifact-root`` without ``--serve-artifacts``:
            experiments get ``file:`` locations there, MLflow's clients read and write the
            files directly, and the server lists and serves them. ``None``: artifacts are
            proxied (``mlflow-artifacts:``), in memory or under ``data_dir``.

    Example::

        app = create_app(prefix="/alice/repo.mlflow", auth=AuthConfig(basic={"alice": "tok"}))
    """
    v3 = int(mlflow_version.split(".")[0]) >= 3
    data_dir = Path(data_dir) if data_dir is not None else None
    file_root = file_artifact_root(default_artifact_root)
    store, artifacts = open_storage(data_dir, v3=v3, file_root=file_root)
    state = AppState(
        store=store,
        artifacts=artifacts,
        version=mlflow_version,
        data_dir=data_dir,
        multipart=multipart and v3,
        file_root=file_root,
    )
    return MockApp(
        state=state,
        prefix=normalise_prefix(prefix),
        auth=auth,
        faults=faults if faults is not None else FaultController(),
        journal=journal if journal is not None else Journal(),
        max_body_bytes=max_body_bytes,
    )
