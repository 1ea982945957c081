"""The write path: every value is checked at the call site, and the journal writer can never
be wedged by one entry (issue 13, items 1 and 2)."""

from __future__ import annotations

import contextlib
import decimal
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlrelay
import mlrelay.fluent as ml
from mlrelay import _validation as v
from mlrelay._pipeline import runs
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.pipeline import Pipeline, PipelineOptions
from mlrelay._pipeline.runs import session
from mlrelay._protocol.batches import KIND_LINKED_METRIC, KIND_METRIC, KIND_PARAM, KIND_TAG
from mlrelay.entities import Dataset, DatasetInput, InputTag, Param
from tests._timing import slack

SURROGATE = os.fsdecode(b"/data/train_\xff.csv")  # what Python gives for a non-UTF-8 name
T0 = 1_700_000_000_000


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fluent API offline, journaling into this test's MLRELAY_HOME; the journal's path."""
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    return Path(os.environ["MLRELAY_HOME"]) / "journal.db"


def journaled(path: Path) -> list[tuple[int, str, Any, Any]]:
    """(kind, key, value, step) of every journaled entry, in order."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, key, COALESCE(num, text), step FROM entries ORDER BY seq")
        return [tuple(r) for r in rows]


# --- call-site checks -------------------------------------------------------------------


@pytest.mark.parametrize("step", [2**63, 2**64, -(2**63) - 1, 10**30])
def test_fluent_log_metric_refuses_a_plain_int_step_beyond_int64(offline: Path, step: int) -> None:
    """log_metric(step=2**64) raises ValidationError naming the key; nothing is queued."""
    with ml.start_run():
        with pytest.raises(mlrelay.ValidationError, match="step for key 'x'") as info:
            ml.log_metric("x", 1.0, step=step)
        assert info.value.field == "step"
        ml.log_metric("x", 2.0, step=2**63 - 1)
        ml.log_metric("x", 3.0, step=-(2**63))
    assert [r[3] for r in journaled(offline)] == [2**63 - 1, -(2**63)]


def test_fluent_log_metrics_and_timestamps_are_checked_against_int64(offline: Path) -> None:
    """log_metrics' step and every timestamp beyond int64 raise ValidationError."""
    with ml.start_run():
        with pytest.raises(mlrelay.ValidationError, match="step"):
            ml.log_metrics({"a": 1.0}, step=2**64)
        with pytest.raises(mlrelay.ValidationError, match="timestamp"):
            ml.log_metric("a", 1.0, timestamp=2**63)
        with pytest.raises(mlrelay.ValidationError, match="timestamp"):
            ml.log_metrics({"a": 1.0}, timestamp=2**64)
    assert journaled(offline) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda: ml.log_param("data_path", SURROGATE),
        lambda: ml.log_params({"data_path": SURROGATE}),
        lambda: ml.set_tag("data_path", SURROGATE),
        lambda: ml.set_tags({"data_path": SURROGATE}),
    ],
    ids=["log_param", "log_params", "set_tag", "set_tags"],
)
def test_fluent_text_with_a_lone_surrogate_is_refused_naming_the_key(
    offline: Path, call: Callable[[], None]
) -> None:
    """A param or tag value holding a lone surrogate raises ValidationError naming the key."""
    with ml.start_run():
        with pytest.raises(mlrelay.ValidationError, match=r"'data_path'.*surrogate") as info:
            call()
        assert info.value.key == "data_path"
        assert "backslashreplace" in str(info.value)  # says how to convert it
    assert [r[1] for r in journaled(offline) if r[1] == "data_path"] == []


def test_run_names_descriptions_and_experiment_names_are_checked(offline: Path) -> None:
    """start_run's name, description and tags, and experiment names, refuse lone surrogates."""
    for call in (
        lambda: ml.start_run(run_name=SURROGATE),
        lambda: ml.start_run(description=SURROGATE),
        lambda: ml.start_run(tags={"t": SURROGATE}),
        lambda: ml.set_experiment(SURROGATE),
    ):
        with pytest.raises(mlrelay.ValidationError, match="surrogate"):
            call()
    assert ml.active_run() is None


def test_client_refuses_the_same_values_before_sending() -> None:
    """Client.log_param/set_tag/log_batch/create_run/update_run/log_inputs refuse them too,
    unsent, as a ValidationError (not pydantic's serialization error)."""
    with mlrelay.Client(tracking_uri="http://127.0.0.1:9") as c:  # nothing listens: unsent
        for call in (
            lambda: c.log_param("r", "data_path", SURROGATE),
            lambda: c.set_tag("r", "data_path", SURROGATE),
            lambda: c.log_batch("r", params=[Param("data_path", SURROGATE)]),
            lambda: c.log_metric("r", "x", 1.0, step=2**64),
            lambda: c.create_run("0", run_name=SURROGATE),
            lambda: c.update_run("r", end_time=2**64),
            lambda: c.log_inputs("r", [DatasetInput(Dataset(SURROGATE, "d1", "local", "{}"))]),
            lambda: c.log_inputs(
                "r",
                [
                    DatasetInput(
                        Dataset("ok", "d1", "local", "{}"),
                        [InputTag("mlflow.data.context", SURROGATE)],
                    )
                ],
            ),
        ):
            with pytest.raises(mlrelay.ValidationError):
                call()


def test_validators_raise_only_validation_errors_for_hostile_objects() -> None:
    """A value whose __str__, __float__ or __repr__ raises is a ValidationError, not a crash."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        def __float__(self) -> float:
            raise RuntimeError("no float")

    for check in (v.validate_param_value, v.validate_tag_value):
        with pytest.raises(mlrelay.ValidationError, match="str\\(\\) of the Hostile failed"):
            check("k", Hostile())
    with pytest.raises(mlrelay.ValidationError, match="repr\\(\\) failed"):
        v.validate_step("k", Hostile())
    with pytest.raises(mlrelay.ValidationError):
        v.validate_step("k", decimal.Decimal("sNaN"))
    with pytest.raises(mlrelay.ValidationError):
        v.validate_metric_value("k", decimal.Decimal("sNaN"))


STEP_CASES: list[tuple[dict[Any, Any], Any]] = [
    ({"loss": 0.5}, 3),
    ({"loss": 0.25, "acc": 1.0}, 4),
    ({"loss": float("nan"), "inf": float("inf")}, 5),
    ({"epoch": 2, "loss": 0.5}, 6),  # an int value
    ({"loss": decimal.Decimal("0.75")}, 7),  # a number that is not a float
    ({"loss": True}, 8),
    ({"loss": 0.5}, 2**63),  # a step beyond int64
    ({"loss": 0.5}, 2.5),  # a step that is not an int
    ({"loss": "high"}, 9),  # a value that is no number
    ({"": 0.5}, 10),  # a key MLflow refuses
    ({"loss": 0.5, 3: 1.0}, 11),  # a key that is not a string, after a good one
    ({}, 12),
]


def _outcome(call: Callable[[], None]) -> str | None:
    try:
        call()
    except Exception as exc:  # compared between the two paths, whatever it is
        return f"{type(exc).__name__}: {exc}"
    return None


def test_step_logger_journals_and_refuses_exactly_what_log_metrics_does(offline: Path) -> None:
    """The framework loggers' short path (``fluent.step_logger``) gives, for every input,
    the same entries and the same error as ``log_metrics(metrics, step=..., run_id=...)``:
    each case is logged both ways, into two runs, twice: first with every key seen for the
    first time, then with the keys known (where the short path converts values itself)."""
    with ml.start_run():
        run_a = runs.current().local_id
        by_log_metrics = [
            _outcome(functools.partial(ml.log_metrics, m, step=s, run_id=run_a))
            for m, s in STEP_CASES * 2
        ]
    session.known_keys.clear()  # the short path meets every key unvalidated too
    with ml.start_run():
        run_b = runs.current().local_id
        log = ml.step_logger(runs.current())
        by_step_logger = [_outcome(functools.partial(log, m, s)) for m, s in STEP_CASES * 2]
    assert by_step_logger == by_log_metrics
    assert sum(o is not None for o in by_log_metrics) == 10, by_log_metrics  # refused cases
    with sqlite3.connect(offline) as db:
        rows = db.execute("SELECT run, kind, key, num, step FROM entries ORDER BY seq").fetchall()
    ids = {run_a: "a", run_b: "b"}
    both: dict[str, list[tuple[Any, ...]]] = {"a": [], "b": []}
    for run, *entry in rows:
        if run in ids:
            both[ids[run]].append(tuple(entry))
    assert both["a"] == both["b"]
    assert len(both["a"]) == 18  # (1 + 2 + 2 + 2 + 1 + 1) x 2 (refused cases journal nothing)


def test_step_logger_converts_lightnings_int_epoch_on_its_short_path(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning adds the epoch, an int, to every step's metrics: once the keys are known,
    such a step is journaled (as floats) without going through ``log_metrics``, and a
    value that is no number is still refused with ``log_metrics``' error, nothing
    journaled."""
    with ml.start_run():
        log = ml.step_logger(runs.current())
        log({"loss": 0.5, "epoch": 0}, 0)  # the keys' first use: validated by log_metrics

        def long_path(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("log_metrics called for a step of known keys")

        monkeypatch.setattr(ml, "log_metrics", long_path)
        log({"loss": 0.25, "epoch": 1}, 1)
        with pytest.raises(mlrelay.ValidationError, match="metric value for key 'epoch'"):
            log({"loss": 0.125, "epoch": "one"}, 2)
    metrics = [r[1:] for r in journaled(offline) if r[0] == KIND_METRIC]
    assert metrics == [("loss", 0.5, 0), ("epoch", 0.0, 0), ("loss", 0.25, 1), ("epoch", 1.0, 1)]
    assert all(type(value) is float for _, value, _ in metrics)


def test_step_logger_takes_the_long_path_once_its_run_has_ended(offline: Path) -> None:
    """After its run ends, the short path does what ``log_metrics(run_id=...)`` does for
    an ended run that only this journal holds: a ValidationError, nothing journaled."""
    with ml.start_run():
        log = ml.step_logger(runs.current())
        log({"loss": 1.0}, 1)
    with pytest.raises(mlrelay.ValidationError) as info:
        log({"loss": 2.0}, 2)
    assert "not running in this process" in str(info.value)
    assert [r[1:] for r in journaled(offline) if r[0] == KIND_METRIC] == [("loss", 1.0, 1)]


# --- the writer is never wedged ---------------------------------------------------------


def test_journal_sets_aside_entries_it_cannot_store_and_commits_the_rest(tmp_path: Path) -> None:
    """Rows SQLite cannot take are set aside with the reason; every other row is committed."""
    journal = Journal(tmp_path / "journal.db")
    rows: list[Any] = [("r", KIND_METRIC, "m", float(i), T0, i) for i in range(2500)]
    poison = [
        ("r", KIND_METRIC, "m", 1.0, T0, 2**64),  # OverflowError
        ("r", KIND_PARAM, "p", SURROGATE, None, None),  # UnicodeEncodeError
        ("r", KIND_TAG, "t", ["a list"], None, None),  # sqlite3.ProgrammingError
        ("r", KIND_LINKED_METRIC, "m", 1.0, T0, 0),  # not a (number, link) pair
        ("r", KIND_TAG, None, "v", None, None),  # IntegrityError: key NOT NULL
    ]
    for i, row in enumerate(poison):
        rows.insert(500 * i + 7, row)
    aside = journal.append(rows)
    assert [row for row, _ in aside] == poison
    assert "OverflowError" in aside[0][1]
    assert "surrogates not allowed" in aside[1][1]
    steps = [r[3] for r in journaled(tmp_path / "journal.db")]
    assert steps == list(range(2500))  # in log order, none lost
    stored = journal.set_aside_entries("r")
    assert [entry[1] for entry in stored] == ["m", "p", "t", "m", "None"]
    assert "OverflowError" in stored[0][3]
    journal.close()


def test_status_lists_the_entries_the_journal_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mlrelay status`` names each set-aside entry's key and reason, also for a run that
    is otherwise synced, in its text and its JSON."""
    import io
    import json

    from mlrelay import cli

    home = tmp_path / "home"
    home.mkdir()
    journal = Journal(home / "journal.db")
    journal.add_run(
        local_id="r", tracking_uri="http://127.0.0.1:9", experiment_id="0",
        experiment_name=None, run_name="poisoned", start_time=T0, create_tags={},
    )  # fmt: skip
    journal.append([("r", KIND_METRIC, "m", 1.0, T0, 1), ("r", KIND_METRIC, "big", 1.0, T0, 2**64)])
    journal.close()
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    out = io.StringIO()
    cli.main(["status", "--json"], out=out)
    [run] = json.loads(out.getvalue())["runs"]
    assert [a["key"] for a in run["set_aside"]] == ["big"]
    assert "OverflowError" in run["set_aside"][0]["reason"]
    text = io.StringIO()
    cli.main(["status"], out=text)
    assert "set aside (not journaled) entry 'big': OverflowError" in text.getvalue()


def test_a_poison_entry_never_wedges_the_pipeline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Entries queued around an unstorable one are all committed; one warning names it."""
    journal = Journal(tmp_path / "journal.db")
    pipeline = Pipeline(journal, None)
    try:
        with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
            for i in range(300):
                pipeline.log(("r", KIND_METRIC, "m", 0.5, T0, 2**64 if i in (10, 20) else i))
            assert pipeline.write_now(30.0)
        assert pipeline.set_aside == 2
        assert len(journaled(tmp_path / "journal.db")) == 298
        warnings = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
        assert len(warnings) == 1
        assert "key 'm'" in warnings[0]
        assert "OverflowError" in warnings[0]
    finally:
        pipeline.close(1.0)
        journal.close()


# --- property: arbitrary Python values at every log call --------------------------------


class _Weird(float):
    """A float whose every conversion fails (its repr works: hypothesis prints examples)."""

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __float__(self) -> float:
        raise RuntimeError("float")

    def __int__(self) -> int:
        raise RuntimeError("int")

    def __repr__(self) -> str:
        return "_Weird()"


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**62)),
    st.floats(),
    st.text(st.characters(exclude_categories=()), max_size=8),  # lone surrogates included
    st.binary(max_size=8),
    st.decimals(),
    st.fractions(),
    st.complex_numbers(),
    st.builds(_Weird),
    st.just(object()),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
_KEYS = st.one_of(st.sampled_from(["loss", "acc", "lr", "a/b", "x y"]), _VALUES)
_CALLS = st.sampled_from(
    ["log_metric", "log_metrics", "log_param", "log_params", "set_tag", "set_tags", "delete_tag"]
)


def _call(name: str, key: Any, value: Any, step: Any, ts: Any) -> int:
    """Make one fluent log call with these arguments; the number of entries it queues."""
    if name in ("log_metrics", "log_params", "set_tags"):
        try:
            hash(key)
        except TypeError:  # not something a Mapping can hold: no such call can be made
            return 0
    if name == "log_metric":
        ml.log_metric(key, value, step=step, timestamp=ts)
    elif name == "log_metrics":
        ml.log_metrics({key: value}, step=step, timestamp=ts)
    elif name in ("log_param", "set_tag"):
        getattr(ml, name)(key, value)
    elif name in ("log_params", "set_tags"):
        getattr(ml, name)({key: value})
    else:
        ml.delete_tag(key)
    return 1


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    calls=st.lists(
        st.tuples(
            _CALLS, _KEYS, _VALUES, st.one_of(st.none(), _VALUES), st.one_of(st.none(), _VALUES)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_arbitrary_values_at_every_log_call_never_stop_the_journal(
    offline: Path, calls: list[tuple[str, Any, Any, Any, Any]]
) -> None:
    """Whatever is passed, a log call returns or raises ValidationError, nothing it
    accepted is set aside, and the journal commits everything accepted and what follows."""
    run = ml.active_run() or ml.start_run()
    pipeline = session.pipeline
    before = len(journaled(offline)) if offline.exists() else 0
    accepted = 0
    for name, key, value, step, ts in calls:
        with contextlib.suppress(mlrelay.ValidationError):
            accepted += _call(name, key, value, step, ts)
    ml.log_metric("sentinel", 1.0, step=len(calls))
    assert ml.flush(timeout=30)
    after = journaled(offline)
    assert len(after) - before == accepted + 1
    assert after[-1] == (KIND_METRIC, "sentinel", 1.0, len(calls))
    assert pipeline is None or pipeline.set_aside == 0
    assert run is not None


# --- a journal that cannot be written -------------------------------------------------


def test_a_read_only_journal_refuses_and_counts_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's SQLite refuses every write (SQLITE_READONLY): log calls return at once,
    the entries are refused and counted, and the user is told once with the real error."""
    journal = Journal(tmp_path / "journal.db")
    connect = sqlite3.connect

    def read_only_for_the_writer(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        if threading.current_thread().name == "mlrelay-writer":
            db.execute("PRAGMA query_only = ON")  # SQLite's own read-only refusal
        return db

    monkeypatch.setattr(sqlite3, "connect", read_only_for_the_writer)
    pipeline = Pipeline(journal, None)
    try:
        with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
            worst = 0.0
            for i in range(50_000):
                started = time.perf_counter()
                pipeline.log(("r", KIND_METRIC, "m", 0.5, T0, i))
                worst = max(worst, time.perf_counter() - started)
            assert pipeline.write_now(30.0)
            assert pipeline.refused == 50_000
            pipeline.close(1.0)
    finally:
        journal.close()
    told = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(told) == 1
    assert "readonly" in told[0]
    assert str(tmp_path / "journal.db") in told[0]
    assert any("50000 entries were refused" in r.getMessage() for r in caplog.records)
    assert worst < PipelineOptions().max_wait + slack(0.05), f"a call took {worst:.3f} s"
    assert journaled(tmp_path / "journal.db") == []
