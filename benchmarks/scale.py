"""A production-shaped server, side by side in one run (issue 15): MLflow on PostgreSQL with
``--workers 4`` and artifacts in S3 (moto's server), all on 127.0.0.1.

Usage: python benchmarks/scale.py [N] [--rounds R] [--writers W ...] [--shared]
[--skip-landing] [--skip-writers] [--skip-artifacts]
(default N = 1,000,000 points across 10 runs, R = 2 rounds; writers 1 16 64 with 20,000
points each)

Printed, in one table per part:

- landing N points across 10 runs from one process: a raw one-connection loop of
  1,000-metric log-batch POSTs, a raw four-connection loop (the same bodies on four
  threads), mlrelay (10 runs one after the other, ``log_metric`` per point, each run
  ended, then ``flush()``), MLflow's client with ``synchronous=False`` and 1 s buffering
  (its fastest); the four-connection loop and mlrelay R times each in ABBA order, their
  medians compared; and a control, the four-connection loop beside a process burning the
  CPU time mlrelay's client used beyond the raw loop's (the client shares the server's
  two cores here). Each side's landed count (every step of every run once), client CPU
  and peak RSS;
- 1, 16 and 64 writer processes sharing one journal (benchmarks/writers.py against this
  server), each its own run (and with ``--shared`` also all in one run): log-call p50/p99
  and delivery throughput;
- a 1 GiB artifact uploaded and downloaded, proxied by the server and direct to S3
  (benchmarks/s3_artifacts.py), with the client's peak RSS.

Each client runs in its own fresh process. Absolute times drift on shared machines (and on
2 cores the server's 4 workers, PostgreSQL and the client share them); compare the ratios.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline import _run  # noqa: E402

import mlrelay  # noqa: E402
from tests._s3 import S3Store, moto_server  # noqa: E402
from tests._servers import RunningServer, mlflow_server, postgres_server  # noqa: E402

RUNS = 10
BUCKET = "mlrelay-bench"

RAW = textwrap.dedent(
    """
    import sys, time, json, httpx, concurrent.futures as cf
    uri, N, runs, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    c = httpx.Client(base_url=uri, timeout=120,
                     limits=httpx.Limits(max_connections=conc, max_keepalive_connections=conc))
    ids = [c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0",
           "start_time": int(time.time() * 1000)}).json()["run"]["info"]["run_id"]
           for _ in range(runs)]
    ts = int(time.time() * 1000)
    per = N // runs
    bodies = [{"run_id": rid, "metrics": [{"key": "loss", "value": 1.0 / (i + 1),
               "timestamp": ts, "step": i} for i in range(s, min(per, s + 1000))]}
              for rid in ids for s in range(0, per, 1000)]
    def post(b):
        c.post("/api/2.0/mlflow/runs/log-batch", json=b).raise_for_status()
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(conc) as ex:
        list(ex.map(post, bodies))
    dt = time.perf_counter() - t
    import resource; ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"land_s": dt, "rss_mb": ru.ru_maxrss / 1024, "run_ids": ids,
                      "cpu_s": ru.ru_utime + ru.ru_stime}))
    """
)

MLRELAY = textwrap.dedent(
    """
    import sys, time, json
    import mlrelay.fluent as ml
    uri, N, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ml.set_tracking_uri(uri)
    per = N // runs
    ids = []
    t = time.perf_counter()
    for r in range(runs):
        with ml.start_run() as run:
            for i in range(per):
                ml.log_metric("loss", 1.0 / (i + 1), step=i)
        ids.append(run.info.run_id)
    landed = ml.flush(1800)
    land_s = time.perf_counter() - t
    import resource; ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"land_s": land_s, "landed": landed, "rss_mb": ru.ru_maxrss / 1024,
                      "run_ids": ids, "cpu_s": ru.ru_utime + ru.ru_stime}))
    """
)

MLFLOW = textwrap.dedent(
    """
    import sys, time, json
    import mlflow
    uri, N, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mlflow.set_tracking_uri(uri)
    per = N // runs
    ids = []
    t = time.perf_counter()
    for r in range(runs):
        with mlflow.start_run() as run:
            for i in range(per):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=False)
        ids.append(run.info.run_id)
    mlflow.flush_async_logging()
    land_s = time.perf_counter() - t
    import resource; ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"land_s": land_s, "rss_mb": ru.ru_maxrss / 1024, "run_ids": ids,
                      "cpu_s": ru.ru_utime + ru.ru_stime}))
    """
)

BURN = textwrap.dedent(
    """
    import sys, time
    cpu_s, over_s = float(sys.argv[1]), float(sys.argv[2])
    duty = min(cpu_s / over_s, 1.0)
    while True:  # busy for duty x 100 ms of CPU time, idle for the rest, until killed
        t = time.process_time()
        while time.process_time() - t < duty * 0.1:
            pass
        time.sleep((1 - duty) * 0.1)
    """
)


def _landed(uri: str, run_ids: list[str], per_run: int) -> int:
    """Points of ``loss`` on the server across the runs; raises if a step is missing or
    twice in a run."""
    total = 0
    with mlrelay.Client(tracking_uri=uri) as client:
        for run_id in run_ids:
            steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
            if steps != list(range(per_run)):
                raise SystemExit(f"run {run_id}: {len(steps)} points, not steps 0..{per_run - 1}")
            total += len(steps)
    return total


@contextmanager
def production_server(workdir: Path) -> Iterator[tuple[RunningServer, RunningServer, S3Store]]:
    """PostgreSQL, moto's S3 and two ``mlflow server --workers 4`` on it: one proxying
    artifacts to S3, one leaving them to the clients (``--no-serve-artifacts``)."""
    with (
        postgres_server(workdir / "pg") as pg,
        moto_server(workdir / "s3", buckets=(BUCKET,)) as s3,
        mlflow_server(
            workdir / "mlflow",
            backend_store_uri=pg.create_database("mlflow_scale"),
            workers=4,
            artifacts=f"s3://{BUCKET}/proxied",
            env=s3.env,
        ) as proxied,
        mlflow_server(
            workdir / "mlflow-direct",
            backend_store_uri=pg.create_database("mlflow_scale_direct"),
            workers=4,
            artifacts=f"s3://{BUCKET}/direct",
            serve_artifacts=False,
            env=s3.env,
        ) as direct,
    ):
        yield proxied, direct, s3


def landing(uri: str, n: int, workdir: Path, rounds: int = 2) -> None:
    """The landing table: raw 1- and 4-connection loops, mlrelay, MLflow async, and the raw
    four-connection loop beside a process burning as much CPU as mlrelay's client used.

    The raw four-connection loop and mlrelay run ``rounds`` times, in ABBA order (raw,
    mlrelay, mlrelay, raw, ...), so a server that slows as its tables grow, or a machine
    that gets busier, weighs on both alike; the table gives their medians."""
    per = n // RUNS
    one, four, ours, theirs, loaded = (
        "raw 1-connection log-batch loop",
        "raw 4-connection log-batch loop",
        "mlrelay (log calls, end_run, flush)",
        "MLflow async, 1 s buffering",
        "raw 4-connection + mlrelay's client CPU",
    )
    results: dict[str, list[dict[str, Any]]] = {}
    k = 0

    def measure(
        label: str, code: str, *extra: str, burn: tuple[float, float] | None = None
    ) -> None:
        nonlocal k
        k += 1
        env = {"MLRELAY_HOME": str(workdir / f"h{k}")}
        if code is MLFLOW:  # its fastest async mode (benchmarks/pipeline.py measures both)
            env["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
        burner = None
        if burn is not None:
            burner = subprocess.Popen([sys.executable, "-c", BURN, *map(str, burn)])
        try:
            r = _run(code, uri, str(n), str(RUNS), *extra, env=env, timeout=3600)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        r["landed_n"] = _landed(uri, list(r["run_ids"]), per)
        results.setdefault(label, []).append(r)
        print(f"  {label}: {r['land_s']:.2f} s, client CPU {r['cpu_s']:.1f} s", flush=True)

    measure(one, RAW, "1")
    for i in range(rounds):
        pair = [(four, ("4",)), (ours, ())]
        for label, extra in pair if i % 2 == 0 else reversed(pair):
            measure(label, RAW if label == four else MLRELAY, *extra)
    # The control: the raw loop with a process using mlrelay's client CPU beside it (on 2
    # cores the client's work competes with the server's).
    cpu = statistics.median(float(r["cpu_s"]) for r in results[ours])
    extra_cpu = cpu - statistics.median(float(r["cpu_s"]) for r in results[four])
    measure(loaded, RAW, "4", burn=(extra_cpu, _median(results, four)))
    measure(theirs, MLFLOW)

    base1, base4 = _median(results, one), _median(results, four)
    print(f"\nLanding {n:,} points across {RUNS} runs (PostgreSQL, --workers 4)")
    print(
        f"{'client':<42} {'landed':>10} {'seconds (each)':>24} {'vs 1-conn':>10} "
        f"{'vs 4-conn':>10} {'CPU s':>6} {'RSS MB':>7}"
    )
    for label in (one, four, ours, loaded, theirs):
        runs = results[label]
        s = _median(results, label)
        each = " / ".join(f"{float(r['land_s']):.1f}" for r in runs)
        landed = min(int(r["landed_n"]) for r in runs)
        cpu_s = statistics.median(float(r["cpu_s"]) for r in runs)
        rss = max(float(r["rss_mb"]) for r in runs)
        print(
            f"{label:<42} {landed:>10,} {each:>24} {s / base1:>9.2f}x {s / base4:>9.2f}x "
            f"{cpu_s:>6.1f} {rss:>7.0f}"
        )
    pairs = [
        float(m["land_s"]) / float(r["land_s"])
        for m, r in zip(results[ours], results[four], strict=True)
    ]
    print(
        f"mlrelay / raw 4-connection, round by round: {' / '.join(f'{x:.2f}' for x in pairs)}; "
        f"the control row burns {extra_cpu:.1f} s of CPU (mlrelay's client CPU minus the raw "
        "loop's) beside the raw loop"
    )


def _median(results: dict[str, list[dict[str, Any]]], label: str) -> float:
    return statistics.median(float(r["land_s"]) for r in results[label])


def writers(uri: str, counts: list[int], workdir: Path, *, shared: bool = False) -> None:
    """The writers table (benchmarks/writers.py's measurement against this server): each
    writer its own run, and with ``shared`` also all writers in one run."""
    import writers as w

    n = 20_000
    print(f"\n{n:,} points per writer process, one shared journal (PostgreSQL, --workers 4)")
    print(
        f"{'writers':>7} {'runs':>5} {'p50 us (median/worst)':>22} {'p99 us (median/worst)':>22} "
        f"{'landed':>10} {'journaled s':>11} {'seconds':>8} {'points/s':>9}"
    )
    for one_run in (False, True) if shared else (False,):
        for count in counts:
            r = w._measure(uri, n, count, workdir, shared=one_run)
            print(
                f"{count:>7} {'one' if one_run else 'own':>5} {r['p50_median']:>10.2f} / "
                f"{r['p50_worst']:<9.2f} {r['p99_median']:>10.2f} / {r['p99_worst']:<9.2f} "
                f"{int(r['landed']):>10,} {r['journaled_s']:>11.1f} {r['seconds']:>8.1f} "
                f"{r['landed'] / r['seconds']:>9,.0f}",
                flush=True,
            )


def artifacts(proxied: str, direct: str, s3: S3Store, workdir: Path, mib: int = 1024) -> None:
    """The 1 GiB artifact table: up and back through the proxied server and direct to S3
    (benchmarks/artifacts.py's measurement in a child process)."""
    import s3_artifacts

    bench = s3_artifacts._artifacts_bench()
    print(f"\n{mib:,} MiB artifact up and back (PostgreSQL, --workers 4, moto's S3)")
    print(
        f"{'mode':<10} {'upload s':>9} {'download s':>11} {'client peak RSS MB':>19} {'intact':>7}"
    )
    for mode, url, env in (("proxied", proxied, {}), ("direct", direct, s3.env)):
        where = workdir / f"artifacts-{mode}"
        where.mkdir()
        r = bench.measure(url, mib, where, env=env)
        (where / "blob.bin").unlink()  # disk: one copy at a time
        print(
            f"{mode:<10} {r['up_s']:>9.1f} {r['down_s']:>11.1f} {r['rss_mb']:>19.0f} "
            f"{'yes' if r['intact'] else 'NO':>7}",
            flush=True,
        )


def main() -> None:
    """Start the production-shaped servers once and print every table against them."""
    # A SIGTERM (timeout, CI) unwinds the servers' context managers instead of leaving
    # PostgreSQL and the MLflow workers running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = sys.argv[1:]
    counts = [1, 16, 64]
    if "--writers" in args:
        at = args.index("--writers")
        tail = [a for a in args[at + 1 :] if a.isdigit()]
        counts = [int(a) for a in tail]
        args = args[:at] + args[at + 1 + len(tail) :]
    rounds = 2
    if "--rounds" in args:
        at = args.index("--rounds")
        rounds = int(args[at + 1])
        args = args[:at] + args[at + 2 :]
    flags = {a for a in args if a.startswith("--")}
    numbers = [a for a in args if not a.startswith("--")]
    n = int(numbers[0]) if numbers else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with production_server(workdir) as (proxied, direct, s3):
            if "--skip-landing" not in flags:
                landing(proxied.url, n, workdir, rounds)
            if "--skip-writers" not in flags:
                writers(proxied.url, counts, workdir, shared="--shared" in flags)
            if "--skip-artifacts" not in flags:
                artifacts(proxied.url, direct.url, s3, workdir)


if __name__ == "__main__":
    main()
