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

import collections
import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

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

from .flow import AdaptiveLimit, Call, Stopped, Workers, overloaded
from .journal import RESUMED, Journal, RunRecord

if TYPE_CHECKING:
    from mlrelay.client import Client

__all__ = ["Held", "Progress", "RunSender", "Stopped"]

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


Refused = list[tuple[list[Entry], APIStatusError]]
"""Pieces of a batch the server refused, each with its answer."""

MAX_IN_FLIGHT = 8
"""The most requests in flight to one server (the adaptive limit moves below it)."""

RUNS_AT_ONCE = 4
"""The most runs a sender delivers at once (they share the adaptive limit)."""


@dataclass(frozen=True)
class _Request:
    """A request on the wire: the entries it carries, its outcome, and whether it must be
    sent alone (anything but metric points)."""

    used: list[Entry]
    call: Call[Refused]
    ordered: bool


def _unordered(batch: Batch) -> bool:
    """Whether the batch holds only metric points (which may go in any order)."""
    return bool(batch.used) and not batch.params and not batch.tags


_FLIGHT_MAX = 32
"""The most requests of one run on the wire or answered but not acknowledged yet (those
wait for an older request's answer)."""

_ROOM_WAIT = 0.05
"""How long the sender waits at a time for a place to free up (it then looks for answers
and for the stop signal again)."""

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
        tail_waits: asked when a round finds entries of a run that is still open which do
            not fill a request, beyond what it read first (logged since the round began,
            most often): True leaves them for the next round. A logging process's
            sender sets it, so a training loop pays for one request per round rather than
            one per answer; None (``mlrelay sync``): they go at once.
        first_send_after: seconds from a run's start before its first request, while
            the run is open, has not been created on the server, its entries do not
            fill a request and :attr:`tail_waits` says True: the run is then created
            with its first points, and a training shorter than this makes no request
            while it trains. A round that leaves such a run sets :attr:`due`.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        strict: bool = False,
        stop: threading.Event | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        tail_waits: Callable[[], bool] | None = None,
        first_send_after: float = 0.0,
    ) -> None:
        self.journal = journal
        self.tail_waits = tail_waits
        self.first_send_after = first_send_after
        self.due: float | None = None
        """The earliest time (``time.time()``) a run left for being young is due; the
        caller clears it before a round."""
        self.strict = strict
        self.stop = stop or threading.Event()
        self.strict_failure: MlrelayError | None = None
        self.max_in_flight = max_in_flight
        self.acknowledged = 0
        """Entries and final statuses acknowledged so far (it only grows: a waiter sees
        progress in it without counting the journal)."""
        self._warned: set[str] = set()
        self._warned_held: set[str] = set()
        self._requests = Workers(max_in_flight)
        self._runs_at_once = Workers(RUNS_AT_ONCE, "mlrelay-run")
        self._limits: dict[int, tuple[Client, AdaptiveLimit]] = {}
        self._creating = threading.RLock()
        self._never_sent: set[str] = set()

    def close(self) -> None:
        """Release the sender's threads (after the requests they may be making)."""
        self._requests.close()
        self._runs_at_once.close()

    def limit_for(self, client: Client) -> AdaptiveLimit:
        """The adaptive limit on requests in flight through ``client`` (one per server)."""
        return self._wired(client)[1]

    def _wired(self, client: Client) -> tuple[Client, AdaptiveLimit]:
        """``client``'s adaptive limit, and a copy of ``client`` whose retries tell it of
        overload answers the retries hide."""
        wired = self._limits.get(id(client))
        if wired is None:
            limit = AdaptiveLimit(1, self.max_in_flight)
            policy = client.retry_policy.with_changes(on_retry=limit.retried)
            wired = self._limits[id(client)] = (client.with_options(retry_policy=policy), limit)
        return wired

    # --- creation ---------------------------------------------------------------------

    def journaled_here(self, local_id: str) -> None:
        """Note that this process journaled run ``local_id`` without asking the server to
        create it: until this sender tries, no create of it can have reached any server, so
        the first try need not look for an earlier one (two searches fewer per run)."""
        self._never_sent.add(local_id)

    def ensure_created(self, client: Client, run: RunRecord) -> str:
        """The run's server id, creating the run (and its experiment) exactly once."""
        if run.server_run_id:
            return run.server_run_id
        with self._creating:  # runs sent at once may share a parent: it is created once
            fresh = self.journal.run(run.local_id)
            if fresh is not None and fresh.server_run_id:
                return fresh.server_run_id
            return self._create(client, run)

    def _create(self, client: Client, run: RunRecord) -> str:
        experiment_id = run.experiment_id
        if experiment_id is None:
            experiment_id = client.get_or_create_experiment(run.experiment_name or "Default")
        # A create may already have happened (start_run timed out after the server acted,
        # an earlier try of ours, or a crash before set_server_run): look for the client
        # key first, unless this process journaled the run and never tried (the mark goes
        # before the try: whatever happens to it, the next try looks).
        never_sent = run.local_id in self._never_sent
        self._never_sent.discard(run.local_id)
        found = None if never_sent else client.find_run_by_client_key(experiment_id, run.local_id)
        if found is not None:
            self.journal.set_server_run(run.local_id, found.info.run_id, experiment_id)
            return str(found.info.run_id)
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
        if not waiting and self._young(run, entries):
            return False
        server_id = self.ensure_created(client, run)
        acked, progressed = self._send_entries(client, run, server_id, entries, progress)
        if held is not None and waiting:
            if self.journal.pending(run.local_id, acked, 1):
                return True  # journaled entries came first: the next round sends them
            self._send_held(client, run, server_id, held, min(waiting, _HELD_PER_ROUND))
            if held.waiting(run.local_id):
                return True  # the final status waits for them
        return self._send_final(client, run, server_id, acked) or progressed

    def _young(self, run: RunRecord, entries: list[Entry]) -> bool:
        """Whether ``run`` waits for a later round (see ``first_send_after``); notes
        when it is due."""
        if not self.first_send_after or run.server_run_id or not self._may_wait(run, entries):
            return False
        started = run.start_time / 1000
        if not started <= time.time() < started + self.first_send_after:
            return False  # (a start time set in the future or the past: no wait)
        due = started + self.first_send_after
        self.due = due if self.due is None else min(self.due, due)
        return True

    def send_runs(
        self, runs: Sequence[tuple[Client, RunRecord]], *, held: Held | None = None
    ) -> bool:
        """Send several runs at once (up to :data:`RUNS_AT_ONCE`), each as
        :meth:`send_run` does; True if anything moved.

        Raises:
            the first error a run's delivery raised, once every run's delivery is over.
        """
        if len(runs) <= 1:
            return any(self.send_run(client, run, held=held) for client, run in runs)
        calls = [
            self._runs_at_once.submit(functools.partial(self.send_run, client, run, held=held))
            for client, run in runs
        ]
        progressed, failure = False, None
        for call in calls:
            try:
                progressed |= call.wait(self.stop)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return progressed

    def _send_entries(
        self,
        client: Client,
        run: RunRecord,
        server_id: str,
        entries: list[Entry],
        progress: Progress | None,
    ) -> tuple[int, bool]:
        """Send the run's journaled entries from ``entries`` on; (the last acknowledged
        sequence number, whether any request was acknowledged).

        Requests made only of metric points go several at once, as the adaptive limit
        allows (a point is stored once by its timestamp, whatever the order); any other
        goes alone, once every request before it is answered, so params, tags and the
        rest reach the server in the order they were logged. Answers are taken oldest
        first: the watermark moves over the answered prefix, and a request answered
        early waits for those before it to be acknowledged.
        """
        client, limit = self._wired(client)
        flight: collections.deque[_Request] = collections.deque()
        acked, progressed = run.acked_seq, False
        batch = pack_batch(entries) if entries else None
        try:
            while batch is not None or flight:
                while batch is not None and self._room(limit, batch, flight):
                    request = self._submit(client, server_id, entries, batch, limit)
                    flight.append(request)
                    # Prepare the next batch while this one is on the wire.
                    entries = self.journal.pending(
                        run.local_id, request.used[-1].seq, MAX_ENTITIES_PER_BATCH
                    )
                    batch = self._next_batch(run, entries)
                answered = []
                while flight and flight[0].call.done.is_set():
                    answered.append(flight.popleft())
                if not answered and batch is not None and self._may_add(batch, flight):
                    # A later request answered first frees its place: fill it at once
                    # instead of waiting behind the oldest (answers come out of order).
                    limit.wait_for_room(self.stop, _ROOM_WAIT)
                    continue
                if not answered:
                    answered.append(flight.popleft())  # wait for the oldest
                while flight and flight[0].call.done.is_set():
                    answered.append(flight.popleft())
                acked = self._acknowledge(run, server_id, answered, acked, progress)
                progressed = True
                if batch is None:  # logged since the journal was last read
                    after = flight[-1].used[-1].seq if flight else acked
                    entries = self.journal.pending(run.local_id, after, MAX_ENTITIES_PER_BATCH)
                    batch = self._next_batch(run, entries)
        finally:
            self._settle(flight)
        return acked, progressed

    def _next_batch(self, run: RunRecord, entries: list[Entry]) -> Batch | None:
        """The round's next request, packed from ``entries`` (read after its first one);
        None if there are none, or if they would not fill a request, the run is still
        open and :attr:`tail_waits` says they wait for the next round."""
        if not entries or self._may_wait(run, entries):
            return None
        return pack_batch(entries)

    def _may_wait(self, run: RunRecord, entries: list[Entry]) -> bool:
        """Whether ``entries`` of ``run`` may wait for a later round: they do not fill a
        request, the run is still open and :attr:`tail_waits` says True."""
        return (
            len(entries) < MAX_ENTITIES_PER_BATCH
            and run.status is None
            and self.tail_waits is not None
            and self.tail_waits()
        )

    def _acknowledge(
        self,
        run: RunRecord,
        server_id: str,
        answered: list[_Request],
        acked: int,
        progress: Progress | None,
    ) -> int:
        """Take the answers of ``answered`` (consecutive requests, oldest first) and move
        the run's watermark over them; the new watermark. A failed answer stops there:
        the watermark moves over the requests before it, and its error goes up."""
        taken: list[_Request] = []
        try:
            for request in answered:
                for piece, refusal in self._answer(request.call, request.used):
                    self._set_aside(run, server_id, piece, refusal)
                taken.append(request)
        finally:
            if taken:
                acked = taken[-1].used[-1].seq
                self.journal.ack(run.local_id, acked)
                self.acknowledged += sum(len(request.used) for request in taken)
                if progress is not None:
                    for request in taken:
                        progress(len(request.used), _payload_bytes(request.used))
        return acked

    def _room(
        self, limit: AdaptiveLimit, batch: Batch, flight: collections.deque[_Request]
    ) -> bool:
        """Whether ``batch`` may go on the wire now (taking a place in ``limit``)."""
        if not flight:
            limit.acquire(self.stop)  # other runs may hold every place: wait for one
            return True
        return self._may_add(batch, flight) and limit.try_acquire()

    def _may_add(self, batch: Batch, flight: collections.deque[_Request]) -> bool:
        """Whether ``batch`` may join the requests of ``flight`` once a place is free: only
        metric points after metric points, a bounded number of requests answered but not
        acknowledged yet (behind an older one), and none failed."""
        return (
            _unordered(batch)
            and not flight[-1].ordered
            and len(flight) < _FLIGHT_MAX
            and not any(r.call.error is not None for r in flight)
        )

    def _settle(self, flight: collections.deque[_Request]) -> None:
        """Wait for requests still on the wire after a failure (their answers are not
        acknowledged: they are sent again later, and the server deduplicates them)."""
        for request in flight:
            while not request.call.done.wait(0.05):
                if self.stop.is_set():
                    return

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
        self.acknowledged += 1
        return True

    def _submit(
        self,
        client: Client,
        server_id: str,
        entries: list[Entry],
        batch: Batch,
        limit: AdaptiveLimit | None = None,
    ) -> _Request:
        """Put the request for ``batch`` (packed from ``entries``) on the wire; ``limit``
        (when given) holds a place for it, given back once it is answered."""
        used = batch.used
        if used:
            fn = functools.partial(_deliver_batch, client, server_id, batch)
        else:  # a tag deletion, a dataset or an artifact, sent on its own
            used = entries[:1]
            fn = functools.partial(self._send_single, client, server_id, used[0])

        started = time.monotonic()

        def answered(call: Call[Refused]) -> None:
            if limit is not None:
                landed = 0 if call.error is not None else len(used)
                latency = time.monotonic() - started
                limit.release(landed, overloaded=overloaded(call.error), latency=latency)

        return _Request(used, self._requests.submit(fn, answered), not _unordered(batch))

    def _answer(
        self, call: Call[Refused], used: list[Entry]
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
            request = self._submit(client, server_id, entries, pack_batch(entries))
            refused = self._answer(request.call, request.used)
            for piece, refusal in refused:
                self._refused_held(run, server_id, piece, refusal)
            held.done(run.local_id, len(request.used), sum(len(p) for p, _ in refused))
            count -= len(request.used)

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
