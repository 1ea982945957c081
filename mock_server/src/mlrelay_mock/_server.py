"""Run the mock in a background thread with uvicorn: :class:`MockServer`.

The listening socket is bound by :meth:`MockServer.start` itself, so the port is known (and
taken) before the thread starts, and a restart binds the same port again. Each start serves a
fresh app; with a ``data_dir`` the app reloads the state the previous one left there. The fault
controller and the journal outlive restarts, so a test can script "fail, restart, succeed".
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from mlrelay_mock._app import (
    DEFAULT_MAX_BODY_BYTES,
    MockApp,
    create_app,
    file_artifact_root,
    normalise_prefix,
)
from mlrelay_mock._auth import AuthConfig
from mlrelay_mock._faults import FaultController
from mlrelay_mock._journal import Journal

__all__ = ["MockServer"]

STARTUP_DEADLINE_S = 10.0
SHUTDOWN_DEADLINE_S = 10.0


class MockServer:
    """An MLflow-compatible server on a loopback port, in a background thread.

    Args:
        host: the address to bind (keep it on loopback).
        port: the port; ``0`` picks a free one (kept across restarts).
        prefix: serve the API under this path prefix.
        auth: credentials to require, or ``None``.
        data_dir: keep state on disk here, so it survives :meth:`stop` / :meth:`start`.
        mlflow_version: the MLflow version to pose as.
        multipart: offer multipart artifact uploads (as a server on S3 with
            ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` does; parts go to presigned-style URLs on
            the mock itself). MLflow 3 only.
        max_body_bytes: answer 413 to a request whose body is larger (default 64 MiB;
            artifact uploads are streamed and not limited); ``None`` for no limit.
        default_artifact_root: keep artifacts in this local folder (path or ``file:`` URI)
            and give experiments ``file:`` locations there, as ``mlflow server
            --default-artifact-root`` without ``--serve-artifacts``; ``None``: proxied.

    Example::

        with MockServer() as server:
            server.faults.add("status", path="*/log-batch", status=503, times=3)
            ...  # point the client at server.url
            assert server.requests[-1].status == 200
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "",
        auth: AuthConfig | None = None,
        data_dir: Path | None = None,
        mlflow_version: str = "3.17.2",
        multipart: bool = False,
        max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
        default_artifact_root: str | None = None,
    ) -> None:
        self.host = host
        # Checked (and its folder made) here, so a bad root fails before any socket is bound.
        self.default_artifact_root = file_artifact_root(default_artifact_root)
        self.max_body_bytes = max_body_bytes
        self.multipart = multipart
        self.port = port
        self.prefix = prefix
        self.auth = auth
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.mlflow_version = mlflow_version
        self.faults = FaultController()
        self.journal = Journal()
        self._app: MockApp | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` without the prefix."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The tracking URI: ``http://host:port`` plus the prefix."""
        return self.base_url + normalise_prefix(self.prefix)

    @property
    def requests(self) -> Journal:
        """The request journal (a sequence of :class:`RecordedRequest`, oldest first)."""
        return self.journal

    @property
    def app(self) -> MockApp:
        """The app being served (a new one after each start)."""
        if self._app is None:
            raise RuntimeError("the server has not been started")
        return self._app

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> MockServer:
        """Bind the port and serve a fresh app; return when it accepts connections.

        Raises:
            RuntimeError: if it is already running or did not start within the deadline.
            OSError: if the port cannot be bound.
        """
        if self.running:
            raise RuntimeError("the server is already running")
        # IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets whose proto says TCP,
        # and without it every response waits ~40 ms on Nagle plus delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        self._app = create_app(
            prefix=self.prefix,
            auth=self.auth,
            data_dir=self.data_dir,
            mlflow_version=self.mlflow_version,
            multipart=self.multipart,
            faults=self.faults,
            journal=self.journal,
            max_body_bytes=self.max_body_bytes,
            default_artifact_root=self.default_artifact_root,
        )
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"mlrelay-mock-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mock server did not start on {self.base_url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving at once (in-flight requests are cut), like a process that dies."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
            server.force_exit = True
        if thread is not None:
            thread.join(SHUTDOWN_DEADLINE_S)
            if thread.is_alive():
                raise RuntimeError("mock server thread did not stop")
        if self._app is not None:
            self._app.store.close()
        self._server = self._thread = None

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
