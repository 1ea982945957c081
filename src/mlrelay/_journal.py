"""The on-disk journal: every logged entry is written here before it is sent.

Format: one SQLite database in WAL mode (``<MLRELAY_HOME>/journal.db``, mode 0600, in a
0700 directory), shared safely by several processes through SQLite's own locking. It
never holds credentials: runs record the tracking URI without user-info.

Tables::

    runs     one row per (process, run): local_id (the client key, also sent as the
             ``mlrelay.client_key`` tag so creation is exactly-once), tracking_uri,
             experiment id or name, server_run_id once known, creation fields, the
             final status/end time once the run ended, acked_seq (the delivery
             watermark), final_sent, owner pid.
    entries  one row per logged item, in log order (seq is the global order):
             run, kind (metric/param/tag), key, value, timestamp, step.
    rejected ranges of entries the server refused (4xx), with its message.

Delivery is tracked by a per-run watermark, not per row: a run's entries are sent in
seq order, one batch at a time, and ``acked_seq`` moves past a batch only after the
server acknowledged it. A crash between send and ack resends at most one batch, which
the server deduplicates (timestamps are fixed at log time). Metric NaN is stored as
NULL (SQLite turns NaN into NULL anyway); infinities are stored as REAL.

Durability (``MLRELAY_FSYNC``): ``interval`` (default) commits each group of entries
with ``synchronous=FULL``, one fsync per group commit (every 100 ms by default), so a
power loss costs at most the last interval; ``always`` is the same but the writer
commits as soon as entries arrive instead of waiting for the interval; ``never`` uses
``synchronous=OFF``: a killed process loses nothing already committed, a power loss
may lose recent commits.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "KIND_DATASET",
    "KIND_DELETE_TAG",
    "KIND_METRIC",
    "KIND_PARAM",
    "KIND_TAG",
    "Entry",
    "Journal",
    "RunRecord",
    "default_home",
]

KIND_METRIC, KIND_PARAM, KIND_TAG, KIND_DELETE_TAG, KIND_DATASET = 0, 1, 2, 3, 4
"""Entry kinds. A dataset entry's text is the JSON of a ``DatasetInput``."""
FsyncPolicy = Literal["always", "interval", "never"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    local_id        TEXT PRIMARY KEY,
    tracking_uri    TEXT NOT NULL,
    experiment_id   TEXT,
    experiment_name TEXT,
    server_run_id   TEXT,
    run_name        TEXT,
    start_time      INTEGER NOT NULL,
    create_tags     TEXT NOT NULL DEFAULT '{}',
    status          TEXT,
    end_time        INTEGER,
    acked_seq       INTEGER NOT NULL DEFAULT 0,
    final_sent      INTEGER NOT NULL DEFAULT 0,
    pid             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    run   TEXT NOT NULL,
    kind  INTEGER NOT NULL,
    key   TEXT NOT NULL,
    num   REAL,
    text  TEXT,
    ts    INTEGER,
    step  INTEGER
);
CREATE INDEX IF NOT EXISTS entries_by_run ON entries(run, seq);
CREATE TABLE IF NOT EXISTS rejected (
    run      TEXT NOT NULL,
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL,
    message  TEXT NOT NULL,
    at       INTEGER NOT NULL
);
"""


def default_home() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/mlrelay`` or ``~/.local/share/mlrelay``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "mlrelay"


@dataclass(frozen=True)
class Entry:
    """One journaled item: a metric point, a param, a tag, a tag deletion or a dataset."""

    seq: int
    kind: int
    key: str
    value: float | str
    timestamp: int | None
    step: int | None


@dataclass(frozen=True)
class RunRecord:
    """A run as the journal knows it."""

    local_id: str
    tracking_uri: str
    experiment_id: str | None
    experiment_name: str | None
    server_run_id: str | None
    run_name: str | None
    start_time: int
    create_tags: dict[str, str]
    status: str | None
    end_time: int | None
    acked_seq: int
    final_sent: bool
    pid: int


class Journal:
    """A handle on the journal database; safe to use from several threads.

    Args:
        path: the database file; its directory is created with mode 0700.
        fsync: the durability policy (see the module docstring).
    """

    def __init__(self, path: Path, *, fsync: FsyncPolicy = "interval") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Create the file 0600 ourselves; SQLite gives -wal and -shm the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._fsync = fsync
        # One connection per thread: in WAL mode the sender reads while the writer commits.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        self._db.executescript(_SCHEMA)

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise sqlite3.ProgrammingError(f"the journal {self.path} is closed")
            db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'OFF' if self._fsync == 'never' else 'FULL'}")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        """Close every connection this journal opened."""
        with self._connections_lock:
            self._closed = True
            for db in self._connections:
                db.close()
            self._connections.clear()

    # --- writing ---------------------------------------------------------------------

    def add_run(
        self,
        *,
        local_id: str,
        tracking_uri: str,
        experiment_id: str | None,
        experiment_name: str | None,
        run_name: str | None,
        start_time: int,
        create_tags: dict[str, str],
        server_run_id: str | None = None,
    ) -> None:
        """Record a run this process logs to (before any of its entries)."""
        self._db.execute(
            "INSERT OR REPLACE INTO runs (local_id, tracking_uri, experiment_id, "
            "experiment_name, server_run_id, run_name, start_time, create_tags, pid, "
            "created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                local_id,
                tracking_uri,
                experiment_id,
                experiment_name,
                server_run_id,
                run_name,
                start_time,
                json.dumps(create_tags),
                os.getpid(),
                int(time.time() * 1000),
            ),
        )

    def append(self, rows: Sequence[tuple[str, int, str, Any, int | None, int | None]]) -> None:
        """Append entries ``(run, kind, key, value, timestamp, step)`` in one transaction."""
        encoded = [
            (
                run,
                kind,
                key,
                value if kind == KIND_METRIC and not math.isnan(value) else None,
                None if kind == KIND_METRIC else value,
                ts,
                step,
            )
            for run, kind, key, value, ts, step in rows
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES (?,?,?,?,?,?,?)",
                encoded,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def end_run(self, local_id: str, status: str, end_time: int) -> None:
        """Record the run's final status; it is sent after all of its entries."""
        self._db.execute(
            "UPDATE runs SET status = ?, end_time = ? WHERE local_id = ?",
            (status, end_time, local_id),
        )

    def set_server_run(self, local_id: str, server_run_id: str, experiment_id: str) -> None:
        """Record the server's identity of a run once it exists there."""
        self._db.execute(
            "UPDATE runs SET server_run_id = ?, experiment_id = ? WHERE local_id = ?",
            (server_run_id, experiment_id, local_id),
        )

    def ack(self, local_id: str, seq: int) -> None:
        """Move a run's delivery watermark to ``seq`` (everything up to it was acknowledged)."""
        self._db.execute(
            "UPDATE runs SET acked_seq = MAX(acked_seq, ?) WHERE local_id = ?", (seq, local_id)
        )

    def reject(self, local_id: str, first: int, last: int, message: str) -> None:
        """Set aside entries the server refused, with its message, and move past them."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(
            "INSERT INTO rejected (run, first, last, message, at) VALUES (?,?,?,?,?)",
            (local_id, first, last, message, int(time.time() * 1000)),
        )
        self._db.execute(
            "UPDATE runs SET acked_seq = MAX(acked_seq, ?) WHERE local_id = ?",
            (last, local_id),
        )
        self._db.execute("COMMIT")

    def mark_final_sent(self, local_id: str) -> None:
        """Record that the run's final status reached the server."""
        self._db.execute("UPDATE runs SET final_sent = 1 WHERE local_id = ?", (local_id,))

    # --- reading ---------------------------------------------------------------------

    @staticmethod
    def _run(row: tuple[Any, ...]) -> RunRecord:
        return RunRecord(
            local_id=row[0],
            tracking_uri=row[1],
            experiment_id=row[2],
            experiment_name=row[3],
            server_run_id=row[4],
            run_name=row[5],
            start_time=row[6],
            create_tags=json.loads(row[7]),
            status=row[8],
            end_time=row[9],
            acked_seq=row[10],
            final_sent=bool(row[11]),
            pid=row[12],
        )

    _RUN_COLUMNS = (
        "local_id, tracking_uri, experiment_id, experiment_name, server_run_id, run_name, "
        "start_time, create_tags, status, end_time, acked_seq, final_sent, pid"
    )

    def runs(self, *, pid: int | None = None, unfinished_only: bool = True) -> list[RunRecord]:
        """Runs, optionally only those owned by ``pid`` and not fully delivered yet."""
        query = f"SELECT {self._RUN_COLUMNS} FROM runs"
        clauses, args = [], []
        if pid is not None:
            clauses.append("pid = ?")
            args.append(pid)
        if unfinished_only:
            clauses.append("final_sent = 0")
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        return [self._run(r) for r in self._db.execute(query + " ORDER BY created_at", args)]

    def run(self, local_id: str) -> RunRecord | None:
        """One run by local id."""
        row = self._db.execute(
            f"SELECT {self._RUN_COLUMNS} FROM runs WHERE local_id = ?", (local_id,)
        ).fetchone()
        return self._run(row) if row else None

    def pending(self, local_id: str, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of a run with seq > ``after``, in order."""
        rows = self._db.execute(
            "SELECT seq, kind, key, num, text, ts, step FROM entries "
            "WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?",
            (local_id, after, limit),
        ).fetchall()
        return [
            Entry(
                seq=seq,
                kind=kind,
                key=key,
                value=(math.nan if num is None else num) if kind == KIND_METRIC else text,
                timestamp=ts,
                step=step,
            )
            for seq, kind, key, num, text, ts, step in rows
        ]

    def count_pending(self, local_ids: Iterable[str] | None = None) -> int:
        """How many entries are not yet acknowledged (for the given runs, or all)."""
        query = (
            "SELECT COUNT(*) FROM entries e JOIN runs r ON e.run = r.local_id "
            "WHERE e.seq > r.acked_seq"
        )
        args: list[str] = []
        if local_ids is not None:
            ids = list(local_ids)
            if not ids:
                return 0
            query += f" AND r.local_id IN ({','.join('?' * len(ids))})"
            args = ids
        return int(self._db.execute(query, args).fetchone()[0])

    def rejections(self, local_id: str | None = None) -> list[tuple[str, int, int, str]]:
        """Rejected ranges ``(run, first, last, message)``."""
        query = "SELECT run, first, last, message FROM rejected"
        args: tuple[str, ...] = ()
        if local_id is not None:
            query += " WHERE run = ?"
            args = (local_id,)
        return [(r[0], r[1], r[2], r[3]) for r in self._db.execute(query, args)]
