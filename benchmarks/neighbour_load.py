"""How a training loop's speed here depends on what the other CPU does, with no logger.

Usage: python benchmarks/neighbour_load.py [--rounds N (default 20)]

Lightning's anchor workload (as in benchmarks/frameworks.py: ``Linear(32->1)``, 300 steps,
one CPU thread), with no logger at all, fitted in one process while another process, started
for each fit, does one of:

- ``idle``: nothing (it sleeps);
- ``light``: 3 ms of busy work every 100 ms, about what a journal process (or a writer
  thread) does beside a training loop;
- ``spin``: busy all the time.

Every fit waits the same 0.3 s before it starts (so the neighbour is running), and the
three kinds rotate each round. The table gives each kind's median fit time, its ratio to
``idle`` (per round: median and quartiles; total: the sum of idle's times over the sum of
its own) and the training thread's CPU time. A ratio above 1 means the loop ran faster with
that neighbour. On a virtual machine this measures the host as much as the loop: compare
within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from frameworks import LIGHTNING_WORKLOAD  # noqa: E402

KINDS = ["idle", "light", "spin"]

NEIGHBOUR = {
    "idle": "import time\nwhile True: time.sleep(1)",
    "light": textwrap.dedent(
        """
        import time
        while True:
            t = time.perf_counter()
            while time.perf_counter() - t < 0.003:
                pass
            time.sleep(0.097)
        """
    ),
    "spin": "while True: pass",
}

CHILD = LIGHTNING_WORKLOAD + textwrap.dedent(
    """
    import subprocess

    def fit(kind):
        neighbour = subprocess.Popen([sys.executable, "-c", cfg["neighbours"][kind]])
        try:
            time.sleep(0.3)  # the same pause before every fit; the neighbour has started
            thread, wall = time.thread_time(), time.perf_counter()
            trainer = L.Trainer(max_steps=STEPS, max_epochs=1000, logger=False,
                                log_every_n_steps=1, enable_progress_bar=False,
                                enable_checkpointing=False, enable_model_summary=False,
                                accelerator="cpu", devices=1, limit_val_batches=0)
            trainer.fit(Net(), data)
            return time.perf_counter() - wall, time.thread_time() - thread
        finally:
            neighbour.kill()
            neighbour.wait()

    kinds = cfg["kinds"]
    for kind in kinds:  # warm-up
        fit(kind)
    for i in range(cfg["rounds"]):
        order = kinds[i % 3:] + kinds[:i % 3]
        if (i // 3) % 2:
            order.reverse()
        for kind in order:
            wall, thread = fit(kind)
            print("RESULT " + json.dumps({"round": i, "kind": kind, "wall": wall,
                                          "thread": thread}), flush=True)
    """
)


def main() -> None:
    """Run the rounds in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of every kind (20)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the table shows quartiles)")
    cfg = {"rounds": args.rounds, "kinds": KINDS, "neighbours": NEIGHBOUR, "workload": "anchor"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=120 + 5 * args.rounds * len(KINDS),
    )
    results = [json.loads(x[7:]) for x in done.stdout.splitlines() if x[:7] == "RESULT "]
    if len(results) != args.rounds * len(KINDS):
        raise SystemExit(f"the child failed:\n{done.stderr[-3000:]}")
    idle = {r["round"]: r["wall"] for r in results if r["kind"] == "idle"}
    print(f"Lightning anchor, no logger, {args.rounds} rounds; the other CPU's load")
    print(
        "| neighbour | median fit, s | ratio to idle: median (quartiles) | total ratio "
        "| thread CPU, ms |"
    )
    print("| --- | --- | --- | --- | --- |")
    for kind in KINDS:
        mine = [r for r in results if r["kind"] == kind]
        ratios = [idle[r["round"]] / r["wall"] for r in mine]
        q1, median, q3 = statistics.quantiles(ratios, n=4)
        wall = statistics.median(r["wall"] for r in mine)
        total = sum(idle.values()) / sum(r["wall"] for r in mine)
        cpu = statistics.median(r["thread"] for r in mine) * 1000
        print(
            f"| {kind} | {wall:.3f} | {median:.3f} ({q1:.3f}-{q3:.3f}) | {total:.3f} | {cpu:.1f} |"
        )


if __name__ == "__main__":
    main()
