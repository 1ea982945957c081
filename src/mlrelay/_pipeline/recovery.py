"""Recovering a logging process from a damaged journal: move it aside, continue in a fresh one.

When the journal file, its write-ahead log (``-wal``) or its shared-memory index
(``-shm``) is damaged under a running process (truncated, overwritten, a disk error),
SQLite answers every later statement with an error ("disk I/O error", "database disk image
is malformed"), or, for a truncated ``-shm``, kills the process with SIGBUS the next time it
touches the mapping (see ``Journal._guard_shm``, which re-extends the file first and asks
for this recovery). Every connection of the process to that file shares the broken state,
so the only way on is another file:

1. this process's undelivered runs are read from the damaged journal, as far as they can
   be read (:meth:`Journal.pending` skips and records what cannot);
2. the damaged files are renamed ``journal.damaged-<UTC time>-<pid>.db`` (with their
   ``-wal`` and ``-shm``), unless another process already moved them;
3. a fresh journal is created at the usual path, and the runs and their readable pending
   entries are copied into it; logging and sending go on there;
4. the fresh journal records those runs as carried (a table never purged), so a sync of
   the damaged file leaves them alone: nothing is written into the damaged file, whose
   log may be cut (a write past the cut would make a hole that a checkpoint copies);
5. the user is told once, with both paths.

Other processes' runs stay in the damaged file; ``mlrelay status`` and ``mlrelay sync``
read the damaged files beside the journal as well. A process recovers at most
:data:`MAX_RECOVERIES` times: a disk that damages every new file is reported, not chased.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from mlrelay._errors import JournalDamagedError, JournalError
from mlrelay._protocol.batches import KIND_LINKED_METRIC, KIND_METRIC, Entry

from .damage import is_damage
from .journal import Journal, RunRecord

__all__ = ["MAX_RECOVERIES", "damaged_journals", "needs_recovery", "recover"]

logger = logging.getLogger("mlrelay.pipeline")

MAX_RECOVERIES = 3
_SQLITE_IOERR = 10
_CHUNK = 10_000


def needs_recovery(exc: BaseException) -> bool:
    """Whether a journal failure means the file is damaged (not busy, full or read-only)."""
    if isinstance(exc, JournalDamagedError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    io_error = isinstance(code, int) and code & 0xFF == _SQLITE_IOERR
    return is_damage(exc) or (isinstance(exc, sqlite3.OperationalError) and io_error)


def damaged_journals(path: Path) -> list[Path]:
    """The damaged journals set aside beside ``path``, oldest first."""
    return sorted(path.parent.glob("journal.damaged-*.db"))


def recover(journal: Journal, reason: str) -> bool:
    """Move the damaged journal aside and continue in a fresh one (see the module
    docstring); False if this process already recovered :data:`MAX_RECOVERIES` times or
    the recovery failed (logged; it never raises: it runs on the writer thread)."""
    if journal.recoveries >= MAX_RECOVERIES:
        return False
    journal.recoveries += 1
    journal.salvaging = True
    try:
        return _recover(journal, reason)
    except Exception:
        logger.exception("mlrelay: could not recover from the damaged journal at %s", journal.path)
        return False
    finally:
        journal.salvaging = False


def _recover(journal: Journal, reason: str) -> bool:
    """The steps of :func:`recover`."""
    try:
        runs = journal.runs(mine=True)
    except (sqlite3.Error, JournalError):
        runs = []
    if journal.unreadable_runs or not runs:  # the records could not all be read
        read = {r.local_id for r in runs}
        runs += [r for r in journal.added.values() if r.local_id not in read and not r.final_sent]
    aside = _move_aside(journal)
    try:
        fresh = Journal(journal.path, fsync=journal.fsync)
        if journal.recent is not None:
            fresh.keep_recent(journal.recent.capacity)
    except Exception:
        logger.exception("mlrelay: could not create a fresh journal at %s", journal.path)
        return False
    try:
        carried = sum(_carry(journal, fresh, run, aside) for run in runs)
        with contextlib.suppress(sqlite3.Error):
            for uri, capabilities in journal.servers():
                fresh.record_server(uri, capabilities)
    finally:
        fresh.close()
    journal.reopen()
    logger.warning(
        "mlrelay: the journal at %s is damaged (%s)%s; logging continues in a fresh journal "
        "at the same path, with %d undelivered entries of this process's %d run(s) carried "
        "over; `mlrelay status` shows what the damaged journal still holds and `mlrelay "
        "sync` sends what can be read from it",
        journal.path,
        reason,
        f" and was moved to {aside}" if aside else "",
        carried,
        len(runs),
    )
    return True


def _move_aside(journal: Journal) -> Path | None:
    """Rename the damaged journal (and its -wal and -shm); None if another process did."""
    path = journal.path
    try:
        if os.stat(path).st_ino != journal.inode:
            return None  # already replaced by another recovering process
    except FileNotFoundError:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"journal.damaged-{stamp}-{os.getpid()}.db")
    for suffix in ("-wal", "-shm", ""):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def _carry(damaged: Journal, fresh: Journal, run: RunRecord, aside: Path | None) -> int:
    """Copy one run and its readable undelivered entries; how many entries."""
    fresh.note_carried(run.local_id, aside or damaged.path)
    fresh.add_run(
        local_id=run.local_id,
        tracking_uri=run.tracking_uri,
        experiment_id=run.experiment_id,
        experiment_name=run.experiment_name,
        run_name=run.run_name,
        start_time=run.start_time,
        create_tags=run.create_tags,
        server_run_id=run.server_run_id,
        offline=run.offline,
    )
    if run.status is not None and run.end_time is not None:
        fresh.end_run(run.local_id, run.status, run.end_time)
    carried, after = 0, run.acked_seq
    while True:
        try:
            entries = damaged.pending(run.local_id, after, _CHUNK)
        except sqlite3.Error as exc:
            logger.warning(
                "mlrelay: stopped reading run %s from %s: %s", run.local_id, damaged.path, exc
            )
            return carried
        if not entries:
            return carried
        fresh.append([_row(run.local_id, e) for e in entries])
        carried += len(entries)
        after = entries[-1].seq


def _row(local_id: str, e: Entry) -> tuple[str, int, str, object, int | None, int | None]:
    """An entry read back, as :meth:`Journal.append` takes it."""
    if e.kind == KIND_METRIC and e.link is not None:
        return local_id, KIND_LINKED_METRIC, e.key, (e.value, e.link), e.timestamp, e.step
    return local_id, e.kind, e.key, e.value, e.timestamp, e.step
