"""Time `import mlrelay` in fresh interpreters, beside `import mlflow` and `import httpx`.

Usage: python benchmarks/import_time.py [REPEATS]
Prints the median wall time of each import (fresh process each time), the interpreter's own
start-up subtracted, and the ratio to the 150 ms target.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

TARGET_MS = 150.0


def _median_ms(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Measure and print the table."""
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    baseline = _median_ms("pass", repeats)
    rows = [("python -c pass (subtracted)", baseline)]
    for label, code in [
        ("import mlrelay", "import mlrelay"),
        ("import mlrelay; mlrelay.Client (first use)", "import mlrelay; mlrelay.Client"),
        ("import httpx", "import httpx"),
        ("import mlflow", "import mlflow"),
    ]:
        try:
            rows.append((label, _median_ms(code, repeats) - baseline))
        except subprocess.CalledProcessError:
            rows.append((label, float("nan")))
    print(f"{'what':<45} {'median ms':>10} {'vs 150 ms target':>17}")
    for label, ms in rows:
        print(f"{label:<45} {ms:>10.1f} {ms / TARGET_MS:>16.2f}x")


if __name__ == "__main__":
    main()
