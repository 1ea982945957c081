"""`mlrelay sync` of an offline journal against the raw server-bound limit, on one server.

Usage: python benchmarks/sync.py [N] [--server real|mock]   (default N = 1,000,000, real)

An offline process journals N points across 10 runs (N/10 each, plus a param and a tag
per run). Then, on the same server, in this order and each in its own fresh process:

- raw: plain httpx POSTs of 1,000-metric log-batch bodies for the same N points into 10
  runs, one connection, request bodies built inside the timed loop (what any client must
  do); the server-bound limit a batching client can approach but not beat;
- sync: `python -m mlrelay.cli sync`, timed from process start to exit, so start-up,
  run creation, reading the journal and the final statuses are all included.

Printed: both times, their ratio, points/s and the peak RSS of each process. Absolute
times drift on shared machines; compare the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlrelay_mock import MockServer  # noqa: E402

from tests._env import child_env  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

RUNS = 10

JOURNAL = textwrap.dedent(
    """
    import sys
    import mlrelay
    n, runs = int(sys.argv[1]), int(sys.argv[2])
    mlrelay.set_experiment("sync-bench")
    for r in range(runs):
        with mlrelay.start_run(run_name=f"bench-{r}"):
            mlrelay.log_param("run", r)
            mlrelay.set_tag("bench", "sync")
            for i in range(n // runs):
                mlrelay.log_metric("loss", 1.0 / (i + 1), step=i)
    """
)

RAW = textwrap.dedent(
    """
    import sys, time, json, resource, httpx
    uri, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    c = httpx.Client(base_url=uri, timeout=60)
    exp = c.post("/api/2.0/mlflow/experiments/create",
                 json={"name": f"raw-{time.time_ns()}"}).json()["experiment_id"]
    t = time.perf_counter()
    ts = int(time.time() * 1000)
    for r in range(runs):
        run_id = c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp,
            "start_time": ts}).json()["run"]["info"]["run_id"]
        per = n // runs
        for s in range(0, per, 1000):
            body = {"run_id": run_id, "metrics": [{"key": "loss", "value": 1.0 / (i + 1),
                "timestamp": ts, "step": i} for i in range(s, min(per, s + 1000))]}
            c.post("/api/2.0/mlflow/runs/log-batch", json=body).raise_for_status()
    dt = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"s": dt, "rss_mb": rss_mb}))
    """
)


def _env(home: Path, uri: str, **extra: str) -> dict[str, str]:
    return child_env(MLRELAY_HOME=str(home), MLFLOW_TRACKING_URI=uri, **extra)


SYNC = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlrelay.cli", "sync"],
                          capture_output=True, text=True)
    dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"s": dt, "rss_mb": rss, "rc": proc.returncode,
                      "tail": proc.stdout.splitlines()[-1:] + proc.stderr.splitlines()[-3:]}))
    """
)


def measure(uri: str, n: int, workdir: Path) -> dict[str, float]:
    """Journal N points offline, then time the raw loop and `mlrelay sync` against ``uri``."""
    home = workdir / "home"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", JOURNAL, str(n), str(RUNS)],
        env=_env(home, uri, MLRELAY_MODE="offline"),
        check=True,
    )
    journal_s = time.perf_counter() - t
    journal_mb = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 1e6
    raw = json.loads(
        subprocess.run(
            [sys.executable, "-c", RAW, uri, str(n), str(RUNS)],
            env=_env(home, uri),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    sync = json.loads(
        subprocess.run(
            [sys.executable, "-c", SYNC],
            env=_env(home, uri),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    if sync["rc"] != 0:
        raise SystemExit(f"sync failed: {sync['tail']}")
    return {
        "journal_s": journal_s,
        "journal_mb": journal_mb,
        "raw_s": raw["s"],
        "raw_rss": raw["rss_mb"],
        "sync_s": sync["s"],
        "sync_rss": sync["rss_mb"],
    }


def main() -> None:
    """Run the benchmark and print the table."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    kind = "mock" if "--server" in sys.argv and sys.argv[-1] == "mock" else "real"
    with tempfile.TemporaryDirectory(prefix="mlrelay-sync-bench-") as tmp:
        workdir = Path(tmp)
        if kind == "mock":
            with MockServer() as server:
                result = measure(server.url, n, workdir)
        else:
            with mlflow_server(workdir / "server") as server:
                result = measure(server.url, n, workdir)
    label = "MLflow 3.17.2 (sqlite, 1 worker)" if kind == "real" else "mlrelay mock server"
    print(f"\n`mlrelay sync` of {n:,} points in {RUNS} runs, {label}, 127.0.0.1\n")
    print("| what | time | points/s | ratio to raw | peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    raw_s, sync_s = result["raw_s"], result["sync_s"]
    print(
        f"| raw 1,000-metric log-batch loop | {raw_s:.1f} s | {n / raw_s:,.0f} | 1.00 | "
        f"{result['raw_rss']:.0f} MB |"
    )
    print(
        f"| `mlrelay sync` (process start to exit) | {sync_s:.1f} s | {n / sync_s:,.0f} | "
        f"{sync_s / raw_s:.2f} | {result['sync_rss']:.0f} MB |"
    )
    print(
        f"\nJournal: {result['journal_mb']:.0f} MB on disk, written offline in "
        f"{result['journal_s']:.1f} s (not part of either time)."
    )


if __name__ == "__main__":
    main()
