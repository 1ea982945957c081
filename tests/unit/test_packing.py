"""The one packer on journaled entries: log-batch requests and the body they are sent as."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from mlrelay._protocol.batches import (
    KIND_ARTIFACT,
    KIND_DELETE_TAG,
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
    Entry,
    encode_number,
    pack_batch,
)
from mlrelay._protocol.messages import LogBatch


def _metric(seq: int, value: float, step: int = 0) -> Entry:
    return Entry(seq, KIND_METRIC, "m", value, 1_700_000_000_000 + seq, step)


def test_body_encodes_non_finite_values_as_mlflow_strings() -> None:
    """NaN and infinities go out as "NaN", "Infinity", "-Infinity"; the body is a valid
    LogBatch request that the typed model accepts."""
    entries = [_metric(1, math.nan), _metric(2, math.inf), _metric(3, -math.inf), _metric(4, 0.5)]
    body = json.loads(pack_batch(entries).body("run-1"))
    assert [m["value"] for m in body["metrics"]] == ["NaN", "Infinity", "-Infinity", 0.5]
    assert body["metrics"][0] == {
        "key": "m",
        "value": "NaN",
        "timestamp": 1_700_000_000_001,
        "step": 0,
    }
    parsed = LogBatch.model_validate(body)
    assert math.isnan(parsed.metrics[0].value)
    assert parsed.metrics[1].value == math.inf


def test_a_repeated_param_with_the_same_value_is_sent_once() -> None:
    """MLflow refuses duplicate param keys in one request: an identical repeat is folded."""
    entries = [
        Entry(1, KIND_PARAM, "lr", "0.1", None, None),
        Entry(2, KIND_PARAM, "lr", "0.1", None, None),
        Entry(3, KIND_TAG, "t", "x", None, None),
    ]
    batch = pack_batch(entries)
    assert [e.seq for e in batch.used] == [1, 2, 3]
    assert json.loads(batch.body("r"))["params"] == [{"key": "lr", "value": "0.1"}]


def test_a_conflicting_param_ends_the_batch() -> None:
    """A param changed within the batch starts the next request, so the server judges it
    alone and the entries before it are not rejected with it."""
    entries = [
        Entry(1, KIND_PARAM, "lr", "0.1", None, None),
        _metric(2, 1.0),
        Entry(3, KIND_PARAM, "lr", "0.2", None, None),
    ]
    assert [e.seq for e in pack_batch(entries).used] == [1, 2]


def test_tag_deletions_and_artifacts_are_sent_on_their_own() -> None:
    """A tag deletion or an artifact ends the batch before it; at the head it packs nothing."""
    delete = Entry(2, KIND_DELETE_TAG, "t", "", None, None)
    assert [e.seq for e in pack_batch([_metric(1, 1.0), delete]).used] == [1]
    assert pack_batch([Entry(5, KIND_ARTIFACT, "", "{}", None, None)]).used == []


@given(st.lists(st.sampled_from([KIND_METRIC, KIND_PARAM, KIND_TAG]), min_size=1, max_size=2500))
def test_batches_respect_mlflow_limits_and_keep_order(kinds: list[int]) -> None:
    """Whatever the mix, each request holds at most 1000 metrics, 100 params, 100 tags and
    1000 entities, and packing consumes the entries in order without losing any."""
    entries = [
        Entry(i, k, f"k{i}" if k != KIND_METRIC else "m", 1.0 if k == KIND_METRIC else "v", 1, i)
        for i, k in enumerate(kinds, start=1)
    ]
    seen: list[int] = []
    while entries:
        batch = pack_batch(entries)
        assert batch.used, "packing made no progress"
        assert len(batch.metrics) <= 1000
        assert len(batch.params) <= 100
        assert len(batch.tags) <= 100
        assert len(batch.metrics) + len(batch.params) + len(batch.tags) <= 1000
        seen += [e.seq for e in batch.used]
        entries = entries[len(batch.used) :]
    assert seen == list(range(1, len(kinds) + 1))


_KEYS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
_POINTS = st.lists(
    st.tuples(
        _KEYS,
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, 2**63 - 1),
        st.integers(-(2**63), 2**63 - 1),
        st.one_of(st.none(), st.just('{"model_id": "m-1"}')),
    ),
    max_size=40,
)


@given(_POINTS, _KEYS, st.dictionaries(_KEYS, _KEYS, max_size=3))
def test_the_body_is_byte_for_byte_the_generic_encoders(
    points: list[tuple[str, float, int, int, str | None]], run_id: str, params: dict[str, str]
) -> None:
    """The body written point by point is exactly what ``json.dumps`` gives for the same
    dicts (keys that need escaping, NaN, infinities, -0.0, extreme steps, linked points)."""
    metrics = [
        Entry(i, KIND_METRIC, key, value, ts, step, link)
        for i, (key, value, ts, step, link) in enumerate(points)
    ]
    entries = metrics + [
        Entry(len(metrics) + i, KIND_PARAM, k, v, None, None)
        for i, (k, v) in enumerate(params.items())
    ]
    batch = pack_batch(entries)
    expected = {
        "run_id": run_id,
        "metrics": [
            {
                "key": m.key,
                "value": m.value if math.isfinite(float(m.value)) else encode_number(m.value),
                "timestamp": m.timestamp,
                "step": m.step,
                **(json.loads(m.link) if m.link else {}),
            }
            for m in metrics
        ],
        "params": [{"key": k, "value": v} for k, v in params.items()],
        "tags": [],
    }
    assert batch.body(run_id) == json.dumps(expected, separators=(",", ":")).encode()
