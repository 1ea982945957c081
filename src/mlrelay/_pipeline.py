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
import functools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
)
from ._journal import (
    KIND_DATASET,
    KIND_DELETE_TAG,
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
    Entry,
    Journal,
    RunRecord,
)
from ._protocol.entities import Metric, Param, RunTag
from ._validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)

__all__ = ["Pipeline", "PipelineOptions", "pack_batch", "sync_orphans"]

logger = logging.getLogger("mlrelay.pipeline")

Row = tuple[str, int, str, Any, "int | None", "int | None"]


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


def pack_batch(entries: list[Entry]) -> tuple[list[Entry], list[Metric], list[Param], list[RunTag]]:
    """Take the longest prefix of ``entries`` that fits one log-batch request.

    A param whose key is already in the batch with the same value is dropped (MLflow
    rejects duplicate param keys in one request); with another value the batch ends
    before it, so the server judges it on its own. Tag deletions and datasets are not
    log-batch content: the batch ends before one (the caller sends it on its own).

    Returns:
        The entries used, and the metrics, params and tags to send.
    """
    used: list[Entry] = []
    metrics: list[Metric] = []
    params: dict[str, Param] = {}
    tags: list[RunTag] = []
    for e in entries:
        if len(metrics) + len(params) + len(tags) >= MAX_ENTITIES_PER_BATCH:
            break
        if e.kind in (KIND_DELETE_TAG, KIND_DATASET):
            break
        if e.kind == KIND_METRIC:
            if len(metrics) >= MAX_METRICS_PER_BATCH:
                break
            metrics.append(
                Metric(
                    key=e.key, value=float(e.value), timestamp=e.timestamp or 0, step=e.step or 0
                )
            )
        elif e.kind == KIND_PARAM:
            old = params.get(e.key)
            if old is not None and old.value != e.value:
                break
            if old is None:
                if len(params) >= MAX_PARAMS_PER_BATCH:
                    break
                params[e.key] = Param.model_construct(key=e.key, value=str(e.value))
        elif e.kind == KIND_TAG:
            if len(tags) >= MAX_TAGS_PER_BATCH:
                break
            tags.append(RunTag.model_construct(key=e.key, value=str(e.value)))
        used.append(e)
    return used, metrics, list(params.values()), tags


class _InFlight:
    """Runs one call at a time on a daemon thread, so the sender can prepare the next batch
    while a request is on the wire. Unlike a ThreadPoolExecutor, its thread is never
    joined at interpreter exit, so a hung request cannot delay exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], _Result]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], Any]) -> _Result:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlrelay-http", daemon=True)
            self._thread.start()
        result = _Result()
        self._jobs.put((fn, result))
        return result

    def _run(self) -> None:
        while True:
            fn, result = self._jobs.get()
            try:
                fn()
            except BaseException as exc:  # handed to the sender, which decides
                result.error = exc
            result.done.set()


@dataclass
class _Result:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def wait(self) -> None:
        self.done.wait()
        if self.error is not None:
            raise self.error


@dataclass
class _State:
    stopped: bool = False
    auth_failed: bool = False
    offline_since: float | None = None
    warned_rejection: set[str] = field(default_factory=set)
    strict_failure: APIStatusError | None = None


class Pipeline:
    """One per process: buffers log calls, journals them, and sends them in the background.

    Args:
        journal: where entries are made durable.
        client_factory: builds the Client the sender uses; None means offline (never send).
        options: tuning.
        threads: start the writer and sender threads (``mlrelay sync`` drives a
            thread-less pipeline's sending itself).
    """

    def __init__(
        self,
        journal: Journal,
        client_factory: Callable[[], Any] | None,
        options: PipelineOptions | None = None,
        *,
        threads: bool = True,
    ) -> None:
        self.journal = journal
        self.options = options or PipelineOptions()
        self._client_factory = client_factory
        self._client: Any = None
        self._buffer: collections.deque[Row] = collections.deque()
        self._unwritten = 0  # rows taken off the deque and not yet committed (writer only)
        self._written = threading.Condition()
        self._sent = threading.Condition()
        self._wake_writer = threading.Event()
        self._wake_sender = threading.Event()
        self._state = _State()
        self._in_flight = _InFlight()
        self._pid = os.getpid()
        self._writer = threading.Thread(target=self._write_loop, name="mlrelay-writer", daemon=True)
        self._sender: threading.Thread | None = None
        if not threads:  # used by `mlrelay sync`, which drives sending itself
            return
        self._writer.start()
        if client_factory is not None:
            self._sender = threading.Thread(
                target=self._send_loop, name="mlrelay-sender", daemon=True
            )
            self._sender.start()

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

    def _write_loop(self) -> None:
        while not self._state.stopped:
            self._wake_writer.wait(self.options.flush_interval)
            self._wake_writer.clear()
            try:
                wrote = self._drain()
            except Exception:  # the journal failing must not kill logging silently
                logger.exception("mlrelay could not write to its journal at %s", self.journal.path)
                time.sleep(self.options.flush_interval)
                continue
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

    def _client_or_none(self) -> Any:
        if self._client is None and self._client_factory is not None:
            self._client = self._client_factory().with_options(
                max_retries=self.options.send_max_retries,
                retry_budget=self.options.send_retry_budget,
            )
        return self._client

    def _send_loop(self) -> None:
        # The client's own retries are short (see PipelineOptions); longer outages are
        # ridden out here, with waits that flush() and new entries can interrupt.
        backoff = 0.5
        while not self._state.stopped:
            try:
                progressed = self._send_round()
                if self._state.offline_since is not None:
                    logger.warning("mlrelay: tracking server reachable again; sending the backlog")
                    self._state.offline_since = None
                backoff = 0.5
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
            except (APIConnectionError, APIStatusError) as exc:
                if self._state.stopped:
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
                if self._state.stopped:
                    return
                logger.exception("mlrelay sender failed; retrying")
                self._wake_sender.wait(backoff)
                self._wake_sender.clear()
                backoff = min(backoff * 2, self.options.offline_backoff_max)
            with self._sent:
                self._sent.notify_all()

    def _send_round(self) -> bool:
        client = self._client_or_none()
        progressed = False
        for run in self.journal.runs(pid=self._pid):
            progressed |= self._send_run(client, run)
        return progressed

    def _ensure_created(self, client: Any, run: RunRecord) -> str:
        if run.server_run_id:
            return run.server_run_id
        experiment_id = run.experiment_id
        if experiment_id is None:
            name = run.experiment_name or "Default"
            found = client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else client.create_experiment(name)
        # A create may already have happened (start_run timed out after the server acted,
        # or a crash before set_server_run): look for the client key first.
        found_run = client.find_run_by_client_key(experiment_id, run.local_id)
        if found_run is not None:
            self.journal.set_server_run(run.local_id, found_run.info.run_id, experiment_id)
            return str(found_run.info.run_id)
        created = client.create_run(
            experiment_id,
            start_time=run.start_time,
            tags=run.create_tags,
            run_name=run.run_name,
            client_key=run.local_id,
        )
        self.journal.set_server_run(run.local_id, created.info.run_id, experiment_id)
        return str(created.info.run_id)

    def _send_run(self, client: Any, run: RunRecord) -> bool:
        entries = self.journal.pending(run.local_id, run.acked_seq, MAX_ENTITIES_PER_BATCH)
        if not entries and (run.status is None or run.final_sent):
            return False
        server_id = self._ensure_created(client, run)
        progressed = False
        acked = run.acked_seq
        batch = pack_batch(entries) if entries else None
        while batch is not None:
            used, metrics, params, tags = batch
            if not used:  # a tag deletion or a dataset, sent on its own
                used = entries[:1]
                call = self._in_flight.submit(
                    functools.partial(self._send_single, client, server_id, used[0])
                )
            else:
                call = self._in_flight.submit(
                    functools.partial(client.send_batch, server_id, metrics, params, tags)
                )
            # Prepare the next batch while this one is on the wire (one request in flight
            # per run, so the server still sees the run's entries in order).
            entries = self.journal.pending(run.local_id, used[-1].seq, MAX_ENTITIES_PER_BATCH)
            following = pack_batch(entries) if entries else None
            try:
                call.wait()
                self.journal.ack(run.local_id, used[-1].seq)
            except APIStatusError as exc:
                if exc.status_code >= 500 or exc.status_code in (401, 403, 408, 429):
                    raise
                self.journal.reject(run.local_id, used[0].seq, used[-1].seq, str(exc))
                if self.options.strict and self._state.strict_failure is None:
                    # Raised to the user by the next flush() or end_run().
                    self._state.strict_failure = exc
                if run.local_id not in self._state.warned_rejection:
                    self._state.warned_rejection.add(run.local_id)
                    logger.warning(
                        "mlrelay: the server rejected %d entries of run %s: %s. They are set "
                        "aside in the journal.",
                        len(used),
                        server_id,
                        exc.server_message,
                    )
            acked = used[-1].seq
            progressed = True
            batch = following
        if run.status is not None and not run.final_sent:
            fresh = self.journal.run(run.local_id)
            if (
                fresh is not None
                and fresh.acked_seq >= acked
                and not self.journal.pending(run.local_id, fresh.acked_seq, 1)
            ):
                client.set_terminated(server_id, run.status, run.end_time)
                self.journal.mark_final_sent(run.local_id)
                progressed = True
        return progressed

    @staticmethod
    def _send_single(client: Any, server_id: str, entry: Entry) -> None:
        from ._errors import NotFoundError
        from ._protocol.entities import DatasetInput

        if entry.kind == KIND_DELETE_TAG:
            try:
                client.delete_tag(server_id, entry.key)
            except NotFoundError as exc:
                # Deleting an absent tag is the state the user asked for.
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        else:
            client.log_inputs(server_id, [DatasetInput.model_validate_json(str(entry.value))])

    def raise_if_strict_failure(self) -> None:
        """In strict mode, raise the first rejection the server sent (once)."""
        failure, self._state.strict_failure = self._state.strict_failure, None
        if failure is not None:
            raise failure

    # --- lifecycle --------------------------------------------------------------------

    def pending(self) -> int:
        """Entries not yet acknowledged by the server (buffered ones included)."""
        in_memory = len(self._buffer) + self._unwritten  # before the journal; see _outstanding
        mine = [r.local_id for r in self.journal.runs(pid=self._pid)]
        return in_memory + self.journal.count_pending(mine)

    def _outstanding(self) -> int:
        """Undelivered entries plus ended runs whose status is not sent yet (for flush)."""
        # Memory first, the journal last: a row the writer commits in between is then
        # counted twice (harmless), never missed.
        in_memory = len(self._buffer) + self._unwritten
        runs = self.journal.runs(pid=self._pid)
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
        if self._sender is None:
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
        self._state.stopped = True
        self._wake_writer.set()
        self._wake_sender.set()
        self._writer.join(timeout=1.0)
        self._drain()
        left = self.pending()
        return left


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sync_orphans(
    journal: Journal,
    client_for: Callable[[str], Any],
    *,
    tracking_uri: str | None = None,
    report: Callable[[RunRecord, int], None] | None = None,
) -> dict[str, int]:
    """Send what processes that have exited left in the journal; return entries left per run.

    Only runs whose owning process is gone are touched, so a live process's own sender
    is never doubled. Each run is sent exactly as the live sender would (creation by
    client key, batches in order, watermark per batch, final status last).

    Args:
        journal: the journal to read.
        client_for: builds a Client for a tracking URI (credentials resolved as usual).
        tracking_uri: only runs recorded for this URI (all when None).
        report: called after each run with the run and the entries it still has.
    """
    sender = Pipeline(journal, None, threads=False)
    left: dict[str, int] = {}
    clients: dict[str, Any] = {}
    for run in journal.runs():
        if _alive(run.pid) or (tracking_uri and run.tracking_uri != tracking_uri.rstrip("/")):
            continue
        client = clients.get(run.tracking_uri)
        if client is None:
            client = clients[run.tracking_uri] = client_for(run.tracking_uri)
        record: RunRecord | None = run
        while record is not None and sender._send_run(client, record):
            record = journal.run(run.local_id)
        left[run.local_id] = journal.count_pending([run.local_id])
        if report is not None:
            report(journal.run(run.local_id) or run, left[run.local_id])
    return left
