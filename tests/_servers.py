"""Start and stop real tracking servers for the test suite.

Every server binds 127.0.0.1 on a free port, keeps its state in a temporary
directory, and is stopped by its process group. Nothing is installed at test time:
``mlflow`` comes from the test dependencies in the same virtualenv.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._timing import deadline

__all__ = ["RunningServer", "free_port", "mlflow_server", "stop_process", "wait_until_healthy"]

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
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: SIGTERM to its group, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
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
) -> Iterator[RunningServer]:
    """Run ``mlflow server`` on 127.0.0.1 with a sqlite store and proxied artifacts.

    Args:
        workdir: where the database, artifacts and log go (the server also runs there).
        port: the port to bind; a free one when not given (give one to restart on the same port).
        extra_args: more arguments for ``mlflow server`` (``--app-name basic-auth``).
        env: extra environment for the server process.
        command: the ``mlflow`` command to run, default this interpreter's ``-m mlflow``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / f"server-{port}.log"
    args = [
        *(command or _mlflow_executable()),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",  # artifacts through mlflow-artifacts:/ (explicit: 2.x and 3.x)
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--workers",
        "1",
        *extra_args,
    ]
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_"))
    }
    # MLflow 3 starts a job runner and several huey consumer processes next to the server
    # (for GenAI jobs, unused here): on a 2-core machine they cost more CPU than the tests.
    child_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    child_env.update(env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,
        )
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
