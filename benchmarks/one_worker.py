"""Parallel delivery against the smallest server: is mlrelay any slower on one sqlite worker?

Usage: python benchmarks/one_worker.py [N] [ROUNDS]   (default N = 100,000, ROUNDS = 3)

One real ``mlflow server`` (sqlite, one worker, 127.0.0.1) serves every measurement. Each
round runs, one after the other and each in a fresh process: the raw loop of 1,000-metric
log-batch POSTs (the server-bound limit, benchmarks/pipeline.py's), mlrelay as shipped
(parallel delivery, up to ``MLRELAY_MAX_IN_FLIGHT=8`` requests in flight) and mlrelay with
``MLRELAY_MAX_IN_FLIGHT=1`` (one request at a time, as the sender worked before parallel
delivery). Printed: every run's time to land N points (log calls + ``flush()``), each
round's ratios to that round's raw loop, and the median ratio over the rounds; every run's
points are counted on the server (each step once).

Rounds pair the sides in time, so a machine that gets busier or quieter during the run
moves all three of a round together; compare the ratios, not the seconds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline import MLRELAY, RAW, _count, _run  # noqa: E402

from tests._servers import mlflow_server  # noqa: E402

SIDES = ("raw", "mlrelay", "mlrelay, 1 in flight")


def main() -> None:
    """Run the rounds against one server and print the table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as tmp, mlflow_server(Path(tmp) / "server") as server:
        uri = server.url
        home = str(Path(tmp) / "home")
        table: list[dict[str, float]] = []
        for r in range(rounds):
            runs = {
                "raw": _run(RAW, uri, str(n)),
                "mlrelay": _run(MLRELAY, uri, str(n), "up", env={"MLRELAY_HOME": home}),
                "mlrelay, 1 in flight": _run(
                    MLRELAY,
                    uri,
                    str(n),
                    "up",
                    env={"MLRELAY_HOME": home, "MLRELAY_MAX_IN_FLIGHT": "1"},
                ),
            }
            for side, result in runs.items():
                landed = _count(uri, str(result["run_id"]))
                if landed != n:
                    raise SystemExit(f"round {r + 1}, {side}: {landed:,} of {n:,} points landed")
            table.append({side: runs[side]["land_s"] for side in SIDES})
            print(
                f"round {r + 1}: " + ", ".join(f"{side} {table[-1][side]:.2f} s" for side in SIDES),
                flush=True,
            )
    print(f"\nN = {n:,} points, one real MLflow server (sqlite, 1 worker), 127.0.0.1\n")
    print(f"{'client':<24} {'seconds (each round)':>30} {'vs raw (each round)':>26} {'median':>7}")
    for side in SIDES:
        seconds = " / ".join(f"{row[side]:.2f}" for row in table)
        ratios = [row[side] / row["raw"] for row in table]
        each = " / ".join(f"{x:.2f}" for x in ratios)
        print(f"{side:<24} {seconds:>30} {each:>26} {statistics.median(ratios):>6.2f}x")


if __name__ == "__main__":
    main()
