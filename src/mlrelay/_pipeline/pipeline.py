"""The logging pipeline: in-memory buffer -> writer thread -> journal -> sender thread.

A log call appends one tuple to a ``collections.deque`` (thread-safe, no lock) and
returns: no I/O, no network. The writer thread drains the deque into the journal in
one transaction per group commit (every ``flush_interval``, 100 ms by default). The
sender thread reads each run's undelivered entries from the journal in seq order,
packs them into log-batch requests within MLflow's limits, sends them through the
Client (with its retries) and moves the run's watermark after each acknowledged batch.

Memory stays bounded whatever the server does: entries wait on disk, not in RAM. The
only place a log call can wait is when the deque holds ``max_buffer`` entries (250,000,
about 50 MB), which means the journal cannot keep up with the caller; the call then waits
for the writer to commit a chunk. Measured: the journal commits about 235,000 entries/s
on the development machine, so a loop that logs faster than that for more than about a
second is slowed to the disk's pace; ordinary training loops never reach it.

Failures never reach the training loop: a batch the server rejects (4xx) is set aside
in the journal with the server's message and reported once as a warning (in strict mode
the rejection is raised by the next ``flush()`` or ``end_run()``); 401/403 stop
sending and keep everything for later; connection failures back off and retry.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlrelay._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
)

from .journal import Journal
from .recovery import needs_recovery, recover
from .sender import RunSender, Stopped

if TYPE_CHECKING:
    from mlrelay.client import Client

__all__ = ["Pipeline", "PipelineOptions"]

logger = logging.getLogger("mlrelay.pipeline")

Row = tuple[str, int, str, "float | str | tuple[float, str]", "int | None", "int | None"]
"""One entry as a log call queues it: (local run id, kind, key, value, timestamp, step)."""

# Bytes a journaled metric point takes on disk, row and index (measured: about 115).
_ROW_BYTES = 128


@dataclass(frozen=True)
class PipelineOptions:
    """Tuning of the pipeline; every wait is bounded."""

    flush_interval: float = 0.1
    # About 200 bytes per queued entry: 250,000 entries is ~50 MB at most.
    max_buffer: int = 250_000
    # Wake the writer early once this many entries wait, rather than at the next interval.
    wake_at: int = 20_000
    # Rows per journal transaction, so a producer held by backpressure waits one chunk.
    chunk: int = 50_000
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


@dataclass
class _State:
    auth_failed: bool = False
    offline_since: float | None = None
    catching_up: bool = False
    budget_warned: bool = False
    budget_full: bool = False
    next_orphan_check: float = 0.0


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
        self._buffer: collections.deque[Row] = collections.deque()
        self._unwritten = 0  # rows taken off the deque and not yet committed (writer only)
        self._written = threading.Condition()
        self._sent = threading.Condition()
        self._wake_writer = threading.Event()
        self._wake_sender = threading.Event()
        self._state = _State()
        self._stop = threading.Event()
        self.sender = RunSender(journal, strict=self.options.strict, stop=self._stop)
        self._writer = threading.Thread(target=self._write_loop, name="mlrelay-writer", daemon=True)
        self._sender_thread: threading.Thread | None = None
        if not threads:  # used by `mlrelay sync`, which drives sending itself
            return
        self._writer.start()
        if client_factory is not None:
            self._sender_thread = threading.Thread(
                target=self._send_loop, name="mlrelay-sender", daemon=True
            )
            self._sender_thread.start()

    @property
    def sends(self) -> bool:
        """Whether this pipeline delivers to a server (False: offline, ``mlrelay sync`` sends)."""
        return self._sender_thread is not None

    # --- the hot path ---------------------------------------------------------------

    def log(self, row: Row) -> None:
        """Queue one entry ``(local run id, kind, key, value, timestamp, step)``."""
        buffer = self._buffer
        buffer.append(row)
        if len(buffer) >= self.options.wake_at:
            if len(buffer) >= self.options.max_buffer:
                self._backpressure()
            elif not self._wake_writer.is_set():
                self._wake_writer.set()

    def _backpressure(self) -> None:
        # The disk cannot keep up: wait (bounded) for the writer to drain.
        self._wake_writer.set()
        deadline = time.monotonic() + 30.0
        with self._written:
            while len(self._buffer) >= self.options.max_buffer and time.monotonic() < deadline:
                self._written.wait(0.05)

    # --- writer -----------------------------------------------------------------------

    def _drain(self) -> int:
        buffer = self._buffer
        total = 0
        while buffer:
            n = min(len(buffer), self.options.chunk)
            # Counted as unwritten before they leave the deque and until they are
            # committed, so pending() and flush() never see them nowhere.
            self._unwritten += n
            rows = [buffer.popleft() for _ in range(n)]
            try:
                if self.options.max_journal_bytes is not None:
                    rows = self._within_budget(rows, self.options.max_journal_bytes)
                self.journal.append(rows)
            except BaseException:
                buffer.extendleft(reversed(rows))  # keep them, in order, for the next try
                raise
            finally:
                self._unwritten -= n
            total += n
            with self._written:
                self._written.notify_all()
        return total

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
        while not self._stop.is_set():
            self._wake_writer.wait(self.options.flush_interval)
            self._wake_writer.clear()
            try:
                wrote = self._drain()
            except Exception as exc:  # the journal failing must not kill logging silently
                # A damaged journal: continue in a fresh one (the rows went back to the deque).
                if needs_recovery(exc) and recover(self.journal, self.journal.damage or str(exc)):
                    continue
                logger.exception("mlrelay could not write to its journal at %s", self.journal.path)
                time.sleep(self.options.flush_interval)
                continue
            if self.journal.damage is not None:  # found between statements (a cut -shm)
                recover(self.journal, self.journal.damage)
            with self._written:
                self._written.notify_all()
            if wrote:
                self._wake_sender.set()

    def write_now(self, timeout: float) -> bool:
        """Commit everything buffered so far; False if that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        self._wake_writer.set()
        with self._written:
            while (self._buffer or self._unwritten) and time.monotonic() < deadline:
                self._wake_writer.set()
                self._written.wait(min(0.05, max(deadline - time.monotonic(), 0.001)))
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
                if not progressed:
                    self._wake_sender.wait(1.0)
                    self._wake_sender.clear()
            except (AuthenticationError, PermissionDeniedError) as exc:
                self._state.auth_failed = True
                logger.warning(
                    "mlrelay: the server refused the credentials (HTTP %d); sending stopped, "
                    "entries are kept in %s; fix the credentials and run `mlrelay sync`",
                    exc.status_code,
                    self.journal.path,
                )
                return
            except Stopped:
                return
            except (APIConnectionError, APIStatusError) as exc:
                if self._stop.is_set():
                    return
                if self._state.offline_since is None:
                    self._state.offline_since = time.monotonic()
                    logger.warning(
                        "mlrelay: cannot deliver to the tracking server (%s); entries are kept "
                        "in %s and sent when it is back",
                        exc,
                        self.journal.path,
                    )
                retry_after = getattr(exc, "retry_after", None)
                wait = backoff if retry_after is None else min(retry_after, 300.0)
                self._wake_sender.wait(wait)
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

    def _send_round(self) -> bool:
        progressed = False
        if self._primary_uri and time.monotonic() >= self._state.next_orphan_check:
            self._state.next_orphan_check = time.monotonic() + self.options.orphan_check_interval
            self._claim_orphans(self._primary_uri)
        for run in self.journal.runs(mine=True):
            if run.tracking_uri:  # each run goes to the server it was logged for
                progressed |= self.sender.send_run(self._client_for(run.tracking_uri), run)
        return progressed

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
        """Entries not yet acknowledged by the server (buffered ones included)."""
        in_memory = len(self._buffer) + self._unwritten  # before the journal; see _outstanding
        mine = [r.local_id for r in self.journal.runs(mine=True)]
        return in_memory + self.journal.count_pending(mine)

    def _outstanding(self) -> int:
        """Undelivered entries plus ended runs whose status is not sent yet (for flush)."""
        # Memory first, the journal last: a row the writer commits in between is then
        # counted twice (harmless), never missed.
        in_memory = len(self._buffer) + self._unwritten
        runs = self.journal.runs(mine=True)
        ended = sum(1 for r in runs if r.status is not None)
        return in_memory + self.journal.count_pending([r.local_id for r in runs]) + ended

    def flush(self, timeout: float | None = None, *, stall: float | None = None) -> bool:
        """Wait until everything logged so far is delivered; False if it was not.

        Args:
            timeout: a hard limit in seconds (None: no hard limit).
            stall: give up when delivery made no progress for this many seconds (None:
                no such limit). With neither limit, waits at most one hour.

        Offline, this only commits to the journal.
        """
        if timeout is None and stall is None:
            timeout = 3600.0
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else math.inf
        if not self.write_now(min(deadline - started, 30.0)):
            return False
        if not self.sends:
            return True
        last = self._outstanding()
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
            if current < last:
                last_progress = time.monotonic()
            last = current

    def close(self, timeout: float) -> int:
        """Flush for at most ``timeout`` seconds, stop the threads, return entries left."""
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
        return self.pending()
