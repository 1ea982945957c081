"""The points a journal keeps in memory for its sender (``recent.py``): what ``pending``
gives from memory is exactly what a read of the journal gives, whatever else writes to it."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.recent import RecentPoints
from mlrelay._protocol.batches import (
    KIND_LINKED_METRIC,
    KIND_METRIC,
    KIND_PARAM,
    Entry,
)
from tests.unit.test_journal import T0, add_run


def _point(run: str, seq: int, value: float = 0.5) -> tuple[Any, ...]:
    return (run, KIND_METRIC, "loss", value, T0 + seq, seq)


def _same(a: list[Entry], b: list[Entry]) -> bool:
    """Equal entry lists, NaN equal to NaN."""

    def norm(e: Entry) -> tuple[Any, ...]:
        value = "nan" if isinstance(e.value, float) and math.isnan(e.value) else e.value
        return (*e[:3], value, *e[4:])

    return [norm(e) for e in a] == [norm(e) for e in b]


def test_points_come_back_in_order_up_to_a_hole_and_go_once_acknowledged() -> None:
    """Points are proposed in seq order from the one after ``after``; an entry that is not
    kept (a param) ends the proposal; acknowledged points are forgotten."""
    recent = RecentPoints()
    recent.add(1, [_point("a", 1), _point("a", 2), _point("a", 3)])
    recent.add(4, [("a", KIND_PARAM, "lr", "0.1", None, None)])
    recent.add(5, [_point("a", 5)])
    assert [e.seq for e in recent.take("a", 0, 3)] == [1, 2, 3]
    assert [e.seq for e in recent.take("a", 1, 1)] == [2]
    # The journal gives more (the points and the param): a proposal of fewer is not made.
    assert recent.take("a", 0, 10) == []
    assert recent.take("a", 3, 10) == []  # the param at 4 is read from the journal
    assert [e.seq for e in recent.take("a", 4, 10)] == [5]
    recent.acknowledged("a", 3)
    assert recent.size == 1
    recent.acknowledged("a", 5)
    assert recent.size == 0
    assert recent.take("a", 0, 10) == []


def test_past_the_capacity_points_are_holes_until_room_is_made() -> None:
    """Points beyond the capacity are not kept (a hole): proposals stop before them."""
    recent = RecentPoints(capacity=2)
    recent.add(1, [_point("a", 1), _point("a", 2), _point("a", 3)])
    assert recent.size == 2
    assert [e.seq for e in recent.take("a", 0, 2)] == [1, 2]
    assert recent.take("a", 0, 10) == []
    assert recent.take("a", 2, 10) == []
    recent.acknowledged("a", 3)
    recent.add(4, [_point("a", 4)])
    assert [e.seq for e in recent.take("a", 3, 10)] == [4]


def test_a_commit_reported_after_a_later_one_drops_what_was_kept() -> None:
    """Two threads' commits may be reported out of order: the run's points are dropped
    rather than kept out of order."""
    recent = RecentPoints()
    recent.add(5, [_point("a", 5)])
    recent.add(3, [_point("a", 3)])
    assert [e.seq for e in recent.take("a", 0, 10)] == [3]  # 5 is gone: read from the journal


@pytest.fixture
def journals(tmp_path: Path) -> Iterator[tuple[Journal, Journal]]:
    """Two journals on one file: ours keeps points in memory, the other is another process."""
    ours = Journal(tmp_path / "journal.db")
    ours.keep_recent()
    other = Journal(tmp_path / "journal.db")
    yield ours, other
    ours.close()
    other.close()


def test_pending_takes_points_from_memory(journals: tuple[Journal, Journal]) -> None:
    """Once points are committed, ``pending`` gives them without reading them back (no
    SELECT of entries reaches SQLite, only the count that checks them)."""
    ours, _ = journals
    add_run(ours, "a")
    ours.append([_point("a", i, 1.0 / (i + 1)) for i in range(500)])
    statements: list[str] = []
    ours._db.set_trace_callback(statements.append)
    try:
        got = ours.pending("a", 0, 1000)
    finally:
        ours._db.set_trace_callback(None)
    assert len(got) == 500
    assert [e.step for e in got] == list(range(500))
    assert not any("ORDER BY seq" in s for s in statements), statements
    assert any("COUNT(*), SUM(seq)" in s for s in statements), statements


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from(["ours", "other"]),
            st.lists(
                st.tuples(
                    st.sampled_from(["a", "b"]),
                    st.sampled_from([KIND_METRIC, KIND_METRIC, KIND_PARAM, KIND_LINKED_METRIC]),
                    st.floats(allow_nan=True, allow_infinity=True),
                ),
                min_size=1,
                max_size=30,
            ),
        ),
        st.tuples(st.just("ack"), st.sampled_from(["a", "b"]), st.integers(0, 40)),
        st.tuples(st.just("read"), st.sampled_from(["a", "b"]), st.integers(0, 40)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS, st.integers(1, 50))
def test_what_memory_gives_is_what_the_journal_holds(
    ops: list[tuple[Any, ...]], limit: int
) -> None:
    """Random appends (ours and another process's, points, params, linked points, NaN,
    -0.0), acknowledgements and reads: every ``pending`` equals a plain read of the file,
    or, when another process wrote to the run, begins it (the rest comes next)."""
    with tempfile.TemporaryDirectory() as d:
        ours = Journal(Path(d) / "journal.db")
        ours.keep_recent(capacity=40)
        other = Journal(Path(d) / "journal.db")
        plain = Journal(Path(d) / "journal.db")
        try:
            for run in ("a", "b"):
                add_run(ours, run)
            acked = {"a": 0, "b": 0}
            shared: set[str] = set()  # runs another process wrote to

            def agrees(run: str, got: list[Entry], expected: list[Entry]) -> bool:
                if run in shared and expected:
                    return bool(got) and _same(got, expected[: len(got)])
                return _same(got, expected)

            step = 0
            for op in ops:
                if op[0] == "append":
                    rows: list[tuple[Any, ...]] = []
                    for run, kind, value in op[2]:
                        step += 1
                        if kind == KIND_PARAM:
                            rows.append((run, kind, f"p{step}", "v", None, None))
                        elif kind == KIND_LINKED_METRIC:
                            rows.append((run, kind, "m", (value, '{"model_id":"x"}'), T0, step))
                        else:
                            rows.append(
                                (run, kind, "m", -0.0 if step % 7 == 0 else value, T0, step)
                            )
                    (ours if op[1] == "ours" else other).append(rows)
                    if op[1] == "other":
                        shared.update(row[0] for row in rows)
                elif op[0] == "ack":
                    pending = plain.pending(op[1], acked[op[1]], op[2] + 1)
                    if pending:
                        acked[op[1]] = pending[-1].seq
                        ours.ack(op[1], acked[op[1]])
                else:
                    run = op[1]
                    after = acked[run] + op[2]
                    got = ours.pending(run, after, limit)
                    assert agrees(run, got, plain.pending(run, after, limit))
            for run in ("a", "b"):
                after = acked[run]
                while True:
                    got = ours.pending(run, after, limit)
                    assert agrees(run, got, plain.pending(run, after, limit))
                    if not got:
                        break
                    after = got[-1].seq
        finally:
            for j in (ours, other, plain):
                j.close()


def test_a_check_that_cannot_read_the_table_sends_the_read_to_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the check itself fails with a database error, ``pending`` reads the journal as
    it does without memory (where damage is handled) and still gives every point."""
    from mlrelay._pipeline import journal as journal_module

    journal = Journal(tmp_path / "journal.db")
    journal.keep_recent()
    add_run(journal, "a")
    journal.append([_point("a", i) for i in range(10)])
    monkeypatch.setattr(journal_module, "_COUNT_SUM_TABLE", "SELECT COUNT(*), SUM(x) FROM nowhere")
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    assert [e.step for e in journal.pending("a", 0, 100)] == list(range(10))
    assert any("ORDER BY seq" in s for s in statements)
    journal.close()
