"""Whole processes that log through the fluent API: normal exit and a blackholed server."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlrelay
from mlrelay import cli
from tests._env import child_env
from tests._servers import RunningServer
from tests._timing import deadline, slack
from tests.conftest import ProdServer

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import mlrelay.fluent as ml
    ml.set_experiment("process-tests")
    run = ml.start_run(run_name=sys.argv[1])
    print("RUN", run.run_id, run.local_id, flush=True)
    for i in range({n}):
        ml.log_metric("m", i * 0.5, step=i)
    print("LOGGED", time.monotonic(), flush=True)
    """
)


def _env(uri: str, home: Path, **extra: str) -> dict[str, str]:
    env = child_env()
    env.update({"MLFLOW_TRACKING_URI": uri, "MLRELAY_HOME": str(home), **extra})
    return env


@pytest.mark.real
def test_normal_exit_lands_every_point_and_finishes_the_run(
    tracking_server: RunningServer | ProdServer, tmp_path: Path
) -> None:
    """10,000 points logged by a script that just exits all land; the run ends FINISHED."""
    # Exit sends for at most MLRELAY_EXIT_TIMEOUT (10 s); how much fits in that depends on
    # the machine, so the test gives exit a scaled limit: it checks that exit delivers.
    env = _env(tracking_server.url, tmp_path, MLRELAY_EXIT_TIMEOUT=str(deadline(60)))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(n=10_000), "exit-normally"],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        check=True,
    )
    run_id = result.stdout.split()[1]
    with mlrelay.Client(tracking_uri=tracking_server.url) as c:
        assert len(c.get_metric_history(run_id, "m")) == 10_000
        assert c.get_run(run_id).info.status == "FINISHED"
    assert "not yet delivered" not in result.stderr


def test_exit_is_bounded_when_the_server_is_blackholed(tmp_path: Path) -> None:
    """A server that accepts connections and never answers: exit within the exit timeout + 2 s."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)  # connections complete in the backlog; nothing is ever read
        uri = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        env = _env(uri, tmp_path, MLRELAY_EXIT_TIMEOUT="3", MLRELAY_START_TIMEOUT="1")
        proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", SCRIPT.format(n=2_000), "blackholed"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            assert lines[1].startswith("LOGGED"), lines
            logged_at = time.monotonic()
            proc.wait(timeout=deadline(30))
            elapsed = time.monotonic() - logged_at
        finally:
            proc.kill()
            proc.wait()
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()
    assert elapsed < 3 + slack(2), f"exit took {elapsed:.1f} s"
    assert "mlrelay: 2000 entries not yet delivered are kept in" in stderr
    assert "mlrelay sync" in stderr


WORKER = textwrap.dedent(
    """
    import sys
    import mlrelay
    rank = int(sys.argv[1])
    with mlrelay.start_run(run_id=sys.argv[2]):
        for i in range(20_000):
            mlrelay.log_metric(f"worker{rank}", i * 0.25, step=i)
    # Keep delivering for as long as delivery makes progress, however slowly.
    print("DELIVERED", mlrelay.flush(), flush=True)
    """
)


@pytest.mark.real
@pytest.mark.slow
def test_eight_processes_log_into_one_run_without_loss_or_duplicates(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 processes x 20,000 points into one run sharing one journal: 160,000 points, once each."""
    with mlrelay.Client(tracking_uri=mlflow_real.url) as c:
        run_id = c.create_run("0", run_name="data-parallel").info.run_id
    # How fast 8 processes get through one server is the machine's business: the workers
    # wait while delivery makes progress (a no-progress limit scaled to the machine), and
    # `mlrelay sync` then sends whatever is left. Only then is exactly-once checked.
    env = _env(mlflow_real.url, tmp_path, MLRELAY_EXIT_TIMEOUT=str(deadline(30)))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(rank), run_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for rank in range(8)
    ]
    stop = time.monotonic() + deadline(300)
    reports = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(stop - time.monotonic(), 1.0))
            assert p.returncode == 0, err
            reports.append(out.decode().strip())
    finally:
        for p in procs:
            p.kill()
            p.wait()
    monkeypatch.setenv("MLRELAY_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    synced = io.StringIO()
    assert cli.main(["sync"], out=synced) == 0, f"{reports}\n{synced.getvalue()}"
    with mlrelay.Client(tracking_uri=mlflow_real.url) as c:
        total = 0
        for rank in range(8):
            steps = [m.step for m in c.get_metric_history(run_id, f"worker{rank}")]
            assert len(steps) == len(set(steps)), f"worker{rank}: a point landed twice"
            assert sorted(steps) == list(range(20_000)), f"worker{rank}: a point is missing"
            total += len(steps)
    assert total == 160_000
