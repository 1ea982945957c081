"""A Ray Tune sweep logged through mlrelay, on a local Ray cluster confined to this test.

Used by tests/integration/test_ray_tune.py and benchmarks/ray_sweep.py. :func:`local_ray`
starts Ray with two CPUs on 127.0.0.1 (Ray otherwise binds the machine's outward address),
no dashboard, no usage reporting, its files in a short directory under /tmp (Ray's unix
sockets live there, and a socket path may not be longer than 107 bytes), and on the way out
stops it and checks that none of its processes survived. :func:`train` is the trial; the
workers import it from this module.

Ray is imported inside the functions, after the variables that confine it are set: it reads
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is first imported (so :func:`local_ray`
also sets the constant it becomes, and checks that Ray runs on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlrelay
from tests._timing import deadline

__all__ = [
    "METRICS",
    "RAY_ENV",
    "LocalRay",
    "landed",
    "local_ray",
    "report_only",
    "run_sweep",
    "stopped_at",
    "train",
]

RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no report to Ray's servers
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # a single node on 127.0.0.1
    "RAY_AIR_NEW_OUTPUT": "0",
}
"""Set in this process (and so in Ray's) while the cluster runs."""

METRICS = ("loss", "accuracy")
VICTIM_READY_AFTER = 1.0  # s of logging before the victim says it is ready to be killed
VICTIM_GIVES_UP_AFTER = 300.0  # s: a victim nobody killed ends its trial (the test fails)


@dataclass
class LocalRay:
    """A running local cluster: its directory, and after it stopped, what survived it."""

    root: Path
    survivors: list[str] = field(default_factory=list)


REPO = Path(__file__).resolve().parents[1]


def _importable(worker_env: Mapping[str, str]) -> dict[str, str]:
    """``worker_env`` with the repository first on the workers' PYTHONPATH: the trainables
    are pickled by reference to ``tests._ray_sweep``, and Ray's workers start with their
    own ``sys.path`` (not the one pytest gave the driver)."""
    env = dict(worker_env)
    paths = [str(REPO), env.get("PYTHONPATH") or os.environ.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


@contextlib.contextmanager
def local_ray(worker_env: Mapping[str, str]) -> Iterator[LocalRay]:
    """A two-CPU Ray cluster on 127.0.0.1 for the block; ``worker_env`` is set in every
    worker (``runtime_env``). On exit Ray is shut down and its processes (every process
    this one started meanwhile, and theirs) are waited for; those still alive after the
    deadline are listed in ``survivors`` and then killed."""
    import psutil

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    cluster = LocalRay(Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp")))
    with _confined(), contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, cluster.root, ignore_errors=True)
        import ray

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _temp_dir=str(cluster.root),
            runtime_env={"env_vars": _importable(worker_env)},
        )
        try:
            address = ray.util.get_node_ip_address()
            if address != "127.0.0.1":
                raise RuntimeError(f"Ray runs on {address}, not on 127.0.0.1")
            yield cluster
        finally:
            started = [p for p in me.children(recursive=True) if p.pid not in before]
            ray.shutdown()
            _, alive = psutil.wait_procs(started, timeout=deadline(30))
            cluster.survivors = [f"{p.pid} {_name(p)}" for p in alive]
            for process in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()


@contextlib.contextmanager
def _confined() -> Iterator[None]:
    """:data:`RAY_ENV` in this process's environment for the block (Ray's processes inherit
    it), and Ray's single-node switch set, also in a process that imported Ray before; the
    SIGTERM handler ``ray.init`` replaces (and ``ray.shutdown`` leaves) is put back after."""
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    sigterm = signal.getsignal(signal.SIGTERM)
    os.environ.update(RAY_ENV)
    from ray._private import ray_constants

    clustered, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    try:
        yield
    finally:
        if sigterm is not None:  # (None: not set from Python, nothing to put back)
            signal.signal(signal.SIGTERM, sigterm)
        ray_constants.ENABLE_RAY_CLUSTER = clustered
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _name(process: Any) -> str:
    with contextlib.suppress(Exception):
        return " ".join(process.cmdline())[:120]
    return "?"


def train(config: dict[str, Any]) -> None:
    """One trial: ``iterations`` steps, each logging every metric of :data:`METRICS` through
    mlrelay (in this worker) and reporting the loss to Tune. With ``victim`` set, the trial
    instead logs a point every 2 ms until it is killed, and once it has logged for
    :data:`VICTIM_READY_AFTER` seconds writes its pid and start time to that file."""
    from ray import tune

    if config.get("victim"):
        _log_until_killed(Path(config["victim"]))
        return
    for step in range(config["iterations"]):
        loss = config["lr"] / (step + 1)
        mlrelay.log_metrics({"loss": loss, "accuracy": 1.0 - loss}, step=step)
        tune.report({"loss": loss})


def report_only(config: dict[str, Any]) -> None:
    """:func:`train` without mlrelay: the same iterations, reported to Tune only (the
    benchmark's baseline)."""
    from ray import tune

    for step in range(config["iterations"]):
        tune.report({"loss": config["lr"] / (step + 1)})


def _log_until_killed(ready_file: Path) -> None:
    started = time.monotonic()
    step, told = 0, False
    while time.monotonic() < started + VICTIM_GIVES_UP_AFTER:
        mlrelay.log_metric("loss", 1.0 / (step + 1), step=step)
        step += 1
        if not told and time.monotonic() >= started + VICTIM_READY_AFTER:
            partial = ready_file.with_suffix(".partial")
            partial.write_text(str(os.getpid()))
            partial.rename(ready_file)  # the reader sees the whole pid or nothing
            told = True
        time.sleep(0.002)
    raise TimeoutError(f"nobody killed this trial within {VICTIM_GIVES_UP_AFTER} s")


def run_sweep(
    trials: int,
    iterations: int,
    storage: Path,
    *,
    victim: Path | None = None,
    reuse_actors: bool = False,
    baseline: bool = False,
    stop_early: bool = False,
) -> Any:
    """Run ``trials`` trials of :func:`train` (one of them the victim, when ``victim`` is
    given) inside the active mlrelay run, which becomes their parent; Tune's results
    (a ``ResultGrid``). No trial is retried (``max_failures=0``). With ``baseline``, the
    trials are :func:`report_only`, not wrapped. With ``stop_early``, Tune stops every
    other trial after :func:`stopped_at` iterations, as a scheduler stops the trials it
    gives up on."""
    from ray import tune

    from mlrelay.integrations.ray_tune import with_mlrelay

    lrs = [0.1 * (i + 1) / trials for i in range(trials)]
    space: dict[str, Any] = {"lr": tune.grid_search(lrs), "iterations": iterations}
    if stop_early:
        space["stop_at"] = tune.sample_from(
            lambda config: stopped_at(iterations) if lrs.index(config["lr"]) % 2 else iterations
        )
    if victim is not None:
        space["victim"] = tune.sample_from(
            lambda config: str(victim) if config["lr"] == lrs[0] else ""
        )
    tuner = tune.Tuner(
        report_only if baseline else with_mlrelay(train),
        param_space=space,
        tune_config=tune.TuneConfig(reuse_actors=reuse_actors),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
            stop=_stop_at if stop_early else None,
        ),
    )
    return tuner.fit()


def stopped_at(iterations: int) -> int:
    """After how many iterations ``run_sweep(stop_early=True)`` stops a trial it stops."""
    return iterations // 2


def _stop_at(trial_id: str, result: dict[str, Any]) -> bool:
    """Tune's stopper: stop a trial at the iteration its config names."""
    return bool(result["training_iteration"] >= result["config"]["stop_at"])


def landed(client: mlrelay.Client, run_id: str) -> dict[str, list[int]]:
    """The steps of every metric of :data:`METRICS` the server holds for a run, sorted."""
    return {key: sorted(m.step for m in client.get_metric_history(run_id, key)) for key in METRICS}
