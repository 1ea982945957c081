"""Swap MLflow's server fixtures for a fresh ``mlrelay-mock-server`` (issue 14 harness).

Load with ``-p swap_plugin`` (``run.sh`` puts this folder on PYTHONPATH). Backend chosen by
``MOCKFID_BACKEND``:

* ``real`` (default): nothing is swapped; the modules' own fixtures start MLflow 3.17.2's
  server (``mlflow.server.fastapi_app`` in a thread, or ``mlflow server`` for the artifacts
  module) exactly as upstream does. This is the control.
* ``mock``: the fixture *functions* below are replaced (same name, same arguments, so
  parametrisation such as ``store_type=[file|sqlalchemy]`` and its skips stay identical) by ones
  that start ``python -m mlrelay_mock`` as a subprocess on a free 127.0.0.1 port, with
  ``PYTHONPATH=<repo>/src:<repo>/mock_server/src`` (``MOCKFID_PYTHONPATH`` overrides; <repo> is
  found from this file's location) so the CURRENT working-tree mock runs,
  wait for ``/health`` within a deadline, and kill it at teardown.

Swapped fixtures (test bodies are never touched):

* tests/tracking/test_rest_tracking.py  ``mlflow_client``, ``mlflow_client_with_secrets``
  (and, like upstream where the in-process tracking URI is the server's own sqlite db, the
  in-process default tracking URI is pointed at the mock while the fixture lives)
* tests/tracking/test_model_registry.py ``client`` (same in-process URI rule)
* tests/tracking/test_mlflow_artifacts.py ``artifacts_server`` (module-scoped upstream, so one
  mock per module here too, with ``--data-dir`` so ``artifacts_destination`` is a real
  directory: ``<data-dir>/artifacts``; ``backend_store_uri`` becomes the mock's URL, so
  ``MlflowClient(backend_store_uri)`` talks REST to the mock instead of opening sqlite).

Tests that start their own server inline (``_init_server(...)``, ``ServerThread(app, ...)``
inside a test body) cannot be swapped without editing the body; they are out of the selection.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]  # tests/compat/mlflow_server_tests -> repository root
BACKEND = os.environ.get("MOCKFID_BACKEND", "real")
MOCK_PYTHON = os.environ.get("MOCKFID_PYTHON", sys.executable)
MOCK_PYTHONPATH = os.environ.get(
    "MOCKFID_PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO / "mock_server" / "src")])
)
MOCK_EXTRA_ARGS = os.environ.get("MOCKFID_MOCK_ARGS", "").split()
READY_DEADLINE_S = float(os.environ.get("MOCKFID_READY_DEADLINE", "30"))
OUT_DIR = Path(os.environ.get("MOCKFID_OUT") or Path(tempfile.gettempdir()) / "mlrelay-mockfid")
LOG_DIR = Path(os.environ.get("MOCKFID_LOG_DIR") or OUT_DIR / "logs" / BACKEND)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MockProcess:
    """A running ``mlrelay_mock`` subprocess; ``url`` once ready."""

    def __init__(
        self, data_dir: Path | None = None, label: str = "mock", extra: tuple[str, ...] = ()
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": MOCK_PYTHONPATH}
        # MLflow env vars set by tests must not leak into the mock (it does not read them anyway).
        cmd = [MOCK_PYTHON, "-m", "mlrelay_mock", "--host", "127.0.0.1", "--port", str(self.port)]
        if data_dir is not None:
            cmd += ["--data-dir", str(data_dir)]
        cmd += [*extra, *MOCK_EXTRA_ARGS]
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_.[]" else "_" for c in label)[-150:]
        self.log_path = LOG_DIR / f"{safe}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"mock exited early (rc={self.proc.returncode}); log: {self.log_path}:\n"
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            try:
                if requests.get(self.url + "/health", timeout=0.5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mock not ready within {READY_DEADLINE_S}s; log: {self.log_path}")

    def stop(self) -> None:
        """Terminate (then kill) the subprocess we started, by its own process group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


@contextlib.contextmanager
def _in_process_uri(url: str) -> Iterator[None]:
    """Point the test process's default tracking URI at the mock while the fixture lives.

    Upstream, the autouse ``tracking_uri_mock`` sets the in-process tracking URI to ``db_uri``
    and the real fixture serves that SAME sqlite file, so code in a test body that uses the
    default URI (fluent API, ``mlflow experiments`` CLI via CliRunner, where the in-process URI
    wins over the MLFLOW_TRACKING_URI env) reaches the server's store. The equivalent for the
    mock is to make the in-process URI the mock's URL.
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(url):
        yield


# ---------------------------------------------------------------- replacement fixture bodies


def _mock_mlflow_client(**kwargs: Any) -> Iterator[Any]:
    """Replacement for test_rest_tracking.py::mlflow_client (and ..._with_secrets)."""
    from mlflow import MlflowClient

    request = kwargs.get("request")
    monkeypatch = kwargs.get("monkeypatch")
    if monkeypatch is not None:
        monkeypatch.setenv(
            "MLFLOW_CRYPTO_KEK_PASSPHRASE", "test-passphrase-at-least-32-characters-long"
        )
    label = _current_test_label()
    # The same server configuration as upstream's fixtures: artifacts in a local folder
    # (mlflow_client: tmp_path; mlflow_client_with_secrets: tmp_path/artifacts), not proxied.
    tmp_path = kwargs["tmp_path"]
    root = tmp_path if "store_type" in kwargs else tmp_path / "artifacts"
    server = MockProcess(label=label, extra=("--default-artifact-root", root.as_uri()))
    try:
        with _in_process_uri(server.url):
            yield MlflowClient(server.url)
    finally:
        server.stop()
    del request


def _mock_registry_client(**kwargs: Any) -> Iterator[Any]:
    """Replacement for test_model_registry.py::client (skips ``file`` like upstream)."""
    from mlflow import MlflowClient

    request = kwargs["request"]
    if request.param == "file":
        pytest.skip("FileStore is no longer supported.")
    server = MockProcess(label=_current_test_label())
    try:
        with _in_process_uri(server.url):
            yield MlflowClient(server.url)
    finally:
        server.stop()


class ArtifactsServer(NamedTuple):
    """Same shape as test_mlflow_artifacts.ArtifactsServer."""

    backend_store_uri: str
    default_artifact_root: str
    artifacts_destination: str
    url: str
    process: subprocess.Popen[bytes]


def _mock_artifacts_server(**kwargs: Any) -> Iterator[ArtifactsServer]:
    """Replacement for test_mlflow_artifacts.py::artifacts_server (module scope, like upstream)."""
    tmpdir = Path(tempfile.mkdtemp(prefix="mockfid-art-"))
    data_dir = tmpdir / "data"
    server = MockProcess(data_dir=data_dir, label="test_mlflow_artifacts.artifacts_server")
    try:
        yield ArtifactsServer(
            backend_store_uri=server.url,
            default_artifact_root=f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
            artifacts_destination=str(data_dir / "artifacts"),
            url=server.url,
            process=server.proc,
        )
    finally:
        server.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)


_CURRENT: dict[str, str] = {"nodeid": "mock"}


def _current_test_label() -> str:
    return _CURRENT["nodeid"].split("::", 1)[-1]


# module basename -> {fixture name -> replacement}
SWAPS: dict[str, dict[str, Any]] = {
    "test_rest_tracking": {
        "mlflow_client": _mock_mlflow_client,
        "mlflow_client_with_secrets": _mock_mlflow_client,
    },
    "test_model_registry": {"client": _mock_registry_client},
    "test_mlflow_artifacts": {"artifacts_server": _mock_artifacts_server},
}


def _wrap(original: Any, replacement: Any, argnames: tuple[str, ...]) -> Any:
    """A generator function accepting the original's kwargs; ``request`` is passed through."""

    def fixture_body(**kwargs: Any) -> Iterator[Any]:
        yield from replacement(**kwargs)

    fixture_body.__name__ = getattr(original, "__name__", "swapped")
    fixture_body.__module__ = __name__
    fixture_body.__doc__ = f"mock swap of {getattr(original, '__qualname__', original)}"
    return fixture_body


def pytest_configure(config: pytest.Config) -> None:
    """Record the backend in the header and register the marker-free config."""
    config._mockfid_backend = BACKEND  # type: ignore[attr-defined]
    if BACKEND not in ("real", "mock"):
        raise pytest.UsageError(f"MOCKFID_BACKEND must be real or mock, not {BACKEND!r}")


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backend runs."""
    return f"mockfid backend: {BACKEND} (mock PYTHONPATH={MOCK_PYTHONPATH})"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With MOCKFID_BACKEND=mock, replace the server fixtures' functions (once per FixtureDef)."""
    if BACKEND != "mock":
        return
    done: set[int] = set()
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name, defs in info.name2fixturedefs.items():
            for fixturedef in defs:
                func = fixturedef.func
                modname = getattr(func, "__module__", "") or ""
                base = modname.rsplit(".", 1)[-1]
                replacement = SWAPS.get(base, {}).get(name)
                if replacement is None or id(fixturedef) in done:
                    continue
                # argnames unchanged -> closures/params stay valid; we need `request` for params.
                argnames = tuple(fixturedef.argnames)
                if "request" not in argnames:
                    fixturedef.argnames = (*argnames, "request")
                fixturedef.func = _wrap(func, replacement, argnames)  # type: ignore[misc]
                done.add(id(fixturedef))
    config._mockfid_swapped = len(done)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Remember the running test (labels the mock's log file)."""
    _CURRENT["nodeid"] = item.nodeid


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say how many fixture definitions were swapped."""
    n = getattr(config, "_mockfid_swapped", 0)
    terminalreporter.write_line(f"mockfid: backend={BACKEND}, swapped fixture defs={n}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("load with: pytest -p swap_plugin")
