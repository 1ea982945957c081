"""A production-shaped server, side by side in one run (issue 15): MLflow on PostgreSQL with
``--workers 4`` and artifacts in S3 (moto's server), all on 127.0.0.1.

Usage: python benchmarks/scale.py [N] [--writers W ...] [--shared] [--skip-landing]
[--skip-writers] [--skip-artifacts]
(default N = 1,000,000 points across 10 runs; writers 1 16 64 with 20,000 points each)

Printed, in one table per part:

- landing N points across 10 runs from one process: a raw one-connection loop of
  1,000-metric log-batch POSTs, a raw four-connection loop (the same bodies on four
  threads), mlrelay (10 runs one after the other, ``log_metric`` per point, each run
  ended, then ``flush()``), MLflow's client with ``synchronous=False`` and 1 s buffering
  (its fastest), with
  each side's landed count (every step of every run once) and peak RSS;
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
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"land_s": dt, "rss_mb": rss_mb, "run_ids": ids}))
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
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"land_s": land_s, "landed": landed, "rss_mb": rss_mb, "run_ids": ids}))
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
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"land_s": land_s, "rss_mb": rss_mb, "run_ids": ids}))
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


def landing(uri: str, n: int, workdir: Path) -> None:
    """The landing table: raw 1- and 4-connection loops, mlrelay, MLflow async."""
    per = n // RUNS
    order = [
        ("raw 1-connection log-batch loop", RAW, ("1",)),
        ("raw 4-connection log-batch loop", RAW, ("4",)),
        ("mlrelay (log calls, end_run, flush)", MLRELAY, ()),
        ("MLflow async, 1 s buffering", MLFLOW, ()),
    ]
    results = {}
    for k, (label, code, extra) in enumerate(order):
        env = {"MLRELAY_HOME": str(workdir / f"h{k}")}
        if code is MLFLOW:  # its fastest async mode (benchmarks/pipeline.py measures both)
            env["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
        r = _run(code, uri, str(n), str(RUNS), *extra, env=env, timeout=3600)
        r["landed_n"] = _landed(uri, list(r["run_ids"]), per)
        results[label] = r
        print(f"  {label}: {r['land_s']:.2f} s", flush=True)
    one = float(results[order[0][0]]["land_s"])
    four = float(results[order[1][0]]["land_s"])
    print(f"\nLanding {n:,} points across {RUNS} runs (PostgreSQL, --workers 4)")
    print(
        f"{'client':<40} {'landed':>10} {'seconds':>8} {'vs 1-conn':>10} {'vs 4-conn':>10} "
        f"{'RSS MB':>7}"
    )
    for label, _, _ in order:
        r = results[label]
        s = float(r["land_s"])
        print(
            f"{label:<40} {r['landed_n']:>10,} {s:>8.2f} {s / one:>9.2f}x {s / four:>9.2f}x "
            f"{float(r['rss_mb']):>7.0f}"
        )


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
    flags = {a for a in args if a.startswith("--")}
    numbers = [a for a in args if not a.startswith("--")]
    n = int(numbers[0]) if numbers else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with production_server(workdir) as (proxied, direct, s3):
            if "--skip-landing" not in flags:
                landing(proxied.url, n, workdir)
            if "--skip-writers" not in flags:
                writers(proxied.url, counts, workdir, shared="--shared" in flags)
            if "--skip-artifacts" not in flags:
                artifacts(proxied.url, direct.url, s3, workdir)


if __name__ == "__main__":
    main()
