"""Log N points while the server is down, then bring it back: memory, log-call cost, delivery.

Usage: python benchmarks/outage.py [N]   (default N = 5,000,000)

The server is the bundled mock server (an outage rule answers 503 to everything); the
logging process is a fresh interpreter. Printed: per-call cost while down, peak RSS of
the logging process after all N calls, time to deliver once the server is back, and how
many points landed (each step must be there exactly once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from mlrelay_mock import MockServer

import mlrelay

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import mlrelay.fluent as ml
    N = int(sys.argv[2])
    ml.set_tracking_uri(sys.argv[1])
    run = ml.start_run()
    lat = []
    clock = time.perf_counter_ns
    t = time.perf_counter()
    for i in range(N):
        a = clock(); ml.log_metric("m", i * 0.5, step=i)
        if i % 100 == 0: lat.append(clock() - a)
    calls_s = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("LOGGED", flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    ok = ml.flush()
    lat.sort()
    print(json.dumps({"run_id": run.local_id, "calls_s": calls_s, "rss_logged_mb": rss,
        "median_us": lat[len(lat) // 2] / 1e3, "p99_us": lat[int(len(lat) * 0.99)] / 1e3,
        "deliver_s": time.perf_counter() - t, "flushed": ok,
        "rss_end_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
    """
)


def main() -> None:
    """Run the outage scenario and print the figures."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    with tempfile.TemporaryDirectory() as home, MockServer() as server:
        rule = server.faults.outage(seconds=24 * 3600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_"))}
        env.update({"MLRELAY_HOME": home, "MLRELAY_START_TIMEOUT": "1"})
        child = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", CHILD, server.url, str(n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "LOGGED"
        server.faults.remove(rule.id)
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
        child.wait(timeout=600)
        journal_mb = sum(f.stat().st_size for f in Path(home).iterdir()) / 1e6
        started = time.perf_counter()
        with mlrelay.Client(tracking_uri=server.url) as c:
            runs = list(c.search_runs(["0"], run_view_type="ALL"))
            assert len(runs) == 1, f"{len(runs)} runs"
            history = c.get_metric_history(runs[0].info.run_id, "m")
        steps = {p.step for p in history}
        read_s = time.perf_counter() - started
    print(f"N = {n:,} points logged while the mock server answered 503 to everything\n")
    print(
        f"log_metric while down (every 100th call timed): median {result['median_us']:.2f} us, "
        f"p99 {result['p99_us']:.2f} us; {n / result['calls_s']:,.0f} calls/s overall"
    )
    print(
        f"peak RSS after logging: {result['rss_logged_mb']:.0f} MB; at the end: "
        f"{result['rss_end_mb']:.0f} MB; journal on disk: {journal_mb:.0f} MB"
    )
    print(
        f"delivery after the server came back: {result['deliver_s']:.1f} s "
        f"({n / result['deliver_s']:,.0f} points/s), flush returned {result['flushed']}"
    )
    print(
        f"on the server: 1 run, {len(history):,} points, {len(steps):,} distinct steps "
        f"(read back in {read_s:.1f} s)"
    )


if __name__ == "__main__":
    main()
