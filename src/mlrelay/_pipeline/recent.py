"""The metric points a journal committed lately, kept in memory so the sender need not
read them back from SQLite (reading a point back cost more CPU than writing it).

The journal stays the record: :class:`RecentPoints` only proposes what a read would
return, and :meth:`~mlrelay._pipeline.journal.Journal.pending` checks the proposal
against the table (the run's count and sum of sequence numbers over the same range)
before it uses it, so an entry written by another process, purged, or anything this
cache does not know about sends the read to SQLite as before.

Per run, the points are kept in segments of compact arrays (40 bytes a point), in
sequence order, with *holes* where the run has entries that are not kept (params, tags,
linked points, points past the capacity): a proposal never crosses a hole. Points are
dropped once acknowledged. Pure logic, thread-safe.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlrelay._protocol.batches import KIND_METRIC, Entry

__all__ = ["CAPACITY", "RecentPoints"]

_RUN_AND_KIND = operator.itemgetter(0, 1)
_KEY, _STAMP, _STEP = operator.itemgetter(2), operator.itemgetter(4), operator.itemgetter(5)

CAPACITY = 1 << 20
"""The most points kept in memory per journal (about 40 MB); later ones are read back
from the journal until acknowledgements make room."""


@dataclass
class _Points:
    """Consecutive points of one run (no other entry of the run between them)."""

    seqs: array[int] = field(default_factory=lambda: array("q"))
    keys: list[str] = field(default_factory=list)
    values: array[float] = field(default_factory=lambda: array("d"))
    stamps: array[int] = field(default_factory=lambda: array("q"))
    steps: array[int] = field(default_factory=lambda: array("q"))
    head: int = 0
    """Index of the first point not acknowledged yet."""

    @property
    def last(self) -> int:
        return self.seqs[-1]

    def __len__(self) -> int:
        return len(self.seqs) - self.head


@dataclass
class _Hole:
    """Entries of the run from ``first`` to ``last`` that are not kept."""

    first: int
    last: int


class RecentPoints:
    """Recently committed metric points of each run, up to ``capacity`` in all."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.size = 0
        self._runs: dict[str, list[_Points | _Hole]] = {}
        self._lock = threading.Lock()

    def add(self, first_seq: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows ``(run, kind, key, value, timestamp, step)`` committed with the sequence
        numbers ``first_seq``, ``first_seq + 1``, ..."""
        if not rows:
            return
        with self._lock:
            run = rows[0][0]
            if (
                self.size + len(rows) <= self.capacity
                and set(map(_RUN_AND_KIND, rows)) == {(run, KIND_METRIC)}
                and self._add_points(run, first_seq, rows)
            ):
                return
            for i, row in enumerate(rows):  # mixed: one by one
                seq = first_seq + i
                if not (
                    row[1] == KIND_METRIC
                    and self.size < self.capacity
                    and self._add_points(row[0], seq, (row,))
                ):
                    self._add_hole(row[0], seq)

    def _segments(self, run: str, first_seq: int) -> list[_Points | _Hole]:
        """The run's segments, ready for entries from ``first_seq`` on (another thread's
        commit may reach :meth:`add` after a later one: what was kept is dropped, and the
        journal's check sends reads to it until the sender is past the gap)."""
        segments = self._runs.setdefault(run, [])
        if segments and _last(segments[-1]) >= first_seq:
            self.forget_locked(run)
            segments = self._runs.setdefault(run, [])
        return segments

    def _add_points(self, run: str, first_seq: int, rows: Sequence[tuple[Any, ...]]) -> bool:
        segments = self._segments(run, first_seq)
        if not segments or not isinstance(segments[-1], _Points):
            segments.append(_Points())
        points = segments[-1]
        assert isinstance(points, _Points)
        n = len(points.seqs)
        try:
            points.values.extend([r[3] + 0.0 for r in rows])  # -0.0 is read back as 0.0
            points.stamps.extend(map(_STAMP, rows))
            points.steps.extend(map(_STEP, rows))
        except (TypeError, OverflowError):  # not a plain point: keep the arrays aligned
            del points.values[n:], points.stamps[n:], points.steps[n:]
            if not len(points):
                segments.pop()
            return False
        points.seqs.extend(range(first_seq, first_seq + len(rows)))
        points.keys.extend(map(_KEY, rows))
        self.size += len(rows)
        return True

    def _add_hole(self, run: str, seq: int) -> None:
        segments = self._segments(run, seq)
        if segments and isinstance(segments[-1], _Hole):
            segments[-1].last = seq
        else:
            segments.append(_Hole(seq, seq))

    def take(self, run: str, after: int, limit: int) -> list[Entry]:
        """The ``limit`` kept points of ``run`` after seq ``after``, in order, or fewer when
        they are all the run has (empty: a read must go to the journal, which would give
        more, or a hole comes first)."""
        with self._lock:
            segments = self._runs.get(run, [])
            for n, segment in enumerate(segments):
                if isinstance(segment, _Hole):
                    if segment.last > after:
                        return []
                    continue
                if not len(segment) or segment.last <= after:
                    continue
                i = max(bisect.bisect_right(segment.seqs, after), segment.head)
                j = min(i + limit, len(segment.seqs))
                if j - i < limit and n < len(segments) - 1:
                    return []  # a hole follows: the journal gives the points and what follows
                return list(
                    map(
                        Entry._make,
                        zip(
                            segment.seqs[i:j],
                            itertools.repeat(KIND_METRIC),
                            segment.keys[i:j],
                            segment.values[i:j],
                            segment.stamps[i:j],
                            segment.steps[i:j],
                            itertools.repeat(None),
                        ),
                    )
                )
        return []

    def acknowledged(self, run: str, seq: int) -> None:
        """Forget the run's points and holes up to ``seq``."""
        with self._lock:
            segments = self._runs.get(run)
            while segments:
                segment = segments[0]
                if isinstance(segment, _Hole):
                    if segment.last > seq:
                        return
                    segments.pop(0)
                    continue
                head = bisect.bisect_right(segment.seqs, seq)
                self.size -= max(head - segment.head, 0)
                segment.head = max(head, segment.head)
                if len(segment):
                    if segment.head > 4096 and segment.head * 2 > len(segment.seqs):
                        _compact(segment)
                    return
                segments.pop(0)
            self._runs.pop(run, None)

    def forget(self, run: str) -> None:
        """Drop everything kept of ``run``."""
        with self._lock:
            self.forget_locked(run)

    def forget_locked(self, run: str) -> None:
        """:meth:`forget`, with the lock held."""
        for segment in self._runs.pop(run, ()):
            if isinstance(segment, _Points):
                self.size -= len(segment)


def _last(segment: _Points | _Hole) -> int:
    return segment.last


def _compact(points: _Points) -> None:
    """Free the memory of acknowledged points."""
    h = points.head
    for column in (points.seqs, points.values, points.stamps, points.steps):
        del column[:h]
    del points.keys[:h]
    points.head = 0
