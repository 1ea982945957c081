"""Throughput of the mock server against a real ``mlflow server``: log-batch of 1,000 metrics.

Usage: python benchmarks/mock_server_throughput.py [--requests 2000] [--real-requests N]
                                                   [--concurrency 1] [--skip-real]

Both servers run as their own processes on 127.0.0.1, started the way the test suite starts
them: the mock with its console entry point (``python -m mlrelay_mock --port N``), the real one
with ``tests/_servers.py`` (sqlite store, proxied artifacts, one worker). Each gets one
experiment and one run, then ``--requests`` log-batch requests of 1,000 distinct metric points
(no point is a duplicate, so nothing is skipped by dedup). The real server is much slower, so by
default it gets the same number of requests only if ``--real-requests`` says so; its rate is
measured over that sample. Prints startup time, requests/s, metric points/s, latency
percentiles, errors and the mock/real ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._servers import free_port, mlflow_server  # noqa: E402

METRICS_PER_BATCH = 1000
API = "/api/2.0/mlflow/"


@dataclass
class Result:
    """One server's figures."""

    name: str
    startup_s: float
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    rss_mb: float | None

    @property
    def requests_per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    @property
    def points_per_s(self) -> float:
        """Metric points per second."""
        return self.requests_per_s * METRICS_PER_BATCH

    def percentile(self, q: float) -> float:
        """A latency percentile in milliseconds."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _body(run_id: str, index: int) -> bytes:
    base = index * METRICS_PER_BATCH
    metrics = [
        {
            "key": f"m{j % 10}",
            "value": (base + j) * 0.001,
            "timestamp": 1_700_000_000_000 + base + j,
            "step": base + j,
        }
        for j in range(METRICS_PER_BATCH)
    ]
    return json.dumps({"run_id": run_id, "metrics": metrics}).encode()


def _load(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """Send the batches from ``concurrency`` threads; (seconds, latencies in ms, errors)."""
    with httpx.Client(base_url=url, timeout=300) as client:
        eid = client.post(API + "experiments/create", json={"name": f"bench-{time.time_ns()}"})
        run = client.post(
            API + "runs/create",
            json={"experiment_id": eid.json()["experiment_id"], "start_time": 1},
        )
        run_id = run.json()["run"]["info"]["run_id"]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                body = _body(run_id, index)
                started = time.perf_counter()
                try:
                    r = http.post(
                        API + "runs/log-batch",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    with httpx.Client(base_url=url, timeout=300) as client:
        history = client.get(
            API + "metrics/get-history", params={"run_id": run_id, "metric_key": "m0"}
        ).json()
    stored = len(history.get("metrics", [])) * 10
    if stored != requests * METRICS_PER_BATCH:
        errors += 1
        print(f"  ! {url}: stored {stored} points, expected {requests * METRICS_PER_BATCH}")
    return seconds, latencies, errors


def _bench_mock(requests: int, concurrency: int) -> Result:
    port = free_port()
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "mlrelay_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            httpx.get(url + "/health", timeout=10).raise_for_status()
            startup = time.perf_counter() - started
            seconds, latencies, errors = _load(url, requests, concurrency)
            rss = _rss_mb(process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    return Result("mock (mlrelay-mock-server)", startup, requests, seconds, latencies, errors, rss)


def _bench_real(requests: int, concurrency: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with mlflow_server(Path(tmp)) as server:
            startup = time.perf_counter() - started
            seconds, latencies, errors = _load(server.url, requests, concurrency)
            rss = _rss_mb(server.process.pid)
    return Result("real (mlflow server 3.17.2)", startup, requests, seconds, latencies, errors, rss)


def _table(results: list[Result]) -> None:
    header = (
        f"{'server':<28} {'startup s':>9} {'requests':>8} {'req/s':>8} {'points/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MB':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "?"
        print(
            f"{r.name:<28} {r.startup_s:>9.2f} {r.requests:>8} {r.requests_per_s:>8.1f} "
            f"{r.points_per_s:>10.0f} {r.percentile(0.5):>8.1f} {r.percentile(0.99):>8.1f} "
            f"{r.errors:>6} {rss:>7}"
        )


def main() -> None:
    """Run both benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--real-requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    runs: list[tuple[str, Callable[[], Result]]] = [
        ("mock", lambda: _bench_mock(args.requests, args.concurrency))
    ]
    if not args.skip_real:
        runs.append(("real", lambda: _bench_real(args.real_requests, args.concurrency)))
    results = []
    for name, run in runs:
        print(f"running {name} ...", flush=True)
        results.append(run())
    print()
    _table(results)
    if len(results) == 2:
        mock, real = results
        print(
            f"\nmock/real throughput ratio: {mock.requests_per_s / real.requests_per_s:.1f}x "
            f"({mock.requests} mock requests, {real.requests} real requests, "
            f"{METRICS_PER_BATCH} metrics each, concurrency {args.concurrency})"
        )
    print(f"mock startup to first healthy answer: {results[0].startup_s:.2f} s (target < 2 s)")
    median = statistics.median(results[0].latencies_ms)
    print(f"mock median log-batch latency: {median:.1f} ms")
    if any(r.errors for r in results):
        raise SystemExit("errors during the benchmark")


if __name__ == "__main__":
    main()
