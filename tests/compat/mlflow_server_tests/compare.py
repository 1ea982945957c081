#!/usr/bin/env python3
# A command-line report: printing is its job.
# ruff: noqa: T201
"""Compare the control (real mlflow 3.17.2) with the mock on the in-scope selection.

Usage (results/ is $MOCKFID_OUT/results, default $TMPDIR/mlrelay-mockfid/results):
    compare.py                       # results/real.xml vs results/mock.xml
    compare.py --latest              # overlay results/mock-last.xml (a subset re-run) on mock.xml
    compare.py --mock results/mock-last.xml   # only the tests in that subset
    compare.py --full                # print the whole failure text, not only its first line

Prints: N in-scope tests passing on real, how many of those pass on mock, and each real-pass /
mock-fail test with the first line of its failure. Also lists real failures (not counted).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("MOCKFID_OUT") or Path(tempfile.gettempdir()) / "mlrelay-mockfid")
RESULTS = OUT / "results"


def load(path: Path) -> dict[str, tuple[str, str, str]]:
    """nodeid -> (outcome, message, text) from a junit xml."""
    out: dict[str, tuple[str, str, str]] = {}
    root = ET.parse(path).getroot()
    for tc in root.iter("testcase"):
        cls = tc.get("classname", "")
        name = tc.get("name", "")
        nodeid = cls.replace(".", "/") + ".py::" + name
        outcome, msg, text = "passed", "", ""
        for tag in ("failure", "error", "skipped"):
            el = tc.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                msg = el.get("message", "") or ""
                text = el.text or ""
                break
        out[nodeid] = (outcome, msg, text)
    return out


def first_line(msg: str, text: str) -> str:
    """The most useful single line of a failure."""
    for line in text.splitlines():
        if line.startswith("E "):
            return line[1:].strip()
    return (msg.splitlines() or [""])[0].strip()


def main() -> int:
    """Print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--real", type=Path, default=RESULTS / "real.xml")
    ap.add_argument("--mock", type=Path, default=RESULTS / "mock.xml")
    ap.add_argument("--latest", action="store_true", help="overlay results/mock-last.xml")
    ap.add_argument("--full", action="store_true", help="print full failure text")
    args = ap.parse_args()

    scope = {
        line.strip()
        for line in (HERE / "in_scope.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    real = {k: v for k, v in load(args.real).items() if k in scope}
    mock = {k: v for k, v in load(args.mock).items() if k in scope}
    if args.latest and (RESULTS / "mock-last.xml").exists():
        last = load(RESULTS / "mock-last.xml")
        mock.update(last)
        print(f"(overlaid {len(last)} results from results/mock-last.xml)")
    subset = args.mock.name.endswith("-last.xml")

    real_pass = sorted(n for n, r in real.items() if r[0] == "passed")
    if subset:
        real_pass = [n for n in real_pass if n in mock]
    both = [n for n in real_pass if mock.get(n, ("missing",))[0] == "passed"]
    failing = [n for n in real_pass if n not in both]
    real_bad = sorted(n for n, r in real.items() if r[0] in ("failed", "error"))
    real_skip = sorted(n for n, r in real.items() if r[0] == "skipped")

    n_real_pass = sum(1 for r in real.values() if r[0] == "passed")
    print(
        f"in-scope tests in control run: {len(real)}"
        f" (passed {n_real_pass},"
        f" failed/error {len(real_bad)}, skipped {len(real_skip)})"
    )
    what = "of this subset " if subset else ""
    print(f"real-pass {what}: {len(real_pass)}; of those pass on mock: {len(both)}")
    print()
    print(f"real-pass / mock-fail ({len(failing)}):")
    for n in failing:
        outcome, msg, text = mock.get(n, ("missing", "not run on mock", ""))
        print(f"  {n}  [{outcome}]")
        if args.full:
            print("    " + text.replace("\n", "\n    "))
        else:
            print(f"      {first_line(msg, text)[:300]}")
    if real_bad and not subset:
        print()
        print(f"failing on REAL too (not counted; {len(real_bad)}):")
        for n in real_bad:
            print(f"  {n}: {first_line(real[n][1], real[n][2])[:200]}")
    mock_only = [n for n, r in mock.items() if r[0] == "passed" and n in real_bad]
    if mock_only:
        print(f"\npass on mock but fail on real ({len(mock_only)}): " + ", ".join(mock_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
