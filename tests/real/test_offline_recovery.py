"""Crashes, interrupted syncs and outages against a real MLflow server: nothing lost, nothing twice.

Children are real processes killed with SIGKILL. A child reports what it has logged on
stdout (``STEP <step> <epoch ms>`` every few steps, flushed); lines written before the
kill survive in the pipe, so the test knows which points were logged when.

"Well before the kill" below is the journal's commit interval (100 ms) plus a slack scaled
to the machine (0.4 s at scale 1, tests/_timing.py): a starved child commits later.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from mlrelay import cli
from tests._env import child_env
from tests._servers import RunningServer, free_port, mlflow_server
from tests._timing import deadline, slack
from tests.conftest import ProdServer

pytestmark = pytest.mark.real

LOGGER = textwrap.dedent(
    """
    import sys, time
    import mlrelay
    mlrelay.set_experiment(sys.argv[1])
    run = mlrelay.start_run(run_name="crash")
    mlrelay.log_param("lr", 0.01)
    print("RUN", run.local_id, flush=True)
    step = 0
    while True:  # until killed
        mlrelay.log_metric("m", float(step), step=step)
        if step % 10 == 0:
            print("STEP", step, int(time.time() * 1000), flush=True)
        step += 1
        time.sleep(0.001)
    """
)


def _env(home: Path, uri: str, **extra: str) -> dict[str, str]:
    env = child_env()
    env.update({"MLRELAY_HOME": str(home), "MLFLOW_TRACKING_URI": uri, **extra})
    return env


def _api(url: str, method: str, endpoint: str, **kwargs: object) -> dict[str, object]:
    r = httpx.request(method, f"{url}/api/2.0/mlflow/{endpoint}", timeout=deadline(30), **kwargs)  # type: ignore[arg-type]
    r.raise_for_status()
    data: dict[str, object] = r.json()
    return data


def _runs(url: str, experiment: str) -> list[dict[str, object]]:
    exp = _api(url, "GET", "experiments/get-by-name", params={"experiment_name": experiment})
    exp_id = exp["experiment"]["experiment_id"]  # type: ignore[index]
    found = _api(
        url, "POST", "runs/search", json={"experiment_ids": [exp_id], "run_view_type": "ALL"}
    )
    return found.get("runs", [])  # type: ignore[return-value]


def _history(url: str, run_id: str, key: str) -> list[dict[str, object]]:
    points: list[dict[str, object]] = []
    token = None
    while True:
        params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
        if token:
            params["page_token"] = token
        page = _api(url, "GET", "metrics/get-history", params=params)
        points += page.get("metrics", [])  # type: ignore[arg-type]
        token = page.get("next_page_token")
        if not token:
            return points


KILL_AFTER_STEPS = 2_000  # about 2 s of logging on an idle machine


def _kill_after_logging(home: Path, uri: str, experiment: str, **env: str) -> list[tuple[int, int]]:
    """Start the logger, SIGKILL it once it reported 2,000 steps (however long that takes on
    this machine); the (step, ms) checkpoints it reported."""
    with subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", LOGGER, experiment],
        env=_env(home, uri, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("RUN"), first + proc.stderr.read() if proc.stderr else first
            # The child writes a line every 10 steps, so each read returns within
            # milliseconds while it logs; the deadline bounds the whole wait.
            stop = time.monotonic() + deadline(60)
            lines: list[str] = []
            reached = False
            while not reached and time.monotonic() < stop:
                line = proc.stdout.readline()
                if not line:  # the child died
                    break
                lines.append(line)
                reached = int(line.split()[1]) >= KILL_AFTER_STEPS
            assert reached, f"the logger stopped at {lines[-1:]}"
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=deadline(30))
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    lines += out.splitlines()
    return [(int(s), int(t)) for _, s, t in (line.split() for line in lines)]


def _assert_landed_once(url: str, experiment: str, checkpoints: list[tuple[int, int]]) -> None:
    killed_at = checkpoints[-1][1]  # the kill came after the last line the child wrote
    well_before = killed_at - (0.1 + slack(0.4)) * 1000
    must_have = max(step for step, ms in checkpoints if ms < well_before)
    [run] = _runs(url, experiment)
    info = run["info"]
    assert info["status"] == "KILLED"  # type: ignore[index]
    assert run["data"]["params"] == [{"key": "lr", "value": "0.01"}]  # type: ignore[index]
    steps = [int(p["step"]) for p in _history(url, info["run_id"], "m")]  # type: ignore[index, arg-type, call-overload]
    assert len(steps) == len(set(steps)), "a point landed twice"
    assert set(range(must_have + 1)) <= set(steps), "a point logged before the kill is missing"
    assert set(steps) == set(range(len(steps))), "the landed points are not a prefix"


def test_kill_9_offline_then_sync_lands_every_point_once(
    tracking_server: RunningServer | ProdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline logger killed 2,000 steps in; `mlrelay sync` lands every point logged well
    before the kill exactly once, the run exists once, and it ends KILLED."""
    home = tmp_path / "home"
    checkpoints = _kill_after_logging(
        home, tracking_server.url, "kill-offline", MLRELAY_MODE="offline"
    )
    assert len(checkpoints) > 50
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    assert cli.main(["sync"], out=(out := _Out())) == 0, out.text
    _assert_landed_once(tracking_server.url, "kill-offline", checkpoints)
    assert cli.main(["sync"], out=(again := _Out())) == 0
    assert "Nothing to sync" in again.text


def test_kill_9_online_with_the_server_down_then_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online logger whose server is down, killed 2,000 steps in; the server comes up on its
    port and `mlrelay sync` lands everything logged well before the kill once, the run KILLED."""
    home = tmp_path / "home"
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    checkpoints = _kill_after_logging(home, uri, "kill-online", MLRELAY_START_TIMEOUT="1")
    with mlflow_server(tmp_path / "server", port=port) as server:
        monkeypatch.setenv("MLRELAY_HOME", str(home))
        assert cli.main(["sync"], out=(out := _Out())) == 0, out.text
        _assert_landed_once(server.url, "kill-online", checkpoints)


OFFLINE_RUNS = textwrap.dedent(
    """
    import sys
    import mlrelay
    mlrelay.set_experiment(sys.argv[1])
    for r in range(3):
        with mlrelay.start_run(run_name=f"run-{r}"):
            mlrelay.log_params({"r": r, "kind": "offline"})
            for i in range(int(sys.argv[2])):
                mlrelay.log_metric("m", i / 7, step=i)
                if i % 500 == 0:
                    mlrelay.set_tag("progress", i)
    """
)


def test_sync_killed_five_times_then_completed_lands_everything_once(
    tracking_server: RunningServer | ProdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlrelay sync` SIGKILLed at random moments five times, then run to the end: each run
    exists once and each point once."""
    home = tmp_path / "home"
    n = 15_000  # about 6 s of sending: five kills within 1.2 s each never reach the end
    env = _env(home, tracking_server.url, MLRELAY_MODE="offline")
    made = subprocess.run(
        [sys.executable, "-c", OFFLINE_RUNS, "sync-kill", str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert made.returncode == 0, made.stderr
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    env.pop("MLRELAY_MODE")
    for attempt in range(5):
        sync = subprocess.Popen(
            [sys.executable, "-m", "mlrelay.cli", "sync"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        delay = rng.uniform(0.3, 1.2)
        try:
            sync.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(sync.pid, signal.SIGKILL)
            sync.wait(timeout=deadline(30))
        else:
            pytest.fail(f"sync finished before kill {attempt + 1} (seed {seed}); make it larger")
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    assert cli.main(["sync"], out=(out := _Out())) == 0, f"seed {seed}: {out.text}"
    runs = _runs(tracking_server.url, "sync-kill")
    assert sorted(r["info"]["run_name"] for r in runs) == ["run-0", "run-1", "run-2"], seed  # type: ignore[index]
    for run in runs:
        info = run["info"]
        assert info["status"] == "FINISHED"  # type: ignore[index]
        steps = [int(p["step"]) for p in _history(tracking_server.url, info["run_id"], "m")]  # type: ignore[index, arg-type, call-overload]
        assert sorted(steps) == list(range(n)), f"seed {seed}: duplicates or gaps"


def test_real_server_stopped_and_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    """The server is stopped mid-run and restarted on the same port: every point lands once,
    and no log call waited on the network."""
    import mlrelay

    port = free_port()
    workdir = tmp_path / "server"
    n, worst = 30_000, 0.0
    with mlflow_server(workdir, port=port) as server:
        mlrelay.set_tracking_uri(server.url)
        mlrelay.set_experiment("restart")
        run = mlrelay.start_run()
        for i in range(n // 3):
            t = time.perf_counter()
            mlrelay.log_metric("m", math.sin(i), step=i)
            worst = max(worst, time.perf_counter() - t)
    # The server is down now (its context ended): keep logging.
    for i in range(n // 3, 2 * n // 3):
        t = time.perf_counter()
        mlrelay.log_metric("m", math.sin(i), step=i)
        worst = max(worst, time.perf_counter() - t)
    assert mlrelay.flush(timeout=1.0) is False  # nothing can be delivered now
    with mlflow_server(workdir, port=port) as server:
        for i in range(2 * n // 3, n):
            t = time.perf_counter()
            mlrelay.log_metric("m", math.sin(i), step=i)
            worst = max(worst, time.perf_counter() - t)
        mlrelay.end_run()
        assert mlrelay.flush(timeout=deadline(120))
        steps = [int(p["step"]) for p in _history(server.url, run.run_id, "m")]  # type: ignore[arg-type, call-overload]
        assert sorted(steps) == list(range(n))
        info = _api(server.url, "GET", "runs/get", params={"run_id": run.run_id})["run"]
        assert info["info"]["status"] == "FINISHED"  # type: ignore[index]
    # A log call never touches the network; its worst case is a pause of the interpreter.
    assert worst < slack(0.05), f"a log call took {worst * 1000:.1f} ms"


class _Out:
    """A text sink for the CLI that is not a terminal."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> int:
        """Collect."""
        self.parts.append(s)
        return len(s)

    def flush(self) -> None:
        """Nothing buffered."""

    def isatty(self) -> bool:
        """Plain lines, no progress bar."""
        return False

    @property
    def text(self) -> str:
        """Everything written."""
        return "".join(self.parts)


ARTIFACTS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mlrelay
    work = Path(sys.argv[1])
    (work / "notes.txt").write_text("as logged")
    (work / "tree" / "sub").mkdir(parents=True)
    (work / "tree" / "a.txt").write_text("A")
    (work / "tree" / "sub" / "b.txt").write_text("B")
    mlrelay.set_experiment("artifacts-offline")
    with mlrelay.start_run() as run:
        mlrelay.log_artifact(work / "notes.txt", "docs")
        mlrelay.log_artifacts(work / "tree", "tree")
        mlrelay.log_text("hello", "texts/hello.txt")
        mlrelay.log_dict({"lr": 0.1}, "config.json")
    (work / "notes.txt").write_text("edited after logging")  # must not change the artifact
    print("RUN", run.run_id)
    """
)


def test_offline_artifacts_are_copied_when_logged_and_uploaded_by_sync(
    tracking_server: RunningServer | ProdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Artifacts logged offline are copied into the journal at log time (a later edit of the
    file does not change them) and `mlrelay sync` uploads them through the server's proxy."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", ARTIFACTS, str(work)],
        env=_env(home, tracking_server.url, MLRELAY_MODE="offline"),
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert proc.returncode == 0, proc.stderr
    blobs = [p for p in (home / "blobs").rglob("*") if p.is_file()]
    assert all(p.stat().st_mode & 0o077 == 0 for p in blobs)  # private copies
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    assert cli.main(["sync"], out=(out := _Out())) == 0, out.text
    [run] = _runs(tracking_server.url, "artifacts-offline")
    root = run["info"]["artifact_uri"].split(":", 1)[1].strip("/")  # type: ignore[index, union-attr]

    def fetch(path: str) -> str:
        r = httpx.get(f"{tracking_server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}")
        r.raise_for_status()
        return r.text

    assert fetch("docs/notes.txt") == "as logged"
    assert fetch("tree/a.txt") == "A"
    assert fetch("tree/sub/b.txt") == "B"
    assert fetch("texts/hello.txt") == "hello"
    assert json.loads(fetch("config.json")) == {"lr": 0.1}
    assert run["info"]["status"] == "FINISHED"  # type: ignore[index]
    if isinstance(tracking_server, ProdServer):  # the proxy put them in the bucket
        files = ["config.json", "docs/notes.txt", "texts/hello.txt", "tree/a.txt", "tree/sub/b.txt"]
        run_keys = [k for k in tracking_server.object_keys() if f"/{root}/" in k]
        assert run_keys == [f"{tracking_server.prefix}/{root}/{f}" for f in files]


def test_artifacts_outside_the_proxy_are_a_clear_error(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """A run whose artifact location is a path on the server's disk cannot take uploads over
    HTTP: log_artifact raises ConfigurationError naming the location and the fix."""
    import mlrelay

    (tmp_path / "f.txt").write_text("x")
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        exp = client.create_experiment(f"local-{time.time_ns()}", str(tmp_path / "store"))
        run = client.create_run(exp)
        with pytest.raises(mlrelay.ConfigurationError, match="--serve-artifacts") as info:
            client.log_artifact(run.info.run_id, str(tmp_path / "f.txt"))
    assert str(tmp_path / "store") in str(info.value)
