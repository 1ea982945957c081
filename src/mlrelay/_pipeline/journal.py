"""The on-disk journal: every logged entry is written here before it is sent.

Format: one SQLite database in WAL mode (``<MLRELAY_HOME>/journal.db``, mode 0600, in a
0700 directory), shared safely by several processes through SQLite's own locking. It
never holds credentials: runs record the tracking URI without user-info.

Tables::

    runs     one row per run: local_id (the client key, also sent as the
             ``mlflow.mlrelay.clientKey`` tag so creation is exactly-once), tracking_uri,
             experiment id or name, server_run_id once known, creation fields, the
             final status/end time once the run ended, acked_seq (the delivery
             watermark), final_sent, and the owner: the pid and start time of the
             process that sends it (a logging process, or ``mlrelay sync``).
    entries  one row per logged item, in log order (seq is the global order):
             run, kind (metric/param/tag/tag deletion/dataset/artifact), key, value,
             timestamp, step.
    rejected ranges of entries the server refused (4xx), with its message.
    refused  entries not journaled because the disk budget was reached or the disk was
             full or read-only, counted per run.
    set_aside  entries the journal could not store (a value SQLite cannot take), with the
             reason; created when first needed, normally never (values are checked when
             they are logged).
    lost     ranges of entries that could not be read back from a damaged journal.
    carried  runs a logging process carried here out of a damaged journal it set aside.

Ownership: exactly one live process sends a run. A run whose owner died (kill -9,
OOM, power loss) is an orphan; ``mlrelay sync`` or the next process logging to the
same tracking server *claims* it with one compare-and-set UPDATE (SQLite serialises
writers), so two claimers can never both send it. The owner is identified by pid and
process start time, so a recycled pid (common in containers) is not mistaken for the
dead owner. An orphan that never ended is ended KILLED after its entries are sent.

Artifacts are copied into ``blobs/`` beside the database when they are logged, so later
edits of the user's file do not change what is sent; an artifact entry's text is the
JSON ``{"blob": relative path, "artifact_path": ..., "dir": bool}``.

Delivery is tracked by a per-run watermark, not per row: a run's entries are sent in
seq order, one batch at a time, and ``acked_seq`` moves past a batch only after the
server acknowledged it (it starts at the journal's last seq when the run is added, so the
delivered entries the journal keeps are never scanned again for a later run). A crash
between send and ack resends at most one batch, which the server deduplicates
(timestamps are fixed at log time). Metric NaN is stored as NULL (SQLite turns NaN into
NULL anyway); infinities are stored as REAL.

Durability (``MLRELAY_FSYNC``): ``interval`` (default) commits each group of entries
with ``synchronous=FULL``, one fsync per group commit (every 100 ms by default), so a
power loss costs at most the last interval; ``always`` is the same but the writer
commits as soon as entries arrive instead of waiting for the interval; ``never`` uses
``synchronous=NORMAL`` (no fsync per commit): a killed process loses nothing already
committed, a power loss may lose recent commits but never corrupts the journal.
``mlrelay sync`` opens the journal with ``never``: its writes are delivery watermarks,
and a lost watermark only means one request is sent again (and deduplicated).
With ``interval`` and a pipeline's writer thread running (:attr:`Journal.sync_later`),
a run's record is committed without an fsync, on the thread that starts the run, and the
writer fsyncs it at its next tick (:meth:`Journal.sync_deferred`): the same power-loss
bound as its entries, which can only come after it in the log, and no fsync waited for
by the training loop (about 0.9 of a run start's 1.2 ms here).

Schema version: ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`). Opening an older journal
migrates it inside one ``BEGIN IMMEDIATE`` transaction that reads the version again, so
any number of processes may open it at once; a newer journal is refused
(:class:`~mlrelay.JournalVersionError`), never misread.

Damage (a disk error, a bad copy, a program writing into the files): reads go around
what cannot be read (``damage.py``): the entries that can be read are returned, the
others recorded in ``lost`` with their seq span and count and warned about once, so
``mlrelay sync`` sends what it can and says what was lost, and :meth:`Journal.check` lets
``mlrelay status`` say what is damaged. A logging process notices a cut ``-wal`` or a
truncated ``-shm`` between statements (:meth:`Journal._guard_wal`, ``_guard_shm``) and,
like a write failing with damage, moves to a fresh journal (``recovery.py``). Every error
a caller sees from opening is a :class:`~mlrelay.JournalError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import secrets
import shutil
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from mlrelay._errors import (
    JournalDamagedError,
    JournalError,
    JournalVersionError,
    without_userinfo,
)
from mlrelay._protocol.batches import (
    KIND_ARTIFACT,
    KIND_LINKED_METRIC,
    KIND_METRIC,
    Entry,
)
from mlrelay._version import __version__

from . import probe, recent
from .damage import Health, Span, is_damage, quick_check, readable_rows

__all__ = [
    "SCHEMA_VERSION",
    "Damage",
    "Journal",
    "RunRecord",
    "RunStatus",
    "default_home",
    "is_busy",
    "is_damage",
    "journal_error",
    "owner_alive",
    "owner_identity",
    "process_start",
]

logger = logging.getLogger("mlrelay.pipeline")

RESUMED = "RESUMED"
"""Status of a run record continued by a later record of the same run: its entries are
sent, but no final status (the later record sends it)."""
FsyncPolicy = Literal["always", "interval", "never"]

SCHEMA_VERSION = 1
"""The journal layout this mlrelay reads and writes, kept in ``PRAGMA user_version``.

0 is a journal written before versions existed: mlrelay 0.1's (no ``owner_start`` or
``offline`` column, no ``servers`` or ``refused`` table) or a later unversioned one. A
journal with a higher version was written by a newer mlrelay and is refused, never read.
"""

_TABLES = (
    """CREATE TABLE IF NOT EXISTS runs (
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
    owner_start     INTEGER,
    offline         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS entries (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    run   TEXT NOT NULL,
    kind  INTEGER NOT NULL,
    key   TEXT NOT NULL,
    num   REAL,
    text  TEXT,
    ts    INTEGER,
    step  INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS entries_by_run ON entries(run, seq)",
    """CREATE TABLE IF NOT EXISTS rejected (
    run      TEXT NOT NULL,
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL,
    message  TEXT NOT NULL,
    at       INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS servers (
    tracking_uri TEXT PRIMARY KEY,
    capabilities TEXT NOT NULL,
    detected_at  INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS refused (
    run      TEXT PRIMARY KEY,
    count    INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
)""",
    # Entries that could not be read back from a damaged journal: the seq range, how many
    # of the run's entries it held (NULL: unknown, the index was damaged too), why.
    """CREATE TABLE IF NOT EXISTS lost (
    run      TEXT NOT NULL,
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL,
    count    INTEGER,
    reason   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (run, first)
)""",
    # Runs a logging process carried out of a damaged journal set aside (recovery):
    # syncs of that file leave them alone. Never purged.
    """CREATE TABLE IF NOT EXISTS carried (
    run      TEXT PRIMARY KEY,
    damaged  TEXT NOT NULL,
    at       INTEGER NOT NULL
)""",
)

# Columns added to ``runs`` since mlrelay 0.1, with their definitions.
_ADDED_RUN_COLUMNS = (
    ("owner_start", "INTEGER"),
    ("offline", "INTEGER NOT NULL DEFAULT 0"),
)


def _migrate_unversioned(db: sqlite3.Connection) -> None:
    """Version 0 -> 1: create what is missing (everything, for a new file) and add the
    columns mlrelay 0.1's ``runs`` lacks."""
    for statement in _TABLES:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    for name, definition in _ADDED_RUN_COLUMNS:
        if name not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} {definition}")


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_unversioned,)
"""``_MIGRATIONS[v]`` takes a journal from version v to v + 1 (inside the caller's
transaction); a new layout adds one step here and raises :data:`SCHEMA_VERSION`."""
assert len(_MIGRATIONS) == SCHEMA_VERSION


def journal_error(exc: BaseException, path: Path, doing: str) -> JournalError:
    """mlrelay's error for a failure of the journal at ``path`` while ``doing`` (a past
    participle: "opened", "read", "written"), naming SQLite's or the OS's reason."""
    if isinstance(exc, JournalError):
        return exc
    if is_damage(exc):
        return JournalDamagedError(
            f"the journal at {path} is damaged and could not be {doing} ({exc}); "
            "`mlrelay status` says what is damaged, `mlrelay sync` sends what can be read",
            path=str(path),
        )
    return JournalError(f"the journal at {path} could not be {doing}: {exc}", path=str(path))


def default_home() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/mlrelay`` or ``~/.local/share/mlrelay``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "mlrelay"


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None.

    Together with the pid it names one process: a pid that was recycled after the
    owner died has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so split after its ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_alive(pid: int, start: int | None) -> bool:
    """Whether the process that owns a run (pid and start time) is still running.

    pid 0 means no owner (a sync released the run)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if start is None:
        return True
    now = process_start(pid)
    return now is None or now == start


_ME: tuple[int, int | None] | None = None


def owner_identity() -> tuple[int, int | None]:
    """This process's owner identity (recomputed after a fork)."""
    global _ME
    pid = os.getpid()
    if _ME is None or _ME[0] != pid:
        _ME = (pid, process_start(pid))
    return _ME


_SHM_FDS: dict[tuple[int, int], list[int]] = {}  # (dev, inode) -> [fd, journals using it]
_SHM_FDS_LOCK = threading.Lock()
# A fork while a background thread holds the lock would leave it held for ever in the child
# (whose first journal then hangs): the fork waits for it, and both sides let go.
os.register_at_fork(
    before=_SHM_FDS_LOCK.acquire,
    after_in_parent=_SHM_FDS_LOCK.release,
    after_in_child=_SHM_FDS_LOCK.release,
)


def _shm_fd_acquire(path: Path, key: tuple[int, int]) -> int | None:
    """A read-only descriptor on the -shm file ``key`` (see Journal._wal_index_frames)."""
    with _SHM_FDS_LOCK:
        held = _SHM_FDS.get(key)
        if held is not None:
            held[1] += 1
            return held[0]
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != key:  # replaced in between: no close (see above)
            _SHM_FDS[(st.st_dev, st.st_ino)] = [fd, 0]
            return None
        _SHM_FDS[key] = [fd, 1]
        return fd


def _shm_fd_release(key: tuple[int, int]) -> None:
    """One journal is done with the descriptor; closed when none uses it."""
    with _SHM_FDS_LOCK:
        held = _SHM_FDS.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _SHM_FDS[key]
            with contextlib.suppress(OSError):
                os.close(held[0])


P = ParamSpec("P")
R = TypeVar("R")


def _typed(
    doing: str,
) -> Callable[[Callable[Concatenate[Journal, P], R]], Callable[Concatenate[Journal, P], R]]:
    """Raise a failure of a journal method that the user's thread calls (through the
    fluent API) as mlrelay's :class:`~mlrelay.JournalError` (``doing``: "read",
    "written"), the SQLite error as its cause, never a raw ``sqlite3`` error."""

    def wrap(method: Callable[Concatenate[Journal, P], R]) -> Callable[Concatenate[Journal, P], R]:
        def typed(journal: Journal, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(journal, *args, **kwargs)
            except sqlite3.Error as exc:
                raise journal_error(exc, journal.path, doing) from exc

        functools.update_wrapper(typed, method)
        return typed

    return wrap


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
    owner_start: int | None = None
    offline: bool = False

    @property
    def orphaned(self) -> bool:
        """Whether the process that owned this run is gone."""
        return not owner_alive(self.pid, self.owner_start)


@dataclass(frozen=True)
class RunStatus:
    """What ``mlrelay status`` shows for one run."""

    run: RunRecord
    pending: int
    oldest_pending: int | None
    rejected: list[tuple[int, int, str]]
    refused: int
    lost: list[tuple[int, int, int | None]] = dataclasses.field(default_factory=list)
    """Spans of entries found unreadable in a damaged journal: (first, last, count)."""


@dataclass(frozen=True)
class Damage:
    """What :meth:`Journal.check` found.

    Attributes:
        health: SQLite's integrity check.
        unreadable: per run, the spans of its pending entries that cannot be read
            ``(first seq, last seq, how many of its entries; None: unknown)``.
        unreadable_runs: rowid spans of run records that cannot be read.
        unreadable_tables: the bookkeeping tables (``rejected``, ``refused``, ``lost``,
            ``servers``, ``carried``) that cannot be read, in that order.
    """

    health: Health
    unreadable: dict[str, list[tuple[int, int, int | None]]]
    unreadable_runs: list[Span]
    unreadable_tables: list[str] = dataclasses.field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """Whether anything is wrong (or the check could not finish)."""
        return (
            not self.health.ok
            or bool(self.unreadable)
            or bool(self.unreadable_runs)
            or bool(self.unreadable_tables)
        )


Row = tuple[str, int, str, Any, "int | None", "int | None"]
"""One entry as the pipeline hands it over: (run, kind, key, value, timestamp, step)."""

_ROWS_PER_INSERT = 1000
"""Rows per INSERT statement. Python's sqlite3 releases the GIL around every
sqlite3_step and must win it back from the training thread each time (at worst one
switch interval, 5 ms, later), so ``executemany`` (one step per row) commits ~33,000
rows/s while a loop logs, against ~180,000 with the GIL free. One multi-row statement
per 1,000 rows hands the GIL over once per 1,000 rows: ~110,000 rows/s under the same
contention (benchmarks/journal_commit.py)."""

_COLUMNS = "INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES "
_STATEMENTS: dict[int, str] = {}

_ROW_ERRORS = (sqlite3.Error, TypeError, ValueError, OverflowError)
"""What inserting one bad entry raises: OverflowError (an int beyond int64),
UnicodeEncodeError (a lone surrogate), sqlite3.ProgrammingError (a type SQLite cannot
bind), sqlite3.IntegrityError (None where a value is required), TypeError and
ValueError (a value that is not what its kind needs)."""


def is_busy(exc: BaseException) -> bool:
    """Whether a journal failure is only its lock held by another connection."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    name: str | None = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is None:
        return "locked" in str(exc)
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about the journal rather than one entry (disk full, read-only,
    I/O error, locked, damaged): every entry would fail the same way."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _encode(row: Row) -> tuple[Any, ...]:
    """One entry as a journal row ``(run, kind, key, num, text, ts, step)``.

    NaN is bound as a REAL and stored by SQLite as NULL."""
    run, kind, key, value, ts, step = row
    if kind == KIND_METRIC:
        return run, kind, key, value, None, ts, step
    if kind == KIND_LINKED_METRIC:
        number, link = value
        return run, KIND_METRIC, key, number, link, ts, step
    return run, kind, key, None, value, ts, step


def _insert(db: sqlite3.Connection, encoded: list[tuple[Any, ...]]) -> int:
    """Insert encoded rows with one statement (one GIL hand-over for all of them); the
    sequence number of the first (they are consecutive: SQLite gives each new row the
    largest seq so far plus one)."""
    n = len(encoded)
    sql = _STATEMENTS.get(n)
    if sql is None:
        sql = _COLUMNS + ",".join(["(?,?,?,?,?,?,?)"] * n)
        if n in (1, _ROWS_PER_INSERT):  # the others vary; keep the cache small
            _STATEMENTS[n] = sql
    last = db.execute(sql, [field for row in encoded for field in row]).lastrowid
    return int(last or 0) - n + 1


def _insert_one_by_one(db: sqlite3.Connection, rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Insert rows one at a time; return those that fail, each with the reason."""
    aside = []
    for row in rows:
        try:
            if len(row) != 6:
                raise TypeError(f"an entry has 6 fields, this one has {len(row)}")
            _insert(db, [_encode(row)])
        except _ROW_ERRORS as exc:
            if _is_disk_error(exc):
                raise
            aside.append((row, f"{type(exc).__name__}: {exc}"))
    return aside


def _ascii(value: Any, limit: int = 200) -> str:
    """An ASCII repr of anything, shortened; never raises."""
    try:
        text = ascii(value)
    except Exception:
        text = f"<{type(value).__name__} whose repr() failed>"
    return text if len(text) <= limit else text[:limit] + "..."


def _text(value: Any) -> str:
    """``value`` if it is text SQLite can store, else its ASCII repr."""
    if type(value) is str:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    return _ascii(value)


def _set_aside(db: sqlite3.Connection, aside: list[tuple[Row, str]]) -> None:
    """Record entries that could not be journaled, with the reason (in the open
    transaction; the table is created when first needed)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS set_aside (run TEXT NOT NULL, kind INTEGER, "
        "key TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL)"
    )
    now = int(time.time() * 1000)
    db.executemany(
        "INSERT INTO set_aside (run, kind, key, value, reason, at) VALUES (?,?,?,?,?,?)",
        [
            (
                _text(fields[0]),
                fields[1] if type(fields[1]) is int and abs(fields[1]) < 1 << 62 else None,
                _text(fields[2]),
                _ascii(fields[3:6]),
                _text(reason),
                now,
            )
            for fields, reason in ((tuple(row) + (None,) * 6, reason) for row, reason in aside)
        ],
    )


class Journal:
    """A handle on the journal database; safe to use from several threads.

    Args:
        path: the database file; its directory is created with mode 0700.
        fsync: the durability policy (see the module docstring).
        busy_timeout: seconds one statement waits for the lock another connection
            holds before it fails with "database is locked" (callers try again).
    """

    def __init__(
        self, path: Path, *, fsync: FsyncPolicy = "interval", busy_timeout: float = 30.0
    ) -> None:
        self.path = path
        self.fsync: FsyncPolicy = fsync
        self.busy_timeout = busy_timeout
        self.inode = 0  # of the file at path when opened (recovery.recover checks it)
        self.recoveries = 0  # times this process moved a damaged journal aside
        self.damage: str | None = None  # damage found outside a statement (see _guard_shm)
        self.salvaging = False  # reading a damaged journal to leave it (see recovery)
        # The runs this process added, as it recorded them: what a recovery carries over
        # when the damaged journal cannot even be read.
        self.added: dict[str, RunRecord] = {}
        self.recent: recent.RecentPoints | None = None  # see keep_recent
        # Set by a pipeline whose writer thread runs: add_run leaves its fsync to it.
        self.sync_later = False
        self._deferred = self._deferred_synced = 0  # run records committed without fsync
        # One connection per thread: in WAL mode the sender reads while the writer commits.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        self.blob_dir = path.parent / "blobs"
        # Damage met while reading: run-record rowids that could not be read, and the
        # (run, first seq) of each lost span already recorded and warned about.
        self.unreadable_runs: list[Span] = []
        self.unreadable_tables: set[str] = set()  # bookkeeping tables (see _bookkeeping)
        self._lost_seen: set[tuple[str, int]] = set()
        self._generation = 0
        self._shm = path.with_name(path.name + "-shm")
        self._wal = path.with_name(path.name + "-wal")
        self._shm_size = 0  # the largest size of the -shm file seen (see _guard_shm)
        self._shm_key: tuple[int, int] | None = None  # (dev, inode) of the -shm file seen
        self._wal_bytes = os.fsencode(self._wal)
        self._armed = False  # the -wal/-shm guards run once the journal is open
        self._shm_fds: dict[tuple[int, int], int] = {}  # see _wal_index_frames
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                # Create the file 0600 ourselves; SQLite gives -wal and -shm the same mode.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.inode = os.stat(path).st_ino
            self._ensure_schema(self._db)
            self._armed = True
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise journal_error(exc, path, "opened") from exc
        except BaseException:
            self.close()
            raise

    def _ensure_schema(self, db: sqlite3.Connection) -> None:
        """Bring the journal to :data:`SCHEMA_VERSION`, or refuse one from a newer mlrelay.

        The version is read again and every step applied inside one ``BEGIN IMMEDIATE``
        transaction (SQLite's write lock): processes opening an old journal at once
        migrate it one after the other, and each later one finds it current.
        """
        if self._version(db) == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(db)
            for step in _MIGRATIONS[version:]:
                step(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _version(self, db: sqlite3.Connection) -> int:
        """The journal's schema version; :class:`JournalVersionError` if it is too new."""
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JournalVersionError(
                f"the journal at {self.path} was written by a newer mlrelay (journal "
                f"version {version}; this mlrelay {__version__} reads up to version "
                f"{SCHEMA_VERSION}): upgrade mlrelay, or set MLRELAY_HOME to another "
                "directory to keep it apart",
                path=str(self.path),
                version=version,
                supported=SCHEMA_VERSION,
            )
        return version

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after :meth:`reopen`)."""
        # (Before the first statement, SQLite itself checks the files.)
        if self._armed and not self._files_look_intact():
            try:  # one stat for both guards: every syscall here hands the GIL over
                shm: os.stat_result | None = os.stat(self._shm)
            except OSError:
                shm = None
            self._guard_wal(shm)
            self._guard_shm(shm)
        if self.damage is not None and not self.salvaging:
            # Nothing more is written to (or built on) a damaged journal: the pipeline's
            # writer moves to a fresh one (recovery), reading this one with `salvaging`.
            raise JournalDamagedError(
                f"the journal at {self.path} is damaged: {self.damage}", path=str(self.path)
            )
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "generation", 0) == self._generation:
            return db
        if db is not None:  # opened before reopen(): on the file that was moved aside
            self._forget(db)
        if self._closed:
            raise JournalError(f"the journal {self.path} is closed", path=str(self.path))
        db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout
        )
        with self._connections_lock:
            self._connections.append(db)
        self._enter_wal(db)
        db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        # WAL with NORMAL: commits are not fsynced, but a power loss never corrupts.
        db.execute(f"PRAGMA synchronous={'NORMAL' if self.fsync == 'never' else 'FULL'}")
        # No memory-mapped I/O of the database file (already SQLite's default here;
        # some builds turn it on): a file truncated under a mapping raises SIGBUS.
        db.execute("PRAGMA mmap_size=0")
        self._local.db = db
        self._local.generation = self._generation
        return db

    def _enter_wal(self, db: sqlite3.Connection) -> None:
        """Put ``db`` in WAL mode. Many processes opening a new journal at once convert it
        together, and SQLite answers "database is locked" at once (without waiting the busy
        timeout) to one that would otherwise deadlock: it is tried again, for at most the
        busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _files_look_intact(self) -> bool:
        """The usual answer of both guards, found without letting go of the GIL (see
        ``probe.py``): the -shm file seen before (through the shared descriptor) is no
        shorter than it was, and the -wal file is at least as long as the frames its
        index counts. False when that does not hold or cannot be told: the guards then
        look at the files by path and decide (a first sight, a cut, a checkpoint by
        another connection in between)."""
        fd = self._shm_fds.get(self._shm_key) if self._shm_key is not None else None
        if fd is None or not probe.AVAILABLE:
            return False
        size = probe.size(fd)
        if size < self._shm_size:
            return False
        self._shm_size = size
        frames = _index_frames(probe.head(fd, _INDEX_HEADER))
        if frames < 0:
            return False
        return not frames or probe.size_at(self._wal_bytes) >= _wal_bytes_for(frames)

    def _guard_shm(self, st: os.stat_result | None) -> None:
        """Keep a truncated ``-shm`` file from killing this process with SIGBUS.

        SQLite maps the WAL index (``-shm``) into memory; if something truncates the file
        (a process that lost its locks and believes it is alone, a cleanup tool), the
        next access to the mapping raises SIGBUS. Checked before every statement (one
        stat, about a microsecond): a file shorter than SQLite has mapped is extended
        again with zeros, by path (an ``open`` here would drop SQLite's POSIX locks), and
        :attr:`damage` asks the pipeline to move to a fresh journal (``recovery``): the
        index's contents are gone, and rebuilding it under a live transaction could
        damage the database. A truncation in the middle of a statement can still kill.
        ``st``: the file's stat (None: there is none).
        """
        if st is None:
            return
        if (st.st_dev, st.st_ino) != self._shm_key:  # first sight, or a new file (recovery)
            self._shm_key, self._shm_size = (st.st_dev, st.st_ino), st.st_size
            return
        if st.st_size >= self._shm_size:
            self._shm_size = st.st_size
            return
        needed = max(self._shm_size, _shm_bytes_for(self._wal_frames()))
        with contextlib.suppress(OSError):
            os.truncate(self._shm, needed)
        # (A commit in this thread now would write a valid index header over the lost
        # hash tables, hiding the frames before it: _damaged undoes the transaction.)
        self._damaged(
            f"its shared-memory file {self._shm} was truncated by another program "
            f"({st.st_size} bytes of {needed})"
        )

    def _guard_wal(self, shm: os.stat_result | None) -> None:
        """Notice a write-ahead log cut short by another program before SQLite writes
        past the cut (the hole would read as zeros and be checkpointed into the database).

        The WAL index header (the first bytes of ``-shm``) says how many frames the log
        holds; a log file shorter than those frames was cut, and :attr:`damage` asks the
        pipeline to move to a fresh journal. The header is read twice around the size, so
        a commit or checkpoint by another connection in between is not taken for damage.
        ``shm``: the ``-shm`` file's stat (None: there is none).
        """
        if shm is None:
            return
        before = self._wal_index_frames(shm)
        if not before:
            return
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            size = 0
        needed = _wal_bytes_for(before)
        if size >= needed or self._wal_index_frames(shm) != before:
            return
        self._damaged(f"its write-ahead log {self._wal} was cut to {size} of {needed} bytes")

    def _wal_index_frames(self, st: os.stat_result) -> int:
        """The frame count (mxFrame) in the WAL index header of the ``-shm`` file whose
        stat is ``st``; 0 if it cannot be read.

        Read through a descriptor shared by every journal of this process on that file
        and closed only when the last of them closes: closing a descriptor drops all of
        the process's POSIX locks on the file, SQLite's included."""
        key = (st.st_dev, st.st_ino)
        fd = self._shm_fds.get(key)
        if fd is None:
            fd = _shm_fd_acquire(self._shm, key)
            if fd is None:
                return 0
            self._shm_fds[key] = fd
        return max(_index_frames(os.pread(fd, _INDEX_HEADER, 0)), 0)

    def _damaged(self, what: str) -> None:
        """Record damage found between statements and end this thread's transaction (a
        commit now would build on the damage); :attr:`_db` raises from now on."""
        if self.damage is None:
            self.damage = what
        db = getattr(self._local, "db", None)
        if db is not None and db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")

    def _wal_frames(self) -> int:
        """How many frames the write-ahead log holds (from its size)."""
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return 0
        return max(size - _WAL_HEADER, 0) // (_PAGE_SIZE + _WAL_FRAME_HEADER)

    def _forget(self, db: sqlite3.Connection) -> None:
        """Close one connection of this journal."""
        with self._connections_lock:
            if db in self._connections:
                self._connections.remove(db)
        with contextlib.suppress(sqlite3.Error):
            db.close()

    def reopen(self) -> None:
        """Make every thread open a new connection to :attr:`path` before its next
        statement (the file there was replaced: see ``recovery.recover``); this thread's
        old connection is closed now, the others' by their own threads."""
        db = getattr(self._local, "db", None)
        with self._connections_lock:
            self._generation += 1
        self._shm_size, self._shm_key = 0, None
        self.damage = None
        with contextlib.suppress(OSError):
            self.inode = os.stat(self.path).st_ino
        if db is not None:
            self._forget(db)
            self._local.db = None

    def close(self) -> None:
        """Close every connection this journal opened."""
        with self._connections_lock:
            self._closed = True
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
            for key in self._shm_fds:  # after the connections: see _wal_index_frames
                _shm_fd_release(key)
            self._shm_fds.clear()

    # --- writing ---------------------------------------------------------------------

    @_typed("written")
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
        offline: bool = False,
    ) -> None:
        """Record a run this process logs to (before any of its entries).

        ``offline`` runs are sent only by ``mlrelay sync``, never by another logging
        process that finds them orphaned. Its ``acked_seq`` starts at the journal's last
        seq: every entry of the run comes after it, so reading the run's first entries
        never scans the (delivered, kept) entries of the runs before it.
        """
        pid, started = owner_identity()
        floor = self._last_entry()
        self.added[local_id] = RunRecord(
            local_id=local_id,
            tracking_uri=without_userinfo(tracking_uri),
            experiment_id=experiment_id,
            experiment_name=experiment_name,
            server_run_id=server_run_id,
            run_name=run_name,
            start_time=start_time,
            create_tags=dict(create_tags),
            status=None,
            end_time=None,
            acked_seq=floor,
            final_sent=False,
            pid=pid,
            owner_start=started,
            offline=offline,
        )
        deferred = self.sync_later and self.fsync == "interval"
        db = self._db
        if deferred:
            db.execute("PRAGMA synchronous=NORMAL")  # the writer's next tick fsyncs it
        try:
            self._insert_run(db, self.added[local_id])
        finally:
            if deferred:
                db.execute("PRAGMA synchronous=FULL")
        if deferred:
            self._deferred += 1

    @staticmethod
    def _insert_run(db: sqlite3.Connection, run: RunRecord) -> None:
        """The ``runs`` row of a run just added."""
        db.execute(
            "INSERT OR REPLACE INTO runs (local_id, tracking_uri, experiment_id, "
            "experiment_name, server_run_id, run_name, start_time, create_tags, pid, "
            "owner_start, offline, created_at, acked_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run.local_id,
                run.tracking_uri,
                run.experiment_id,
                run.experiment_name,
                run.server_run_id,
                run.run_name,
                run.start_time,
                json.dumps(run.create_tags),
                run.pid,
                run.owner_start,
                int(run.offline),
                int(time.time() * 1000),
                run.acked_seq,
            ),
        )

    def sync_deferred(self) -> None:
        """fsync the journal's files if a run's record was committed without one since the
        last call (see :attr:`sync_later`); the pipeline's writer calls it every tick."""
        asked = self._deferred
        if asked == self._deferred_synced:
            return
        try:  # (an fd of its own: fsync flushes the file's pages, whoever wrote them)
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:  # checkpointed and gone: the database file was synced
            pass
        else:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._deferred_synced = asked

    def append(self, rows: Sequence[Row]) -> list[tuple[Row, str]]:
        """Append entries ``(run, kind, key, value, timestamp, step)`` in one transaction
        (a ``KIND_LINKED_METRIC`` is stored as a metric point with its link as text).

        An entry that cannot be stored (a step beyond int64, text that is not UTF-8, a
        value of a type SQLite does not take) never stops the others: it is set aside in
        the ``set_aside`` table with the reason, and returned with it; every other entry
        is committed.

        Raises:
            sqlite3.OperationalError: the journal cannot be written (disk full, read-only,
                I/O error, locked); nothing of ``rows`` was committed.
        """
        db = self._db
        if 0 < len(rows) <= _ROWS_PER_INSERT and not db.in_transaction:
            # One statement is its own transaction: no BEGIN and COMMIT, two GIL
            # hand-overs fewer (a group commit costs a training loop holding the GIL one
            # wait per hand-over). An entry that cannot be stored fails the statement,
            # which commits nothing; the transaction below then sets it aside.
            try:
                first = _insert(db, [_encode(row) for row in rows])
            except _ROW_ERRORS as exc:
                if _is_disk_error(exc):
                    raise
            else:
                if self.recent is not None:
                    self.recent.add(first, rows)
                return []
        aside: list[tuple[Row, str]] = []
        inserted: list[tuple[int, Sequence[Row]]] = []  # (first seq, rows) for self.recent
        db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                block = rows[start : start + _ROWS_PER_INSERT]
                try:
                    inserted.append((_insert(db, [_encode(row) for row in block]), block))
                except _ROW_ERRORS as exc:
                    if _is_disk_error(exc):
                        raise
                    aside += _insert_one_by_one(db, block)
                    inserted.append((0, block))
            if aside:
                _set_aside(db, aside)
        except BaseException:
            if db.in_transaction:  # SQLite has already rolled back after some errors
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if self.recent is not None:
            for first, block in inserted:
                if first:
                    self.recent.add(first, block)
                else:  # inserted one by one, some set aside: their seqs are not known here
                    for run in {row[0] for row in block}:
                        self.recent.forget(run)
        return aside

    def keep_recent(self, capacity: int = recent.CAPACITY) -> None:
        """Keep the points this journal commits in memory (up to ``capacity``) until they
        are acknowledged, so :meth:`pending` need not read them back (for a process that
        sends what it logs; see ``recent.py``)."""
        self.recent = recent.RecentPoints(capacity)

    def set_aside_entries(self, local_id: str | None = None) -> list[tuple[str, str, str, str]]:
        """Entries that could not be journaled: ``(run, key, value repr, reason)``."""
        exists = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'set_aside'"
        ).fetchone()
        if not exists:
            return []
        query = "SELECT run, key, value, reason FROM set_aside"
        args: tuple[str, ...] = ()
        if local_id is not None:
            query += " WHERE run = ?"
            args = (local_id,)
        return [(r[0], r[1], r[2], r[3]) for r in self._db.execute(query + " ORDER BY at", args)]

    @_typed("written")
    def end_run(self, local_id: str, status: str, end_time: int) -> None:
        """Record the run's final status; it is sent after all of its entries."""
        if local_id in self.added:
            self.added[local_id] = dataclasses.replace(
                self.added[local_id], status=status, end_time=end_time
            )
        self._db.execute(
            "UPDATE runs SET status = ?, end_time = ? WHERE local_id = ?",
            (status, end_time, local_id),
        )

    @_typed("written")
    def set_server_run(self, local_id: str, server_run_id: str, experiment_id: str) -> None:
        """Record the server's identity of a run once it exists there."""
        if local_id in self.added:
            self.added[local_id] = dataclasses.replace(
                self.added[local_id], server_run_id=server_run_id, experiment_id=experiment_id
            )
        self._db.execute(
            "UPDATE runs SET server_run_id = ?, experiment_id = ? WHERE local_id = ?",
            (server_run_id, experiment_id, local_id),
        )

    def ack(self, local_id: str, seq: int) -> None:
        """Move a run's delivery watermark to ``seq`` (everything up to it was acknowledged)."""
        self._db.execute(
            "UPDATE runs SET acked_seq = MAX(acked_seq, ?) WHERE local_id = ?", (seq, local_id)
        )
        if self.recent is not None:
            self.recent.acknowledged(local_id, seq)

    def reject(self, local_id: str, first: int, last: int, message: str) -> None:
        """Set aside entries the server refused, with its message, and move past them."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO rejected (run, first, last, message, at) VALUES (?,?,?,?,?)",
                (local_id, first, last, message, int(time.time() * 1000)),
            )
            db.execute(
                "UPDATE runs SET acked_seq = MAX(acked_seq, ?) WHERE local_id = ?",
                (last, local_id),
            )
        except BaseException:
            if db.in_transaction:  # (a damaged page: left open, it would hold the lock)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if self.recent is not None:
            self.recent.acknowledged(local_id, last)

    def mark_final_sent(self, local_id: str, status: str) -> None:
        """Record that the run's final ``status`` reached the server (unless it changed)."""
        self._db.execute(
            "UPDATE runs SET final_sent = 1 WHERE local_id = ? AND status = ?", (local_id, status)
        )

    def claim(self, run: RunRecord) -> bool:
        """Take over an orphaned run for this process; False if another process was first.

        A run that never ended is ended KILLED at its last logged moment (sent after its
        entries). The compare-and-set on the previous owner makes the claim exclusive.
        """
        pid, started = owner_identity()
        try:
            cursor = self._db.execute(
                "UPDATE runs SET pid = ?, owner_start = ?, "
                "status = COALESCE(status, 'KILLED'), end_time = COALESCE(end_time, "
                "(SELECT MAX(ts) FROM entries WHERE run = runs.local_id), start_time) "
                "WHERE local_id = ? AND pid = ? AND owner_start IS ?",
                (pid, started, run.local_id, run.pid, run.owner_start),
            )
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            # Damaged entries: end it at its last entry that can be read.
            cursor = self._db.execute(
                "UPDATE runs SET pid = ?, owner_start = ?, "
                "status = COALESCE(status, 'KILLED'), end_time = COALESCE(end_time, ?) "
                "WHERE local_id = ? AND pid = ? AND owner_start IS ?",
                (pid, started, self._last_readable_ts(run), run.local_id, run.pid, run.owner_start),
            )
        return cursor.rowcount == 1

    def _last_readable_ts(self, run: RunRecord) -> int:
        """The timestamp of a run's last entry that can be read (its start if none can)."""
        seqs = self._rows_or_none(
            "SELECT seq FROM entries INDEXED BY entries_by_run WHERE run = ? "
            "ORDER BY seq DESC LIMIT 10000",
            (run.local_id,),
        )
        for (seq,) in seqs or []:
            row = self._rows_or_none("SELECT ts FROM entries WHERE seq = ?", (seq,))
            if row and row[0][0] is not None:
                return int(row[0][0])
        return run.start_time

    @_typed("written")
    def release(self, local_id: str) -> None:
        """Give up this process's ownership of a run (``mlrelay sync`` is done with it)."""
        pid, started = owner_identity()
        # pid 0 is "no owner"; a fresh token in owner_start makes every release distinct,
        # so a claim based on an older reading of the run cannot succeed (no ABA).
        self._db.execute(
            "UPDATE runs SET pid = 0, owner_start = ? "
            "WHERE local_id = ? AND pid = ? AND owner_start IS ?",
            (-secrets.randbelow(1 << 62) - 1, local_id, pid, started),
        )

    @_typed("written")
    def resume(self, local_id: str) -> None:
        """Make a run of this journal this process's again, not ended (``start_run(run_id=...)``).

        Other records of the same server run whose owners died keep their entries but no
        longer send a final status.
        """
        pid, started = owner_identity()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE runs SET pid = ?, owner_start = ?, status = NULL, end_time = NULL, "
                "final_sent = 0 WHERE local_id = ?",
                (pid, started, local_id),
            )
            self._supersede(local_id)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _supersede(self, local_id: str) -> None:
        record = self.run(local_id)
        if record is None or record.server_run_id is None:
            return
        others = [
            r
            for r in self._query_runs(
                "server_run_id = ? AND local_id != ? AND final_sent = 0",
                (record.server_run_id, local_id),
            )
            if r.status in (None, "KILLED") and r.orphaned
        ]
        for r in others:
            self._db.execute("UPDATE runs SET status = ? WHERE local_id = ?", (RESUMED, r.local_id))

    def supersede_orphans_of(self, local_id: str) -> None:
        """Stop orphaned records of the same server run from sending a final status."""
        self._supersede(local_id)

    # --- artifacts and the disk budget --------------------------------------------------

    def add_blob(self, local_id: str, source: Path) -> str:
        """Copy a file or directory into the blob area; its path relative to ``blob_dir``."""
        relative, target = self.new_blob(local_id, source.name)
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_private_copy)
        else:
            _private_copy(str(source), str(target))
        return relative

    def new_blob(self, local_id: str, name: str) -> tuple[str, Path]:
        """A place for a file named ``name`` in the blob area, in a new folder readable by
        its owner only: its path relative to ``blob_dir``, and its absolute path (not
        created; whoever writes it there makes it 0600, see :meth:`drop_blob`)."""
        relative = Path(local_id) / uuid.uuid4().hex / name
        target = self.blob_dir / relative
        target.parent.mkdir(parents=True, mode=0o700)
        os.chmod(self.blob_dir, 0o700)
        return str(relative), target

    def drop_blob(self, relative: str) -> None:
        """Remove a blob made by :meth:`new_blob` (and its folder) that was never journaled."""
        shutil.rmtree(self.blob_dir / Path(relative).parent, ignore_errors=True)

    def blob_path(self, relative: str) -> Path:
        """The absolute path of a blob named by :meth:`add_blob`."""
        return self.blob_dir / relative

    def used_bytes(self) -> int:
        """Bytes the journal's data takes: the database pages in use (the write-ahead log
        is bounded separately, to 64 MB after a checkpoint)."""
        db = self._db
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        used = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((used - free) * page_size)

    def free_page_bytes(self) -> int:
        """Bytes of free pages inside the database file (reused before the file grows)."""
        db = self._db
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        return int(db.execute("PRAGMA freelist_count").fetchone()[0] * page_size)

    def wal_bytes(self) -> int:
        """The size of the write-ahead log file (0 when there is none)."""
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def size_on_disk(self) -> int:
        """Bytes of the journal on disk: the database, its WAL and shared memory, the blobs."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            f = self.path.with_name(self.path.name + suffix)
            if f.exists():
                total += f.stat().st_size
        if self.blob_dir.exists():
            total += sum(f.stat().st_size for f in self.blob_dir.rglob("*") if f.is_file())
        return total

    def server_capabilities(self, tracking_uri: str) -> str | None:
        """What was recorded about a server's capabilities (JSON), if anything."""
        rows = self._bookkeeping(
            "servers",
            "SELECT capabilities FROM servers WHERE tracking_uri = ?",
            (without_userinfo(tracking_uri),),
        )
        return str(rows[0][0]) if rows else None

    def record_server(self, tracking_uri: str, capabilities: str) -> None:
        """Record a server's capabilities (JSON) for later syncs; skipped where that table
        is damaged (a later sync asks the server again)."""
        self._bookkeeping(
            "servers",
            "INSERT OR REPLACE INTO servers (tracking_uri, capabilities, detected_at) "
            "VALUES (?, ?, ?)",
            (without_userinfo(tracking_uri), capabilities, int(time.time() * 1000)),
        )

    def servers(self) -> list[tuple[str, str]]:
        """Every server's recorded capabilities: ``(tracking URI, JSON)``."""
        rows = self._bookkeeping("servers", "SELECT tracking_uri, capabilities FROM servers")
        return [(str(a), str(b)) for a, b in rows]

    def note_carried(self, local_id: str, damaged: Path) -> None:
        """Record that a run was carried here out of the damaged journal ``damaged``."""
        self._db.execute(
            "INSERT OR REPLACE INTO carried (run, damaged, at) VALUES (?, ?, ?)",
            (local_id, str(damaged), int(time.time() * 1000)),
        )

    def carried(self) -> set[str]:
        """The runs carried here out of damaged journals (their syncs skip them).

        Raises:
            JournalDamagedError: the record cannot be read (a damaged journal); syncing
                the journals set aside without it could send a carried run twice.
        """
        rows = self._rows_or_none("SELECT run FROM carried")
        if rows is None:
            self.unreadable_tables.add("carried")
            raise JournalDamagedError(
                f"the record of runs carried out of damaged journals into {self.path} cannot "
                "be read (the journal is damaged): the journals set aside beside it are not "
                "synced, since that could send those runs twice",
                path=str(self.path),
            )
        return {str(r[0]) for r in rows}

    def refuse(self, counts: dict[str, int]) -> None:
        """Count entries that were not journaled because the disk budget was reached."""
        now = int(time.time() * 1000)
        self._db.executemany(
            "INSERT INTO refused (run, count, first_at, last_at) VALUES (?,?,?,?) "
            "ON CONFLICT(run) DO UPDATE SET count = count + excluded.count, "
            "last_at = excluded.last_at",
            [(run, n, now, now) for run, n in counts.items()],
        )

    def delete_delivered(self) -> int:
        """Delete entries the server acknowledged (never rejected ones); how many went."""
        removed = 0
        for local_id, acked in self._db.execute(
            "SELECT local_id, acked_seq FROM runs WHERE acked_seq > 0"
        ).fetchall():
            self._remove_blobs(
                "run = ? AND seq <= ? AND kind = ? AND " + _NOT_REJECTED,
                (local_id, acked, KIND_ARTIFACT),
            )
            removed += self._db.execute(
                "DELETE FROM entries WHERE run = ? AND seq <= ? AND " + _NOT_REJECTED,
                (local_id, acked),
            ).rowcount
        return removed

    def _remove_blobs(self, where: str, args: tuple[Any, ...]) -> None:
        for (text,) in self._db.execute(f"SELECT text FROM entries WHERE {where}", args):
            blob = self.blob_dir / json.loads(text)["blob"]
            shutil.rmtree(blob.parent, ignore_errors=True)

    def purge(self, *, older_than_ms: int | None, force: bool) -> tuple[int, int]:
        """Remove synced runs (and, with ``force``, undelivered runs of dead processes).

        Delivered entries of the other runs go too. Runs owned by live processes are
        never touched. Returns (runs removed, entries removed).
        """
        cutoff = int(time.time() * 1000) - (older_than_ms or 0)
        runs_removed = entries_removed = 0
        for run in self._query_runs("1", ()):
            synced = run.final_sent and self.count_pending([run.local_id]) == 0
            old_enough = (run.end_time or run.start_time) <= cutoff
            if not old_enough or not (synced or (force and run.orphaned)):
                continue
            if not synced and not run.orphaned:
                continue
            entries_removed += self._db.execute(
                "DELETE FROM entries WHERE run = ?", (run.local_id,)
            ).rowcount
            for table in ("rejected", "refused"):
                self._db.execute(f"DELETE FROM {table} WHERE run = ?", (run.local_id,))
            self._db.execute("DELETE FROM runs WHERE local_id = ?", (run.local_id,))
            shutil.rmtree(self.blob_dir / run.local_id, ignore_errors=True)
            runs_removed += 1
        entries_removed += self.delete_delivered()
        return runs_removed, entries_removed

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database as far as readers allow (without
        waiting for them); a failure (a full disk, a lock) is left for the next try."""
        with contextlib.suppress(sqlite3.Error, JournalError):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def vacuum(self) -> None:
        """Give freed space back to the file system."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")

    # --- reading ---------------------------------------------------------------------

    @staticmethod
    def _run(row: tuple[Any, ...]) -> RunRecord:
        """A run record from its row.

        Raises:
            ValueError: the row is not one (damage SQLite's page format did not catch).
        """
        try:
            tags = json.loads(row[7])
        except TypeError as exc:
            raise ValueError(f"create_tags is not JSON text: {row[7]!r:.40}") from exc
        if not isinstance(tags, dict):
            raise ValueError(f"create_tags is not a JSON object: {row[7]!r:.40}")
        return RunRecord(
            local_id=row[0],
            tracking_uri=row[1],
            experiment_id=row[2],
            experiment_name=row[3],
            server_run_id=row[4],
            run_name=row[5],
            start_time=row[6],
            create_tags=tags,
            status=row[8],
            end_time=row[9],
            acked_seq=row[10],
            final_sent=bool(row[11]),
            pid=row[12],
            owner_start=row[13],
            offline=bool(row[14]),
        )

    _RUN_COLUMNS = (
        "local_id, tracking_uri, experiment_id, experiment_name, server_run_id, run_name, "
        "start_time, create_tags, status, end_time, acked_seq, final_sent, pid, owner_start, "
        "offline"
    )

    def _query_runs(self, where: str, args: tuple[Any, ...]) -> list[RunRecord]:
        query = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE {where} ORDER BY created_at"
        try:
            return [self._run(r) for r in self._db.execute(query, args).fetchall()]
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
        except ValueError:
            pass  # a record damage altered within the page format: read them one by one
        # Damaged: the records that can be read, in insertion order (rowid).
        select = f"SELECT rowid, {self._RUN_COLUMNS} FROM runs NOT INDEXED WHERE ({where}) AND "
        rows, lost = readable_rows(
            self._db,
            select + "rowid BETWEEN ? AND ? ORDER BY rowid LIMIT ?",
            select + "rowid = ?",
            args,
            (1, _MAX_KEY),
            _MAX_KEY,
        )
        records = []
        for row in rows:
            try:
                records.append(self._run(row[1:]))
            except ValueError:
                lost.append((int(row[0]), int(row[0])))
        self.unreadable_runs = sorted(set(self.unreadable_runs) | set(lost))
        return records

    @_typed("read")
    def runs(self, *, mine: bool = False, unfinished_only: bool = True) -> list[RunRecord]:
        """Runs in creation order: optionally only this process's, only undelivered ones."""
        clauses, args = ["1"], []
        if mine:
            pid, started = owner_identity()
            clauses.append("pid = ? AND owner_start IS ?")
            args += [pid, started]
        if unfinished_only:
            clauses.append("final_sent = 0")
        return self._query_runs(" AND ".join(clauses), tuple(args))

    def orphans(self) -> list[RunRecord]:
        """Undelivered runs whose owning process is gone."""
        return [r for r in self.runs() if r.orphaned]

    @_typed("read")
    def run(self, local_id: str) -> RunRecord | None:
        """One run by local id."""
        found = self._query_runs("local_id = ?", (local_id,))
        return found[0] if found else None

    @_typed("read")
    def run_by_server_id(self, server_run_id: str) -> RunRecord | None:
        """The newest record of a server run, if this journal holds one."""
        found = self._query_runs("server_run_id = ?", (server_run_id,))
        return found[-1] if found else None

    def pending(
        self,
        local_id: str,
        after: int,
        limit: int,
        *,
        last: int | None = None,
        record: bool = True,
    ) -> list[Entry]:
        """Up to ``limit`` entries of a run with seq > ``after`` (and <= ``last``), in order.

        In a damaged journal, the entries that can be read: those that cannot are skipped
        and (with ``record``) recorded as lost (:meth:`lost`) and warned about once per run.
        """
        if self.recent is not None and last is None:
            kept = self.recent.take(local_id, after, limit)
            if kept and self._recent_agrees(local_id, after, kept):
                return kept
        bound = _MAX_KEY if last is None else last
        try:
            rows = self._db.execute(_PENDING, (local_id, after, bound, limit)).fetchall()
            if not _increasing(rows, after, bound) or not self._index_agrees(
                local_id, after, bound, limit, rows
            ):
                raise sqlite3.DatabaseError("database disk image is malformed (index)")
        except (sqlite3.DatabaseError, MemoryError) as exc:  # (NOMEM: a damaged size)
            if isinstance(exc, sqlite3.DatabaseError) and not is_damage(exc):
                raise
            rows, spans = self._readable_entries(local_id, after + 1, bound, limit)
            if record:
                self._note_lost(local_id, spans, exc)
        nan = math.nan
        return [
            Entry(seq, kind, key, (nan if num is None else num) if kind == 0 else text, ts, step)
            if kind or text is None
            else Entry(seq, kind, key, nan if num is None else num, ts, step, text)
            for seq, kind, key, num, text, ts, step in rows
        ]

    def _recent_agrees(self, local_id: str, after: int, kept: list[Entry]) -> bool:
        """Whether the run's entries in the table from ``after`` to the last of ``kept``
        are exactly ``kept`` (the same count and sum of seqs: kept seqs are committed
        entries of the run, so equal counts mean no other entry lies between them)."""
        try:
            count, total = self._db.execute(
                _COUNT_SUM_TABLE, (local_id, after, kept[-1].seq)
            ).fetchone()
        except sqlite3.DatabaseError:
            return False  # the read below handles damage
        return bool(count == len(kept) and total == sum(e.seq for e in kept))

    def _index_agrees(
        self, local_id: str, after: int, bound: int, limit: int, rows: list[tuple[Any, ...]]
    ) -> bool:
        """Whether the table agrees with what the index gave (a damaged index page SQLite
        does not notice makes an index scan skip entries silently): the same number of the
        run's entries up to the last one read, and, when fewer than ``limit`` came, none
        among the next rows of the table (bounded: 20,000 rows, a few milliseconds)."""
        top = int(rows[-1][0]) if rows else after
        if rows:
            (n,) = self._db.execute(_COUNT_TABLE, (local_id, after, top)).fetchone()
            if n != len(rows):
                return False
        if len(rows) == limit or top >= bound:
            return True
        return self._db.execute(_TAIL_TABLE, (top, bound, local_id)).fetchone() is None

    def _readable_entries(
        self, local_id: str, first: int, last: int, limit: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[int, int, int | None]]]:
        """A run's readable entries in ``first..last`` and the spans of it that cannot be
        read, each with how many of the run's entries it holds (None: unknown)."""
        # Through the table alone (NOT INDEXED): a damaged index must not hide entries.
        last = min(last, self._last_seq())
        rows, spans = readable_rows(
            self._db,
            _SALVAGE + "seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
            _SALVAGE + "seq = ?",
            (local_id,),
            (first, last),
            limit,
        )
        self._add_indexed(local_id, rows, spans, first, last if len(rows) < limit else rows[-1][0])
        counted = [(a, b, self._count_in(local_id, a, b)) for a, b in spans]
        return rows, [(a, b, n) for a, b, n in counted if n != 0]

    def _add_indexed(
        self,
        local_id: str,
        rows: list[tuple[Any, ...]],
        spans: list[Span],
        first: int,
        last: int,
    ) -> None:
        """Cross-check a salvaged read against the index: entries the index lists that the
        table scan neither returned nor reported (a damaged page SQLite did not notice can
        make a scan skip rows) are looked up one by one, and added or reported lost."""
        try:
            indexed = [
                int(seq)
                for (seq,) in self._db.execute(
                    "SELECT seq FROM entries INDEXED BY entries_by_run "
                    "WHERE run = ? AND seq BETWEEN ? AND ?",
                    (local_id, first, last),
                )
            ]
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            return
        seen = {int(row[0]) for row in rows}
        # (A damaged index page SQLite does not notice can list keys outside the range.)
        missing = [
            s
            for s in indexed
            if first <= s <= last and s not in seen and not any(a <= s <= b for a, b in spans)
        ]
        for seq in missing[:10_000]:
            try:
                found = self._db.execute(_SALVAGE + "seq = ?", (local_id, seq)).fetchall()
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                found = []
            if found:
                rows.append(found[0])
            else:
                spans.append((seq, seq))
        if missing:
            rows.sort(key=lambda row: int(row[0]))
            spans.sort()

    def _bookkeeping(
        self, table: str, sql: str, args: tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of a statement on one of the small bookkeeping tables; none, with the
        table noted in :attr:`unreadable_tables` (:meth:`check` reports it), where the
        journal is damaged there (a write is then skipped)."""
        rows = self._rows_or_none(sql, args)
        if rows is None:
            self.unreadable_tables.add(table)
        return rows or []

    def _rows_or_none(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]] | None:
        """The rows of a query, or None where the journal is damaged (other errors raise)."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            return None

    def _last_seq(self) -> int:
        """The highest seq ever given (AUTOINCREMENT keeps it), else a bound above all."""
        rows = self._rows_or_none("SELECT seq FROM sqlite_sequence WHERE name = 'entries'")
        return int(rows[0][0]) if rows else _MAX_KEY

    def _last_entry(self) -> int:
        """The seq of the last entry, a bound below every later one (0: none, or a damaged
        journal, whose reads go around damage from the start); :meth:`_last_seq` is the
        bound above."""
        rows = self._rows_or_none("SELECT MAX(seq) FROM entries")
        return int(rows[0][0] or 0) if rows else 0

    def _count_in(self, local_id: str, first: int, last: int) -> int | None:
        """How many of a run's entries have ``first <= seq <= last``, from the index alone
        (which may be readable where the table is not); None if it cannot be read."""
        rows = self._rows_or_none(
            "SELECT COUNT(*) FROM entries INDEXED BY entries_by_run "
            "WHERE run = ? AND seq BETWEEN ? AND ?",
            (local_id, first, last),
        )
        return None if rows is None else int(rows[0][0])

    def _note_lost(
        self, local_id: str, spans: list[tuple[int, int, int | None]], exc: BaseException
    ) -> None:
        """Record entries that cannot be read (once per span) and warn once per run."""
        now = int(time.time() * 1000)
        new = [span for span in spans if (local_id, span[0]) not in self._lost_seen]
        if not new:
            return
        self._lost_seen.update((local_id, a) for a, _, _ in new)
        try:
            if self.salvaging:  # never write into a journal being left (see recovery)
                raise sqlite3.OperationalError("the journal is being left for a fresh one")
            self._db.executemany(
                "INSERT OR IGNORE INTO lost (run, first, last, count, reason, at) "
                "VALUES (?,?,?,?,?,?)",
                [(local_id, a, b, n, str(exc), now) for a, b, n in new],
            )
        except sqlite3.Error as write_error:  # said below; status finds the damage again
            logger.warning("mlrelay: could not record the loss in %s: %s", self.path, write_error)
        known = sum(n for _, _, n in new if n is not None)
        logger.warning(
            "mlrelay: %s of run %s could not be read from the damaged journal at %s "
            "(seq %s: %s) and cannot be sent; everything else is sent. `mlrelay status` "
            "says what is damaged.",
            (f"{known:,} entry" if known == 1 else f"{known:,} entries")
            if all(n is not None for _, _, n in new)
            else "entries",
            local_id,
            self.path,
            ", ".join(f"{a}..{b}" for a, b, _ in new),
            exc,
        )

    def lost(self, local_id: str | None = None) -> list[tuple[str, int, int, int | None, str]]:
        """Entries found unreadable in a damaged journal: ``(run, first seq, last seq,
        how many of the run's entries (None: unknown), SQLite's reason)``."""
        query = "SELECT run, first, last, count, reason FROM lost"
        args: tuple[str, ...] = ()
        if local_id is not None:
            query += " WHERE run = ?"
            args = (local_id,)
        rows = self._bookkeeping("lost", query + " ORDER BY run, first", args)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    @_typed("read")
    def count_pending(
        self, local_ids: Iterable[str] | None = None, *, at_most: int | None = None
    ) -> int:
        """How many entries are not yet acknowledged (for the given runs, or all), counting
        no further than ``at_most`` (``at_most=1``: whether any is, without visiting the
        rest); entries found unreadable in a damaged journal are lost, not pending."""
        query = (
            "SELECT 1 FROM entries e JOIN runs r ON e.run = r.local_id WHERE e.seq > r.acked_seq"
        )
        args: list[str] = []
        if local_ids is not None:
            ids = list(local_ids)
            if not ids:
                return 0
            query += f" AND r.local_id IN ({','.join('?' * len(ids))})"
            args = ids
        try:
            if self._db.execute("SELECT EXISTS (SELECT 1 FROM lost)").fetchone()[0]:
                query += " AND NOT EXISTS (SELECT 1 FROM lost l WHERE l.run = e.run " + (
                    "AND e.seq BETWEEN l.first AND l.last)"
                )
            if at_most is not None:
                query += f" LIMIT {int(at_most)}"
            return int(self._db.execute(f"SELECT COUNT(*) FROM ({query})", args).fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
        runs = self._query_runs("1", ()) if local_ids is None else filter(None, map(self.run, ids))
        total = sum(self._count_readable(r.local_id, r.acked_seq) for r in runs)
        return total if at_most is None else min(total, at_most)

    def _count_readable(self, local_id: str, after: int) -> int:
        """How many of a run's entries after ``after`` can be read (a damaged journal)."""
        lost = self.lost(local_id)
        rows, _ = self._readable_entries(local_id, after + 1, _MAX_KEY, _MAX_KEY)
        return sum(1 for row in rows if not any(a <= row[0] <= b for _, a, b, _, _ in lost))

    def entries_between(self, local_id: str, first: int, last: int) -> list[Entry]:
        """A run's entries with ``first <= seq <= last``, in order."""
        return self.pending(local_id, first - 1, 1 << 62, last=last)

    def count_rejected(self, local_id: str) -> int:
        """How many of a run's entries are set aside as rejected."""
        return sum(
            int(
                self._db.execute(
                    "SELECT COUNT(*) FROM entries WHERE run = ? AND seq BETWEEN ? AND ?",
                    (local_id, first, last),
                ).fetchone()[0]
            )
            for _, first, last, _ in self.rejections(local_id)
        )

    def set_tracking_uri(self, local_id: str, tracking_uri: str) -> None:
        """Record where a run logged without a tracking URI is sent (by ``mlrelay sync``)."""
        self._db.execute(
            "UPDATE runs SET tracking_uri = ? WHERE local_id = ?",
            (without_userinfo(tracking_uri), local_id),
        )

    def drop_rejection(self, local_id: str, first: int) -> None:
        """Forget a rejected range (it was delivered on a retry)."""
        self._db.execute("DELETE FROM rejected WHERE run = ? AND first = ?", (local_id, first))

    def status(self) -> list[RunStatus]:
        """Every run the journal holds, with what is pending, rejected, refused and lost."""
        refused = dict(self._bookkeeping("refused", "SELECT run, count FROM refused"))
        out = []
        for run in self._query_runs("1", ()):
            first = self.pending(run.local_id, run.acked_seq, 1, record=False)
            lost = self.lost(run.local_id)
            out.append(
                RunStatus(
                    run=run,
                    pending=self.count_pending([run.local_id]),
                    oldest_pending=None if not first else (first[0].timestamp or run.start_time),
                    rejected=[(a, b, c) for _, a, b, c in self.rejections(run.local_id)],
                    refused=int(refused.get(run.local_id, 0)),
                    lost=[(a, b, n) for _, a, b, n, _ in lost],
                )
            )
        return out

    def check(self, timeout: float = 10.0) -> Damage:
        """Check the journal's integrity (for at most ``timeout`` seconds) and, if it is
        damaged, find what cannot be read: run records, and each run's pending entries."""
        health = quick_check(self._db, timeout)
        if health.ok and not self.unreadable_runs and not self.unreadable_tables:
            return Damage(health, {}, [])
        unreadable: dict[str, list[tuple[int, int, int | None]]] = {}
        for run in self._query_runs("1", ()):
            _, spans = self._readable_entries(run.local_id, run.acked_seq + 1, _MAX_KEY, _MAX_KEY)
            if spans:
                unreadable[run.local_id] = spans
        for table in _BOOKKEEPING:
            self._bookkeeping(table, f"SELECT * FROM {table}")
        tables = [t for t in _BOOKKEEPING if t in self.unreadable_tables]
        return Damage(health, unreadable, list(self.unreadable_runs), tables)

    def entries_without_record(self) -> dict[str, int]:
        """Runs whose record cannot be read (a damaged journal) but whose entries are
        indexed: how many entries each holds (they cannot be sent without the record)."""
        known = {r.local_id for r in self._query_runs("1", ())}
        if not self.unreadable_runs:
            return {}
        rows = self._rows_or_none(
            "SELECT run, COUNT(*) FROM entries INDEXED BY entries_by_run GROUP BY run"
        )
        return {str(run): int(n) for run, n in rows or [] if run not in known}

    def rejections(self, local_id: str | None = None) -> list[tuple[str, int, int, str]]:
        """Rejected ranges ``(run, first, last, message)``."""
        query = "SELECT run, first, last, message FROM rejected"
        args: tuple[str, ...] = ()
        if local_id is not None:
            query += " WHERE run = ?"
            args = (local_id,)
        return [(r[0], r[1], r[2], r[3]) for r in self._bookkeeping("rejected", query, args)]


_BOOKKEEPING = ("rejected", "refused", "lost", "servers", "carried")
"""The small tables beside ``runs`` and ``entries``, in the order a damage report names them."""

_PAGE_SIZE = 4096  # SQLite's default, which the journal keeps
_WAL_HEADER = 32
_WAL_FRAME_HEADER = 24
_INDEX_HEADER = 48  # the part of the WAL index header read (up to and past mxFrame)
_WAL_LIMIT = 64 << 20  # journal_size_limit


def _wal_bytes_for(frames: int) -> int:
    """How long a write-ahead log holding ``frames`` frames is, at least."""
    return _WAL_HEADER + frames * (_PAGE_SIZE + _WAL_FRAME_HEADER)


def _index_frames(header: bytes | None) -> int:
    """The frame count (mxFrame) in a WAL index header; 0 if the index is not set up
    (isInit), -1 if there is no whole header."""
    if header is None or len(header) < _INDEX_HEADER:
        return -1
    if header[12] != 1:  # isInit
        return 0
    return int.from_bytes(header[16:20], sys.byteorder)


def _shm_bytes_for(frames: int) -> int:
    """The size of the WAL index SQLite maps for ``frames`` WAL frames: 32 KB regions, the
    first indexing 4,062 frames, each later one 4,096."""
    return 32768 * (1 + max(frames - 4062, 0) // 4096 + (1 if frames > 4062 else 0))


_MAX_KEY = 1 << 62
"""Above any seq or rowid the journal holds."""

_PENDING = (
    "SELECT seq, kind, key, num, text, ts, step FROM entries "
    "WHERE run = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
)
_COUNT_TABLE = "SELECT COUNT(*) FROM entries NOT INDEXED WHERE run = ? AND seq > ? AND seq <= ?"
_COUNT_SUM_TABLE = (
    "SELECT COUNT(*), SUM(seq) FROM entries NOT INDEXED WHERE run = ? AND seq > ? AND seq <= ?"
)
_TAIL_TABLE = (
    "SELECT 1 FROM (SELECT run FROM entries NOT INDEXED WHERE seq > ? AND seq <= ? "
    "ORDER BY seq LIMIT 20000) WHERE run = ? LIMIT 1"
)
_SALVAGE = "SELECT seq, kind, key, num, text, ts, step FROM entries NOT INDEXED WHERE run = ? AND "

_NOT_REJECTED = (
    "NOT EXISTS (SELECT 1 FROM rejected r WHERE r.run = entries.run "
    "AND entries.seq BETWEEN r.first AND r.last)"
)


def _increasing(rows: list[tuple[Any, ...]], after: int, bound: int) -> bool:
    """Whether the rows' keys (first column) increase strictly within ``after < key <=
    bound``; a damaged index page SQLite does not notice can give them out of order."""
    previous = after
    for row in rows:
        key = int(row[0])
        if not previous < key <= bound:
            return False
        previous = key
    return True


def _private_copy(src: str, dst: str) -> str:
    """Copy a file's bytes into the blob area, readable by its owner only."""
    fd = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dst
