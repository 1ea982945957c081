"""Start and stop real tracking servers, and the PostgreSQL behind some of them, for the suite.

Every server binds 127.0.0.1 on a free port, keeps its state in a temporary
directory, and is stopped by its process group. Nothing is installed at test time:
``mlflow`` and PostgreSQL (pgserver's build) come from the test dependencies in the same
virtualenv.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests._timing import deadline

__all__ = [
    "PostgresServer",
    "RunningServer",
    "free_port",
    "mlflow_server",
    "postgres_server",
    "stop_process",
    "wait_until_healthy",
]

STARTUP_DEADLINE_S = 90.0  # scaled by tests._timing.deadline where it is used


@dataclass(frozen=True)
class RunningServer:
    """A server process the suite started."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines the server wrote, for failure messages."""
        return _tail(self.log_path, n)


def _tail(path: Path, n: int) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_logged(
    args: list[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start a server process in its own session (so :func:`stop_process` stops its
    children too), its output appended to ``log_path``, no stdin; ``popen`` passes more
    ``subprocess.Popen`` arguments (``user``, ``group``)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            start_new_session=True,
            **popen,
        )


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], deadline_s: float, path: str = "/health"
) -> None:
    """Poll ``url + path`` until it answers 200, the process dies, or the deadline passes."""
    stop = time.monotonic() + deadline_s
    last: str = "no answer yet"
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was healthy")
        try:
            r = httpx.get(url + path, timeout=deadline(2.5))
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url}{path} not healthy after {deadline_s} s ({last})")


def stop_process(
    process: subprocess.Popen[bytes], *, leader_signal: signal.Signals | None = None
) -> None:
    """Stop a server started in its own session: SIGTERM to its group (or ``leader_signal``
    to its leader alone, for a server that stops its own children), then SIGKILL to the group
    if it is not gone in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if leader_signal is None:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            os.kill(process.pid, leader_signal)
    try:
        process.wait(timeout=deadline(10))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=deadline(10))


def _mlflow_executable() -> list[str]:
    return [sys.executable, "-m", "mlflow"]


@contextlib.contextmanager
def mlflow_server(
    workdir: Path,
    *,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    command: list[str] | None = None,
    backend_store_uri: str | None = None,
    workers: int = 1,
    artifacts: str | None = None,
    serve_artifacts: bool = True,
) -> Iterator[RunningServer]:
    """Run ``mlflow server`` on 127.0.0.1; by default one worker, a sqlite store and artifacts
    proxied to a local directory.

    Args:
        workdir: where the log (and by default the database and artifacts) go; the server
            runs there.
        port: the port to bind; a free one when not given (give one to restart on the same port).
        extra_args: more arguments for ``mlflow server`` (``--app-name basic-auth``).
        env: extra environment for the server process (``S3Store.env`` for an ``s3://`` store).
        command: the ``mlflow`` command to run, default this interpreter's ``-m mlflow``.
        backend_store_uri: the tracking store, default ``sqlite:///<workdir>/mlflow.db``
            (``PostgresServer.create_database`` gives a PostgreSQL one).
        workers: ``--workers``: server processes behind the one port.
        artifacts: where artifacts are stored: with ``serve_artifacts`` the proxy's
            ``--artifacts-destination`` (default ``<workdir>/artifacts``), without it the
            ``--default-artifact-root`` clients write to themselves (required then).
        serve_artifacts: ``--serve-artifacts`` (runs get ``mlflow-artifacts:/`` URIs and the
            server moves the bytes) or ``--no-serve-artifacts`` (runs get ``artifacts`` itself).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / f"server-{port}.log"
    if serve_artifacts:  # explicit: the default differs between 2.x and 3.x
        store_args = ["--serve-artifacts", "--artifacts-destination"]
        store_args.append(artifacts or str(workdir / "artifacts"))
    elif artifacts is None:
        raise ValueError("serve_artifacts=False needs artifacts: the default artifact root")
    else:
        store_args = ["--default-artifact-root", artifacts, "--no-serve-artifacts"]
    args = [
        *(command or _mlflow_executable()),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri or f"sqlite:///{workdir / 'mlflow.db'}",
        *store_args,
        "--workers",
        str(workers),
        *extra_args,
    ]
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_", "AWS_"))
    }
    # MLflow 3 starts a job runner and several huey consumer processes next to the server
    # (for GenAI jobs, unused here): on a 2-core machine they cost more CPU than the tests.
    child_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    child_env.update(env or {})
    process = spawn_logged(args, log_path, cwd=workdir, env=child_env)
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(url=url, port=port, process=process, workdir=workdir, log_path=log_path)
    try:
        try:
            wait_until_healthy(url, process, deadline(STARTUP_DEADLINE_S))
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n--- server log ---\n{server.log_tail()}") from exc
        yield server
    finally:
        stop_process(process)


def _pgserver_bin() -> Path:
    """pgserver's PostgreSQL binaries, found without importing pgserver (its import
    computes a runtime directory and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "pgserver is not installed (a test dependency: pip install -e '.[test]')"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


PG_USER = "postgres"  # the database superuser initdb creates; trusted on loopback
PG_RUN_AS = "nobody"  # the account PostgreSQL runs under when the suite runs as root
SYSTEM_TMP = tempfile.gettempdir()
"""The system's temporary directory, read at import (before the test run points TMPDIR
into its own 0700 temporary root, which PostgreSQL's account could not enter)."""


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server the suite started: TCP on 127.0.0.1, user ``postgres``, no password
    (trust authentication, loopback only)."""

    port: int
    process: subprocess.Popen[bytes]
    datadir: Path
    log_path: Path

    def uri(self, database: str = "postgres") -> str:
        """The SQLAlchemy URI of ``database`` (what ``--backend-store-uri`` takes), naming the
        driver: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, not installed here."""
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", timeout_s: float = 10) -> Any:
        """A psycopg2 connection to ``database`` (the caller closes it)."""
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname=database,
            connect_timeout=max(1, int(timeout_s)),
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` (MLflow wants a fresh one per server); its URI."""
        from psycopg2 import sql

        conn = self.connect()
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.uri(name)

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines PostgreSQL wrote, for failure messages."""
        return _tail(self.log_path, n)


def _postgres_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: None (this process's) unless that is root, which
    PostgreSQL refuses to run as; then ``nobody``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_RUN_AS)
    except KeyError:
        raise RuntimeError(
            f"running as root, and there is no {PG_RUN_AS!r} account to run PostgreSQL as"
        ) from None


def _wait_for_postgres(server: PostgresServer, deadline_s: float) -> None:
    """Poll a connection until PostgreSQL accepts it, the process dies, or the deadline passes."""
    import psycopg2

    stop = time.monotonic() + deadline_s
    last = "no answer yet"
    while time.monotonic() < stop:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.process.returncode} before it was up")
        try:
            server.connect(timeout_s=2).close()
            return
        except psycopg2.OperationalError as exc:
            last = str(exc).strip()
        time.sleep(0.1)
    raise TimeoutError(f"postgres on port {server.port} not up after {deadline_s} s ({last})")


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[PostgresServer]:
    """Run PostgreSQL (pgserver's build) on 127.0.0.1 with a fresh data directory; stop it and
    remove the data afterwards.

    The server listens on TCP 127.0.0.1 on a free port only (no Unix socket), with trust
    authentication for ``postgres``. Its log goes to ``workdir``. pgserver's own
    ``get_server`` is not used: on Linux it listens on a Unix socket only, and as root it
    adds a system user and opens up the permissions of every directory above the data.
    Here, as root, the server runs as ``nobody`` with its data in a private directory of the
    system's temporary directory owned by that account (``workdir`` lies under pytest's
    0700 temporary root, which ``nobody`` cannot enter); otherwise the data is in ``workdir``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    bin_dir = _pgserver_bin()
    account = _postgres_account()
    if account is None:
        datadir, scratch = workdir / "pgdata", None
        as_user: dict[str, object] = {}
    else:
        scratch = Path(tempfile.mkdtemp(prefix="mlrelay-pg-", dir=SYSTEM_TMP))
        os.chown(scratch, account.pw_uid, account.pw_gid)
        datadir = scratch / "data"
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    port = free_port()
    log_path = workdir / f"postgres-{port}.log"
    try:
        with log_path.open("wb") as log:
            subprocess.run(
                [
                    str(bin_dir / "initdb"), "-D", str(datadir), "--username", PG_USER,
                    "--auth", "trust", "--encoding", "UTF8", "--locale", "C",
                    "--no-sync",  # a throw-away cluster: no need to wait for the disk
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                check=True, timeout=deadline(60), **as_user,  # type: ignore[call-overload]
            )  # fmt: skip
        process = spawn_logged(
            [
                str(bin_dir / "postgres"), "-D", str(datadir), "-p", str(port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=",  # TCP only
                # Two MLflow servers of four workers, each worker with SQLAlchemy pools
                # for the tracking and the registry store (up to 15 connections each).
                "-c", "max_connections=300",
            ],
            log_path,
            **as_user,
        )  # fmt: skip
        server = PostgresServer(port=port, process=process, datadir=datadir, log_path=log_path)
        try:
            try:
                _wait_for_postgres(server, deadline(30))
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n--- postgres log ---\n{server.log_tail()}") from exc
            yield server
        finally:  # SIGINT: a fast shutdown (clients disconnected, children stopped)
            stop_process(process, leader_signal=signal.SIGINT)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
