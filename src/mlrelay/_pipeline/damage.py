"""Reading a damaged journal: every row that can be read, the ranges that cannot, and a
bounded integrity check.

A journal file can be damaged (a disk or file-system error, a bad copy, a tool writing
into it). SQLite then answers "database disk image is malformed" for each statement whose
b-tree walk touches a damaged page, while the other pages stay readable. So a range query
that fails is split in halves, recursively, until the rows that cannot be read are
isolated: every readable row is returned, in order, and each unreadable stretch of keys
(seq or rowid) is reported, so what is lost can be said exactly. A damaged page costs
about two queries per level of bisection, each failing fast.

The integrity check is SQLite's ``PRAGMA quick_check``, bounded in time by a progress
handler: on a large journal it stops at the deadline and says so rather than hanging
``mlrelay status``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Health", "Span", "is_damage", "quick_check", "readable_rows"]

Span = tuple[int, int]
"""An inclusive range of keys (``first``, ``last``)."""

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_IOERR_SHORT_READ = 10 | (2 << 8)


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error says the file is damaged (not busy, full or unopenable)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (
        code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or code == _SQLITE_IOERR_SHORT_READ
    ):
        return True  # (a short read: the file, or its log, is shorter than it should be)
    text = str(exc)
    # (The last: text that is not UTF-8, which mlrelay never writes: damaged bytes.)
    return "malformed" in text or "not a database" in text or "Could not decode" in text


def readable_rows(
    db: sqlite3.Connection,
    query: str,
    single: str,
    args: tuple[Any, ...],
    span: Span,
    limit: int,
    *,
    failures: int = 20_000,
) -> tuple[list[tuple[Any, ...]], list[Span]]:
    """The rows of ``query`` that can be read, in key order, and the key spans that cannot.

    Args:
        db: the connection.
        query: a SELECT taking ``(*args, first, last, limit)`` that returns the rows whose
            key is within ``first..last``, in key order, at most ``limit`` of them; each
            row's first column is its key.
        single: the same SELECT for one key, taking ``(*args, key)``.
        args: their leading arguments.
        span: the key range to read.
        limit: stop once this many rows were read (spans found before them are reported).
        failures: how many failed queries to spend (about a second); a file damaged
            throughout would otherwise be probed key by key. What is left unread then is
            reported as one span.

    Raises:
        sqlite3.Error: a failure that is not damage (busy, I/O), raised as it came.
    """
    rows: list[tuple[Any, ...]] = []
    lost: list[Span] = []
    todo = [span]  # a stack: the left half is read before the right one
    while todo and len(rows) < limit:
        if failures <= 0:  # damaged throughout: give up on what is left
            lost.append((min(a for a, _ in todo), max(b for _, b in todo)))
            break
        first, last = todo.pop()
        read = len(rows)
        # Row by row: the rows read before the damaged page are kept.
        if _extend(rows, db, query, (*args, first, last, limit - read)) and _in_order(
            rows, read, first, last
        ):
            continue
        failures -= 1
        if len(rows) > read:
            # The damage lies after the last row read: try the rest again, as a whole.
            if int(rows[-1][0]) < last:
                todo.append((int(rows[-1][0]) + 1, last))
        elif first < last:
            middle = (first + last) // 2
            todo += [(middle + 1, last), (first, middle)]
        # One key: look it up alone (a range scan also steps to the next row, which may
        # be the damaged one).
        elif not (_extend(rows, db, single, (*args, first)) and _in_order(rows, read, first, last)):
            failures -= 1
            if lost and lost[-1][1] == first - 1:
                lost[-1] = (lost[-1][0], first)
            else:
                lost.append((first, first))
    return rows, lost


def _in_order(rows: list[tuple[Any, ...]], read: int, first: int, last: int) -> bool:
    """Whether the rows from ``read`` on have increasing keys within ``first..last``; if
    not (a damaged page SQLite did not notice), they are dropped from the first wrong one
    and False is returned, so the range is treated as damaged."""
    previous = first - 1
    for i in range(read, len(rows)):
        key = int(rows[i][0])
        if not previous < key <= last:
            del rows[i:]
            return False
        previous = key
    return True


def _extend(
    rows: list[tuple[Any, ...]], db: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> bool:
    """Append the rows of one query as they come; False if it met damage (the rows read
    before it are kept; other errors are raised)."""
    try:
        rows.extend(db.execute(sql, params))
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return False
    except MemoryError:  # SQLITE_NOMEM from a damaged record claiming a huge size
        return False
    return True


@dataclass(frozen=True)
class Health:
    """What the integrity check found.

    Attributes:
        ok: SQLite found nothing wrong (only meaningful when ``finished``).
        finished: the check ran to the end within its time bound.
        findings: SQLite's words for each problem (at most 20), or why the check stopped.
        seconds: how long the check took.
    """

    ok: bool
    finished: bool
    findings: tuple[str, ...]
    seconds: float


def quick_check(db: sqlite3.Connection, timeout: float) -> Health:
    """Run ``PRAGMA quick_check`` for at most ``timeout`` seconds."""
    started = time.monotonic()
    stop_at = started + timeout

    def past_deadline() -> int:
        return int(time.monotonic() > stop_at)

    db.set_progress_handler(past_deadline, 10_000)
    try:
        found = [str(row[0]) for row in db.execute("PRAGMA quick_check(20)").fetchall()]
    except sqlite3.OperationalError as exc:
        seconds = time.monotonic() - started
        if "interrupted" in str(exc):
            return Health(False, False, (f"not finished within {timeout:g} s",), seconds)
        return Health(False, True, (str(exc),), seconds)
    except sqlite3.DatabaseError as exc:  # damaged where the check itself starts
        return Health(False, True, (str(exc),), time.monotonic() - started)
    except MemoryError:  # SQLITE_NOMEM: a damaged page claiming a huge size
        found = ["out of memory reading a page (a damaged size field)"]
        return Health(False, True, tuple(found), time.monotonic() - started)
    finally:
        db.set_progress_handler(None, 0)
    seconds = time.monotonic() - started
    return Health(found == ["ok"], True, tuple(f for f in found if f != "ok"), seconds)
