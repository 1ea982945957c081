"""Many processes logging at once into one journal: log-call cost and delivery (issue 15, item 4).

Usage: python benchmarks/writers.py [N] [W ...] [--shared] [--real]   (default N = 20,000
points per process, W = 1 16 64 processes)

Each of W fresh interpreters starts its own run (with ``--shared``, also: all log into one
run created beforehand and passed by ``MLFLOW_RUN_ID``, each under its own metric key, as
ranks of one job do) and logs N points as fast as it can, all
sharing one ``MLRELAY_HOME`` (one SQLite journal), against one server; they start logging
together (once all have started their runs, a start file they poll for), time every
``log_metric`` call, then ``flush()``.
Printed per W: the median and the worst of the processes' p50 and p99 log-call times, the
time from the start signal until every point is in the journal (the journal's share) and
until the last process has flushed (delivery), and how many points landed
(each step once in each run). The server is the bundled mock server (it answers about ten
times faster than MLflow on SQLite, so delivery here is bounded by mlrelay and the journal,
not by the server); ``--real`` uses a real ``mlflow server`` (sqlite, one worker) instead.

Absolute times drift on shared machines, and W processes on a 2-core machine share two
cores: compare the rows of one run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import AbstractContextManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlrelay_mock import MockServer  # noqa: E402

import mlrelay  # noqa: E402
from tests._env import child_env  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    import mlrelay.fluent as ml
    from mlrelay._pipeline.runs import session
    uri, n, go, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ml.set_tracking_uri(uri)
    run = ml.start_run()  # with MLFLOW_RUN_ID set: that run, shared by every writer
    open(f"{go}.ready.{os.getpid()}", "w").close()
    deadline = time.monotonic() + 600
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    lat = []
    clock = time.perf_counter_ns
    for i in range(n):
        a = clock(); ml.log_metric(key, i * 0.5, step=i); lat.append(clock() - a)
    journaled = session.ensure_pipeline().write_now(1200)  # every point in the journal
    journaled_at = time.time()
    landed = ml.flush(1200) and journaled
    done = time.time()
    ml.end_run()
    lat.sort()
    print(json.dumps({"p50_us": lat[n // 2] / 1e3, "p99_us": lat[int(n * 0.99)] / 1e3,
        "landed": landed, "journaled_at": journaled_at, "done": done,
        "run_id": run.info.run_id, "key": key}), flush=True)
    """
)


def _server(real: bool, workdir: Path) -> AbstractContextManager[object]:
    return mlflow_server(workdir / "server") if real else MockServer()


def _measure(
    uri: str, n: int, writers: int, workdir: Path, *, shared: bool = False
) -> dict[str, float]:
    """Run ``writers`` processes of ``n`` points each; their figures and the landed count.

    Each process starts its own run, or (``shared``) all log into one run created here and
    passed to them by ``MLFLOW_RUN_ID``, each under a metric key of its own.
    """
    name = f"{writers}-shared" if shared else str(writers)
    home = workdir / f"home-{name}"
    go = workdir / f"go-{name}"
    env = child_env(MLRELAY_HOME=str(home))
    if shared:
        with mlrelay.Client(tracking_uri=uri) as client:
            env["MLFLOW_RUN_ID"] = client.create_run("0").info.run_id
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", WRITER, uri, str(n), str(go), f"m{k}"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(writers)
    ]
    deadline = time.monotonic() + 600  # every interpreter imports and starts its run first
    while len(list(workdir.glob(f"{go.name}.ready.*"))) < writers:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit("a writer did not start")
        time.sleep(0.05)
    started = time.time()
    go.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        results.append(json.loads(out.strip().splitlines()[-1]))
    landed = 0
    with mlrelay.Client(tracking_uri=uri) as client:
        for r in results:
            steps = [m.step for m in client.get_metric_history(r["run_id"], r["key"])]
            assert len(steps) == len(set(steps)), "a step arrived twice"
            landed += len(steps)
    p50 = [r["p50_us"] for r in results]
    p99 = [r["p99_us"] for r in results]
    return {
        "p50_median": statistics.median(p50),
        "p50_worst": max(p50),
        "p99_median": statistics.median(p99),
        "p99_worst": max(p99),
        "seconds": max(r["done"] for r in results) - started,
        "journaled_s": max(r["journaled_at"] for r in results) - started,
        "landed": landed,
        "all_flushed": all(r["landed"] for r in results),
    }


def main() -> None:
    """Measure each writer count against one server and print the table, a row as each
    measurement ends."""
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 20_000
    counts = [int(a) for a in args[1:]] or [1, 16, 64]
    modes = (False, True) if "--shared" in flags else (False,)
    kind = "real mlflow server (sqlite, 1 worker)" if "--real" in flags else "the mock server"
    print(f"N = {n:,} points per process, one shared journal, {kind}, 127.0.0.1\n")
    print(
        f"{'writers':>7} {'runs':>8} {'p50 us (median/worst)':>22} {'p99 us (median/worst)':>22} "
        f"{'landed':>10} {'of':>10} {'journaled s':>11} {'seconds':>8} {'points/s':>9}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with _server("--real" in flags, workdir) as server:
            uri = str(server.url)  # type: ignore[attr-defined]
            for shared in modes:
                for w in counts:
                    r = _measure(uri, n, w, workdir, shared=shared)
                    print(
                        f"{w:>7} {'one' if shared else 'own':>8} {r['p50_median']:>10.2f} / "
                        f"{r['p50_worst']:<9.2f} {r['p99_median']:>10.2f} / "
                        f"{r['p99_worst']:<9.2f} {r['landed']:>10,} {w * n:>10,} "
                        f"{r['journaled_s']:>11.1f} {r['seconds']:>8.1f} "
                        f"{r['landed'] / r['seconds']:>9,.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
