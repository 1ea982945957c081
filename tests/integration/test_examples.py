"""The examples run green against the mock server and a real MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._servers import RunningServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, uri: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_"))}
    env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_quickstart_against_the_mock_server() -> None:
    """examples/quickstart.py logs and reads back a run on the bundled mock server."""
    from mlrelay_mock import MockServer

    with MockServer() as server:
        result = _run("quickstart.py", server.url)
    assert result.returncode == 0, result.stderr
    assert "status FINISHED" in result.stdout
    assert "Loss history    : 20 points" in result.stdout


@pytest.mark.real
def test_quickstart_against_a_real_server(mlflow_real: RunningServer) -> None:
    """The same script lands the same run on a real MLflow server."""
    result = _run("quickstart.py", mlflow_real.url)
    assert result.returncode == 0, result.stderr
    assert "'epochs': '20'" in result.stdout
    assert "Loss history    : 20 points" in result.stdout


def test_demo_command_runs() -> None:
    """`make demo`'s script starts the mock server, runs the quickstart and exits 0."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Started a bundled mock server" in result.stdout
    assert "dagshub.com" in result.stdout
