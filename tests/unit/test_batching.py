"""Splitting run data into log-batch requests within MLflow's limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import mlrelay
from mlrelay import Metric, Param, RunTag
from mlrelay._protocol.batches import split_batch

metrics_st = st.lists(
    st.builds(
        Metric,
        key=st.sampled_from("abc"),
        value=st.floats(),
        timestamp=st.integers(0, 10),
        step=st.integers(-5, 5),
    ),
    max_size=2600,
)
params_st = st.lists(st.integers(0, 400), unique=True, max_size=350).map(
    lambda ks: [Param(key=f"p{k}", value=str(k)) for k in ks]
)
tags_st = st.lists(
    st.builds(RunTag, key=st.sampled_from(["t1", "t2", "t3"]), value=st.text(max_size=3)),
    max_size=350,
)


@given(metrics_st, params_st, tags_st)
def test_nothing_lost_order_kept_limits_respected(metrics, params, tags) -> None:  # type: ignore[no-untyped-def]
    """Every entry lands in exactly one batch, in order, and each batch fits MLflow's limits."""
    batches = split_batch(metrics, params, tags)
    assert [m for b in batches for m in b.metrics] == metrics
    assert [p for b in batches for p in b.params] == params
    assert [t for b in batches for t in b.tags] == tags
    for b in batches:
        assert 0 < len(b) <= 1000
        assert len(b.metrics) <= 1000
        assert len(b.params) <= 100
        assert len(b.tags) <= 100


def test_batches_are_as_full_as_allowed() -> None:
    """5,000 metrics, 150 params and 130 tags need six requests, not more."""
    ms = [Metric(key="m", value=i, timestamp=0, step=i) for i in range(5000)]
    ps = [Param(key=f"p{i}", value="v") for i in range(150)]
    ts = [RunTag(key=f"t{i}", value="v") for i in range(130)]
    sizes = [(len(b.metrics), len(b.params), len(b.tags)) for b in split_batch(ms, ps, ts)]
    assert sizes == [
        (800, 100, 100),
        (920, 50, 30),
        (1000, 0, 0),
        (1000, 0, 0),
        (1000, 0, 0),
        (280, 0, 0),
    ]


def test_nothing_to_send_is_no_batch() -> None:
    """Empty input yields no request at all."""
    assert split_batch() == []


def test_repeated_param_with_same_value_is_sent_once() -> None:
    """MLflow rejects duplicate param keys inside one request; equal repeats are merged."""
    batches = split_batch(params=[Param(key="lr", value="1"), Param(key="lr", value="1")])
    assert [p.key for p in batches[0].params] == ["lr"]


def test_repeated_param_with_other_value_is_rejected_before_sending() -> None:
    """A param cannot change; the error names the key and both values."""
    import pytest

    with pytest.raises(mlrelay.ValidationError, match="'lr' is given twice"):
        split_batch(params=[Param(key="lr", value="1"), Param(key="lr", value="2")])
