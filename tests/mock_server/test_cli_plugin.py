"""The console script, ``python -m mlrelay_mock``, and the pytest plugin's fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mlrelay_mock import MockServer

from tests._servers import free_port
from tests._timing import deadline

STARTUP_DEADLINE_S = deadline(30)


@contextmanager
def _cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run the server command, read its URL line, and stop it with SIGTERM afterwards."""
    with subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()  # one line, printed once it is ready
            yield process, url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STARTUP_DEADLINE_S)


def test_module_prints_url_and_serves(tmp_path: Path) -> None:
    """``python -m mlrelay_mock --port 0 --prefix P`` prints its URL, serves, exits 0 on SIGTERM."""
    with _cli(sys.executable, "-m", "mlrelay_mock", "--port", "0", "--prefix", "/u/r.mlflow") as (
        process,
        url,
    ):
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/u/r.mlflow")
        assert httpx.get(f"{url}/health", timeout=deadline(10)).text == "OK"
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=STARTUP_DEADLINE_S) == 0


def test_console_script_keeps_data_across_restarts(tmp_path: Path) -> None:
    """``mlrelay-mock-server --port N --data-dir D`` keeps experiments across a restart."""
    script = shutil.which("mlrelay-mock-server", path=str(Path(sys.executable).parent))
    assert script is not None
    port = str(free_port())
    args = (script, "--host", "127.0.0.1", "--port", port, "--data-dir", str(tmp_path / "d"))
    with _cli(*args) as (_, url):
        assert url == f"http://127.0.0.1:{port}"
        r = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "persisted"})
        assert r.status_code == 200
    with _cli(*args) as (_, url):
        found = httpx.get(
            f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "persisted"}
        )
        assert found.status_code == 200


def test_cli_basic_auth(tmp_path: Path) -> None:
    """``--basic-auth user:token`` makes the server require those credentials."""
    with _cli(sys.executable, "-m", "mlrelay_mock", "--port", "0", "--basic-auth", "u:t") as (
        _,
        url,
    ):
        api = f"{url}/api/2.0/mlflow/experiments/get"
        assert httpx.get(api, params={"experiment_id": "0"}).status_code == 401
        assert httpx.get(api, params={"experiment_id": "0"}, auth=("u", "t")).status_code == 200


def test_plugin_fixture_serves(mock_server: MockServer) -> None:
    """The ``mock_server`` fixture yields a running server on a loopback port."""
    assert mock_server.running
    assert mock_server.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{mock_server.url}/version").text == "3.17.2"


def test_plugin_is_registered_by_entry_point(pytestconfig: pytest.Config) -> None:
    """The distribution registers its plugin through the pytest11 entry point."""
    assert pytestconfig.pluginmanager.has_plugin("mlrelay_mock")


def test_factory_stops_its_servers(mock_server_factory: Callable[..., MockServer]) -> None:
    """Servers from the factory run with the options given (here posing as MLflow 2.7.1)."""
    server = mock_server_factory(mlflow_version="2.7.1")
    assert httpx.get(f"{server.url}/version").text == "2.7.1"
