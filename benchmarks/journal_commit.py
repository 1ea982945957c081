"""How fast the journal commits while a training loop holds the GIL, and what a kill -9 loses.

Usage: python benchmarks/journal_commit.py [SECONDS]   (default 2.5)

Printed:

- rows/s into a journal-shaped SQLite table, idle and with a busy thread holding the GIL
  (what a training loop does), for ``executemany`` (one ``sqlite3_step`` per row: Python's
  sqlite3 releases the GIL around each and must win it back from the busy thread) and for
  the multi-row INSERTs the journal uses (one hand-over per 1,000 rows);
- an offline loop logging as fast as it can through the fluent API for SECONDS: points
  logged per second, entries the journal committed per second meanwhile, entries still
  uncommitted at the end (what a kill -9 then would lose, in entries and in seconds of
  logging), the log-call median and the slowest call.

Absolute figures drift on shared machines; compare within one run.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL,
    kind INTEGER NOT NULL, key TEXT NOT NULL, num REAL, text TEXT, ts INTEGER, step INTEGER);
CREATE INDEX entries_by_run ON entries(run, seq);
"""
INSERT = "INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES "


def _db(directory: str) -> sqlite3.Connection:
    db = sqlite3.connect(Path(directory) / "j.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def _executemany(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.executemany(INSERT + "(?,?,?,?,?,?,?)", rows)
    db.execute("COMMIT")


def _multirow(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    for start in range(0, len(rows), 1000):
        part = rows[start : start + 1000]
        sql = INSERT + ",".join(["(?,?,?,?,?,?,?)"] * len(part))
        db.execute(sql, list(itertools.chain.from_iterable(part)))
    db.execute("COMMIT")


def insert_rates() -> None:
    """Rows/s for both ways of inserting, idle and against a thread holding the GIL."""
    rows = [("0123456789abcdef0123456789abcdef", 0, "loss", 0.5, None, 1, i) for i in range(16384)]
    for name, insert in (("executemany", _executemany), ("multi-row INSERT", _multirow)):
        for busy in (False, True):
            stop = threading.Event()

            def spin(stop: threading.Event = stop) -> None:
                queue: list[int] = []
                while not stop.is_set():
                    for _ in range(1000):
                        queue.append(1)
                    queue.clear()

            spinner = threading.Thread(target=spin) if busy else None
            with tempfile.TemporaryDirectory() as tmp:
                db = _db(tmp)
                if spinner:
                    spinner.start()
                started = time.perf_counter()
                for _ in range(8):
                    insert(db, rows)
                took = time.perf_counter() - started
                stop.set()
                if spinner:
                    spinner.join()
                db.close()
            label = "with a busy thread" if busy else "idle"
            print(f"{name:>17}, {label:<18}: {8 * len(rows) / took:>10,.0f} rows/s")


def fast_loop(seconds: float) -> None:
    """An offline loop logging as fast as it can: logged/s, committed/s, what is at risk."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(MLRELAY_HOME=tmp, MLRELAY_MODE="offline")
        import mlrelay.fluent as ml

        ml.start_run()
        ml.log_metric("m", 0.0, step=0)
        ml.flush()
        reader = sqlite3.connect(Path(tmp) / "journal.db")
        base = reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        clock = time.perf_counter_ns
        samples: list[int] = []
        worst, n, started = 0, 0, time.monotonic()
        end = started + seconds
        while time.monotonic() < end:
            for _ in range(4096):
                a = clock()
                ml.log_metric("m", 0.5, step=n)
                d = clock() - a
                worst = max(worst, d)
                if not n & 63:
                    samples.append(d)
                n += 1
        took = time.monotonic() - started
        committed = reader.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - base
        samples.sort()
        rate = n / took
        print(f"loop: {n:,} points in {took:.2f} s = {rate:,.0f}/s")
        print(f"journal committed meanwhile: {committed:,} = {committed / took:,.0f}/s")
        at_risk = n - committed
        risk_ms = at_risk / rate * 1e3
        print(f"uncommitted at the end: {at_risk:,} entries = {risk_ms:.0f} ms of logging")
        median_us = samples[len(samples) // 2] / 1e3
        print(f"log_metric median {median_us:.2f} us, slowest {worst / 1e6:.1f} ms")
        ml.end_run()


if __name__ == "__main__":
    insert_rates()
    fast_loop(float(sys.argv[1]) if len(sys.argv) > 1 else 2.5)
