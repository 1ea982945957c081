"""What system metrics cost: the CPU a process uses with them, beside the same process without
them, at MLflow's default interval (10 s) and at 1 s.

Usage: python benchmarks/system_metrics.py [SECONDS]   (default 60 per configuration)

Each configuration is a fresh child process that starts a run (offline: nothing leaves the
machine; the journal is written as in any run), sleeps SECONDS in its main thread, and
reports its CPU time over those seconds and the monitor thread's own CPU time. With and
without run side by side, at the same time, so the machine's noise weighs on both. The
overhead is the difference, as a percentage of one core.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import mlrelay
    from mlrelay._pipeline import runs
    seconds, on = float(sys.argv[1]), sys.argv[2] == "on"
    with mlrelay.start_run(log_system_metrics=on):
        monitor = runs.current().monitor
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(seconds)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        points = monitor.step if monitor else 0
        thread_cpu = monitor.cpu_seconds if monitor else 0.0
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    print(json.dumps({"cpu_s": cpu, "points": points, "thread_cpu_s": thread_cpu}))
    """
)


def measure(seconds: float, interval: float, workdir: Path) -> dict[str, dict[str, float]]:
    """Run the process with and without system metrics at once; their reports."""
    procs = {}
    for mode in ("on", "off"):
        env = {
            "MLRELAY_MODE": "offline",
            "MLRELAY_HOME": str(workdir / f"{mode}-{interval}"),
            "HOME": str(workdir),
            "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": str(interval),
            "PATH": "/usr/bin:/bin",
        }
        procs[mode] = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(seconds), mode],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
    out = {}
    for mode, proc in procs.items():
        stdout, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise SystemExit(f"the {mode} process failed")
        out[mode] = json.loads(stdout.splitlines()[-1])
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for interval in (10.0, 1.0):
            r = measure(seconds, interval, Path(tmp))
            extra = r["on"]["cpu_s"] - r["off"]["cpu_s"]
            rows.append((interval, r, extra))
    print(f"\nSystem metrics over {seconds:.0f} s of a sleeping training process (offline run)")
    print(
        f"{'interval':>9} {'points':>7} {'CPU on s':>9} {'CPU off s':>10} "
        f"{'overhead % core':>16} {'monitor thread % core':>22} {'ms per point':>13}"
    )
    for interval, r, extra in rows:
        points = max(int(r["on"]["points"]), 1)
        print(
            f"{interval:>8.0f}s {int(r['on']['points']):>7} {r['on']['cpu_s']:>9.3f} "
            f"{r['off']['cpu_s']:>10.3f} {extra / seconds * 100:>15.3f}% "
            f"{r['on']['thread_cpu_s'] / seconds * 100:>21.3f}% "
            f"{r['on']['thread_cpu_s'] / points * 1000:>13.2f}"
        )


if __name__ == "__main__":
    main()
