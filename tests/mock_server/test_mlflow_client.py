"""MLflow's own Python client, unchanged, against the mock: the tutorial flow in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

from tests._timing import deadline

SCRIPT = Path(__file__).with_name("mlflow_tutorial.py")


@pytest.mark.slow
def test_mlflow_tutorial_flow_passes(mock_server: MockServer, tmp_path: Path) -> None:
    """set_experiment, nested runs, params, metrics, tags, artifacts, models, registry all work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = mock_server.url
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # any server error fails at once
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=deadline(240),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-6000:]
    assert "TUTORIAL OK" in result.stdout
    failures = [
        (e.method, e.endpoint, e.status)
        for e in mock_server.requests
        if e.status is None or (e.status >= 400 and e.status != 404)
    ]
    assert failures == []
    endpoints = {e.endpoint for e in mock_server.requests}
    for expected in (
        "/api/2.0/mlflow/runs/log-batch",
        "/api/2.0/mlflow/logged-models",
        "/api/2.0/mlflow/model-versions/create",
        "/api/2.0/mlflow/registered-models/alias",
    ):
        assert expected in endpoints
