"""Splitting any amount of run data into log-batch requests within MLflow's limits.

MLflow accepts at most 1000 metrics, 100 params, 100 tags and 1000 entities in all
per ``runs/log-batch`` request, and rejects duplicate param keys inside one request.
:func:`split_batch` follows MLflow's own client: params and tags go in chunks of 100,
each request is topped up with metrics to 1000 entities, and leftover metrics go in
chunks of 1000. Order within each kind is kept, so a later tag value still wins.
Pure functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mlrelay._errors import ValidationError
from mlrelay._validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
)

from .entities import Metric, Param, RunTag

__all__ = ["Batch", "dedupe_params", "split_batch"]


@dataclass(frozen=True)
class Batch:
    """The content of one log-batch request."""

    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


def dedupe_params(params: Sequence[Param]) -> list[Param]:
    """Drop repeated params with the same value; keep first-seen order.

    Raises:
        ValidationError: one key is given twice with different values (MLflow never
            lets a param change).
    """
    seen: dict[str, str] = {}
    out: list[Param] = []
    for p in params:
        old = seen.get(p.key)
        if old is None:
            seen[p.key] = p.value
            out.append(p)
        elif old != p.value:
            raise ValidationError(
                f"param {p.key!r} is given twice with different values ({old!r} and "
                f"{p.value!r}); a run's param cannot change",
                field="param value",
                key=p.key,
            )
    return out


def split_batch(
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
) -> list[Batch]:
    """Split run data into batches that each fit one log-batch request.

    Args:
        metrics: metric points, in order.
        params: params (duplicates with the same value are dropped).
        tags: tags, in order (a later value for a key wins).

    Returns:
        The batches, in sending order; none when there is nothing to send.

    Raises:
        ValidationError: a param key repeats with different values.
    """
    params = dedupe_params(params)
    param_chunks = [
        list(params[i : i + MAX_PARAMS_PER_BATCH])
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH)
    ]
    tag_chunks = [
        list(tags[i : i + MAX_TAGS_PER_BATCH]) for i in range(0, len(tags), MAX_TAGS_PER_BATCH)
    ]
    batches: list[Batch] = []
    m = 0
    for i in range(max(len(param_chunks), len(tag_chunks))):
        p = param_chunks[i] if i < len(param_chunks) else []
        t = tag_chunks[i] if i < len(tag_chunks) else []
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
        batches.append(Batch(metrics=list(metrics[m : m + room]), params=p, tags=t))
        m += room
    while m < len(metrics):
        batches.append(Batch(metrics=list(metrics[m : m + MAX_METRICS_PER_BATCH])))
        m += MAX_METRICS_PER_BATCH
    return batches
