"""A Ray Tune sweep logged through mlrelay, against a real MLflow server (issue 15, item 5).

Usage: python benchmarks/ray_sweep.py [TRIALS] [--iterations N] [--reuse-actors]
       (default 50 trials of 20 iterations, one worker process per trial as Tune runs it)

A local Ray cluster of two CPUs on 127.0.0.1 (tests/_ray_sweep.local_ray) runs TRIALS
trials of tests/_ray_sweep.train, wrapped by ``mlrelay.integrations.ray_tune.with_mlrelay``,
inside a parent run: each trial logs ``loss`` and ``accuracy`` at every iteration from its
worker. Then the server is read back. Printed: trials, runs on the server (trials + the
parent), trials nested under the parent, FINISHED trials, points expected vs landed,
duplicates, and the wall times of Ray's start and of the sweep (from the parent's start to
its end, every trial's points delivered), next to the same sweep run first on the same
cluster without mlrelay (trials that only report to Tune). The journal and HOME are
temporary directories.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mlrelay  # noqa: E402
from tests._ray_sweep import METRICS, landed, local_ray, run_sweep  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402


def main() -> int:
    """Run the sweep, read the server back, print the table; 1 if anything is off."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", nargs="?", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--reuse-actors", action="store_true")
    args = parser.parse_args()
    options = {"reuse_actors": args.reuse_actors}
    with tempfile.TemporaryDirectory(prefix="mlrelay-ray-bench-") as tmp:
        work = Path(tmp)
        os.environ.update(HOME=str(work / "home"), MLRELAY_HOME=str(work / "mlrelay"))
        with mlflow_server(work / "server") as server:
            mlrelay.set_tracking_uri(server.url)
            mlrelay.set_experiment("ray-sweep")
            env = {
                "HOME": os.environ["HOME"],
                "MLRELAY_HOME": os.environ["MLRELAY_HOME"],
                "MLFLOW_TRACKING_URI": server.url,
            }
            started = time.perf_counter()
            with local_ray(env) as cluster:
                ray_start = time.perf_counter() - started
                began = time.perf_counter()  # Tune alone first, on the same cluster
                run_sweep(args.trials, args.iterations, work / "baseline", **options, baseline=True)
                alone = time.perf_counter() - began
                began = time.perf_counter()
                with mlrelay.start_run(run_name="sweep") as parent:
                    results = run_sweep(args.trials, args.iterations, work / "tune", **options)
                sweep = time.perf_counter() - began
            return _report(
                args, server.url, parent, results, cluster.survivors, ray_start, (alone, sweep)
            )


def _report(
    args: argparse.Namespace,
    url: str,
    parent: mlrelay.ActiveRun,
    results: object,
    survivors: list[str],
    ray_start: float,
    times: tuple[float, float],
) -> int:
    alone, sweep = times
    expected = args.trials * args.iterations * len(METRICS)
    with mlrelay.Client(tracking_uri=url) as client:
        runs = list(client.search_runs([parent.info.experiment_id]))
        trials = [r for r in runs if r.info.run_id != parent.info.run_id]
        nested = sum(r.data.tags.get("mlflow.parentRunId") == parent.info.run_id for r in trials)
        finished = sum(r.info.status == "FINISHED" for r in trials)
        steps = [s for r in trials for s in landed(client, r.info.run_id).values()]
    points = sum(len(s) for s in steps)
    duplicates = sum(len(s) - len(set(s)) for s in steps)
    errors = len(getattr(results, "errors", []))
    mode = "actors reused" if args.reuse_actors else "one worker process per trial"
    rows = [
        ("trials", f"{args.trials} x {args.iterations} iterations ({mode})"),
        ("trial errors", errors),
        ("runs on server", f"{len(runs)} (expected {args.trials + 1})"),
        ("nested under parent", f"{nested} / {len(trials)}"),
        ("FINISHED", f"{finished} / {len(trials)}"),
        ("points expected", expected),
        ("points landed", points),
        ("duplicates", duplicates),
        ("Ray processes left", len(survivors)),
        ("Ray start", f"{ray_start:.1f} s"),
        ("sweep, Tune alone", f"{alone:.1f} s ({alone / args.trials:.2f} s a trial)"),
        ("sweep with mlrelay", f"{sweep:.1f} s ({sweep / args.trials:.2f} s a trial)"),
        ("ratio", f"{sweep / alone:.2f}"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value}")
    ok = (
        not errors
        and len(runs) == args.trials + 1
        and nested == finished == args.trials
        and points == expected
        and not duplicates
        and not survivors
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
