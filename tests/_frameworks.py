"""Training with the tracking server down, for the framework integrations' tests: a child
process trains against a closed port or a socket that never answers, then ``mlrelay sync``
sends what it journaled to the real server."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlrelay import cli
from mlrelay._pipeline import runs
from tests._env import child_env
from tests._timing import deadline

__all__ = ["landed", "train_with_server_down"]


def landed(client: Any, run_id: str, values_of: str) -> dict[str, Any]:
    """What the server holds of a run: params, each metric's steps (each once: a framework
    may log a key twice at one step, and calls within one millisecond are one point to the
    server, so how many land depends on the logger's speed), the values of ``values_of``,
    the run's name, tags and status, its top-level artifacts."""
    run = client.get_run(run_id)
    return {
        "params": run.data.params,
        "steps": {
            key: sorted({m.step for m in client.get_metric_history(run_id, key)})
            for key in run.data.metrics
        },
        "values": [m.value for m in client.get_metric_history(run_id, values_of)],
        "run_name": run.data.tags.get("mlflow.runName"),
        "tags": run.data.tags,
        "status": run.info.status,
        "artifacts": sorted(f.path for f in client.list_artifacts(run_id)),
    }


def train_with_server_down(
    down: str,
    script: str,
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_url: str,
    **env: str,
) -> str:
    """Run ``script`` (Python source, given ``args``) in a child process whose
    ``MLFLOW_TRACKING_URI`` is a closed port (``down="refused"``) or a socket that accepts
    and never answers (``"never answers"``); check that it exits 0 and that the training
    it times (a line ``FIT <seconds> ...``) took well under a minute; then sync its journal
    to ``server_url`` and return the rest of the ``FIT`` line."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if down == "never answers":
            sock.listen(64)
        address = f"http://127.0.0.1:{sock.getsockname()[1]}"
        home = tmp_path / "home"
        proc = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=child_env(
                MLRELAY_HOME=str(home),
                MLRELAY_EXIT_TIMEOUT="1",
                MLFLOW_TRACKING_URI=address,
                **env,
            ),
            capture_output=True,
            text=True,
            timeout=deadline(180),
        )
    assert proc.returncode == 0, proc.stderr
    seconds, *rest = proc.stdout.split("FIT")[-1].split()
    assert float(seconds) < deadline(60)
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    runs.session.reset()
    out = io.StringIO()
    code = cli.main(["sync", "--from", address, "--tracking-uri", server_url], out=out)
    assert code == 0, out.getvalue()
    return " ".join(rest)
