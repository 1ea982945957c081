"""``mlrelay sync``: deliver what the journal holds for runs no live process is sending.

A run is *pending* while its entries or its final status are not acknowledged. A sync
picks the pending runs whose owning process is gone (exited, killed, crashed), claims
each one (an exclusive compare-and-set in the journal, so two syncs, or a sync and a
recovering process, never send the same run) and sends it exactly as the live sender
would: created once by its client key, entries in journal order, the final status
last; a run that never ended is ended KILLED. Runs of live processes are left to them.

Interruption is safe at any point: the journal's watermark moves only after the server
acknowledged a request, so the next sync resends at most one request per run, which
the server deduplicates.

A damaged journal is sent as far as it can be read: entries that cannot be read are set
aside as lost (recorded in the journal with their seq span and count), every other entry
is sent once, and the run is ended as usual; each result says what was lost.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlrelay._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    JournalError,
    PermissionDeniedError,
    TLSVerificationError,
    UnexpectedResponseError,
    without_userinfo,
)

from .flow import Workers
from .journal import Journal, RunRecord, journal_error
from .sender import MAX_IN_FLIGHT, RUNS_AT_ONCE, Progress, RunSender

if TYPE_CHECKING:
    from mlrelay.client import Client

__all__ = ["PlannedRun", "RunResult", "pending_elsewhere", "plan_sync", "run_sync"]


@dataclass(frozen=True)
class PlannedRun:
    """A run a sync would send, where to, and how much."""

    run: RunRecord
    destination: str | None
    pending: int
    rejected: int
    skip_reason: str | None = None
    live: bool = False
    retarget: bool = False  # journaled for another (wrong) address: recorded anew, then sent


@dataclass(frozen=True)
class RunResult:
    """What a sync did with one run."""

    local_id: str
    server_run_id: str | None
    destination: str | None
    sent: int
    left: int
    rejected: int
    final_sent: bool
    reason: str | None
    live: bool = False  # another live process (logger or sync) sends it: not ours to report
    lost: tuple[tuple[int, int, int | None], ...] = ()
    """Spans of entries that could not be read from a damaged journal (first seq, last
    seq, how many of the run's entries; None: unknown): never sent, lost."""

    @property
    def done(self) -> bool:
        """Everything delivered, the final status included, nothing set aside or lost."""
        return (
            self.final_sent
            and self.left == 0
            and self.rejected == 0
            and self.reason is None
            and not self.lost
        )


def _same(uri: str) -> str:
    """A tracking URI as the journal records it (no user-info, no trailing slash)."""
    return without_userinfo(uri).rstrip("/")


def plan_sync(
    journal: Journal,
    *,
    tracking_uri: str | None = None,
    default_uri: str | None = None,
    run_ids: Sequence[str] = (),
    retry_rejected: bool = False,
    retarget_from: str | None = None,
    carried: Collection[str] = (),
) -> list[PlannedRun]:
    """The runs a sync would send, in journal order; reads the journal only.

    Args:
        tracking_uri: only runs recorded for this server (and runs recorded without
            one, which are sent there).
        default_uri: where runs recorded without a server go when ``tracking_uri`` is
            not given (``MLFLOW_TRACKING_URI``).
        run_ids: only these runs (local ids or server ids).
        retry_rejected: include runs that are delivered except for set-aside entries.
        retarget_from: instead, the runs recorded for this address (one that was wrong),
            to be sent to ``tracking_uri``. A run already created on that address belongs
            there and is not moved.
        carried: runs a logging process carried out of this (damaged) journal into the
            journal in use, which sends them: left out.

    Raises:
        ConfigurationError: ``retarget_from`` without ``tracking_uri``.
    """
    if retarget_from is not None and not tracking_uri:
        raise ConfigurationError("--from needs --tracking-uri: the address to send the runs to")
    wanted = {r.rstrip("/") for r in run_ids}
    only = tracking_uri.rstrip("/") if tracking_uri else None  # (user-info kept: credentials)
    moved_from = _same(retarget_from) if retarget_from is not None else None
    planned = []
    for run in journal.runs(unfinished_only=False):
        rejected = len(journal.rejections(run.local_id))
        if run.final_sent and not (retry_rejected and rejected):
            continue
        if wanted and run.local_id not in wanted and run.server_run_id not in wanted:
            continue
        if run.local_id in carried:
            continue
        recorded = run.tracking_uri.rstrip("/")
        if moved_from is not None:
            if recorded != moved_from:
                continue
            destination = only
        elif only is not None and recorded and recorded != _same(only):
            continue
        else:
            destination = recorded or only or (default_uri.rstrip("/") if default_uri else None)
        reason, live = _skip_reason(run, destination, moved=moved_from is not None)
        pending = journal.count_pending([run.local_id])
        planned.append(
            PlannedRun(
                run, destination, pending, rejected, reason, live, retarget=moved_from is not None
            )
        )
    return planned


def _skip_reason(
    run: RunRecord, destination: str | None, *, moved: bool
) -> tuple[str | None, bool]:
    """Why a sync leaves ``run`` alone (None: it sends it), and whether a live process has it."""
    if not run.orphaned:  # (an ended offline run is released by its process)
        return f"its own process (pid {run.pid}) is running and sends it", True
    if destination is None:
        return "logged without a tracking URI; pass --tracking-uri URI", False
    if moved and run.server_run_id:
        recorded = run.tracking_uri.rstrip("/")
        return (
            f"it was created on {recorded} as run {run.server_run_id}, so it belongs there; "
            f"sync it with --tracking-uri {recorded}"
        ), False
    return None, False


def pending_elsewhere(journal: Journal, tracking_uri: str) -> dict[str, int]:
    """Runs not delivered that are recorded for another server than ``tracking_uri``,
    counted per recorded address (a sync to ``tracking_uri`` does not consider them)."""
    only = _same(tracking_uri)
    counts: dict[str, int] = {}
    for run in journal.runs(unfinished_only=False):
        recorded = run.tracking_uri.rstrip("/")
        if run.final_sent or not recorded or recorded == only:
            continue
        counts[recorded] = counts.get(recorded, 0) + 1
    return counts


def _know_server(journal: Journal, client: Client, uri: str) -> None:
    # Capabilities are probed once per server and kept in the journal for later syncs.
    from mlrelay._capabilities import Capabilities, remember

    recorded = journal.server_capabilities(uri)
    if recorded is not None:
        remember(uri, Capabilities.from_json(recorded))
    else:
        journal.record_server(uri, client.capabilities().to_json())


class _Syncer:
    """One sync's state: a client per server, the servers found down, the shared sender."""

    def __init__(
        self,
        journal: Journal,
        client_for: Callable[[str], Client],
        progress: Progress | None,
        retry_rejected: bool,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.journal = journal
        self.client_for = client_for
        self.progress = progress
        self.retry_rejected = retry_rejected
        self.sender = RunSender(journal, max_in_flight=max_in_flight)
        self.clients: dict[str, Client] = {}
        self.down: dict[str, str] = {}
        self._lock = threading.Lock()  # runs are synced several at once

    def client(self, destination: str) -> Client:
        with self._lock:
            client = self.clients.get(destination)
            if client is None:
                client = self.clients[destination] = self.client_for(destination)
                _know_server(self.journal, client, destination)
        return client

    def sync_one(self, item: PlannedRun) -> RunResult:
        """Claim, send and release one planned run; its result."""
        reason, live, sent = item.skip_reason, item.live, 0
        if reason is None and item.destination in self.down:
            reason = self.down[item.destination]
        if reason is None and not self.journal.claim(item.run):
            reason, live = "another sync or process claimed it first and sends it", True
        if reason is None:
            assert item.destination is not None
            try:
                if item.retarget:
                    # Under the claim, before anything is sent: the run is recorded for the
                    # right address once, so an interrupted sync goes on there, never twice.
                    self.journal.set_tracking_uri(item.run.local_id, item.destination)
                sent, reason = self._send(item.run, item.destination)
            except (JournalError, sqlite3.Error) as exc:
                reason = str(journal_error(exc, self.journal.path, "read or written"))
            finally:
                with contextlib.suppress(sqlite3.Error):  # a damaged journal: said above
                    self.journal.release(item.run.local_id)
        final = self.journal.run(item.run.local_id) or item.run
        return RunResult(
            local_id=final.local_id,
            server_run_id=final.server_run_id,
            destination=item.destination,
            sent=sent,
            left=self.journal.count_pending([final.local_id]),
            rejected=self.journal.count_rejected(final.local_id),
            final_sent=final.final_sent,
            reason=reason,
            live=live,
            lost=tuple((a, b, n) for _, a, b, n, _ in self.journal.lost(final.local_id)),
        )

    def _send(self, run: RunRecord, destination: str) -> tuple[int, str | None]:
        """Send a claimed run; (entries sent, the reason it stopped early or None)."""
        sent = 0

        def counted(entries: int, size: int) -> None:
            nonlocal sent
            sent += entries
            if self.progress is not None:
                self.progress(entries, size)

        if run.tracking_uri == "":
            self.journal.set_tracking_uri(run.local_id, destination)
        try:
            client = self.client(destination)
            record = self.journal.run(run.local_id)
            if self.retry_rejected and record is not None:
                self.sender.retry_rejected(client, record, counted)
            while record is not None and self.sender.send_run(client, record, counted):
                record = self.journal.run(run.local_id)
        except (AuthenticationError, PermissionDeniedError) as exc:
            self.down[destination] = (
                f"the server refused the credentials (HTTP {exc.status_code}); "
                "check MLFLOW_TRACKING_* or run `mlrelay login`"
            )
            return sent, self.down[destination]
        except TLSVerificationError as exc:
            self.down[destination] = str(exc)
            return sent, self.down[destination]
        except APIConnectionError as exc:
            self.down[destination] = f"the server is unreachable ({exc})"
            return sent, self.down[destination]
        except APIStatusError as exc:
            return sent, f"the server kept failing ({exc})"
        except UnexpectedResponseError as exc:
            # Not MLflow's answer (a login page, a redirect): nothing more goes there.
            self.down[destination] = f"the server did not answer as MLflow does: {exc}"
            return sent, self.down[destination]
        return sent, None

    def close(self) -> None:
        self.sender.close()
        for client in self.clients.values():
            client.close()


def run_sync(
    journal: Journal,
    planned: Sequence[PlannedRun],
    client_for: Callable[[str], Client],
    *,
    progress: Progress | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    retry_rejected: bool = False,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> list[RunResult]:
    """Send the planned runs; one result per run, in order (at most ``max_in_flight``
    requests in flight to one server).

    A server that cannot be reached or refuses the credentials stops the sync for its
    remaining runs (they are reported with the reason); other servers go on.
    """
    syncer = _Syncer(journal, client_for, progress, retry_rejected, max_in_flight)
    # Several runs at once (each claimed, sent and released on a thread of its own); the
    # results are reported in the planned order.
    workers = Workers(RUNS_AT_ONCE, "mlrelay-sync")
    results = []
    try:
        calls = [workers.submit(functools.partial(syncer.sync_one, item)) for item in planned]
        for call in calls:
            result = call.wait(threading.Event())
            results.append(result)
            if on_run is not None:
                on_run(result)
    finally:
        workers.close()
        syncer.close()
    return results
