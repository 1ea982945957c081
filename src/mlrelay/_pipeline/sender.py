"""Sending one journaled run: created exactly once, entries in order, the final status last.

Shared by a logging process's background sender and by ``mlrelay sync``. A run's
entries are read from the journal after its delivery watermark, packed into log-batch
requests within MLflow's limits and sent one request at a time per run (the next batch
is packed while the current one is on the wire); the watermark moves after each
acknowledged request, so an interruption anywhere resends at most one request, which
the server deduplicates because timestamps are fixed at log time.

Two server behaviours are handled here rather than reported to the user:

* MLflow 2.x answers 400 to a resent batch holding a NaN point it already stored (NaN
  never equals itself in its duplicate check) and rejects the whole batch. On a 400 for
  a batch with NaN points, the points already stored are looked up in their history and
  only the rest is sent again. Only a batch that still fails is set aside.
* A run is created by its client key (the ``mlflow.mlrelay.clientKey`` tag): a search before
  creating finds a run an interrupted attempt created, so no run is ever made twice.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from mlrelay._errors import (
    APIStatusError,
    ConfigurationError,
    MlrelayError,
    NotFoundError,
    TLSVerificationError,
)
from mlrelay._protocol.batches import (
    KIND_ARTIFACT,
    KIND_DATASET,
    KIND_DELETE_TAG,
    KIND_METRIC,
    Batch,
    Entry,
    pack_batch,
)
from mlrelay._retry import is_refusal
from mlrelay._validation import MAX_ENTITIES_PER_BATCH

from .journal import RESUMED, Journal, RunRecord

if TYPE_CHECKING:
    from mlrelay.client import Client

__all__ = ["Held", "Progress", "RunSender", "Stopped"]

T = TypeVar("T")

logger = logging.getLogger("mlrelay.pipeline")

Progress = Callable[[int, int], None]
"""Called after each acknowledged request with (entries, approximate payload bytes)."""

_PARENT_TAG = "mlflow.parentRunId"


def _payload_bytes(entries: Sequence[Entry]) -> int:
    # The size of the entries in the request body, within a few percent (keys, values
    # and the JSON around them); exact sizes would need a second serialisation.
    return sum(
        len(e.key) + (48 if e.kind == KIND_METRIC else len(str(e.value)) + 24) for e in entries
    )


class Held(Protocol):
    """Entries of runs that the journal could not take (a full or read-only disk), held in
    memory by the logging process until they are delivered (see :meth:`RunSender.send_run`)."""

    def waiting(self, local_id: str) -> int:
        """How many entries of the run are held."""
        ...

    def peek(self, local_id: str, limit: int) -> list[Entry]:
        """Up to ``limit`` of the run's held entries, oldest first (they stay held)."""
        ...

    def done(self, local_id: str, n: int, refused: int) -> None:
        """The run's ``n`` oldest held entries are answered: ``refused`` of them refused by
        the server (4xx), the others delivered; they are no longer held."""
        ...


class Stopped(Exception):
    """The sender was asked to stop while a request was on the wire.

    The request may still land; nothing is acknowledged for it, so it is sent again later
    and the server deduplicates it.
    """


class _Result(Generic[T]):
    """The outcome of one call handed to :class:`_InFlight`."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: T | None = None

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the sender, which decides
            self.error = exc
        self.done.set()

    def wait(self, stop: threading.Event) -> T:
        """The call's value (or its error); :class:`Stopped` as soon as ``stop`` is set."""
        while not self.done.wait(0.05):
            if stop.is_set():
                raise Stopped
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set when no error was raised


class _InFlight:
    """Runs one call at a time on a daemon thread, so the sender can prepare the next batch
    while a request is on the wire. Unlike a ThreadPoolExecutor, its thread is never
    joined at interpreter exit, so a hung request cannot delay exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Result[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], T]) -> _Result[T]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mlrelay-http", daemon=True)
            self._thread.start()
        result = _Result(fn)
        self._jobs.put(result)
        return result

    def close(self) -> None:
        """End the thread once the call it is making (if any) returns."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()


Refused = list[tuple[list[Entry], APIStatusError]]
"""Pieces of a batch the server refused, each with its answer."""

_HELD_PER_ROUND = 50_000
"""Held entries of a run sent in one :meth:`RunSender.send_run` (then the journal is looked
at again)."""

# Requests one batch may take to isolate what the server refuses (bisection): a single bad
# entry among 1,000 costs about 20.
_BISECT_BUDGET = 48


def _deliver_batch(client: Client, server_id: str, batch: Batch) -> Refused:
    """Send one log-batch; return the pieces the server refused (empty when all landed).

    On a 4xx the entries the server refuses are isolated by bisection, so only they are
    set aside and the rest lands (a 600-character param on MLflow 2.x must not take the
    999 metrics packed with it down too).

    Raises:
        APIConnectionError, APIStatusError: retryable failures (nothing is set aside).
    """
    try:
        _send_once(client, server_id, batch)
        return []
    except APIStatusError as exc:
        if not is_refusal(exc):
            raise
        return _isolate(client, server_id, batch, exc, [_BISECT_BUDGET])


def _isolate(
    client: Client, server_id: str, batch: Batch, refusal: APIStatusError, budget: list[int]
) -> Refused:
    # ``batch`` was refused: try its halves. Both refused means the refusal is not about
    # some entries (a deleted run, a rule the whole batch breaks): one piece, 3 requests.
    if len(batch.used) == 1 or budget[0] <= 0:
        return [(batch.used, refusal)]
    half = len(batch.used) // 2
    failed: list[tuple[Batch, APIStatusError]] = []
    for part in (pack_batch(batch.used[:half]), pack_batch(batch.used[half:])):
        budget[0] -= 1
        try:
            _send_once(client, server_id, part)
        except APIStatusError as exc:
            if not is_refusal(exc):
                raise
            failed.append((part, exc))
    if len(failed) == 2:
        return [(batch.used, refusal)]
    return [
        piece for part, exc in failed for piece in _isolate(client, server_id, part, exc, budget)
    ]


def _send_once(client: Client, server_id: str, batch: Batch) -> None:
    """One log-batch; on a 2.x NaN-duplicate 400, send only what is not stored yet."""
    try:
        client.send_log_batch(batch.body(server_id))
        return
    except APIStatusError as exc:
        if exc.status_code != 400 or not any(_is_nan(m.value) for m in batch.metrics):
            raise
        first_error = exc
    stored: set[tuple[str, int, int]] = set()
    for key in {m.key for m in batch.metrics if _is_nan(m.value)}:
        stored.update(
            (key, h.step, h.timestamp)
            for h in client.get_metric_history(server_id, key)
            if math.isnan(h.value)
        )
    rest = [
        m
        for m in batch.metrics
        if not (_is_nan(m.value) and (m.key, m.step or 0, m.timestamp or 0) in stored)
    ]
    if len(rest) == len(batch.metrics):
        raise first_error  # not a resend: the server refuses this batch
    if rest or batch.params or batch.tags:
        client.send_log_batch(batch.body(server_id, rest))


def _is_nan(value: float | str) -> bool:
    return isinstance(value, float) and value != value


class RunSender:
    """Sends journaled runs through a Client; keeps the rejection bookkeeping.

    Args:
        journal: the journal the runs live in.
        strict: remember the first rejection so the caller can raise it.
    """

    def __init__(
        self, journal: Journal, *, strict: bool = False, stop: threading.Event | None = None
    ) -> None:
        self.journal = journal
        self.strict = strict
        self.stop = stop or threading.Event()
        self.strict_failure: MlrelayError | None = None
        self._warned: set[str] = set()
        self._warned_held: set[str] = set()
        self._in_flight = _InFlight()

    def close(self) -> None:
        """Release the sender's HTTP thread (after the request it may be making)."""
        self._in_flight.close()

    # --- creation ---------------------------------------------------------------------

    def ensure_created(self, client: Client, run: RunRecord) -> str:
        """The run's server id, creating the run (and its experiment) exactly once."""
        if run.server_run_id:
            return run.server_run_id
        experiment_id = run.experiment_id
        if experiment_id is None:
            experiment_id = client.get_or_create_experiment(run.experiment_name or "Default")
        # A create may already have happened (start_run timed out after the server acted,
        # or a crash before set_server_run): look for the client key first.
        found_run = client.find_run_by_client_key(experiment_id, run.local_id)
        if found_run is not None:
            self.journal.set_server_run(run.local_id, found_run.info.run_id, experiment_id)
            return str(found_run.info.run_id)
        tags = dict(run.create_tags)
        parent = tags.get(_PARENT_TAG)
        parent_record = self.journal.run(parent) if parent else None
        if parent_record is not None:  # a nested run of a run that had only a local id
            tags[_PARENT_TAG] = self.ensure_created(client, parent_record)
        created = client.create_run(
            experiment_id,
            start_time=run.start_time,
            tags=tags,
            run_name=run.run_name,
            user_id=tags.get("mlflow.user"),
            client_key=run.local_id,
        )
        self.journal.set_server_run(run.local_id, created.info.run_id, experiment_id)
        return str(created.info.run_id)

    # --- entries ----------------------------------------------------------------------

    def send_run(
        self,
        client: Client,
        run: RunRecord,
        progress: Progress | None = None,
        *,
        held: Held | None = None,
    ) -> bool:
        """Send what the run has pending, then its final status; True if anything moved.

        ``held``: entries of the run the journal could not take (a full disk), held in
        memory; they are sent after every journaled entry logged before them, and the
        final status waits until none is held.

        Raises:
            APIConnectionError, APIStatusError: delivery must wait (connection failure,
                5xx, 401/403/408/429); everything sent so far is acknowledged.
        """
        entries = self.journal.pending(run.local_id, run.acked_seq, MAX_ENTITIES_PER_BATCH)
        # Seen before the journal is read again below: these were logged after every
        # journaled entry of the run that is committed by then (see Pipeline._store).
        waiting = held.waiting(run.local_id) if held is not None else 0
        if not entries and not waiting and (run.status is None or run.final_sent):
            return False
        server_id = self.ensure_created(client, run)
        progressed = False
        acked = run.acked_seq
        batch = pack_batch(entries) if entries else None
        while batch is not None:
            used, call = self._submit(client, server_id, entries, batch)
            # Prepare the next batch while this one is on the wire (one request in flight
            # per run, so the server still sees the run's entries in order).
            entries = self.journal.pending(run.local_id, used[-1].seq, MAX_ENTITIES_PER_BATCH)
            following = pack_batch(entries) if entries else None
            for piece, refusal in self._answer(call, used):
                self._set_aside(run, server_id, piece, refusal)
            self.journal.ack(run.local_id, used[-1].seq)
            if progress is not None:
                progress(len(used), _payload_bytes(used))
            acked = used[-1].seq
            progressed = True
            batch = following
        if held is not None and waiting:
            if self.journal.pending(run.local_id, acked, 1):
                return True  # journaled entries came first: the next round sends them
            self._send_held(client, run, server_id, held, min(waiting, _HELD_PER_ROUND))
            if held.waiting(run.local_id):
                return True  # the final status waits for them
        return self._send_final(client, run, server_id, acked) or progressed

    def _send_final(self, client: Client, run: RunRecord, server_id: str, acked: int) -> bool:
        """Send the run's final status once everything before it is delivered; whether
        it was sent now."""
        if run.status is None or run.final_sent:
            return False
        fresh = self.journal.run(run.local_id)
        if (
            fresh is None
            or fresh.status != run.status
            or fresh.acked_seq < acked
            or self.journal.pending(run.local_id, fresh.acked_seq, 1)
        ):
            return False
        if run.status != RESUMED:  # a later record of the run sends the status
            client.set_terminated(server_id, run.status, run.end_time)
        self.journal.mark_final_sent(run.local_id, run.status)
        return True

    def _submit(
        self, client: Client, server_id: str, entries: list[Entry], batch: Batch
    ) -> tuple[list[Entry], _Result[Refused]]:
        """Put the request for ``batch`` (packed from ``entries``) on the wire: the entries
        it carries and its outcome."""
        used = batch.used
        if not used:  # a tag deletion, a dataset or an artifact, sent on its own
            used = entries[:1]
            return used, self._in_flight.submit(
                functools.partial(self._send_single, client, server_id, used[0])
            )
        return used, self._in_flight.submit(
            functools.partial(_deliver_batch, client, server_id, batch)
        )

    def _answer(
        self, call: _Result[Refused], used: list[Entry]
    ) -> list[tuple[list[Entry], Exception]]:
        """What the server refused of a request's entries (empty: all landed).

        Raises:
            APIConnectionError, APIStatusError: the request must be sent again later.
            Stopped: the sender was asked to stop while the request was on the wire.
        """
        try:
            return list(call.wait(self.stop))
        except APIStatusError as exc:
            if not is_refusal(exc):
                raise
            return [(used, exc)]
        except TLSVerificationError:
            raise  # a setting of this process, not a fault of these entries
        except (ConfigurationError, OSError) as exc:
            # An artifact that cannot be uploaded there, or whose copy is gone: set aside.
            return [(used, exc)]

    def _send_held(
        self, client: Client, run: RunRecord, server_id: str, held: Held, count: int
    ) -> None:
        """Send the run's ``count`` oldest held entries once, in order, request by request;
        what the server refuses cannot be set aside in the journal: it is counted as
        refused (and warned about once). A failed request keeps the rest held."""
        while count > 0:
            entries = held.peek(run.local_id, min(count, MAX_ENTITIES_PER_BATCH))
            if not entries:
                return
            used, call = self._submit(client, server_id, entries, pack_batch(entries))
            refused = self._answer(call, used)
            for piece, refusal in refused:
                self._refused_held(run, server_id, piece, refusal)
            held.done(run.local_id, len(used), sum(len(piece) for piece, _ in refused))
            count -= len(used)

    def _refused_held(
        self, run: RunRecord, server_id: str, used: list[Entry], exc: Exception
    ) -> None:
        self._rejected(
            run,
            server_id,
            used,
            exc,
            self._warned_held,
            "They were held in memory because the journal could not be written, so they are "
            "refused and not kept (`mlrelay status` counts them).",
        )

    def _set_aside(self, run: RunRecord, server_id: str, used: list[Entry], exc: Exception) -> None:
        self.journal.reject(run.local_id, used[0].seq, used[-1].seq, str(exc))
        self._rejected(
            run,
            server_id,
            used,
            exc,
            self._warned,
            "They are set aside in the journal; `mlrelay status` lists them and `mlrelay sync "
            "--retry-rejected` sends them again.",
        )

    def _rejected(
        self,
        run: RunRecord,
        server_id: str,
        used: list[Entry],
        exc: Exception,
        warned: set[str],
        outcome: str,
    ) -> None:
        """Keep the first rejection for strict mode, and warn once per run (per ``warned``)
        that the server rejected entries, saying what became of them (``outcome``: fixed
        text, part of the log record's message template, without ``%``)."""
        if self.strict and self.strict_failure is None and isinstance(exc, MlrelayError):
            self.strict_failure = exc  # raised to the user by the next flush() or end_run()
        if run.local_id not in warned:
            warned.add(run.local_id)
            logger.warning(
                "mlrelay: the server rejected %d entries of run %s: %s. " + outcome,
                len(used),
                server_id,
                getattr(exc, "server_message", None) or exc,
            )

    def _send_single(self, client: Client, server_id: str, entry: Entry) -> Refused:
        """Send an entry that is not log-batch content; nothing is refused in part."""
        from mlrelay._protocol.entities import DatasetInput

        if entry.kind == KIND_DELETE_TAG:
            try:
                client.delete_tag(server_id, entry.key)
            except NotFoundError as exc:
                # Deleting an absent tag is the state the user asked for.
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        elif entry.kind == KIND_DATASET:
            client.log_inputs(server_id, [DatasetInput.model_validate_json(str(entry.value))])
        elif entry.kind == KIND_ARTIFACT:
            spec = json.loads(str(entry.value))
            path = self.journal.blob_path(spec["blob"])
            if spec.get("model") is not None:  # a model folder: stored as log_model stores it
                client.log_saved_model(
                    server_id, str(path), spec.get("artifact_path") or "model",
                    key=spec["blob"], **spec["model"],
                )  # fmt: skip
            elif spec.get("dir"):
                client.log_artifacts(server_id, str(path), spec.get("artifact_path"))
            else:
                client.log_artifact(server_id, str(path), spec.get("artifact_path"))
        return []

    def retry_rejected(
        self, client: Client, run: RunRecord, progress: Progress | None = None
    ) -> int:
        """Send a run's set-aside entries again; how many ranges are still refused."""
        still = 0
        server_id = self.ensure_created(client, run)
        for _, first, last, _message in self.journal.rejections(run.local_id):
            entries = self.journal.entries_between(run.local_id, first, last)
            try:
                while entries:
                    batch = pack_batch(entries)
                    used = batch.used
                    if not used:
                        used = entries[:1]
                        self._send_single(client, server_id, used[0])
                    elif refused := _deliver_batch(client, server_id, batch):
                        raise refused[0][1]
                    if progress is not None:
                        progress(len(used), _payload_bytes(used))
                    entries = entries[len(used) :]
            except (APIStatusError, ConfigurationError, OSError) as exc:
                if isinstance(exc, APIStatusError) and not is_refusal(exc):
                    raise
                if isinstance(exc, TLSVerificationError):
                    raise
                still += 1
                # Keep the range; record the server's latest word on it.
                self.journal.drop_rejection(run.local_id, first)
                self.journal.reject(run.local_id, first, last, str(exc))
                continue
            self.journal.drop_rejection(run.local_id, first)
        return still
