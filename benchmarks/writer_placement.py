"""Where the journal's commits run, and what each place costs a training loop.

Usage: python benchmarks/writer_placement.py [--rounds N (default 24)] [--modes ...] [--pin]
[--raw FILE]

Lightning's anchor workload (``Linear(32->1)``, batch 32, 300 steps, ``self.log("loss")``
every step, one CPU thread, as in benchmarks/frameworks.py), fitted in one process, the
modes of a round in rotated order (reversed every other cycle), against the mock server
with 50 ms added to every request. Each fit is timed from ``Trainer(...)`` to the return of
``fit()``. The modes:

- ``none``: no logger (the baseline of every ratio);
- ``memory``: a lean logger that keeps each step's points in a list: the floor for any
  Python logger, and durable against nothing;
- ``thread``: the same lean logger handing its points to mlrelay's pipeline, whose
  background writer thread commits them to the journal every 100 ms (mlrelay's design);
- ``inline``: the lean logger commits its points itself, every 100 ms, to a journal-shaped
  SQLite table in WAL mode with ``synchronous=NORMAL`` (no fsync: a killed process loses
  nothing committed);
- ``inline-fsync``: the same with ``synchronous=FULL`` (one fsync per commit, on the
  training thread);
- ``inline-bgsync``: ``inline``, and after each commit a background thread (woken by
  it) fsyncs the table's ``-wal`` file: the commit on the training thread, the fsync's
  wait on another;
- ``sidecar``: the lean logger writes its points to a pipe every 100 ms, and a child
  process commits them (``synchronous=FULL``): nothing in the training process commits;
- ``mlrelay-open``: mlrelay's ``MLFlowLogger`` with its run started before the timed span
  (as the lean modes' runs): the per-step path and the run's end;
- ``mlrelay``: mlrelay's ``MLFlowLogger``, run start and end included;
- ``handoff``: a prototype of a journal process. mlrelay's ``MLFlowLogger`` (run start
  and end included), whose log calls hand their entries, every 100 ms, to a child process
  with one pipe write; the child runs mlrelay's pipeline (journal and sender)
  for them. Nothing in the training process commits or sends. A prototype: it stands in
  for the child's ownership of the runs with a patch, and keeps no copy of what it handed
  over (a child that dies loses it).

The lean modes open their run before the timed span (``mlrelay`` opens it inside), so
they compare only where the commits run. After each fit that used mlrelay's pipeline,
delivery is waited for outside the timed span. The table gives, per mode, the median ratio
of the round's no-logger time to the mode's (quartiles in brackets), the total ratio (sum
over sum), the ratio of the 10th percentile times ("fastest 10 %", with 20 rounds or more:
interference from the rest of a shared machine only adds time), and the training thread's
CPU time and wall time beyond it, in ms per fit.
Absolute times drift on shared machines; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from frameworks import LIGHTNING_WORKLOAD, _fastest_ratio, _set_latency  # noqa: E402
from mlrelay_mock import MockServer  # noqa: E402

MODES = [
    "none",
    "memory",
    "thread",
    "inline",
    "inline-fsync",
    "inline-bgsync",
    "sidecar",
    "mlrelay-open",
    "mlrelay",
    "handoff",
]

SIDECAR = textwrap.dedent(
    """
    import marshal, os, select, sqlite3, sys, time
    fd, path = int(sys.argv[1]), sys.argv[2]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, run TEXT, "
               "kind INTEGER, key TEXT, num REAL, text TEXT, ts INTEGER, step INTEGER)")
    buf = b""
    while True:
        select.select([fd], [], [])
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        buf += chunk
        rows = []
        while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "little"):
            n = int.from_bytes(buf[:4], "little")
            rows += marshal.loads(buf[4:4 + n])
            buf = buf[4 + n:]
        if rows:
            db.execute("INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES "
                       + ",".join(["(?,?,?,?,NULL,?,?)"] * len(rows)),
                       [f for row in rows for f in row])
    """
)

JOURNAL_PROCESS = textwrap.dedent(
    """
    import marshal, os, sys
    fd_in, fd_out, parent = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    import mlrelay._pipeline.journal as jm
    # The prototype's patch: this process sends the runs the parent recorded (a real
    # journal process would own them: a dead one's runs are then orphans, recovered).
    me = (parent, jm.process_start(parent))
    jm.owner_identity = lambda: me
    from mlrelay._pipeline.runs import session
    from mlrelay._pipeline.pipeline import Pipeline, PipelineOptions
    pipeline = Pipeline(jm.Journal(session.journal_path()), session.client_for,
                        PipelineOptions())
    seen, runs = set(), pipeline.journal.runs  # only the runs handed over here
    pipeline.journal.runs = lambda **kw: (
        [r for r in runs(**kw) if r.local_id in seen] if kw.get("mine") else runs(**kw))
    buf = b""
    while chunk := os.read(fd_in, 1 << 20):
        buf += chunk
        while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "little"):
            n = int.from_bytes(buf[:4], "little")
            frame, buf = marshal.loads(buf[4:4 + n]), buf[4 + n:]
            rows = []
            for item in frame:
                if item[0] == "\\0end":  # a run's end, after its entries
                    pipeline.log_many(rows)
                    rows = []
                    seen.add(item[1])
                    pipeline.end_run(item[1], item[2], item[3])
                elif item[0] == "\\0flush":  # deliver everything, then answer
                    pipeline.log_many(rows)
                    rows = []
                    os.write(fd_out, b"1" if pipeline.flush(item[1]) else b"0")
                else:
                    seen.add(item[0])
                    rows.append(item)
            pipeline.log_many(rows)
            pipeline.write_now(5.0)  # journaled as it arrives
    pipeline.close(10)
    """
)

CHILD = LIGHTNING_WORKLOAD + textwrap.dedent(
    """
    import marshal, select, sqlite3, subprocess, threading
    from lightning.pytorch.loggers.logger import Logger
    import mlrelay
    from mlrelay.integrations.lightning import MLFlowLogger
    from mlrelay._pipeline.runs import session

    EVERY = 100_000_000  # a commit every 100 ms, as mlrelay's writer
    TABLE = ("CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, run TEXT, "
             "kind INTEGER, key TEXT, num REAL, text TEXT, ts INTEGER, step INTEGER)")
    INSERT = "INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES "

    def table(name, sync):
        db = sqlite3.connect(os.path.join(cfg["dir"], name), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=" + sync)
        db.execute(TABLE)
        return db

    class Lean(Logger):
        # A step's points as rows; `hand` takes them (every 100 ms for the batching modes).
        def __init__(self, run, hand):
            super().__init__()
            self.run, self.hand, self.rows, self.last = run, hand, [], time.monotonic_ns()
        @property
        def name(self): return "lean"
        @property
        def version(self): return self.run
        def log_hyperparams(self, params, *args, **kwargs): pass
        def log_metrics(self, metrics, step=None):
            ts = time.time_ns() // 1_000_000
            rows = [(self.run, 0, k, v if type(v) is float else float(v), ts, step)
                    for k, v in metrics.items()]
            self.hand(self, rows)
        def finalize(self, status):
            self.hand(self, [], end=True)  # the fit's last points, as a run's end commits them

    def keep(logger, rows, end=False):
        logger.rows += rows

    def batched(commit):
        def hand(logger, rows, end=False):
            logger.rows += rows
            now = time.monotonic_ns()
            if logger.rows and (end or now - logger.last >= EVERY):
                commit(logger.rows)
                logger.rows, logger.last = [], now
        return hand

    def sql_commit(db):
        def commit(rows):
            db.execute(INSERT + ",".join(["(?,?,?,?,NULL,?,?)"] * len(rows)),
                       [f for row in rows for f in row])
        return commit

    normal, full = table("inline.db", "NORMAL"), table("inline-fsync.db", "FULL")
    commit_bgsync = sql_commit(table("inline-bgsync.db", "NORMAL"))
    commit_bg, synced = threading.Event(), [0]

    def bg_commit(rows):
        commit_bgsync(rows)
        if not commit_bg.is_set():
            commit_bg.set()  # (the fsync thread sleeps until a commit wakes it)

    def _fsync_after_commits():
        fd = None
        while True:
            commit_bg.wait()
            commit_bg.clear()
            if fd is None:
                fd = os.open(os.path.join(cfg["dir"], "inline-bgsync.db-wal"), os.O_RDONLY)
            os.fsync(fd)
            synced[0] += 1

    if "inline-bgsync" in cfg["modes"]:
        threading.Thread(target=_fsync_after_commits, daemon=True).start()
    read, write = os.pipe()
    sidecar = subprocess.Popen([sys.executable, "-c", cfg["sidecar"], str(read),
                                os.path.join(cfg["dir"], "sidecar.db")], pass_fds=(read,))
    os.close(read)

    def to_pipe(rows):
        data = marshal.dumps(rows)
        os.write(write, len(data).to_bytes(4, "little") + data)

    class Handoff:
        # mlrelay's sink for the log calls: every 100 ms, the call that finds the last
        # hand-over that old writes what was logged since to the journal process (one
        # pipe write); a thread hands over what a loop that stopped logging left.
        every = 0.1
        def __init__(self):
            r, self.w = os.pipe()
            self.r, w = os.pipe()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", cfg["journal_process"], str(r), str(w), str(os.getpid())],
                pass_fds=(r, w))
            os.close(r); os.close(w)
            self.rows, self.at, self.lock = [], time.monotonic(), threading.Lock()
            threading.Thread(target=self._tick, daemon=True).start()
        def log(self, row):
            self.rows.append(row)
            if time.monotonic() - self.at >= self.every:
                self._hand()
        def log_many(self, rows):
            self.rows += rows
            if time.monotonic() - self.at >= self.every:
                self._hand()
        def end_run(self, local_id, status, end_time):
            self.rows.append(("\\0end", local_id, status, end_time))
        def _hand(self, extra=None):
            if not self.lock.acquire(extra is not None):
                return  # (the thread is handing over)
            try:
                self.at = time.monotonic()
                rows, self.rows = self.rows, []
                if extra is not None:
                    rows.append(extra)
                if rows:
                    data = marshal.dumps(rows)
                    os.write(self.w, len(data).to_bytes(4, "little") + data)
            finally:
                self.lock.release()
        def _tick(self):
            while True:  # (asleep but for one wake-up per 200 ms: it runs beside every mode)
                wait = self.at + 2 * self.every - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif self.rows:
                    self._hand()
                else:
                    time.sleep(2 * self.every)
        def flush(self, timeout):
            self._hand(("\\0flush", timeout))
            ready, _, _ = select.select([self.r], [], [], timeout + 5)
            return bool(ready) and os.read(self.r, 1) == b"1"  # (never a read that blocks)

    handoff = Handoff() if "handoff" in cfg["modes"] else None
    handed = set()  # the handoff runs: this process's own sender leaves them alone
    from mlrelay._pipeline.pipeline import Pipeline
    send_round = Pipeline._send_round
    def _send_round(self):
        runs = self.journal.runs
        self.journal.runs = lambda **kw: [r for r in runs(**kw) if r.local_id not in handed]
        try:
            return send_round(self)
        finally:
            del self.journal.runs
    Pipeline._send_round = _send_round

    def logger_for(mode):
        if mode == "handoff":
            logger = MLFlowLogger(experiment_name="placement", tracking_uri=cfg["uri"])
            session.sink = handoff
            session.ensure_pipeline().end_run = handoff.end_run
            return logger
        if mode == "none":
            return False
        if mode in ("mlrelay", "mlrelay-open"):
            logger = MLFlowLogger(experiment_name="placement", tracking_uri=cfg["uri"])
            if mode == "mlrelay-open":
                logger._open()  # the run starts before the timed span, as the lean modes'
            return logger
        if mode == "thread":
            run = MLFlowLogger(experiment_name="placement", tracking_uri=cfg["uri"])
            sink = session.ensure_sink()
            lean = Lean(run._open().local_id, lambda logger, rows, end=False: sink.log_many(rows))
            lean.mlrelay = run  # (ended after the fit)
            return lean
        hand = {"memory": keep, "inline": batched(sql_commit(normal)),
                "inline-fsync": batched(sql_commit(full)), "inline-bgsync": batched(bg_commit),
                "sidecar": batched(to_pipe)}[mode]
        return Lean("r", hand)

    def fit(mode):
        logger = logger_for(mode)
        net = Net()
        thread, wall = time.thread_time(), time.perf_counter()
        trainer = L.Trainer(max_steps=STEPS, max_epochs=1000, logger=logger,
                            log_every_n_steps=1, enable_progress_bar=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            accelerator="cpu", devices=1, limit_val_batches=0)
        trainer.fit(net, data)
        wall, thread = time.perf_counter() - wall, time.thread_time() - thread
        if mode == "thread":
            logger.mlrelay.finalize("success")
        if mode in ("thread", "mlrelay", "mlrelay-open"):
            mlrelay.flush(120)
        if mode == "handoff":
            handed.add(logger._handle.local_id)
            if not handoff.flush(120):
                raise SystemExit("handoff: the journal process did not deliver everything")
            session.sink = session.pipeline
            del session.pipeline.end_run
        return wall, thread

    modes = cfg["modes"]
    for mode in modes:  # warm-up
        fit(mode)
    if cfg["pin"]:  # the training thread only (the others started during the warm-up)
        os.sched_setaffinity(0, {0})
    for i in range(cfg["rounds"]):
        k = i % len(modes)
        order = modes[k:] + modes[:k]
        if (i // len(modes)) % 2:
            order.reverse()
        for mode in order:
            wall, thread = fit(mode)
            print("RESULT " + json.dumps({"round": i, "mode": mode, "wall": wall,
                                          "thread": thread}), flush=True)
    os.close(write)
    sidecar.wait(30)
    fits = cfg["rounds"] + 1
    for name in [m + ".db" for m in ("inline", "inline-fsync", "inline-bgsync", "sidecar")
                 if m in modes]:
        # every point committed
        db = sqlite3.connect(os.path.join(cfg["dir"], name))
        print("COUNT " + json.dumps([name, db.execute("SELECT count(*) FROM entries").fetchone()[0],
                                     fits * STEPS * 2]), flush=True)
    if "inline-bgsync" in modes:
        print("COUNT " + json.dumps(["inline-bgsync fsyncs (no fewer than fits)",
                                     min(synced[0], fits), fits]), flush=True)
    if handed:  # every handoff run journaled, delivered and ended
        db = sqlite3.connect(session.journal_path())
        ids = ",".join("?" * len(handed))
        done = db.execute(f"SELECT count(*) FROM runs WHERE local_id IN ({ids}) AND final_sent = 1"
                          " AND status = 'FINISHED'", list(handed)).fetchone()[0]
        points = db.execute(f"SELECT count(*) FROM entries e JOIN runs r ON e.run = r.local_id "
                            f"WHERE r.local_id IN ({ids}) AND e.seq <= r.acked_seq AND e.kind = 0",
                            list(handed)).fetchone()[0]
        print("COUNT " + json.dumps(["handoff runs", done, fits]), flush=True)
        print("COUNT " + json.dumps(["handoff points", points, fits * STEPS * 2]), flush=True)
    """
)


def _row(mode: str, results: list[dict[str, Any]]) -> str:
    base = {r["round"]: r["wall"] for r in results if r["mode"] == "none"}
    mine = [r for r in results if r["mode"] == mode]
    ratios = [base[r["round"]] / r["wall"] for r in mine]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    total = sum(base[r["round"]] for r in mine) / sum(r["wall"] for r in mine)
    fastest = _fastest_ratio(list(base.values()), [r["wall"] for r in mine])
    cpu = statistics.median(r["thread"] for r in mine) * 1000
    waits = statistics.median(r["wall"] - r["thread"] for r in mine) * 1000
    return (
        f"| {mode} | {statistics.median(ratios):.3f} ({q1:.3f}-{q3:.3f}) | {total:.3f} "
        f"| {fastest} | {cpu:.1f} | {waits:.2f} |"
    )


def main() -> None:
    """Run the rounds in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=24, help="rounds of every mode (24)")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES[1:],
        default=MODES[1:],
        help="the modes to fit beside no logger (default: all)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="keep the training thread on CPU 0 (no migrations; its threads and children "
        "run anywhere)",
    )
    parser.add_argument("--raw", type=Path, help="also write every fit's times here (JSON)")
    args = parser.parse_args()
    modes = ["none", *args.modes]
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the table shows quartiles)")
    with MockServer() as mock, tempfile.TemporaryDirectory() as tmp:
        _set_latency(mock.url, 50)
        home = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "MLRELAY_HOME": str(home / "mlrelay"),
            "TMPDIR": str(home),
        }
        cfg = {"uri": mock.url, "dir": tmp, "rounds": args.rounds, "modes": modes}
        cfg["workload"] = "anchor"
        cfg["sidecar"] = SIDECAR
        cfg["journal_process"] = JOURNAL_PROCESS
        cfg["pin"] = args.pin
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(cfg)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60 + 10 * args.rounds * len(modes),
        )
        results = [json.loads(x[7:]) for x in done.stdout.splitlines() if x[:7] == "RESULT "]
        if not results:
            raise SystemExit(f"the child failed:\n{done.stderr[-3000:]}")
        if args.raw is not None:
            args.raw.write_text(json.dumps(results, indent=1))
        for line in done.stdout.splitlines():
            if line[:6] == "COUNT ":
                name, count, expected = json.loads(line[6:])
                if count != expected:
                    raise SystemExit(
                        f"{name}: {count} of {expected} committed\n{done.stderr[-3000:]}"
                    )
    print(f"Lightning anchor, mock +50 ms, {args.rounds} rounds; ratios to no logger")
    print(
        "| mode | median (quartiles) | total | fastest 10 % | training thread CPU, ms "
        "| wall beyond it, ms |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for mode in modes[1:]:
        print(_row(mode, results))
    none = [r["thread"] for r in results if r["mode"] == "none"]
    print(f"(no logger: training thread CPU {statistics.median(none) * 1000:.1f} ms per fit)")


if __name__ == "__main__":
    main()
