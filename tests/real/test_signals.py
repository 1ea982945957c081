"""Stopping a logging process: SIGTERM (how Slurm and Kubernetes preempt) delivers what was
logged before the process ends, a user's SIGTERM handler still runs, and with the server
unreachable a script ends within one MLRELAY_EXIT_TIMEOUT (plus a slack)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests._env import child_env
from tests._servers import RunningServer, free_port
from tests._timing import deadline, slack

pytestmark = pytest.mark.real

LOGGER = textwrap.dedent(
    """
    import signal, sys, time
    import mlrelay
    if sys.argv[2] == "user-handler":
        def handler(signum, frame):
            print("USER HANDLER", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
    mlrelay.set_experiment(sys.argv[1])
    run = mlrelay.start_run(run_name="preempted")
    print("RUN", run.info.run_id, flush=True)
    step = 0
    while True:  # until the signal
        mlrelay.log_metric("m", float(step), step=step)
        if step % 10 == 0:
            print("STEP", step, flush=True)
        step += 1
        time.sleep(0.001)
    """
)


def _env(home: Path, uri: str, **extra: str) -> dict[str, str]:
    env = child_env()
    env.update({"MLRELAY_HOME": str(home), "MLFLOW_TRACKING_URI": uri, **extra})
    return env


def _history(url: str, run_id: str) -> list[tuple[int, int]]:
    """(step, timestamp) of every point of metric ``m`` on the server."""
    r = httpx.get(
        f"{url}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": run_id, "metric_key": "m", "max_results": 25000},
        timeout=deadline(30),
    )
    r.raise_for_status()
    return [(int(p["step"]), int(p["timestamp"])) for p in r.json().get("metrics", [])]


def _run_status(url: str, run_id: str) -> str:
    r = httpx.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30)
    r.raise_for_status()
    return str(r.json()["run"]["info"]["status"])


def _terminate_while_logging(
    home: Path, uri: str, experiment: str, mode: str, **env: str
) -> tuple[str, float, subprocess.CompletedProcess[str], float]:
    """Start the logger, SIGTERM it after 1,000 steps; (run id, signal time in epoch ms,
    the finished process, seconds from the signal to its end)."""
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", LOGGER, experiment, mode],
        env=_env(home, uri, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("RUN"), first + (proc.stderr.read() if proc.stderr else "")
        run_id = first.split()[1]
        stop = time.monotonic() + deadline(60)
        while time.monotonic() < stop:
            line = proc.stdout.readline()
            assert line, "the logger died"
            if int(line.split()[1]) >= 1000:
                break
        signalled_ms = time.time() * 1000
        signalled = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=deadline(60))
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return run_id, signalled_ms, done, took


def _assert_everything_before(url: str, run_id: str, signalled_ms: float) -> int:
    points = _history(url, run_id)
    steps = sorted(s for s, _ in points)
    assert len(steps) == len(set(steps)), "a point landed twice"
    assert steps == list(range(len(steps))), "the landed points are not a prefix"
    last_ts = max(ts for _, ts in points)
    # Steps are logged in order: a prefix reaching 10 ms before the signal holds them all.
    assert last_ts >= signalled_ms - 10, (
        f"the last point on the server was logged {signalled_ms - last_ts:.0f} ms before the "
        "signal: points logged after it were lost"
    )
    return len(steps)


def test_sigterm_delivers_every_point_logged_before_it(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """SIGTERM while logging 1 point/ms: every point logged >10 ms before it is on the server,
    the run ends KILLED, and the process dies of SIGTERM as it would without mlrelay."""
    run_id, signalled_ms, done, took = _terminate_while_logging(
        tmp_path / "home", mlflow_real.url, "sigterm", "plain"
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    landed = _assert_everything_before(mlflow_real.url, run_id, signalled_ms)
    assert landed >= 1000
    assert _run_status(mlflow_real.url, run_id) == "KILLED"
    assert took < 10 + slack(2)


def test_sigterm_chains_to_the_users_handler(mlflow_real: RunningServer, tmp_path: Path) -> None:
    """With the user's own SIGTERM handler, mlrelay delivers first, then the handler runs."""
    run_id, signalled_ms, done, _ = _terminate_while_logging(
        tmp_path / "home", mlflow_real.url, "sigterm-user", "user-handler"
    )
    assert "USER HANDLER" in done.stdout
    assert done.returncode == 3, done.stderr
    _assert_everything_before(mlflow_real.url, run_id, signalled_ms)


def test_sigterm_with_the_server_down_ends_within_the_exit_budget(tmp_path: Path) -> None:
    """Server unreachable: SIGTERM ends the process within MLRELAY_EXIT_TIMEOUT plus a slack,
    and what was logged is in the journal for `mlrelay sync`."""
    uri = f"http://127.0.0.1:{free_port()}"
    home = tmp_path / "home"
    _, _, done, took = _terminate_while_logging(
        home, uri, "sigterm-down", "plain", MLRELAY_EXIT_TIMEOUT="3", MLRELAY_START_TIMEOUT="1"
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert took < 3 + slack(2), f"took {took:.1f} s"
    assert "kept in" in done.stderr


SCRIPT = textwrap.dedent(
    """
    import sys, time
    import mlrelay
    mlrelay.set_experiment("budget")
    mlrelay.start_run()
    for i in range(100):
        mlrelay.log_metric("m", i, step=i)
    print("END_RUN", time.monotonic(), flush=True)
    mlrelay.end_run()
    """
)


@pytest.mark.parametrize("server", ["refused", "hung"])
def test_a_script_ends_within_one_exit_budget_when_the_server_is_unreachable(
    tmp_path: Path, server: str
) -> None:
    """end_run at the end of a script and the at-exit flush share MLRELAY_EXIT_TIMEOUT: the
    script ends within that budget plus 2 s of its end_run, not twice the budget."""
    import socket

    listener = None
    if server == "hung":  # accepts connections, never answers
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
    else:
        port = free_port()
    try:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", SCRIPT],
            env=_env(
                tmp_path / "home",
                f"http://127.0.0.1:{port}",
                MLRELAY_EXIT_TIMEOUT="3",
                MLRELAY_START_TIMEOUT="1",
            ),
            capture_output=True,
            text=True,
            timeout=deadline(120),
        )
        ended = time.monotonic()
    finally:
        if listener is not None:
            listener.close()
    assert done.returncode == 0, done.stderr
    end_run_at = float(done.stdout.split()[1])
    assert end_run_at >= started
    assert ended - end_run_at < 3 + 2 + slack(0.5), f"{ended - end_run_at:.1f} s after end_run"
    assert "100 entries not yet delivered are kept in" in done.stderr
