"""The ``mlrelay`` command: ``login``, ``logout``, ``doctor``, ``sync``, ``status``, ``purge``.

``login`` stores a token for a tracking host in the OS keyring (never in a file of
ours); ``logout`` removes it; ``doctor`` shows where every setting came from, whether
the server answers and whether it accepts the credentials, and never prints a secret.
``sync`` sends what the journal holds for runs no live process is sending; ``status``
shows what is pending; ``purge`` reclaims space. Exit codes: 0 all good, 1 a check
failed or something is left, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeAlias

from . import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    Client,
    ConfigurationError,
    JournalDamagedError,
    MlrelayError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
    __version__,
)
from ._config import Settings, host_of, resolve
from ._credentials import (
    auth_scheme,
    keyring_backend_name,
    keyring_delete,
    keyring_lookup,
    keyring_store,
)
from ._errors import TLSVerificationError, wrong_address

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._pipeline.journal import Damage, Journal, RunStatus
    from ._pipeline.sync import PlannedRun, RunResult

__all__ = ["main"]

_DESCRIPTION = """\
mlrelay: log ML experiments to any MLflow-compatible tracking server.

Settings are resolved in this order: command-line options, the environment
(MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN, MLRELAY_*),
a .env file in the working directory, the OS keyring (tokens stored by `mlrelay login`),
then defaults. See .env.example for every variable.
"""


def _host(args: argparse.Namespace) -> str:
    uri = args.tracking_uri or resolve({"keyring": False}).tracking_uri
    if not uri:
        raise ConfigurationError(
            "no tracking host: pass --tracking-uri URI or set MLFLOW_TRACKING_URI"
        )
    return host_of(uri)


def _read_token(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.token_stdin or not stdin.isatty():
        token = stdin.readline().strip()
    else:
        token = getpass.getpass("Token (input hidden): ").strip()
    if not token:
        raise ConfigurationError("no token given: type it at the prompt or pipe it on stdin")
    return token


def _cmd_login(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    host = _host(args)
    token = _read_token(args, stdin)
    keyring_store(host, token, username=args.username)
    who = f" as {args.username}" if args.username else ""
    print(f"Stored a token for {host}{who} in the keyring ({keyring_backend_name()}).", file=out)
    return 0


def _cmd_logout(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    host = _host(args)
    if keyring_delete(host):
        print(f"Removed the stored token for {host}.", file=out)
    else:
        print(f"No stored token for {host}.", file=out)
    return 0


def _cmd_doctor(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    explicit = {"tracking_uri": args.tracking_uri} if args.tracking_uri else {}
    settings = resolve(explicit, keyring_lookup=keyring_lookup)
    print(f"mlrelay {__version__}", file=out)
    print("Settings (value, then where it came from):", file=out)
    for name, source in settings.sources.items():
        value = getattr(settings, name)
        if name in {"password", "token"}:
            shown = "set (hidden)" if value is not None else "not set"
        else:
            shown = "not set" if value is None else str(value)
        print(f"  {name:<17} {shown:<40} {source}", file=out)
    scheme = auth_scheme(settings)
    print(f"Authentication: {scheme or 'none'}", file=out)
    print(f"Keyring backend: {keyring_backend_name() or 'none available'}", file=out)
    if not settings.tracking_uri:
        print("FAIL no tracking URI configured (set MLFLOW_TRACKING_URI)", file=out)
        return 1
    quick = {"max_retries": 1, "retry_budget": 10.0, "timeout": min(settings.timeout, 10.0)}
    with Client(**explicit, **quick) as client:  # type: ignore[arg-type]
        started = time.perf_counter()
        try:
            version = client.server_version()
            next(client.search_experiments(max_results=1, page_size=1), None)
        except (APIConnectionError, TLSVerificationError) as exc:
            print(f"FAIL {_no_connection(exc, client.tracking_uri, quick['timeout'])}", file=out)
            return 1
        except NotFoundError as exc:
            if exc.error_code != "ENDPOINT_NOT_FOUND":
                raise
            print(f"FAIL {wrong_address(client.tracking_uri, exc)}", file=out)
            return 1
        except UnexpectedResponseError as exc:
            print(f"FAIL the server's answer is not MLflow's: {exc}", file=out)
            return 1
        except AuthenticationError as exc:
            hint = "check the token" if scheme else "set credentials or run `mlrelay login`"
            print(f"OK   server reachable at {client.tracking_uri}", file=out)
            print(f"FAIL credentials rejected (HTTP {exc.status_code}); {hint}", file=out)
            return 1
        except PermissionDeniedError as exc:
            print(f"OK   server reachable at {client.tracking_uri}", file=out)
            print(f"FAIL credentials accepted but lack permission: {exc.server_message}", file=out)
            return 1
        except APIError as exc:
            print(f"FAIL the server answered with an error: {exc}", file=out)
            return 1
        elapsed = (time.perf_counter() - started) * 1000
        server = version or "unknown version"
        print(
            f"OK   server reachable at {client.tracking_uri} (MLflow {server}, {elapsed:.0f} ms)",
            file=out,
        )
        print(f"OK   credentials accepted ({scheme or 'no authentication needed'})", file=out)
    return 0


def _no_connection(exc: MlrelayError, uri: str, timeout: float) -> str:
    """What ``doctor`` says when a request to the server got no answer."""
    if isinstance(exc, TLSVerificationError):
        return str(exc)
    if isinstance(exc, APITimeoutError) and exc.request_sent:
        return (
            f"the server at {uri} accepted the connection but did not answer within "
            f"{timeout:g} s (a read timeout; MLFLOW_HTTP_REQUEST_TIMEOUT sets it): {exc}"
        )
    if isinstance(exc, APITimeoutError):
        return f"no connection to {uri} within {timeout:g} s (connect timeout): {exc}"
    return f"server unreachable at {uri}: {exc}"


def _journal_path() -> Path:
    from ._pipeline.journal import default_home

    settings = resolve({"keyring": False})
    return Path(settings.home or default_home()) / "journal.db"


def _open_journal(out: TextIO, *, quiet: bool = False) -> Journal | None:
    """The journal, or None (said on ``out`` unless ``quiet``) when there is none."""
    from ._pipeline.journal import Journal

    path = _journal_path()
    if not path.exists():
        if not quiet:
            print(f"No journal at {path}: nothing was logged with this MLRELAY_HOME.", file=out)
        return None
    # Without an fsync per commit: the commands only move watermarks and claims, and a
    # lost one costs one request sent again (deduplicated by the server).
    return Journal(path, fsync="never")


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


class _SyncProgress:
    """Progress of a sync: a live bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, out: TextIO, runs: int, entries: int, *, tty: bool, every: float = 5.0):
        self.out, self.runs, self.entries, self.every = out, runs, entries, every
        self.done_runs = self.sent = self.bytes = 0
        self.started = self._last = time.monotonic()
        self._bar: tqdm[NoReturn] | None = None
        if tty and entries:
            from tqdm import tqdm

            self._bar = tqdm(
                total=entries, unit=" entries", unit_scale=True, file=out, dynamic_ncols=True
            )
            self._postfix()

    def _postfix(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"runs {self.done_runs}/{self.runs}, {_size(self.bytes)}")

    def advance(self, entries: int, size: int) -> None:
        """Count an acknowledged request."""
        self.sent += entries
        self.bytes += size
        if self._bar is not None:
            self._bar.update(entries)
            self._postfix()
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._line()

    def run_done(self) -> None:
        """Count a run the sync finished with."""
        self.done_runs += 1
        if self._bar is not None:
            self._postfix()

    def _line(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.sent / elapsed
        left = max(self.entries - self.sent, 0)
        eta = f"{left / rate:.0f} s" if rate > 0 else "unknown"
        share = 100 * self.sent / self.entries if self.entries else 100
        print(
            f"sync: {self.sent:,}/{self.entries:,} entries ({share:.0f}%), "
            f"runs {self.done_runs}/{self.runs}, {_size(self.bytes)}, "
            f"{rate:,.0f} entries/s, ETA {eta}",
            file=self.out,
            flush=True,
        )

    def close(self) -> None:
        """End the bar (a terminal) or print the last line (otherwise)."""
        if self._bar is not None:
            self._bar.close()
        elif self.sent:
            self._line()


def _cmd_sync(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    journal = _open_journal(out)
    if journal is None:
        return 0
    try:
        code = _sync(journal, args, out)
        carried = _carried(journal)
    finally:
        journal.close()
    aside = _damaged_beside(journal.path)
    if carried is None:  # (the journal in use is damaged there)
        if not aside:
            return code
        print(f"\nDamaged journals set aside, not synced: {', '.join(map(str, aside))}", file=out)
        print(f"  {_UNREADABLE_TABLE['carried']}", file=out)
        return 1
    # Then what damaged journals set aside by logging processes still hold (without the
    # runs those processes carried into this journal: they were sent from it).
    for path in aside:
        print(f"\nDamaged journal set aside: {path}", file=out)
        code = max(code, _sync_at(path, args, out, carried))
    return code


def _carried(journal: Journal) -> set[str] | None:
    """The runs carried into ``journal`` out of damaged journals; None if that record
    cannot be read (a damaged journal)."""
    try:
        return journal.carried()
    except JournalDamagedError:
        return None


def _sync_at(path: Path, args: argparse.Namespace, out: TextIO, carried: set[str]) -> int:
    """Sync one journal set aside; 1 (with the reason) if it cannot be opened."""
    from ._pipeline.journal import Journal

    try:
        journal = Journal(path, fsync="never")
    except MlrelayError as exc:
        print(f"  cannot be read: {exc}", file=out)
        return 1
    try:
        return _sync(journal, args, out, carried)
    finally:
        journal.close()


def _sync(
    journal: Journal, args: argparse.Namespace, out: TextIO, carried: Collection[str] = ()
) -> int:
    """Plan, then show (``--dry-run``) or send the runs; the exit code of ``mlrelay sync``."""
    from ._pipeline.sync import run_sync

    planned = _plan_sync(journal, args, out, carried)
    if not planned:
        if args.retarget_from:
            print(
                f"Nothing to sync: no run to move is recorded for {args.retarget_from}.", file=out
            )
        elif not _say_elsewhere(journal, args.tracking_uri, out):
            print("Nothing to sync: every run in the journal is delivered.", file=out)
        return 0
    entries = sum(p.pending + (p.rejected if args.retry_rejected else 0) for p in planned)
    if args.dry_run:
        _print_dry_run(planned, entries, out)
        return 0
    tty = out.isatty() if hasattr(out, "isatty") else False
    progress = _SyncProgress(out, len(planned), entries, tty=tty)
    settings = resolve({"keyring": False})
    client_for = _sync_client_factory(settings)
    try:
        results = run_sync(
            journal,
            planned,
            client_for,
            progress=progress.advance,
            on_run=lambda _result: progress.run_done(),
            retry_rejected=args.retry_rejected,
            max_in_flight=settings.max_in_flight,
        )
    finally:
        progress.close()
    code = _report_sync(results, progress, out)
    if not args.retarget_from:
        _say_elsewhere(journal, args.tracking_uri, out)
    return code


def _say_elsewhere(journal: Journal, tracking_uri: str | None, out: TextIO) -> bool:
    """Name the undelivered runs a sync to ``tracking_uri`` did not consider; any?"""
    from ._pipeline.sync import pending_elsewhere

    if not tracking_uri:
        return False
    elsewhere = pending_elsewhere(journal, tracking_uri)
    for uri, count in elsewhere.items():
        print(
            f"Not considered: {count} run(s) not delivered are recorded for {uri}; "
            f"`mlrelay sync --tracking-uri {uri}` sends them there, or, if that address was "
            f"wrong, `mlrelay sync --tracking-uri {tracking_uri} --from {uri}` sends them here.",
            file=out,
        )
    return bool(elsewhere)


def _plan_sync(
    journal: Journal, args: argparse.Namespace, out: TextIO, carried: Collection[str] = ()
) -> list[PlannedRun]:
    """The runs to sync; a ``--run`` the journal has nothing pending for is said so."""
    from ._pipeline.sync import plan_sync

    default_uri = args.tracking_uri or resolve({"keyring": False}).tracking_uri
    planned = plan_sync(
        journal,
        tracking_uri=args.tracking_uri,
        default_uri=default_uri,
        run_ids=args.run or (),
        retry_rejected=args.retry_rejected,
        retarget_from=args.retarget_from,
        carried=carried,
    )
    if args.run:
        known = {p.run.local_id for p in planned} | {p.run.server_run_id for p in planned}
        for wanted in args.run:
            if wanted not in known:
                print(f"run {wanted}: not pending in {journal.path}", file=out)
    return planned


def _print_dry_run(planned: Sequence[PlannedRun], entries: int, out: TextIO) -> None:
    """What ``sync --dry-run`` shows: each run, where it would go and what it would send."""
    print(f"Would sync {len(planned)} run(s), {entries:,} entries:", file=out)
    for p in planned:
        where = p.destination or "no tracking URI"
        target = p.run.server_run_id or "new run"
        what = f"{p.pending:,} entries" + (
            f", then status {p.run.status or 'KILLED'}" if not p.run.final_sent else ""
        )
        skip = f" (skipped: {p.skip_reason})" if p.skip_reason else ""
        print(f"  {p.run.local_id} -> {target} on {where}: {what}{skip}", file=out)


def _sync_client_factory(settings: Settings) -> Callable[[str], Client]:
    """A client per server for a sync: the configured retries, at most 60 s of them per call."""
    return lambda uri: Client(
        tracking_uri=uri,
        max_retries=settings.max_retries,
        retry_budget=min(settings.retry_budget, 60.0),
    )


def _report_sync(results: Sequence[RunResult], progress: _SyncProgress, out: TextIO) -> int:
    """Print what became of each run and a summary; 1 if anything is left, else 0."""
    left = 0
    for r in results:
        target = r.server_run_id or "not created"
        if r.live:
            print(f"run {r.local_id}: skipped, {r.reason}", file=out)
            continue
        if r.done:
            print(f"run {r.local_id} -> {target}: done ({r.sent:,} entries sent)", file=out)
            continue
        left += 1
        if r.lost:
            ended = "ended" if r.final_sent else "not ended"
            print(
                f"run {r.local_id} -> {target}: {r.sent:,} entries sent, {ended}; LOST: "
                f"{_lost_words(r.lost)} could not be read from the damaged journal",
                file=out,
            )
            if r.reason is None and r.left == 0 and r.rejected == 0:
                continue
        why = r.reason or (
            f"{r.rejected:,} entries rejected by the server (`mlrelay status` shows why; "
            "`mlrelay sync --retry-rejected` sends them again)"
            if r.rejected
            else f"{r.left:,} entries left"
        )
        print(f"run {r.local_id} -> {target}: NOT DONE: {why}", file=out)
    print(
        f"Synced {sum(r.done for r in results)} of {len(results)} run(s); "
        f"{progress.sent:,} entries "
        f"sent in {time.monotonic() - progress.started:.1f} s.",
        file=out,
    )
    return 1 if left else 0


def _cmd_status(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    journal = _open_journal(out, quiet=args.json)  # --json: JSON only, nothing before it
    if journal is None:
        if args.json:
            print(json.dumps({"journal": str(_journal_path()), "exists": False}), file=out)
        return 0
    try:
        report = _status_report(journal)
        carried = _carried(journal) or set()  # (unreadable: the report names it)
    finally:
        journal.close()
    aside = [_status_report_at(path, carried) for path in _damaged_beside(journal.path)]
    code = 0 if all(r["integrity"]["ok"] for r in [report, *aside]) else 1
    if args.json:
        print(json.dumps({**report, "damaged_journals": aside}, indent=2), file=out)
        return code
    _print_status(report, out)
    for other in aside:
        print(f"\nDamaged journal set aside: {other['journal']}", file=out)
        _print_status(other, out)
    return code


def _damaged_beside(path: Path) -> list[Path]:
    """Damaged journals a logging process moved aside (``journal.damaged-*.db``)."""
    from ._pipeline.recovery import damaged_journals

    return damaged_journals(path)


def _status_report(journal: Journal) -> dict[str, Any]:
    """What ``mlrelay status`` says about one journal, as its JSON output has it."""
    rows = journal.status()
    damage = journal.check(timeout=_CHECK_TIMEOUT)
    return {
        "journal": str(journal.path),
        "exists": True,
        "size_bytes": journal.size_on_disk(),
        "integrity": _integrity_of(damage, journal.entries_without_record()),
        "runs": _with_set_aside([_status_of(st) for st in rows], journal),
    }


def _status_report_at(path: Path, carried: set[str]) -> dict[str, Any]:
    """The status report of a journal set aside, without the runs carried out of it; one
    saying why if it cannot be opened."""
    from ._pipeline.journal import Journal

    try:
        journal = Journal(path, fsync="never")
    except MlrelayError as exc:
        return {
            "journal": str(path),
            "exists": True,
            "integrity": {"ok": False, "checked": False, "findings": [str(exc)], "seconds": 0},
            "runs": [],
        }
    try:
        report = _status_report(journal)
    finally:
        journal.close()
    report["carried_runs"] = [r["local_id"] for r in report["runs"] if r["local_id"] in carried]
    report["runs"] = [r for r in report["runs"] if r["local_id"] not in carried]
    return report


def _print_status(report: dict[str, Any], out: TextIO) -> None:
    """One journal's part of ``mlrelay status``."""
    runs = report["runs"]
    size = f" ({_size(report['size_bytes'])} on disk)" if "size_bytes" in report else ""
    print(f"Journal: {report['journal']}{size}", file=out)
    _print_integrity(report["integrity"], out)
    synced = sum(1 for r in runs if r["synced"])
    print(f"Runs: {len(runs)} in all, {synced} synced", file=out)
    if report.get("carried_runs"):
        print(
            f"  (and {len(report['carried_runs'])} run(s) carried into the journal in use, "
            "which sends them)",
            file=out,
        )
    by_uri: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if not r["synced"] or r["lost"] or r.get("set_aside"):
            by_uri.setdefault(r["tracking_uri"] or "(no tracking URI)", []).append(r)
    for uri, items in by_uri.items():
        _print_pending(uri, items, out)
    if synced < len(runs):
        print("\nRun `mlrelay sync` to send what exited processes left.", file=out)


_CHECK_TIMEOUT = 10.0
"""Seconds ``mlrelay status`` gives SQLite's integrity check (it reads the whole file)."""


def _lost_words(spans: Sequence[tuple[int, int, int | None]]) -> str:
    """Lost entries as a user reads them: how many, and their seq spans."""
    counts = [n for _, _, n in spans]
    how_many = (
        f"{sum(n for n in counts if n is not None):,} entries"
        if None not in counts
        else "an unknown number of entries"
    )
    where = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b, _ in spans)
    return f"{how_many} (seq {where})"


def _integrity_of(damage: Damage, unsendable: dict[str, int]) -> dict[str, Any]:
    """The integrity part of ``mlrelay status``, as its JSON output has it."""
    health = damage.health
    return {
        "ok": not damage.damaged and not unsendable,
        "checked": health.finished,
        "seconds": round(health.seconds, 3),
        "findings": list(health.findings),
        "unreadable_entries": {
            run: [{"first_seq": a, "last_seq": b, "count": n} for a, b, n in spans]
            for run, spans in damage.unreadable.items()
        },
        "unreadable_run_records": len(damage.unreadable_runs),
        "entries_of_unreadable_runs": unsendable,
        "unreadable_tables": list(damage.unreadable_tables),
    }


def _print_integrity(integrity: dict[str, Any], out: TextIO) -> None:
    """The integrity lines of ``mlrelay status``: OK, or what is damaged and what it costs."""
    took = f"{integrity['seconds']:.2f} s"
    if integrity["ok"]:
        print(f"Integrity: OK (SQLite quick_check, {took})", file=out)
        return
    if not integrity["checked"]:
        print(f"Integrity: NOT CHECKED: {'; '.join(integrity['findings'])}", file=out)
    else:
        found = "; ".join(integrity["findings"]) or "unreadable records"
        print(f"Integrity: DAMAGED (SQLite quick_check: {found})", file=out)
    for run, spans in integrity.get("unreadable_entries", {}).items():
        words = _lost_words([(s["first_seq"], s["last_seq"], s["count"]) for s in spans])
        print(
            f"  run {run}: {words} cannot be read; `mlrelay sync` sends the rest, "
            "ends the run and reports these as lost",
            file=out,
        )
    if integrity.get("unreadable_run_records"):
        held = sum(integrity["entries_of_unreadable_runs"].values())
        print(
            f"  {integrity['unreadable_run_records']} stretch(es) of run records cannot be "
            f"read; {held:,} entries of {len(integrity['entries_of_unreadable_runs'])} "
            "run(s) without a readable record cannot be sent",
            file=out,
        )
    for table in integrity.get("unreadable_tables", []):
        print(f"  {_UNREADABLE_TABLE[table]}", file=out)


_UNREADABLE_TABLE = {
    "rejected": "the record of entries the server rejected cannot be read: they are not "
    "listed below, and `mlrelay sync --retry-rejected` cannot send them again",
    "refused": "the count of entries refused for lack of disk space cannot be read: none "
    "are listed below",
    "lost": "the record of entries found unreadable earlier cannot be read",
    "servers": "the servers' recorded capabilities cannot be read: `mlrelay sync` asks "
    "the servers again",
    "carried": "the record of runs carried out of damaged journals cannot be read: "
    "`mlrelay sync` leaves the journals set aside unsynced (it could send those runs twice)",
}
"""What each bookkeeping table that cannot be read costs, as ``mlrelay status`` says it."""


def _status_of(st: RunStatus) -> dict[str, Any]:
    """One run of ``mlrelay status``, as its JSON output has it."""
    rec = st.run
    return {
        "local_id": rec.local_id,
        "server_run_id": rec.server_run_id,
        "tracking_uri": rec.tracking_uri or None,
        "experiment": rec.experiment_name or rec.experiment_id,
        "run_name": rec.run_name,
        "offline": rec.offline,
        "status": rec.status,
        "synced": rec.final_sent and st.pending == 0 and not st.rejected,
        "pending_entries": st.pending,
        "final_status_pending": rec.status is not None and not rec.final_sent,
        "oldest_pending": st.oldest_pending,
        "owner_pid": rec.pid or None,  # None: released (an offline run ended, or a sync)
        "owner_alive": not rec.orphaned,
        "crashed": rec.orphaned and rec.status is None,
        "rejected": [{"first_seq": a, "last_seq": b, "message": m} for a, b, m in st.rejected],
        "refused_entries": st.refused,
        "lost": [{"first_seq": a, "last_seq": b, "count": n} for a, b, n in st.lost],
    }


def _with_set_aside(runs: list[dict[str, Any]], journal: Journal) -> list[dict[str, Any]]:
    """The runs' statuses, each with the entries its journal set aside (could not store),
    by key (one read of the journal for all runs)."""
    aside: dict[str, list[dict[str, str]]] = {}
    for local_id, key, _, reason in journal.set_aside_entries():
        aside.setdefault(local_id, []).append({"key": key, "reason": reason})
    for run in runs:
        run["set_aside"] = aside.get(run["local_id"], [])
    return runs


def _print_pending(uri: str, items: Sequence[dict[str, Any]], out: TextIO) -> None:
    """The pending runs of one tracking URI, as ``mlrelay status`` prints them."""
    total = sum(r["pending_entries"] for r in items)
    oldest = min((r["oldest_pending"] for r in items if r["oldest_pending"]), default=None)
    print(f"\n{uri}: {len(items)} run(s), {total:,} entries pending", file=out)
    if oldest is not None:
        print(f"  oldest pending entry: {_when(oldest)}", file=out)
    for r in items:
        state = "live" if r["owner_alive"] else "crashed" if r["crashed"] else "exited"
        # No owner: released by its process (an offline run it ended) or by a sync.
        owner = f"process {r['owner_pid']} {state}" if r["owner_pid"] else "no process holds it"
        print(
            f"  {r['local_id']} -> {r['server_run_id'] or 'not created yet'}: "
            f"{r['pending_entries']:,} pending, status {r['status'] or 'not ended'}, "
            f"{owner}" + (", offline" if r["offline"] else ""),
            file=out,
        )
        for rej in r["rejected"]:
            print(
                f"    rejected entries {rej['first_seq']}..{rej['last_seq']}: {rej['message']}",
                file=out,
            )
        if r["lost"]:
            words = _lost_words([(x["first_seq"], x["last_seq"], x["count"]) for x in r["lost"]])
            print(f"    lost: {words} could not be read from the damaged journal", file=out)
        for aside in r.get("set_aside", ()):
            print(
                f"    set aside (not journaled) entry {aside['key']!r}: {aside['reason']}",
                file=out,
            )
        if r["refused_entries"]:
            print(
                f"    {r['refused_entries']:,} entries refused (not journaled): the journal's "
                "disk budget (MLRELAY_MAX_JOURNAL_BYTES) was reached, or its disk was full "
                "or read-only",
                file=out,
            )


def _cmd_purge(args: argparse.Namespace, out: TextIO, _stdin: TextIO) -> int:
    if not (args.synced or args.force):
        raise ConfigurationError(
            "purge needs --synced (remove delivered data) or --force (also undelivered data)"
        )
    journal = _open_journal(out)
    if journal is None:
        return 0
    try:
        before = journal.size_on_disk()
        older = None if args.older_than is None else int(args.older_than * 86_400_000)
        runs, entries = journal.purge(older_than_ms=older, force=args.force)
        journal.vacuum()
        after = journal.size_on_disk()
    finally:
        journal.close()
    kept = "" if args.force else "; undelivered data is kept (use --force to drop it)"
    print(
        f"Removed {runs} run(s) and {entries:,} entries; the journal went from "
        f"{_size(before)} to {_size(after)}{kept}.",
        file=out,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlrelay", description=_DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mlrelay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND").add_parser
    _add_login(sub)
    _add_command(sub, "logout", "Remove the stored token for the tracking host.").set_defaults(
        func=_cmd_logout
    )
    _add_sync(sub)
    _add_status(sub)
    _add_purge(sub)
    _add_command(
        sub,
        "doctor",
        "Show the resolved settings and where each came from (never secrets), check that the\n"
        "server answers and that it accepts the credentials. Exit code 1 if a check fails.",
    ).set_defaults(func=_cmd_doctor)
    return parser


_AddParser: TypeAlias = Callable[..., argparse.ArgumentParser]
"""The ``add_parser`` of the subcommands' action (argparse keeps its class private)."""


def _add_command(sub: _AddParser, name: str, help_text: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, with the ``--tracking-uri`` option every command takes."""
    p = sub(name, help=help_text, description=help_text)
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="the tracking server (default: MLFLOW_TRACKING_URI); credentials are per host",
    )
    return p


def _add_login(sub: _AddParser) -> None:
    login = _add_command(
        sub,
        "login",
        "Store a token for the tracking host in the OS keyring. The token is read from a\n"
        "hidden prompt, or from stdin when piped (echo $TOKEN | mlrelay login).",
    )
    login.add_argument(
        "--username",
        help="user name for HTTP Basic auth (DagsHub: your user name); "
        "without it the token is sent as a Bearer token",
    )
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    login.set_defaults(func=_cmd_login)


def _add_sync(sub: _AddParser) -> None:
    sync = _add_command(
        sub,
        "sync",
        "Send what the journal ($MLRELAY_HOME/journal.db) holds for runs no live process is\n"
        "sending: offline runs, and runs of processes that exited or were killed. Each run is\n"
        "created once (found again by its client key), its entries are sent in order with\n"
        "their original timestamps and steps, then its final status; a run whose process\n"
        "died without ending it is ended KILLED. Safe to interrupt (Ctrl-C, kill, network\n"
        "loss): the next sync continues where this one stopped and sends nothing twice.\n"
        "Credentials come from the usual settings (MLFLOW_TRACKING_*, .env, keyring), never\n"
        "from the journal. Exit code 1 if anything is left, with the reason per run.",
    )
    sync.add_argument(
        "--run",
        action="append",
        metavar="RUN_ID",
        help="only this run (local or server id); repeat for several",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="show what would be sent; send nothing"
    )
    sync.add_argument(
        "--from",
        dest="retarget_from",
        metavar="OLD_URI",
        help="send the runs journaled for OLD_URI, an address that was wrong (a DagsHub URI\n"
        "without `.mlflow`), to --tracking-uri instead; each run is moved once, and a run\n"
        "already created on OLD_URI stays there",
    )
    sync.add_argument(
        "--retry-rejected",
        action="store_true",
        help="also send again the entries the server rejected before",
    )
    sync.set_defaults(func=_cmd_sync)


def _add_status(sub: _AddParser) -> None:
    status = _add_command(
        sub,
        "status",
        "Show what the journal holds: pending runs and entries per tracking URI, the oldest\n"
        "pending entry, the journal's size on disk, entries the server rejected (with its\n"
        "message), entries refused by the disk budget, and runs left by crashed processes.",
    )
    status.add_argument("--json", action="store_true", help="print JSON, for scripts")
    status.set_defaults(func=_cmd_status)


def _add_purge(sub: _AddParser) -> None:
    purge = _add_command(
        sub,
        "purge",
        "Reclaim disk space: remove delivered runs and entries from the journal. Undelivered\n"
        "data is never removed without --force (runs of live processes never are).",
    )
    purge.add_argument("--synced", action="store_true", help="remove what is delivered")
    purge.add_argument(
        "--older-than", type=float, metavar="DAYS", help="only runs that ended DAYS ago or more"
    )
    purge.add_argument(
        "--force",
        action="store_true",
        help="also remove undelivered runs of processes that are gone (their data is lost)",
    )
    purge.set_defaults(func=_cmd_purge)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    """Run the ``mlrelay`` command and return its exit code.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).
        out: where to print (stdout when None).
        stdin: where a piped token is read from (stdin when None).
    """
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        code: int = args.func(args, out, stdin or sys.stdin)
    except ConfigurationError as exc:
        print(f"mlrelay {args.command}: {exc}", file=sys.stderr)
        return 2
    except MlrelayError as exc:
        print(f"mlrelay {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlrelay {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file or directory the command cannot use
        print(f"mlrelay {args.command}: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:  # the journal failed where no finer message applies
        from ._pipeline.journal import journal_error

        print(
            f"mlrelay {args.command}: {journal_error(exc, _journal_path(), 'used')}",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
