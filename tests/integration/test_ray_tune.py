"""Ray Tune sweeps through ``mlrelay.integrations.ray_tune`` (issue 15, deliverable 5).

The wrapper alone, against the mock server: the wrapped trainable is called in this
process as a Ray worker would call it, after a round trip through Ray's cloudpickle.

Whole sweeps, against a real MLflow server: each test starts its own two-CPU Ray cluster on
127.0.0.1 (tests/_ray_sweep.py) with the test's MLRELAY_HOME and HOME in the workers'
environment, and checks at the end that no Ray process survived it. The sweep of 50 trials
runs with actors reused (Tune's ``reuse_actors=True``: two worker processes run all the
trials, about 20 s of sweep on two cores); benchmarks/ray_sweep.py runs it with a worker
process per trial, Tune's default (about 6 s a trial here, nearly all of it Ray's), and the
kill test runs that way too.
"""

from __future__ import annotations

import inspect
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import cli, fluent
from tests._env import child_env
from tests._ray_sweep import landed, local_ray, run_sweep
from tests._servers import RunningServer
from tests._timing import deadline

pytestmark = [
    # Ray's own deprecation notes, raised inside Ray while it runs a sweep, and its warning
    # that the trial's name and id are asked for outside a Tune session (the wrapper tests).
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`get_trial_:UserWarning"),
]

TRIALS = 50
ITERATIONS = 20
WINDOW_MS = 500


def _worker_env(server: RunningServer) -> dict[str, str]:
    """What every Ray worker needs: this test's journal and home, and the server."""
    return {
        "MLRELAY_HOME": os.environ["MLRELAY_HOME"],
        "HOME": os.environ["HOME"],
        "MLFLOW_TRACKING_URI": server.url,
    }


def _start_sweep_experiment(server: RunningServer) -> None:
    mlrelay.set_tracking_uri(server.url)
    mlrelay.set_experiment(f"sweep-{uuid.uuid4().hex[:8]}")


def _runs(client: mlrelay.Client, experiment_id: str) -> dict[str, Any]:
    """The experiment's runs by name."""
    return {r.info.run_name: r for r in client.search_runs([experiment_id])}


# --- the wrapper, called as a worker calls it ------------------------------------------------

SECRET = "tok-ray-tune-never-pickled"


def _loss_curve(config: dict[str, Any]) -> dict[str, float]:
    """A trainable: three points of ``loss``, and its last loss as the result."""
    for step in range(3):
        mlrelay.log_metric("loss", config["lr"] / (step + 1), step=step)
    return {"loss": config["lr"] / 3}


def _counting(config: dict[str, Any]) -> Iterator[dict[str, int]]:
    """A generator trainable (Tune's older reporting style): yields two results."""
    for step in range(2):
        mlrelay.log_metric("step", step, step=step)
        yield {"step": step}


@pytest.fixture
def mock_url() -> Iterator[str]:
    """A mock tracking server for the test, with the fluent API pointed at it."""
    with MockServer() as server:
        mlrelay.set_tracking_uri(server.url)
        yield server.url


def _ship(trainable: Any) -> bytes:
    """``with_mlrelay(trainable)`` as the driver sends it to Ray: pickled by Ray's
    cloudpickle (the driver's credential is not in it)."""
    from ray import cloudpickle

    from mlrelay.integrations.ray_tune import with_mlrelay

    shipped: bytes = cloudpickle.dumps(with_mlrelay(trainable))
    assert SECRET.encode() not in shipped
    return shipped


def _arrive(shipped: bytes) -> Any:
    """The shipped trainable as a fresh Ray worker gets it: unpickled in a process whose
    fluent API knows no server, experiment, mode or run."""
    from ray import cloudpickle

    fluent._reset()
    return cloudpickle.loads(shipped)


def _shipped(trainable: Any) -> Any:
    """``trainable`` wrapped in the driver and unpickled in a fresh worker."""
    return _arrive(_ship(trainable))


def test_a_trial_in_a_fresh_worker_logs_into_the_drivers_server_experiment_and_parent(
    mock_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapped trainable, shipped to a process that knows nothing (no credential travels
    with it), starts the trial's run on the driver's server, in the driver's experiment,
    nested under the driver's active run, with the config as params (nested keys joined by
    "/"), logs into it, returns the trainable's result and ends the run FINISHED."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    experiment = mlrelay.set_experiment("sweep")
    with mlrelay.start_run(run_name="sweep") as parent:
        shipped = _ship(_loss_curve)
    trial = _arrive(shipped)
    assert trial({"lr": 0.3, "model": {"depth": 4}}) == {"loss": pytest.approx(0.1)}
    with mlrelay.Client(tracking_uri=mock_url) as client:
        runs = client.search_runs([experiment.experiment_id])
        (run,) = [r for r in runs if r.info.run_id != parent.info.run_id]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params == {"lr": "0.3", "model/depth": "4"}
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]


def test_an_offline_sweep_reaches_the_server_by_mlrelay_sync_trials_nested_under_the_parent(
    mock_url: str,
) -> None:
    """A driver offline makes offline trials: nothing reaches the server until `mlrelay
    sync`, which then creates the parent (known only by its local id when the trial started)
    and the trial nested under it, with its points."""
    mlrelay.set_tracking_uri(mock_url, mode="offline")
    mlrelay.set_experiment("offline-sweep")
    with mlrelay.start_run(run_name="sweep"):
        shipped = _ship(_loss_curve)
    _arrive(shipped)({"lr": 0.3})
    with mlrelay.Client(tracking_uri=mock_url) as client:
        assert client.get_experiment_by_name("offline-sweep") is None  # nothing was sent
        out = io.StringIO()
        assert cli.main(["sync", "--tracking-uri", mock_url], out=out) == 0, out.getvalue()
        experiment = client.get_experiment_by_name("offline-sweep")
        assert experiment is not None
        runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
        assert len(runs) == 2
        (trial,) = [r for name, r in runs.items() if name != "sweep"]
        assert trial.data.tags["mlflow.parentRunId"] == runs["sweep"].info.run_id
        assert trial.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(trial.info.run_id, "loss")] == [0, 1, 2]


def _raises(exc: BaseException) -> Any:
    def trainable(config: dict[str, Any]) -> None:
        mlrelay.log_metric("loss", 1.0)
        raise exc

    return trainable


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ValueError("diverged"), "FAILED"),
        (SystemExit(0), "FINISHED"),  # how Tune stops a trial early, in tune.report
        (SystemExit(1), "FAILED"),
        (KeyboardInterrupt(), "KILLED"),
    ],
    ids=["error", "stopped-by-tune", "exit-1", "interrupt"],
)
def test_a_trial_ends_its_run_with_the_status_it_ended_with(
    mock_url: str, exc: BaseException, status: str
) -> None:
    """The exception a trainable ends with goes on to Tune unchanged, and once Tune called
    the trainable's cleanup (as it does before letting the worker go) the trial's run is
    FAILED, FINISHED (Tune stopping the trial), FAILED or KILLED accordingly."""
    trial = _shipped(_raises(exc))
    with pytest.raises(type(exc)):
        trial({"lr": 0.1})
    _cleanup(trial)
    run_id = mlrelay.last_active_run().info.run_id
    assert mlrelay.get_run(run_id).info.status == status


def _cleanup(trial: Any) -> None:
    """What Tune does when it stops a trial: its class's ``cleanup``, with the wrapper's
    mixin first (Ray's own ``Trainable.cleanup`` does nothing)."""
    from ray import tune

    (mixin,) = trial.__mixins__
    assert issubclass(mixin, tune.Trainable)
    mixin.cleanup(object.__new__(mixin))


def test_a_generator_trainable_stays_a_generator_and_its_run_ends_after_the_last_result(
    mock_url: str,
) -> None:
    """A generator trainable is wrapped as a generator (Tune tells the two styles apart):
    its results pass through, and its run ends FINISHED once the last one was taken."""
    trial = _shipped(_counting)
    assert inspect.isgeneratorfunction(trial)
    results = trial({})
    assert next(results) == {"step": 0}
    assert mlrelay.active_run() is not None  # the run is open while results are pending
    assert list(results) == [{"step": 1}]
    run = mlrelay.get_run(mlrelay.last_active_run().info.run_id)
    assert run.info.status == "FINISHED"


def test_a_class_trainable_or_a_bad_tag_is_refused_in_the_driver_naming_the_argument() -> None:
    """with_mlrelay wraps function trainables only; a class is refused, naming the field,
    and so is an invalid tag, before any trial runs."""
    from ray import tune

    from mlrelay.integrations.ray_tune import with_mlrelay

    with pytest.raises(mlrelay.ValidationError, match="function trainable") as caught:
        with_mlrelay(tune.Trainable)  # type: ignore[arg-type]
    assert caught.value.field == "trainable"
    with pytest.raises(mlrelay.ValidationError) as caught:
        with_mlrelay(_loss_curve, tags={"bad key!": "x"})
    assert caught.value.field == "tag key"


class _Marker:
    """A mixin some other wrapper attached to a trainable."""


def test_the_attributes_of_tunes_own_wrappers_are_kept() -> None:
    """A trainable wrapped by ``tune.with_resources`` keeps its resources, and the mixins a
    trainable carries come after the wrapper's own (Tune builds the trial's class from
    them)."""
    from ray import tune

    from mlrelay.integrations.ray_tune import with_mlrelay

    sized: Any = tune.with_resources(_loss_curve, {"cpu": 1})
    sized.__mixins__ = (_Marker,)
    wrapped: Any = with_mlrelay(sized)
    assert wrapped._resources is sized._resources
    assert wrapped.__mixins__[1:] == (_Marker,)
    assert issubclass(wrapped.__mixins__[0], tune.Trainable)


# --- whole sweeps on a local Ray cluster ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.real
def test_each_trial_is_a_run_nested_under_the_sweep_with_every_point_once(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """A 50-trial sweep (actors reused, as ``reuse_actors=True`` runs it; every other trial
    stopped by Tune halfway) lands 50 FINISHED runs plus the parent, each trial's run tagged
    with the parent's id and holding its config as params and every per-iteration point of
    every metric exactly once."""
    _start_sweep_experiment(mlflow_real)
    with (
        local_ray(_worker_env(mlflow_real)) as cluster,
        mlrelay.start_run(run_name="sweep") as parent,
    ):
        results = run_sweep(
            TRIALS, ITERATIONS, tmp_path / "tune", reuse_actors=True, stop_early=True
        )
    assert cluster.survivors == [], "Ray processes survived ray.shutdown()"
    assert not results.errors
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        runs = _runs(client, parent.info.experiment_id)
        trials = {name: run for name, run in runs.items() if name != "sweep"}
        assert len(runs) == TRIALS + 1
        assert len(trials) == TRIALS
        assert runs["sweep"].info.status == "FINISHED"
        for name, run in trials.items():
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id, name
            assert run.info.status == "FINISHED", name
            assert run.data.params["iterations"] == str(ITERATIONS), name
            logged = list(range(int(run.data.params["stop_at"])))
            assert landed(client, run.info.run_id) == {"loss": logged, "accuracy": logged}, name
        lrs = {run.data.params["lr"] for run in trials.values()}
        assert len(lrs) == TRIALS  # one run per trial, none twice
        stopped = [r for r in trials.values() if r.data.params["stop_at"] != str(ITERATIONS)]
        assert len(stopped) == TRIALS // 2


class _Killer:
    """Kills the victim's worker with SIGKILL as soon as it says it is ready, from a thread
    (the sweep blocks the test's thread); remembers when, in epoch milliseconds."""

    def __init__(self, ready_file: Path) -> None:
        self.ready_file = ready_file
        self.killed_at_ms: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            give_up = time.monotonic() + deadline(120)
            while not self.ready_file.exists():
                if time.monotonic() > give_up:
                    raise TimeoutError("the victim trial never said it was ready")
                time.sleep(0.01)
            pid = int(self.ready_file.read_text())
            self.killed_at_ms = time.time_ns() // 1_000_000
            os.kill(pid, signal.SIGKILL)
        except BaseException as exc:  # reported by the test
            self.error = exc


def _sync(server: RunningServer) -> subprocess.CompletedProcess[str]:
    """``mlrelay sync`` in its own process, on this test's journal."""
    env = child_env(MLRELAY_HOME=os.environ["MLRELAY_HOME"])
    return subprocess.run(
        [sys.executable, "-m", "mlrelay.cli", "sync", "--tracking-uri", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        check=False,
    )


@pytest.mark.slow
@pytest.mark.real
def test_a_worker_killed_mid_trial_loses_nothing_older_than_half_a_second_and_ends_killed(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """kill -9 of the worker process running one trial (Tune does not retry it): every point
    it logged more than 0.5 s before the kill is on the server once, and after the next
    `mlrelay sync` its run is KILLED; the other trial of the sweep is unharmed."""
    _start_sweep_experiment(mlflow_real)
    killer = _Killer(tmp_path / "victim.pid")
    with (
        local_ray(_worker_env(mlflow_real)) as cluster,
        mlrelay.start_run(run_name="sweep") as parent,
    ):
        killer.thread.start()
        results = run_sweep(2, ITERATIONS, tmp_path / "tune", victim=killer.ready_file)
        killer.thread.join(timeout=deadline(30))
    assert cluster.survivors == [], "Ray processes survived ray.shutdown()"
    assert killer.error is None, killer.error
    assert killer.killed_at_ms is not None
    assert len(results.errors) == 1  # the victim's trial, and only it

    synced = _sync(mlflow_real)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        runs = _runs(client, parent.info.experiment_id)
        assert len(runs) == 3
        (victim,) = [r for r in runs.values() if r.data.params.get("victim")]
        (other,) = [r for n, r in runs.items() if n not in ("sweep", victim.info.run_name)]
        assert other.info.status == "FINISHED"
        everything = list(range(ITERATIONS))
        assert landed(client, other.info.run_id) == {"loss": everything, "accuracy": everything}
        assert victim.info.status == "KILLED"
        assert victim.data.tags["mlflow.parentRunId"] == parent.info.run_id
        history = client.get_metric_history(victim.info.run_id, "loss")
    assert history, "nothing the victim logged landed"
    steps = sorted(m.step for m in history)
    assert steps == list(range(len(steps))), "a point is missing or landed twice"
    first, last = min(m.timestamp for m in history), max(m.timestamp for m in history)
    assert first < killer.killed_at_ms - WINDOW_MS, "the victim logged for under 0.5 s"
    assert last >= killer.killed_at_ms - WINDOW_MS, (
        f"the last {killer.killed_at_ms - last} ms before the kill are lost "
        f"({len(steps)} points landed)"
    )
