"""Entries and the one packer that turns them into log-batch requests within MLflow's limits.

An :class:`Entry` is one logged item (a metric point, a param, a tag, a tag deletion, a
dataset or an artifact); the journal stores entries and the sender, ``mlrelay sync`` and
:meth:`mlrelay.Client.log_batch` all pack them with :func:`pack_batch`, so there is one
rule for what goes into a request:

* MLflow accepts at most 1000 metrics, 100 params, 100 tags and 1000 entities in all
  per ``runs/log-batch`` request, and rejects duplicate param keys inside one request;
* a batch is the longest prefix of the entries that fits, so order is kept;
* a param repeated with the same value is dropped; repeated with another value, the
  batch ends before it, so the server judges it on its own (only the server knows
  whether the run already holds that param; call sites that can tell refuse it first,
  see :func:`mlrelay._validation.unique_params`);
* tag deletions, datasets and artifacts are not log-batch content: the batch ends
  before one.

Request bodies are encoded here, without pydantic: a sync encodes a million points and
every entry was validated when it was logged. Non-finite values travel as MLflow
expects them (see :func:`encode_number`). Pure functions only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from mlrelay._validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)

__all__ = [
    "KIND_ARTIFACT",
    "KIND_DATASET",
    "KIND_DELETE_TAG",
    "KIND_LINKED_METRIC",
    "KIND_METRIC",
    "KIND_PARAM",
    "KIND_TAG",
    "Batch",
    "Entry",
    "encode_number",
    "metrics_body",
    "pack_batch",
    "split_batch",
]

KIND_METRIC, KIND_PARAM, KIND_TAG, KIND_DELETE_TAG, KIND_DATASET, KIND_ARTIFACT = range(6)
"""Entry kinds (stored in the journal as these integers). A dataset entry's value is the
JSON of a ``DatasetInput``; an artifact entry's value is the JSON the journal describes."""

KIND_LINKED_METRIC = 6
"""A metric point linked to an MLflow 3 logged model or a dataset, as queued by a log call:
its value is ``(value, link)``, ``link`` the JSON of ``{"model_id", "dataset_name",
"dataset_digest"}`` (the keys that are set). The journal stores it as a metric point with
the link in the ``text`` column (which metric rows do not use otherwise, so a journal read
by an older mlrelay still sends the point, without the link); entries read back are
``KIND_METRIC`` with :attr:`Entry.link` set."""


class Entry(NamedTuple):
    """One logged item, in log order (a named tuple: a sync reads a million of them).

    ``seq`` orders entries (the journal's global order); ``value`` is a float for a
    metric point and text for everything else.
    """

    seq: int
    kind: int
    key: str
    value: float | str
    timestamp: int | None
    step: int | None
    link: str | None = None
    """A metric point's link to a logged model or a dataset (see KIND_LINKED_METRIC)."""


def encode_number(value: float | str) -> float | str:
    """A metric value as MLflow's JSON expects it: finite numbers as numbers, NaN and
    infinities as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the same
    encoding the wire entities use, ``ser_json_inf_nan="strings"``).

    >>> encode_number(float("-inf"))
    '-Infinity'
    """
    v = float(value)
    if math.isfinite(v):
        return v
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


@dataclass
class Batch:
    """One log-batch request's worth of entries, in order.

    Attributes:
        used: the entries the batch consumed (repeated params included); empty when the
            first entry is not log-batch content (the caller sends it on its own).
        metrics: the metric entries.
        params: param key -> value (each key once).
        tags: (key, value) pairs, in order (a later value for a key wins).
    """

    used: list[Entry]
    metrics: list[Entry]
    params: dict[str, str]
    tags: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def body(self, run_id: str, metrics: Sequence[Entry] | None = None) -> bytes:
        """The request body (``metrics`` replaces the batch's metric points when given)."""
        params = [{"key": k, "value": v} for k, v in self.params.items()]
        tags = [{"key": k, "value": v} for k, v in self.tags]
        return (
            f'{{"run_id":{json.dumps(run_id)},'
            f'"metrics":{_points(self.metrics if metrics is None else metrics)},'
            f'"params":{json.dumps(params, separators=(",", ":"))},'
            f'"tags":{json.dumps(tags, separators=(",", ":"))}}}'
        ).encode()


def _points(metrics: Sequence[Entry]) -> str:
    """Metric points as a log-batch JSON array, byte for byte what ``json.dumps`` of
    :func:`_metric`'s dicts gives, written directly (a sync encodes millions of points: a
    dict per point and the generic encoder cost three times as much)."""
    keys: dict[str, str] = {}
    parts = []
    for m in metrics:
        if m.link:
            parts.append(json.dumps(_metric(m), separators=(",", ":")))
            continue
        key = keys.get(m.key)
        if key is None:
            key = keys[m.key] = json.dumps(m.key)
        v = float(m.value)
        value = repr(v) if math.isfinite(v) else json.dumps(encode_number(v))
        parts.append(
            f'{{"key":{key},"value":{value},"timestamp":{m.timestamp or 0},"step":{m.step or 0}}}'
        )
    return f"[{','.join(parts)}]"


def _metric(m: Entry) -> dict[str, Any]:
    """A metric point as log-batch JSON, with its link's fields when it has one."""
    point = {
        "key": m.key,
        "value": encode_number(m.value),
        "timestamp": m.timestamp or 0,
        "step": m.step or 0,
    }
    if m.link:
        point.update(json.loads(m.link))
    return point


def metrics_body(run_id: str, metrics: Sequence[Entry]) -> bytes:
    """A log-batch request body of metric points only (each with its link's fields), for
    callers that re-log points to link them to a logged model; at most 1000 points."""
    points = [_metric(m) for m in metrics]
    return json.dumps({"run_id": run_id, "metrics": points}, separators=(",", ":")).encode()


def pack_batch(entries: Sequence[Entry]) -> Batch:
    """Take the longest prefix of ``entries`` that fits one log-batch request.

    >>> e = [Entry(1, KIND_PARAM, "lr", "0.1", None, None), Entry(2, KIND_DELETE_TAG, "t", "", None, None)]
    >>> len(pack_batch(e).used)
    1
    """  # noqa: E501
    used: list[Entry] = []
    metrics: list[Entry] = []
    params: dict[str, str] = {}
    tags: list[tuple[str, str]] = []
    for e in entries:
        if len(metrics) + len(params) + len(tags) >= MAX_ENTITIES_PER_BATCH:
            break
        kind = e.kind
        if kind == KIND_METRIC:
            if len(metrics) >= MAX_METRICS_PER_BATCH:
                break
            metrics.append(e)
        elif kind == KIND_PARAM:
            old = params.get(e.key)
            if old is not None and old != e.value:
                break
            if old is None:
                if len(params) >= MAX_PARAMS_PER_BATCH:
                    break
                params[e.key] = str(e.value)
        elif kind == KIND_TAG:
            if len(tags) >= MAX_TAGS_PER_BATCH:
                break
            tags.append((e.key, str(e.value)))
        else:  # a tag deletion, a dataset or an artifact
            break
        used.append(e)
    return Batch(used, metrics, params, tags)


def split_batch(
    metrics: Sequence[Entry] = (), params: Sequence[Entry] = (), tags: Sequence[Entry] = ()
) -> list[Batch]:
    """Pack one call's metrics, params and tags into as few requests as MLflow's limits allow.

    The entries are laid out as MLflow's own client sends them (each request carries up
    to 100 params and 100 tags and is topped up with metrics; leftover metrics go 1000 at
    a time) and packed with :func:`pack_batch`. Order within each kind is kept.
    """
    ordered: list[Entry] = []
    m = 0
    for i in range(0, max(len(params), len(tags)), MAX_PARAMS_PER_BATCH):
        p = params[i : i + MAX_PARAMS_PER_BATCH]
        t = tags[i : i + MAX_TAGS_PER_BATCH]
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
        ordered += [*p, *t, *metrics[m : m + room]]
        m += room
    ordered += metrics[m:]
    batches = []
    while ordered:
        batch = pack_batch(ordered)
        batches.append(batch)
        ordered = ordered[len(batch.used) :]
    return batches
