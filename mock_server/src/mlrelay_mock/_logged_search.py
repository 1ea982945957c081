"""Searching MLflow 3 logged models as MLflow's SQL store does.

A filter compares attributes (``name``, ``model_type``, ``status``, ``source_run_id``,
``creation_timestamp`` ...), ``metrics.<name>``, ``params.<key>`` and ``tags.<key>``, joined by
``AND``. A metric clause matches a model when *any* of its metric points of that name matches
(on one of the requested datasets, when ``datasets`` is given); with datasets and no metric
clause, a model matches when it has a metric on one of them. Ordering takes attributes and
``metrics.<name>`` (the model's latest point of that metric, optionally on one dataset), puts
missing values last either way, and ends with creation time (newest first) and model id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlrelay_mock._errors import invalid
from mlrelay_mock._model import LoggedModel, Point
from mlrelay_mock._search import Clause, compare

__all__ = ["DatasetFilter", "LoggedOrder", "check_filter", "matching", "ordered"]

_ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
_NUMERIC = ("creation_timestamp_ms", "last_updated_timestamp_ms")
_ATTRIBUTES = (
    "model_id",
    "experiment_id",
    "name",
    "artifact_location",
    "model_type",
    "status",
    "source_run_id",
    *_NUMERIC,
)
_NUMERIC_OPS = ("<", "<=", ">", ">=", "=", "!=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_ENTITY_NAMES = {"attribute": "attributes", "metric": "metrics", "param": "params", "tag": "tags"}


@dataclass(frozen=True)
class DatasetFilter:
    """One ``datasets`` entry of a search: a dataset name and its digest.

    MLflow's REST handler passes a missing digest on as ``None`` and its store then
    compares the digest with SQL ``= NULL``, so an entry without a digest matches no
    metric at all; the mock answers the same.
    """

    name: str
    digest: str | None = None

    def matches(self, point: Point) -> bool:
        """Whether a metric point was logged on this dataset."""
        return point.dataset_name == self.name and point.dataset_digest == self.digest


@dataclass(frozen=True)
class LoggedOrder:
    """One ``order_by`` entry: a field (attribute or ``metrics.<name>``) and a direction."""

    field_name: str
    ascending: bool = True
    dataset_name: str = ""
    dataset_digest: str = ""


def check_filter(clauses: Sequence[Clause]) -> list[Clause]:
    """The clauses with attribute aliases resolved; 400 for an entity or operator MLflow refuses."""
    checked = []
    for clause in clauses:
        if clause.entity not in _ENTITY_NAMES:
            raise invalid(
                f"Invalid entity type: '{clause.entity}'. Expected one of "
                "['attributes', 'metrics', 'params', 'tags']."
            )
        key = _ALIASES.get(clause.key, clause.key) if clause.entity == "attribute" else clause.key
        if clause.entity == "attribute" and key not in _ATTRIBUTES:
            raise invalid(f"Invalid attribute key '{clause.key}' for a logged model search.")
        numeric = clause.entity == "metric" or key in _NUMERIC
        ops = _NUMERIC_OPS if numeric else _STRING_OPS
        if clause.op not in ops:
            raise invalid(
                f"Invalid comparison operator for {_ENTITY_NAMES[clause.entity]}.{key}: "
                f"'{clause.op}'. Expected one of {ops}."
            )
        value = clause.value
        if numeric:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise invalid(f"Expected a numeric value for '{clause.key}'.") from None
        checked.append(Clause(clause.entity, key, clause.op, value))
    return checked


def _attribute(model: LoggedModel, key: str) -> Any:
    if key == "artifact_location":
        return model.artifact_uri
    value = getattr(model, key)
    return float(value) if key in _NUMERIC else value


def _points(model: LoggedModel, key: str) -> list[tuple[Point, str]]:
    return [(point, run_id) for name, point, run_id in model.metrics if name == key]


def _clause_matches(model: LoggedModel, clause: Clause, datasets: Sequence[DatasetFilter]) -> bool:
    if clause.entity == "metric":
        return any(
            compare(clause.op, point.value, clause.value)
            and (not datasets or any(d.matches(point) for d in datasets))
            for point, _ in _points(model, clause.key)
        )
    if clause.entity == "param":
        return compare(clause.op, model.params.get(clause.key), clause.value)
    if clause.entity == "tag":
        return compare(clause.op, model.tags.get(clause.key), clause.value)
    return compare(clause.op, _attribute(model, clause.key), clause.value)


def matching(
    models: Sequence[LoggedModel], clauses: Sequence[Clause], datasets: Sequence[DatasetFilter]
) -> list[LoggedModel]:
    """The models that satisfy every clause (and the datasets, as the module says)."""
    metric_clause = any(c.entity == "metric" for c in clauses)
    return [
        m
        for m in models
        if all(_clause_matches(m, c, datasets) for c in clauses)
        and (
            metric_clause
            or not datasets
            or any(d.matches(p) for _, p, _ in m.metrics for d in datasets)
        )
    ]


def _order_value(model: LoggedModel, order: LoggedOrder) -> Any:
    if "." not in order.field_name:
        key = _ALIASES.get(order.field_name, order.field_name)
        if key not in _ATTRIBUTES:
            raise invalid(f"Invalid order by field name: {order.field_name}")
        return _attribute(model, key)
    entity, name = order.field_name.split(".", 1)
    if entity != "metrics":
        raise invalid(
            f"Invalid order by field name: {order.field_name}. Only metrics are supported."
        )
    points = [
        (p, run_id)
        for p, run_id in _points(model, name)
        if order.dataset_name in ("", p.dataset_name)
        and order.dataset_digest in ("", p.dataset_digest)
    ]
    if not points:
        return None
    # The latest point: newest timestamp, then highest step, then the smallest run id.
    points.sort(key=lambda pr: pr[1])
    points.sort(key=lambda pr: (pr[0].timestamp, pr[0].step), reverse=True)
    return points[0][0].value


def ordered(models: Sequence[LoggedModel], orders: Sequence[LoggedOrder]) -> list[LoggedModel]:
    """The models in ``orders``' order, then newest first, then by model id."""
    keys = list(orders)
    fields = {_ALIASES.get(o.field_name, o.field_name) for o in orders}
    if "creation_timestamp_ms" not in fields:
        keys.append(LoggedOrder("creation_timestamp_ms", ascending=False))
    if "model_id" not in fields:
        keys.append(LoggedOrder("model_id"))
    result = list(models)
    for order in reversed(keys):
        valued = [(_order_value(m, order), m) for m in result]
        have = [pair for pair in valued if pair[0] is not None]
        have.sort(key=lambda pair: pair[0], reverse=not order.ascending)
        result = [m for _, m in have] + [m for value, m in valued if value is None]
    return result
