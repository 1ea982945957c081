"""The logging pipeline: in-memory buffer -> writer thread -> journal -> sender thread.

A log call appends one tuple to a ``collections.deque`` (thread-safe, no lock) and
returns: no I/O, no network. The writer thread drains the deque into the journal in
one transaction per group commit (every ``flush_interval``, 100 ms by default). The
sender thread reads each run's undelivered entries from the journal in seq order,
packs them into log-batch requests within MLflow's limits, sends them through the
Client (with its retries) and moves the run's watermark after each acknowledged batch.

Memory stays bounded whatever the server does: entries wait on disk, not in RAM. What a
kill -9 can lose is bounded in time: once the oldest entry not yet committed is older than
``max_age`` (100 ms), log calls wait for the writer, each at most ``max_wait`` (25 ms), so
a loop faster than the disk is slowed to the journal's commit rate and no further (a hard
cap of ``max_buffer`` entries backs this up). A full or read-only disk never makes a log
call wait: online, the entries that cannot be journaled are held in memory (at most
``max_buffer``) and the sender delivers them once, after the run's journaled entries;
what cannot be delivered (beyond that bound, refused by the server, or still held at
exit) is refused, counted per run and reported (offline all of them are; see
:meth:`Pipeline._store`). An entry the journal cannot store is set aside with its reason
and never holds up the others.

Failures never reach the training loop: a batch the server rejects (4xx) is set aside
in the journal with the server's message and reported once as a warning (in strict mode
the rejection is raised by the next ``flush()`` or ``end_run()``); 401/403 stop
sending and keep everything for later; connection failures back off and retry.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlrelay._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    JournalError,
    NotFoundError,
    PermissionDeniedError,
    TLSVerificationError,
    UnexpectedResponseError,
    wrong_address,
)
from mlrelay._protocol.batches import KIND_LINKED_METRIC, KIND_METRIC, Entry

from .journal import Journal, is_busy
from .recovery import needs_recovery, recover
from .sender import MAX_IN_FLIGHT, RunSender, Stopped

if TYPE_CHECKING:
    from mlrelay.client import Client

__all__ = ["Pipeline", "PipelineOptions"]

_UNWRITABLE = {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM"}


_CHECK_EVERY = 255
"""A log call looks at the writer's progress when the number of queued entries is a
multiple of 256 (the writer takes them in bursts, so no more than ~512 calls go by
unchecked): one bit test on the hot path instead of a clock read."""
_RESERVE_BYTES = 4 << 20
"""Disk space kept beside the journal (``journal.db-reserve``) once the disk is getting
full, and given up when it is full, so delivery watermarks, run ends and a WAL checkpoint
can still be written: about one auto-checkpoint's worth of WAL (1,000 pages)."""
_RESERVE_WHEN_FREE_BELOW = 256 << 20
_PROBE_INTERVAL = 1.0
_HEADROOM_MARGIN = 1 << 20
"""On a disk that is getting full, new entries are journaled only while the free space
left could still take the whole write-ahead log checkpointed into the database, the new
entries and this margin: the room delivery progress, run ends and checkpoints need is
never used up by entries (without it, a sender slowed by a loaded machine could find the
disk full, fail to record what it delivered and stall)."""


def _free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process can still write on ``directory``'s file system
    (where the platform cannot tell, as much as mlrelay would ever want)."""
    statvfs = getattr(os, "statvfs", None)  # not on Windows
    if statvfs is None:
        return 1 << 62
    st = statvfs(directory)
    return int(st.f_bavail * st.f_frsize)


def _unwritable(exc: sqlite3.OperationalError) -> bool:
    """Whether the journal cannot take entries now (disk full, read-only file or disk,
    I/O error, permissions), as opposed to a passing lock."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is None:
        text = str(exc)
        return any(m in text for m in ("full", "readonly", "disk I/O", "unable to open"))
    return "_".join(name.split("_")[:2]) in _UNWRITABLE  # SQLITE_IOERR_WRITE: SQLITE_IOERR


logger = logging.getLogger("mlrelay.pipeline")

Row = tuple[str, int, str, "float | str | tuple[float, str]", "int | None", "int | None"]
"""One entry as a log call queues it: (local run id, kind, key, value, timestamp, step)."""

# Bytes a journaled metric point takes on disk, row and index (measured: about 115).
_ROW_BYTES = 128


@dataclass(frozen=True)
class _RunEnd:
    """A run's end queued behind its entries (:meth:`Pipeline.end_run`): the writer
    records it once everything logged before it is committed."""

    local_id: str
    status: str
    end_time: int


def _undelivered(exc: Exception, path: object) -> str:
    """The one warning for a sender that cannot deliver: what happened, where entries wait."""
    if isinstance(exc, NotFoundError) and exc.error_code == "ENDPOINT_NOT_FOUND":
        url = exc.url.split("/api/2.0/", 1)[0]
        return f"{wrong_address(url, exc)}. Entries are kept in {path}"
    return (
        f"cannot deliver to the tracking server ({exc}); entries are kept in {path} and sent "
        "when it is back"
    )


def _entry(row: Row, seq: int) -> Entry | None:
    """A queued row as an entry to send (None: not one a log call makes)."""
    if len(row) != 6:
        return None
    _, kind, key, value, ts, step = row
    if not (type(key) is str and (ts is None or type(ts) is int)):
        return None
    if not (step is None or type(step) is int):
        return None
    if kind == KIND_LINKED_METRIC and isinstance(value, tuple) and len(value) == 2:
        number, link = value
        return Entry(seq, KIND_METRIC, key, float(number), ts, step, link)
    if kind == KIND_METRIC and isinstance(value, (int, float)):
        return Entry(seq, kind, key, float(value), ts, step)
    if type(kind) is int and kind != KIND_METRIC and type(value) is str:
        return Entry(seq, kind, key, value, ts, step)
    return None


class _Held:
    """Entries the journal could not take, held in memory per run until the sender
    delivers them (a bounded count; thread-safe: the writer adds, the sender takes).

    They are held as the plain tuples the log calls queued, made entries only when sent:
    the garbage collector stops tracking a tuple of numbers and text, so 250,000 held
    rows add about 10 ms to a full collection, where as many entries (named tuples, always
    tracked) add about 70 ms, and every thread, the training loop's too, waits for it."""

    def __init__(self, bound: int, on_refused: Callable[[str, int], None]) -> None:
        self.bound = bound
        self.on_refused = on_refused
        self.count = 0
        self.delivered = 0  # held entries the server took
        self._runs: dict[str, collections.deque[Row]] = {}
        self._lock = threading.Lock()

    def add(self, rows: list[Row]) -> list[Row]:
        """Hold ``rows`` in order while the bound allows; return those not held."""
        left: list[Row] = []
        with self._lock:
            for row in rows:
                if self.count >= self.bound or _entry(row, 0) is None:
                    left.append(row)
                    continue
                self._runs.setdefault(row[0], collections.deque()).append(row)
                self.count += 1
        return left

    def waiting(self, local_id: str) -> int:
        """How many entries of the run are held."""
        held = self._runs.get(local_id)
        return len(held) if held is not None else 0

    def peek(self, local_id: str, limit: int) -> list[Entry]:
        """Up to ``limit`` of the run's held entries, oldest first."""
        with self._lock:
            held = self._runs.get(local_id)
            rows = list(itertools.islice(held, limit)) if held else []
        return [entry for i, row in enumerate(rows) if (entry := _entry(row, i)) is not None]

    def done(self, local_id: str, n: int, refused: int) -> None:
        """Release the run's ``n`` oldest held entries (see :class:`~.sender.Held`)."""
        with self._lock:
            held = self._runs.get(local_id)
            if held is None:  # given up at close (and counted as refused then)
                return
            for _ in range(n):
                held.popleft()
            if not held:
                del self._runs[local_id]
            self.count -= n
            self.delivered += n - refused
        if refused:
            self.on_refused(local_id, refused)

    def take_all(self) -> dict[str, int]:
        """Drop everything held; how many entries of each run that was."""
        with self._lock:
            counts = {run: len(held) for run, held in self._runs.items()}
            self._runs.clear()
            self.count = 0
        return counts


@dataclass(frozen=True)
class PipelineOptions:
    """Tuning of the pipeline; every wait is bounded."""

    flush_interval: float = 0.1
    # Backpressure: once the oldest entry not yet committed is older than this, log calls
    # wait for the writer (each at most max_wait), so a loop faster than the disk is
    # slowed just enough and a kill -9 loses about this much, at any logging rate.
    max_age: float = 0.1
    max_wait: float = 0.025
    # A hard cap on memory: about 200 bytes per queued entry, 250,000 entries ~50 MB. Also
    # the most entries held in memory for the sender while the journal cannot be written.
    max_buffer: int = 250_000
    # Wake the writer early once this many entries wait (log calls then also look at the
    # age of the oldest uncommitted entry), rather than at the next interval.
    wake_at: int = 4096
    # Rows per journal transaction (one fsync each with MLRELAY_FSYNC=interval).
    chunk: int = 16_384
    # Longest pause between delivery attempts while the server is unreachable.
    offline_backoff_max: float = 5.0
    # Retries inside one request; the sender's own loop rides out longer outages.
    send_max_retries: int = 2
    send_retry_budget: float = 10.0
    strict: bool = False
    # How often a logging process looks for runs that dead processes left (crash recovery).
    orphan_check_interval: float = 10.0
    # The disk budget for journaled entries (MLRELAY_MAX_JOURNAL_BYTES); None: no limit.
    max_journal_bytes: int | None = None
    # The most requests in flight to one server (MLRELAY_MAX_IN_FLIGHT).
    max_in_flight: int = MAX_IN_FLIGHT
    # A slow logger's entries are sent at most this often (a flush, an end of run or a
    # full request's worth of entries, send_at, sends at once): each request costs the
    # training process CPU time whatever it carries. A run the server does not have yet
    # is created this long after its start, with its first points (the same exceptions),
    # so a training shorter than this makes no request while it trains.
    send_interval: float = 1.0
    send_at: int = 1000


@dataclass
class _State:
    auth_failed: bool = False
    offline_since: float | None = None
    catching_up: bool = False
    budget_warned: bool = False
    budget_full: bool = False
    next_orphan_check: float = 0.0
    unwritable: str | None = None  # why the journal cannot be written, while it cannot
    unwritable_warned: bool = False
    next_probe: float = 0.0
    low_disk: bool = False  # the disk is getting full: journal only with headroom
    set_aside_warned: bool = False
    progress_warned: bool = False  # the sender could not record its progress
    write_failures: set[str] = field(default_factory=set)


class Pipeline:
    """One per process: buffers log calls, journals them, and sends them in the background.

    Args:
        journal: where entries are made durable.
        client_factory: builds the Client for a tracking URI (each run goes to the server
            it was logged for); None means offline (never send).
        primary_uri: the server this process logs to now; runs that dead processes left
            for it are recovered by this pipeline.
        options: tuning.
        threads: start the writer and sender threads (``mlrelay sync`` drives a
            thread-less pipeline's sending itself).
    """

    def __init__(
        self,
        journal: Journal,
        client_factory: Callable[[str], Client] | None,
        options: PipelineOptions | None = None,
        *,
        threads: bool = True,
        primary_uri: str | None = None,
    ) -> None:
        self.journal = journal
        self.options = options or PipelineOptions()
        self._client_factory = client_factory
        self._clients: dict[str, Client] = {}
        self._primary_uri = primary_uri
        self._buffer: collections.deque[Row | _RunEnd] = collections.deque()
        # Run ends queued and recorded (the writer looks for them while these differ).
        self._ends_queued = self._ends_recorded = 0
        self._ends_lock = threading.Lock()
        self._unwritten = 0  # rows taken off the deque and not yet committed (writer only)
        self._committed = 0  # rows the writer has taken care of (write_now's progress)
        self._wake_at = self.options.wake_at
        # Monotonic times no later than the log time of every entry still in the deque
        # (_since), and of every entry not yet committed (_oldest; the writer sets both).
        self._since = self._oldest = time.monotonic()
        self.refused = 0  # entries refused because the journal could not be written
        self.set_aside = 0  # entries that could not be journaled (set aside with a reason)
        self.waits = 0  # log calls that waited for the journal (backpressure)
        self._refused_unrecorded: collections.Counter[str] = collections.Counter()
        self._refused_lock = threading.Lock()
        # Online, entries the journal cannot take wait here for the sender (bounded).
        self._held = _Held(self.options.max_buffer, self._held_refused)
        self._holdable_runs: set[str] = set()
        self._reserve = journal.path.with_name(journal.path.name + "-reserve")
        self._written, self._sent = threading.Condition(), threading.Condition()
        self._wake_writer, self._wake_sender = threading.Event(), threading.Event()
        # When the sender last started a round (the first: with its thread), and entries
        # committed since (the writer wakes it early only for a request's worth).
        self._round_at, self._committed_since_round = time.monotonic(), 0
        self._flushes, self._flushes_lock = 0, threading.Lock()  # flush() calls under way
        self._state = _State()
        self._stop = threading.Event()
        self.sender = RunSender(
            journal,
            strict=self.options.strict,
            stop=self._stop,
            max_in_flight=self.options.max_in_flight,
            tail_waits=self._tail_waits,
            first_send_after=self.options.send_interval,
        )
        self._writer = threading.Thread(target=self._write_loop, name="mlrelay-writer", daemon=True)
        self._sender_thread: threading.Thread | None = None
        if not threads:  # used by `mlrelay sync`, which drives sending itself
            return
        self._writer.start()
        if client_factory is not None:
            journal.keep_recent()  # the sender takes what is logged from memory
            self._sender_thread = threading.Thread(
                target=self._send_loop, name="mlrelay-sender", daemon=True
            )
            self._sender_thread.start()

    @property
    def delivered_from_memory(self) -> int:
        """Entries the journal could not take that were delivered from memory."""
        return self._held.delivered

    @property
    def sends(self) -> bool:
        """Whether this pipeline delivers to a server (False: offline, ``mlrelay sync`` sends)."""
        return self._sender_thread is not None

    # --- the hot path ---------------------------------------------------------------

    def log(self, row: Row) -> None:
        """Queue one entry ``(local run id, kind, key, value, timestamp, step)``."""
        buffer = self._buffer
        buffer.append(row)
        if not len(buffer) & _CHECK_EVERY:  # once per 256 entries queued: cheap enough
            self._pressure()

    def log_many(self, rows: list[Row]) -> None:
        """Queue several entries, in order (one ``log_metrics`` call's points)."""
        buffer = self._buffer
        before = len(buffer)
        buffer.extend(rows)
        if (before | _CHECK_EVERY) < len(buffer):  # crossed a multiple of 256: as in log()
            self._pressure()

    def end_run(self, local_id: str, status: str, end_time: int) -> None:
        """Record a run's end behind everything logged so far, without waiting: the writer
        journals it after committing those entries (at its next tick, within
        ``flush_interval``), so the sender still sends it after all of them."""
        with self._ends_lock:
            self._ends_queued += 1  # (before the marker is queued: the writer never misses it)
        self._buffer.append(_RunEnd(local_id, status, end_time))

    def _pressure(self) -> None:
        # Many entries wait: wake the writer, and wait for it if the oldest uncommitted
        # entry is older than max_age (or memory is at its cap).
        waiting = len(self._buffer)
        if waiting < self._wake_at:
            if time.monotonic() - self._oldest <= self.options.max_age:
                return
        elif not self._wake_writer.is_set():
            self._wake_writer.set()
        if (
            time.monotonic() - self._oldest > self.options.max_age
            or waiting >= self.options.max_buffer
        ):
            self._backpressure()

    def _backpressure(self) -> None:
        # Bounded: a call waits at most max_wait, whatever the disk does (a full or
        # read-only disk refuses entries at once, so the age falls back quickly).
        options = self.options
        deadline = time.monotonic() + options.max_wait
        self.waits += 1
        with self._written:
            while True:
                now = time.monotonic()
                if now >= deadline or (
                    now - self._oldest <= options.max_age and len(self._buffer) < options.max_buffer
                ):
                    return
                self._wake_writer.set()
                self._written.wait(deadline - now)

    # --- writer -----------------------------------------------------------------------

    def _drain(self, *, everything: bool = True) -> int:
        # everything=False (the writer's tick): commit what is queued when it starts, and
        # leave what is logged meanwhile for the next tick, so a slow logger costs one
        # commit per tick rather than two (each commit costs the training thread the GIL
        # hand-overs of a transaction).
        buffer = self._buffer
        total = 0
        started = time.monotonic()  # (before the count: see below)
        target = None if everything else len(buffer)
        while True:
            # Read the clock before the deque's length: whatever is still in the deque
            # after taking everything counted was logged after ``now``.
            now = time.monotonic()
            n = min(len(buffer), self.options.chunk)
            if not n:
                self._since = self._oldest = now
                return total
            if target is not None:
                if total >= target:
                    return total
                n = min(n, target - total)
                if n == target - total:
                    self._since = started
            oldest = self._oldest  # no later than the log time of the rows taken now
            if n == len(buffer):
                self._since = now
            # Counted as unwritten before they leave the deque and until they are
            # committed, so pending() and flush() never see them nowhere.
            self._unwritten += n
            rows = [buffer.popleft() for _ in range(n)]
            try:
                if self._ends_queued != self._ends_recorded:
                    self._store_with_ends(rows)  # (on failure, leaves rows not stored)
                else:
                    self._store(rows)  # type: ignore[arg-type]  # no _RunEnd among them
            except BaseException:
                buffer.extendleft(reversed(rows))  # keep them, in order, for the next try
                self._since = oldest  # and their age
                raise
            finally:
                self._unwritten -= n
                self._oldest = self._since  # what is left was logged after _since
            total += n
            self._committed += n
            with self._written:
                self._written.notify_all()
            self._committed_since_round += n
            if (
                self._committed_since_round >= self.options.send_at
                or now - self._round_at >= self.options.send_interval
            ):
                self._wake_sender.set()  # it can send these while later ones are written

    def _store_with_ends(self, rows: list[Row | _RunEnd]) -> None:
        """Journal ``rows`` and the run ends among them, each end after the entries before
        it. On failure, ``rows`` is left holding only what was not journaled yet."""
        start = 0
        try:
            for i, row in enumerate(rows):
                if type(row) is _RunEnd:
                    if start < i:
                        self._store(rows[start:i])  # type: ignore[arg-type]  # no ends
                    start = i
                    self._record_end(row)
                    self._ends_recorded += 1
                    start = i + 1
            if start < len(rows):
                self._store(rows[start:])  # type: ignore[arg-type]  # no ends
                start = len(rows)
        finally:
            del rows[:start]

    def _record_end(self, end: _RunEnd) -> None:
        """Journal a run's end; a full or read-only disk only warns (the run is then ended
        KILLED when it is recovered), as when the end is recorded at once."""
        try:
            self.journal.end_run(end.local_id, end.status, end.end_time)
        except JournalError as exc:
            cause = exc.__cause__
            if cause is not None and is_busy(cause):
                raise cause from None  # a lock: kept and tried again, as entries are
            if not isinstance(cause, sqlite3.OperationalError):
                raise  # damage, say: the writer moves to a fresh journal and tries again
            logger.warning(
                "mlrelay: could not record the end (%s) of run %s in the journal at %s (%s); "
                "what was journaled is kept, and the run is ended KILLED when it is recovered",
                end.status,
                end.local_id,
                self.journal.path,
                exc,
            )

    def _store(self, rows: list[Row]) -> None:
        """Journal ``rows``: entries that cannot be stored are set aside, and all of
        them are held for the sender (online) or refused while the journal cannot be
        written (disk full, read-only)."""
        if self._held.count and self._holding():
            # Entries are held: later ones queue behind them, never journaled ahead of
            # them, so the sender can send a run's held entries after its journaled ones.
            self._refuse(rows)
            return
        if self._state.unwritable is not None and not self._writable_again():
            self._refuse(rows)
            return
        if self._state.low_disk and (short := self._short_of_room(len(rows) * _ROW_BYTES)):
            self._became_unwritable(short)
            self._refuse(rows)
            return
        try:
            if self.options.max_journal_bytes is not None:
                rows = self._within_budget(rows, self.options.max_journal_bytes)
            aside = self.journal.append(rows)
        except sqlite3.OperationalError as exc:
            if not _unwritable(exc):
                raise  # locked, say: kept in memory and tried again
            self._became_unwritable(exc)
            self._refuse(rows)
            return
        if self._refused_unrecorded:
            self._record_refused()
        if aside:
            self._report_set_aside(aside)

    def _short_of_room(self, adding: int) -> str | None:
        """Why journaling ``adding`` more bytes would leave too little room on a disk that
        is getting full (None: there is room); see :data:`_HEADROOM_MARGIN`."""
        try:
            free = _free_bytes(self.journal.path.parent)
            need = self.journal.wal_bytes() + adding + _HEADROOM_MARGIN
        except OSError:
            return None  # the append itself will say what is wrong
        if free >= need:
            return None
        return (
            f"the disk is full: {free / (1 << 20):.1f} MB left, kept for delivery progress "
            "and checkpoints"
        )

    def _became_unwritable(self, exc: sqlite3.OperationalError | str) -> None:
        # The disk is full or read-only. Free the reserve, so that what must still be
        # written can be (delivery watermarks, the end of runs, the refused counts, a
        # checkpoint), and stop journaling new entries until there is room again: they
        # are refused, counted per run and reported once. Log calls never wait for it.
        self._state.unwritable = f"{exc}"
        self._state.next_probe = time.monotonic() + _PROBE_INTERVAL
        self._reserve.unlink(missing_ok=True)
        self.journal.checkpoint()  # fold the log into the database while there is room
        if not self._state.unwritable_warned:
            self._state.unwritable_warned = True
            if self._holding():
                then = (
                    f"new entries are kept in memory (up to {self._held.bound:,}) and sent "
                    "while the tracking server is reachable; only entries that cannot be "
                    "delivered are refused and counted"
                )
            else:
                then = "new entries are refused and counted until it can be written again"
            logger.warning(
                "mlrelay: cannot write to the journal at %s (%s); %s; log calls do not "
                "wait (`mlrelay status` shows the count)",
                self.journal.path,
                exc,
                then,
            )

    def _writable_again(self) -> bool:
        # At most once a second: reclaim delivered entries, then journal again once
        # there is room for the entries and a fresh reserve.
        now = time.monotonic()
        if now < self._state.next_probe:
            return False
        self._state.next_probe = now + _PROBE_INTERVAL
        try:
            self.journal.delete_delivered()
            room = _free_bytes(self.journal.path.parent) + self.journal.free_page_bytes()
            if room < 2 * _RESERVE_BYTES or not self._make_reserve():
                return False
            if self._short_of_room(self.options.chunk * _ROW_BYTES):
                return False
        except (sqlite3.OperationalError, OSError):
            return False
        self._state.unwritable = None
        logger.info("mlrelay: the journal at %s can be written again", self.journal.path)
        return True

    def _keep_reserve(self) -> None:
        # Only on a disk that is getting full: elsewhere no reserve file exists.
        try:
            low = _free_bytes(self.journal.path.parent) < _RESERVE_WHEN_FREE_BELOW
        except OSError:
            return
        self._state.low_disk = low
        if low and not self._reserve.exists():
            self._make_reserve()

    def _make_reserve(self) -> bool:
        """Set aside disk space the journal can use when the disk fills (False: no room)."""
        try:
            fd = os.open(self._reserve, os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError:
            return False
        try:
            size = os.fstat(fd).st_size
            allocate = getattr(os, "posix_fallocate", None)  # not on macOS or Windows
            if size < _RESERVE_BYTES and allocate is not None:
                allocate(fd, 0, _RESERVE_BYTES)
            elif size < _RESERVE_BYTES:
                os.lseek(fd, size, os.SEEK_SET)
                os.write(fd, bytes(_RESERVE_BYTES - size))
        except OSError:  # no room, or a file system without fallocate: no reserve
            os.close(fd)
            self._reserve.unlink(missing_ok=True)
            return False
        os.close(fd)
        return True

    def _holding(self) -> bool:
        """Whether entries the journal cannot take are held for the sender (online, and
        still sending) rather than refused at once."""
        return self.sends and not self._stop.is_set() and not self._state.auth_failed

    def _holdable(self, local_id: str) -> bool:
        """Whether the sender will send this run: a run of this process, for a server,
        whose record is in the journal (one whose start could not be journaled is not)."""
        if local_id in self._holdable_runs:
            return True
        try:
            run = self.journal.run(local_id)
        except sqlite3.Error:
            return False
        if run is None or not run.tracking_uri or run.offline or run.final_sent:
            return False
        self._holdable_runs.add(local_id)
        return True

    def _refuse(self, rows: list[Row]) -> None:
        """Rows the journal cannot take: online held for the sender while the bound
        allows; the others refused and counted per run."""
        if self._holding():
            known = {run: self._holdable(run) for run in {row[0] for row in rows}}
            left = self._held.add([row for row in rows if known[row[0]]])
            if len(left) < len(rows):
                self._wake_sender.set()
            rows = left + [row for row in rows if not known[row[0]]]
        if rows:
            self._count_refused(collections.Counter(row[0] for row in rows))

    def _held_refused(self, local_id: str, n: int) -> None:
        """Held entries the server refused (4xx): not kept anywhere, so refused."""
        self._count_refused({local_id: n})

    def _count_refused(self, counts: Mapping[str, int]) -> None:
        with self._refused_lock:
            self.refused += sum(counts.values())
            self._refused_unrecorded.update(counts)
        self._record_refused()

    def _record_refused(self) -> None:
        with self._refused_lock:
            try:
                self.journal.refuse(dict(self._refused_unrecorded))
            except sqlite3.OperationalError:
                return  # still unwritable: counted in memory, recorded later or reported
            self._refused_unrecorded.clear()

    def _report_set_aside(self, aside: list[tuple[Row, str]]) -> None:
        self.set_aside += len(aside)
        if self._state.set_aside_warned:
            return
        self._state.set_aside_warned = True
        row, reason = aside[0]
        logger.warning(
            "mlrelay: an entry could not be journaled and is set aside (key %s of run %s: "
            "%s); every other entry is journaled as usual. Entries set aside are kept, "
            "with the reason, in the set_aside table of %s",
            ascii(row[2]),
            row[0],
            reason,
            self.journal.path,
        )

    def _within_budget(self, rows: list[Row], budget: int) -> list[Row]:
        # Over budget: first reclaim delivered entries; if that is not enough, the rows
        # that do not fit are refused, counted per run (shown by `mlrelay status`) and
        # warned about once. Once full, the journal takes entries again only after
        # delivered entries were reclaimed, so what it keeps is not riddled with holes.
        # Log calls never block on a full disk budget.
        if self._state.budget_full:
            # Full: take entries again only once delivered ones were reclaimed.
            if not self.journal.delete_delivered():
                fits = 0
            else:
                self._state.budget_full = False
        if not self._state.budget_full:
            used = self.journal.used_bytes()
            if len(rows) * _ROW_BYTES > budget - used and self.journal.delete_delivered():
                used = self.journal.used_bytes()
            fits = max(0, min(len(rows), (budget - used) // _ROW_BYTES))
            self._state.budget_full = fits < len(rows)
        if fits == len(rows):
            return rows
        counts: dict[str, int] = collections.Counter(row[0] for row in rows[fits:])
        self.journal.refuse(counts)
        if not self._state.budget_warned:
            self._state.budget_warned = True
            logger.warning(
                "mlrelay: the journal at %s reached its budget of %d bytes "
                "(MLRELAY_MAX_JOURNAL_BYTES); new entries are refused and counted until "
                "delivered entries free space (`mlrelay status` shows the count)",
                self.journal.path,
                budget,
            )
        return rows[:fits]

    def _write_loop(self) -> None:
        # Ticks every flush_interval from the start of the previous tick's commit, not its
        # end: what is logged during a commit waits for the next tick, which comes no later
        # than it did before. A wake-up (write_now, a full queue) commits everything queued.
        next_space_check = tick = 0.0
        self.journal.sync_later = True  # a run's record: fsynced by the next tick
        while not self._stop.is_set():
            woken = self._wake_writer.wait(
                max(0.0, tick + self.options.flush_interval - time.monotonic())
            )
            self._wake_writer.clear()
            tick = time.monotonic()
            if tick >= next_space_check and self._state.unwritable is None:
                next_space_check = tick + _PROBE_INTERVAL
                self._keep_reserve()
            try:
                self._drain(everything=woken)  # (wakes the sender after each chunk)
                self.journal.sync_deferred()
            except Exception as exc:  # the journal failing must not kill logging silently
                # A damaged journal: continue in a fresh one (the rows went back to the deque).
                if needs_recovery(exc) and recover(self.journal, self.journal.damage or str(exc)):
                    continue
                self._report_write_failure(exc)
                self._stop.wait(self.options.flush_interval)
                continue
            if self.journal.damage is not None:  # found between statements (a cut -shm)
                recover(self.journal, self.journal.damage)
            with self._written:
                self._written.notify_all()
        self.journal.sync_later = False  # (close() fsyncs what is left)

    def _report_write_failure(self, exc: Exception) -> None:
        # Once per kind of failure, with the traceback; the entries stay in memory and
        # are tried again (a locked journal, say, frees up).
        what = f"{type(exc).__name__}: {exc}"
        if what in self._state.write_failures:
            return
        self._state.write_failures.add(what)
        if is_busy(exc):  # other processes hold the journal's lock: contention, not failure
            logger.warning(
                "mlrelay: its journal at %s stayed locked by other processes for longer "
                "than SQLite's busy timeout; the entries are kept in memory and tried again",
                self.journal.path,
            )
            return
        logger.error(
            "mlrelay could not write to its journal at %s (%s); the entries are kept in "
            "memory and tried again",
            self.journal.path,
            what,
            exc_info=exc,
        )

    def write_now(self, timeout: float, *, stall: float | None = None) -> bool:
        """Commit everything buffered so far; False if that took longer than ``timeout``
        or (with ``stall``) if no commit went through for ``stall`` seconds.

        A journal shared by many processes can keep one writer waiting for its lock for
        longer than SQLite's busy timeout; the writer keeps its rows and tries again, so
        this waits for the deadline rather than for one attempt.
        """
        deadline = time.monotonic() + timeout
        committed = self._committed
        last_progress = time.monotonic()
        self._wake_writer.set()
        with self._written:
            while self._buffer or self._unwritten:
                now = time.monotonic()
                if now >= deadline or (stall is not None and now - last_progress >= stall):
                    break
                self._wake_writer.set()
                self._written.wait(min(0.05, max(deadline - now, 0.001)))
                if self._committed != committed:
                    committed, last_progress = self._committed, time.monotonic()
        return not (self._buffer or self._unwritten)

    # --- sender -----------------------------------------------------------------------

    def _client_for(self, uri: str) -> Client:
        client = self._clients.get(uri)
        if client is None:
            assert self._client_factory is not None
            client = self._clients[uri] = self._client_factory(uri).with_options(
                max_retries=self.options.send_max_retries,
                retry_budget=self.options.send_retry_budget,
            )
        return client

    def _send_loop(self) -> None:
        # The client's own retries are short (see PipelineOptions); longer outages are
        # ridden out here, with waits that flush() and new entries can interrupt.
        backoff = 0.5
        while not self._stop.is_set():
            try:
                progressed = self._send_round()
                if self._state.offline_since is not None:
                    self._state.offline_since = None
                    self._state.catching_up = True
                backoff = 0.5
                if self._state.catching_up and not progressed and self._outstanding() == 0:
                    self._state.catching_up = False
                    logger.warning("mlrelay: caught up; everything logged so far is delivered")
                if not progressed or self._tail_waits():
                    self._wake_sender.wait(self._next_round_in())
                    self._wake_sender.clear()
            except (AuthenticationError, PermissionDeniedError, TLSVerificationError) as exc:
                self._stop_sending(exc)
                return
            except Stopped:
                return
            except (APIConnectionError, APIStatusError, UnexpectedResponseError) as exc:
                # UnexpectedResponseError: a login page or a redirect answered in the
                # server's place; nothing was delivered, so it waits like an outage.
                if self._stop.is_set():
                    return
                if self._state.offline_since is None:
                    self._state.offline_since = time.monotonic()
                    logger.warning("mlrelay: %s", _undelivered(exc, self.journal.path))
                retry_after = getattr(exc, "retry_after", None)
                wait = backoff if retry_after is None else min(retry_after, 300.0)
                self._wake_sender.wait(wait)
                self._wake_sender.clear()
                backoff = min(backoff * 2, self.options.offline_backoff_max)
            except (sqlite3.OperationalError, JournalError) as exc:
                # The journal cannot record what was delivered now (a full or read-only
                # disk, a lock): nothing is lost; the sender tries again, and what the
                # server already has is not counted twice (its exactly-once keys).
                if self._stop.is_set():
                    return
                self._progress_not_recorded(exc)
                self._wake_sender.wait(backoff)
                self._wake_sender.clear()
                backoff = min(backoff * 2, self.options.offline_backoff_max)
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("mlrelay sender failed; retrying")
                self._wake_sender.wait(backoff)
                self._wake_sender.clear()
                backoff = min(backoff * 2, self.options.offline_backoff_max)
            with self._sent:
                self._sent.notify_all()

    def _next_round_in(self) -> float:
        """Seconds until the sender's next round: ``send_interval``, or sooner when a run
        the round left for being young is due then."""
        due = self.sender.due
        if due is None:
            return self.options.send_interval
        return min(self.options.send_interval, max(0.0, due - time.time()) + 0.001)

    def _tail_waits(self) -> bool:
        """Whether entries logged since the sender's round began wait for its next round.
        They do until the writer wakes the sender (a request's worth committed, or
        ``send_interval`` since the round began), while no flush is under way, and until
        the pipeline closes: a training loop then pays for one request per round, not one
        per answer (each costs it the GIL hand-overs of the request's reads, writes and
        socket calls)."""
        return not (self._flushes or self._wake_sender.is_set() or self._stop.is_set())

    def _progress_not_recorded(self, exc: Exception) -> None:
        """Say once that the journal could not record what was delivered."""
        if not self._state.progress_warned:
            self._state.progress_warned = True
            logger.warning(
                "mlrelay: cannot record delivery progress in the journal at %s (%s); retrying",
                self.journal.path,
                exc,
            )

    def _stop_sending(self, exc: Exception) -> None:
        """Credentials or trust settings the server does not take: nothing is retried
        until they change; the entries stay in the journal for `mlrelay sync`."""
        self._state.auth_failed = True  # flush() returns False at once from now on
        if isinstance(exc, TLSVerificationError):
            problem, fix = str(exc), "fix the setting"
        else:
            code = getattr(exc, "status_code", 401)
            problem, fix = f"the server refused the credentials (HTTP {code})", "fix them"
        logger.warning(
            "mlrelay: %s. Sending stopped; entries are kept in %s; %s and run `mlrelay sync`",
            problem,
            self.journal.path,
            fix,
        )

    def _send_round(self) -> bool:
        self._round_at, self._committed_since_round = time.monotonic(), 0
        self.sender.due = None
        progressed = False
        if self._primary_uri and time.monotonic() >= self._state.next_orphan_check:
            self._state.next_orphan_check = time.monotonic() + self.options.orphan_check_interval
            self._claim_orphans(self._primary_uri)
        # Each run goes to the server it was logged for; several at once.
        runs = [
            (self._client_for(run.tracking_uri), run)
            for run in self.journal.runs(mine=True)
            if run.tracking_uri
        ]
        return self.sender.send_runs(runs, held=self._held) or progressed

    def _claim_orphans(self, tracking_uri: str) -> None:
        # Crash recovery: runs of dead processes that logged online to this server are
        # taken over (one claimer wins) and sent like our own; a run that never ended is
        # ended KILLED. Offline runs wait for `mlrelay sync`.
        for run in self.journal.orphans():
            same_server = run.tracking_uri.rstrip("/") == tracking_uri.rstrip("/")
            if not run.offline and same_server and self.journal.claim(run):
                logger.warning(
                    "mlrelay: recovering run %s left by process %d, which exited without "
                    "delivering it",
                    run.server_run_id or run.local_id,
                    run.pid,
                )

    def raise_if_strict_failure(self) -> None:
        """In strict mode, raise the first rejection the server sent (once)."""
        failure, self.sender.strict_failure = self.sender.strict_failure, None
        if failure is not None:
            raise failure

    # --- lifecycle --------------------------------------------------------------------

    def pending(self) -> int:
        """Entries not yet acknowledged by the server (buffered and held ones included)."""
        # Before the journal; see _outstanding.
        in_memory = len(self._buffer) + self._unwritten + self._held.count
        mine = [r.local_id for r in self.journal.runs(mine=True)]
        return in_memory + self.journal.count_pending(mine)

    def _outstanding(self) -> int:
        """0 when everything is delivered (for flush): entries in memory, whether the
        journal holds undelivered entries (1 if it does: counting them all after every
        answer would cost more than the answers), and ended runs whose status is not sent
        yet. Progress is seen in :attr:`RunSender.acknowledged`."""
        # Memory first, the journal last: a row the writer commits in between is then
        # counted twice (harmless), never missed. Held entries (the journal could not take
        # them) are counted once they are held, before the writer lets go of them.
        in_memory = len(self._buffer) + self._unwritten + self._held.count
        runs = self.journal.runs(mine=True)
        ended = sum(1 for r in runs if r.status is not None)
        journaled = self.journal.count_pending([r.local_id for r in runs], at_most=1)
        return in_memory + journaled + ended

    def flush(self, timeout: float | None = None, *, stall: float | None = None) -> bool:
        """Wait until everything logged so far is delivered; False if it was not.

        Args:
            timeout: a hard limit in seconds (None: no hard limit).
            stall: give up when delivery made no progress for this many seconds (None:
                no such limit). With neither limit, waits at most one hour.

        Offline, this only commits to the journal.
        """
        with self._flushes_lock:
            self._flushes += 1  # (the sender sends what is logged meanwhile at once)
        try:
            return self._flush(timeout, stall)
        finally:
            with self._flushes_lock:
                self._flushes -= 1

    def _flush(self, timeout: float | None, stall: float | None) -> bool:
        if timeout is None and stall is None:
            timeout = 3600.0
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else math.inf
        if not self.write_now(deadline - started, stall=stall):
            return False
        if not self.sends:
            return True
        last = self._outstanding()
        acknowledged = self.sender.acknowledged
        last_progress = time.monotonic()
        self._wake_sender.set()
        while True:
            if last == 0:
                return True
            now = time.monotonic()
            if self._state.auth_failed or now >= deadline:
                return False
            if stall is not None and now - last_progress >= stall:
                return False
            with self._sent:
                self._sent.wait(min(0.1, max(deadline - now, 0.001)))
            current = self._outstanding()
            if current < last or self.sender.acknowledged != acknowledged:
                acknowledged, last_progress = self.sender.acknowledged, time.monotonic()
            last = current

    def close(self, timeout: float) -> int:
        """Flush for at most ``timeout`` seconds, stop the threads, return entries left in
        the journal; entries held in memory (the journal could not take them) that did not
        reach the server by then are refused, counted per run and reported."""
        self.flush(timeout)
        self._stop.set()
        self._wake_writer.set()
        self._wake_sender.set()
        for thread in (self._writer, self._sender_thread):
            if thread is not None and thread.is_alive():
                # Bounded: the sender stops waiting for a request in flight at once
                # (that request is sent again later, and deduplicated).
                thread.join(timeout=1.0)
        self.sender.close()
        self._drain()
        try:
            self.journal.sync_deferred()
        except OSError as exc:  # the next process's recovery still finds the runs' records
            logger.warning("mlrelay: could not fsync the journal at %s: %s", self.journal.path, exc)
        self._give_up_held()
        if self._refused_unrecorded:
            logger.warning(
                "mlrelay: %d entries were refused because the journal at %s could not be "
                "written; they are not kept",
                sum(self._refused_unrecorded.values()),
                self.journal.path,
            )
        return self.pending()

    def _give_up_held(self) -> None:
        """At close: entries still held (the journal could not take them, the server did
        not get them in time) are refused, counted per run, and the user is told."""
        left = self._held.take_all()
        if not left:
            return
        self._count_refused(left)
        logger.warning(
            "mlrelay: %d entries that the journal at %s could not take were still in "
            "memory, not delivered to the tracking server, when the process ended; they "
            "are refused and not kept (`mlrelay status` counts them)",
            sum(left.values()),
            self.journal.path,
        )
