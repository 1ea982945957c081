"""mlrelay's fluent pipeline side by side with MLflow's client and the raw server-bound limit.

Usage: python benchmarks/pipeline.py [N]   (default N = 100,000)

One real `mlflow server` (sqlite, one worker, 127.0.0.1) serves every measurement in this
run; each client runs in its own fresh process. Printed:

- per-call cost of `log_metric`: mlrelay with the server up, slow (the bundled mock
  server with 1 s added to every request) and blackholed;
  MLflow synchronous and `synchronous=False` (fewer calls: MLflow needs milliseconds each);
- time to land N points: a raw loop of 1,000-metric log-batch POSTs (the server-bound
  limit), mlrelay (first call to `flush()` returning), MLflow async with its 1 s buffering
  (its fastest async mode), and MLflow async without buffering on a smaller N;
- peak RSS of each process.

Absolute times drift on shared machines; compare ratios within one run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlrelay_mock import MockServer  # noqa: E402

from tests._env import child_env  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

RAW = textwrap.dedent(
    """
    import sys, time, json, httpx
    uri, N = sys.argv[1], int(sys.argv[2])
    c = httpx.Client(base_url=uri, timeout=60)
    run_id = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0",
        "start_time": int(time.time() * 1000)}).json()["run"]["info"]["run_id"]
    ts = int(time.time() * 1000)
    t = time.perf_counter()
    for s in range(0, N, 1000):
        body = {"run_id": run_id, "metrics": [{"key": "loss", "value": 1.0 / (i + 1),
            "timestamp": ts, "step": i} for i in range(s, min(N, s + 1000))]}
        c.post("/api/2.0/mlflow/runs/log-batch", json=body).raise_for_status()
    dt = time.perf_counter() - t
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"land_s": dt, "rss_mb": rss_mb, "run_id": run_id}))
    """
)

MLRELAY = textwrap.dedent(
    """
    import sys, time, json
    import mlrelay.fluent as ml
    N = int(sys.argv[2])
    ml.set_tracking_uri(sys.argv[1])
    run = ml.start_run()
    lat = []
    clock = time.perf_counter_ns
    t = time.perf_counter()
    for i in range(N):
        a = clock(); ml.log_metric("loss", 1.0 / (i + 1), step=i); lat.append(clock() - a)
    calls_s = time.perf_counter() - t
    landed = ml.flush(600) if sys.argv[3] == "up" else None
    land_s = time.perf_counter() - t
    lat.sort()
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_us": lat[N // 2] / 1e3, "p99_us": lat[int(N * 0.99)] / 1e3,
        "calls_s": calls_s, "land_s": land_s, "landed": landed, "rss_mb": rss_mb,
        "run_id": run.run_id}), flush=True)
    """
)

MLFLOW = textwrap.dedent(
    """
    import os, sys, time, json
    import mlflow
    N, mode = int(sys.argv[2]), sys.argv[3]
    mlflow.set_tracking_uri(sys.argv[1])
    with mlflow.start_run() as run:
        lat = []
        clock = time.perf_counter_ns
        t = time.perf_counter()
        for i in range(N):
            a = clock()
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, synchronous=(mode == "sync"))
            lat.append(clock() - a)
        calls_s = time.perf_counter() - t
        if mode != "sync":
            mlflow.flush_async_logging()
        land_s = time.perf_counter() - t
    lat.sort()
    import resource; rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_us": lat[N // 2] / 1e3, "p99_us": lat[int(N * 0.99)] / 1e3,
        "calls_s": calls_s, "land_s": land_s, "rss_mb": rss_mb, "run_id": run.info.run_id}))
    """
)


def _run(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (the test environment plus ``env``) and return
    the JSON object its last line of output prints."""
    environ = child_env(**(env or {}))
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
        env=environ,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _count(uri: str, run_id: str) -> int:
    import mlrelay

    with mlrelay.Client(tracking_uri=uri) as c:
        return len(c.get_metric_history(str(run_id), "loss"))


def main() -> None:
    """Run every measurement against one server and print the table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_async = min(n, 5_000)
    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "server") as server:
        uri = server.url
        home = {"MLRELAY_HOME": str(Path(tmp) / "home")}
        # Raw loop and mlrelay alternate, twice each, on the same server; each side is
        # reported by its faster run, so neither a cold server nor one noisy run decides.
        raw_before = _run(RAW, uri, str(n))
        ours_a = _run(MLRELAY, uri, str(n), "up", env=home)
        raw_after = _run(RAW, uri, str(n))
        ours_b = _run(MLRELAY, uri, str(n), "up", env=home)
        raw = min(raw_before, raw_after, key=lambda r: r["land_s"])
        ours = min(ours_a, ours_b, key=lambda r: r["land_s"])
        with socket.socket() as hole:
            hole.bind(("127.0.0.1", 0))
            hole.listen(64)
            down = _run(
                MLRELAY,
                f"http://127.0.0.1:{hole.getsockname()[1]}",
                str(n),
                "down",
                env={**home, "MLRELAY_START_TIMEOUT": "1", "MLRELAY_EXIT_TIMEOUT": "0"},
            )
        with MockServer() as slow_server:
            # Every request takes 1 s: a slow server, as seen from the training loop.
            slow_server.faults.add("latency", delay=1.0)
            slow = _run(
                MLRELAY,
                slow_server.url,
                str(n),
                "down",
                env={**home, "MLRELAY_EXIT_TIMEOUT": "0"},
            )
        sync = _run(MLFLOW, uri, "300", "sync")
        buffered = _run(
            MLFLOW, uri, str(n), "async", env={"MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "1"}
        )
        unbuffered = _run(MLFLOW, uri, str(n_async), "async")
        counts = {
            "raw": _count(uri, str(raw["run_id"])),
            "mlrelay": _count(uri, str(ours["run_id"])),
            "buffered": _count(uri, str(buffered["run_id"])),
            "unbuffered": _count(uri, str(unbuffered["run_id"])),
        }

    limit = raw["land_s"]
    print(f"N = {n:,} points, one real MLflow server (sqlite, 1 worker), 127.0.0.1\n")
    print(
        f"landing runs in order: raw {raw_before['land_s']:.2f} s, mlrelay "
        f"{ours_a['land_s']:.2f} s, raw {raw_after['land_s']:.2f} s, mlrelay "
        f"{ours_b['land_s']:.2f} s (each side's faster run is used below)\n"
    )
    print("Per-call cost of log_metric")
    print(f"{'client':<44} {'calls':>8} {'median us':>10} {'p99 us':>10}")
    rows = [
        ("mlrelay, server up", n, ours),
        ("mlrelay, server slow (1 s per request)", n, slow),
        ("mlrelay, server blackholed", n, down),
        ("MLflow synchronous", 300, sync),
        ("MLflow synchronous=False (1 s buffering)", n, buffered),
        ("MLflow synchronous=False (no buffering)", n_async, unbuffered),
    ]
    for label, calls, r in rows:
        print(f"{label:<44} {calls:>8,} {r['median_us']:>10.2f} {r['p99_us']:>10.2f}")
    print("\nTime to land the points on the server")
    print(f"{'client':<44} {'points':>8} {'landed':>8} {'seconds':>9} {'vs raw':>8} {'RSS MB':>8}")
    land_rows = [
        ("raw 1,000-metric log-batch loop (limit)", n, counts["raw"], raw),
        ("mlrelay (log calls + flush)", n, counts["mlrelay"], ours),
        ("MLflow async, 1 s buffering", n, counts["buffered"], buffered),
        ("MLflow async, no buffering", n_async, counts["unbuffered"], unbuffered),
    ]
    for label, points, landed, r in land_rows:
        per_point = r["land_s"] / points
        ratio = per_point / (limit / n)
        print(
            f"{label:<44} {points:>8,} {landed:>8,} {r['land_s']:>9.2f} {ratio:>7.2f}x "
            f"{r['rss_mb']:>8.0f}"
        )
    print(
        "\n'vs raw' compares time per point with the raw loop's (1.00x = the server-bound limit)."
    )


if __name__ == "__main__":
    main()
