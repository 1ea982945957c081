"""One call's metrics, params and tags split into requests; the rules every packer shares."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlrelay
from mlrelay._errors import APIStatusError
from mlrelay._protocol.batches import (
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
    Entry,
    encode_number,
    pack_batch,
    split_batch,
)
from mlrelay._protocol.entities import Metric
from mlrelay._retry import RETRYABLE_STATUSES, is_refusal, should_retry
from mlrelay._validation import unique_params


def _m(i: int, key: str = "m") -> Entry:
    return Entry(i, KIND_METRIC, key, float(i), 0, i)


def _p(i: int) -> Entry:
    return Entry(i, KIND_PARAM, f"p{i}", str(i), None, None)


def _t(i: int, key: str | None = None) -> Entry:
    return Entry(i, KIND_TAG, key or f"t{i}", "v", None, None)


metrics_st = st.integers(0, 2600).map(lambda n: [_m(i, "abc"[i % 3]) for i in range(n)])
params_st = st.integers(0, 350).map(lambda n: [_p(i) for i in range(n)])
tags_st = st.integers(0, 350).map(lambda n: [_t(i, f"t{i % 3}") for i in range(n)])


@given(metrics_st, params_st, tags_st)
def test_nothing_lost_order_kept_limits_respected(metrics, params, tags) -> None:  # type: ignore[no-untyped-def]
    """Every entry lands in exactly one batch, in order, and each batch fits MLflow's limits."""
    batches = split_batch(metrics, params, tags)
    assert [m for b in batches for m in b.metrics] == metrics
    assert [(k, v) for b in batches for k, v in b.params.items()] == [
        (p.key, p.value) for p in params
    ]
    assert [t for b in batches for t in b.tags] == [(t.key, t.value) for t in tags]
    for b in batches:
        assert 0 < len(b) <= 1000
        assert len(b.metrics) <= 1000
        assert len(b.params) <= 100
        assert len(b.tags) <= 100


def test_batches_are_as_full_as_allowed() -> None:
    """5,000 metrics, 150 params and 130 tags need six requests, not more."""
    ms = [_m(i) for i in range(5000)]
    ps = [_p(i) for i in range(150)]
    ts = [_t(i) for i in range(130)]
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
    lr = Entry(1, KIND_PARAM, "lr", "1", None, None)
    batches = split_batch(params=[lr, lr._replace(seq=2)])
    assert list(batches[0].params) == ["lr"]


def test_the_packer_leaves_a_conflicting_param_to_the_server() -> None:
    """The one packing rule: a param repeated with another value ends the batch (the server,
    which alone knows the run's params, judges it on its own); nothing is refused here."""
    first, changed = (
        Entry(1, KIND_PARAM, "lr", "1", None, None),
        Entry(3, KIND_PARAM, "lr", "2", None, None),
    )
    assert [e.seq for e in pack_batch([first, _m(2), changed]).used] == [1, 2]
    assert [len(b.used) for b in split_batch(params=[first, changed])] == [1, 1]


def test_a_call_that_changes_a_param_is_refused_before_sending() -> None:
    """Where one call carries both values (Client.log_batch), the call site refuses it,
    naming the key and both values, before anything is packed or sent."""
    assert unique_params([("lr", "1"), ("lr", "1"), ("b", "2")]) == [("lr", "1"), ("b", "2")]
    with pytest.raises(mlrelay.ValidationError, match="'lr' is given twice"):
        unique_params([("lr", "1"), ("lr", "2")])


@given(st.floats())
def test_the_body_encodes_numbers_as_the_wire_entities_do(value: float) -> None:
    """Batch bodies (hand-encoded, for speed) and pydantic's wire entities agree on every
    float, NaN and infinities included."""
    entity = json.loads(Metric(key="m", value=value, timestamp=0, step=0).model_dump_json())
    body = json.loads(pack_batch([Entry(1, KIND_METRIC, "m", value, 0, 0)]).body("r"))
    assert body["metrics"][0]["value"] == entity["value"] == encode_number(value) or (
        math.isnan(value) and body["metrics"][0]["value"] == entity["value"] == "NaN"
    )


@pytest.mark.parametrize("status", range(400, 600))
def test_refused_data_and_retryable_calls_are_one_table(status: int) -> None:
    """A status is either a refusal of the data (set aside) or "deliver later"; a status a
    call retries is never a refusal, nor are the credential statuses 401 and 403."""
    exc = APIStatusError(
        "x", method="POST", url="u", status_code=status, error_code=None, server_message=None
    )
    if should_retry(exc, idempotent=True) or status in (401, 403):
        assert not is_refusal(exc)
    assert is_refusal(exc) == (status < 500 and status not in {*RETRYABLE_STATUSES, 401, 403})
