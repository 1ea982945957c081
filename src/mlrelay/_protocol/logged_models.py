"""MLflow 3's logged models as MLflow's client shows them: :class:`LoggedModel` (MLflow's
attribute names, read from the server's ``{"info": ..., "data": ...}`` JSON),
:class:`LoggedModelStatus`, and the messages and per-id endpoints of the calls that read
and tag logged models (``logged-models/<id>``, ``/tags``, ``/search``).

Responses are kept as the server's JSON (dicts) and turned into :class:`LoggedModel` by
:meth:`LoggedModel.from_json`, so fields this version does not know are not lost: they stay
in :attr:`LoggedModel.raw`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import quote

from pydantic import Field

from .entities import Entity, Metric, ModelVersionTag
from .messages import Empty, Endpoint, Request, Response
from .registry import FinalizeLoggedModel

__all__ = [
    "LoggedModel",
    "LoggedModelBody",
    "LoggedModelStatus",
    "LoggedModelsPage",
    "NoBody",
    "SearchLoggedModelsQuery",
    "SetLoggedModelTags",
    "delete_endpoint",
    "delete_tag_endpoint",
    "finalize_endpoint",
    "get_endpoint",
    "search_endpoint",
    "set_tags_endpoint",
]


class LoggedModelStatus(str, Enum):
    """A logged model's status, as MLflow's ``LoggedModelStatus``: ``str(status)`` and
    ``status.name`` are ``"READY"``, ``"PENDING"``, ``"FAILED"`` or ``"UNSPECIFIED"``, and a
    status equals its name (``status == "READY"``)."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    @staticmethod
    def is_finalized(status: Any) -> bool:
        """Whether no further status change happens (READY or FAILED)."""
        return status in (LoggedModelStatus.READY, LoggedModelStatus.FAILED)

    @classmethod
    def from_wire(cls, name: str | None) -> LoggedModelStatus:
        """``"LOGGED_MODEL_READY"`` (the REST API's name) -> ``READY``; unknown or missing
        names are ``UNSPECIFIED``."""
        return _FROM_WIRE.get(name or "", cls.UNSPECIFIED)

    def to_wire(self) -> str:
        """``READY`` -> ``"LOGGED_MODEL_READY"`` (the REST API's name)."""
        return {v: k for k, v in _FROM_WIRE.items()}[self]

    @classmethod
    def from_int(cls, status_int: int) -> LoggedModelStatus:
        """MLflow's number (0..3) -> the status."""
        return list(cls)[status_int]

    def to_int(self) -> int:
        """The status as MLflow numbers it (UNSPECIFIED 0, PENDING 1, READY 2, FAILED 3)."""
        return list(LoggedModelStatus).index(self)


_FROM_WIRE = {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": LoggedModelStatus.UNSPECIFIED,
    "LOGGED_MODEL_PENDING": LoggedModelStatus.PENDING,
    "LOGGED_MODEL_READY": LoggedModelStatus.READY,
    "LOGGED_MODEL_UPLOAD_FAILED": LoggedModelStatus.FAILED,
}


@dataclass
class LoggedModel:
    """An MLflow 3 logged model (``models:/<model_id>``) with MLflow's ``LoggedModel``
    attributes.

    Attributes:
        experiment_id: the experiment it was logged to.
        model_id: its id (``m-...``).
        name: its name (``log_model(name=...)``).
        artifact_location: where its files are (``mlflow-artifacts:/...``).
        creation_timestamp: creation time, Unix epoch milliseconds.
        last_updated_timestamp: last change, Unix epoch milliseconds.
        model_type: its type (``""`` when none was given, as the server answers).
        source_run_id: the run that logged it, if any.
        status: a :class:`LoggedModelStatus`.
        status_message: the server's message about the status (``""`` when none).
        tags: tag key -> value.
        params: param key -> value.
        metrics: the metric points linked to it (:class:`Metric` with ``model_id``,
            ``run_id``, ``dataset_name`` and ``dataset_digest``).
        raw: the server's JSON for the model, unknown fields included.
    """

    experiment_id: str
    model_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    model_type: str | None = None
    source_run_id: str | None = None
    status: LoggedModelStatus = LoggedModelStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def model_uri(self) -> str:
        """``models:/<model_id>``."""
        return f"models:/{self.model_id}"

    @classmethod
    def from_json(cls, model: Mapping[str, Any]) -> LoggedModel:
        """Read the server's ``{"info": {...}, "data": {...}}`` record."""
        info, data = model.get("info") or {}, model.get("data") or {}
        return cls(
            experiment_id=str(info.get("experiment_id", "")),
            model_id=str(info["model_id"]),
            name=str(info.get("name", "")),
            artifact_location=str(info.get("artifact_uri", "")),
            creation_timestamp=int(info.get("creation_timestamp_ms") or 0),
            last_updated_timestamp=int(info.get("last_updated_timestamp_ms") or 0),
            model_type=info.get("model_type", ""),
            source_run_id=info.get("source_run_id", ""),
            status=LoggedModelStatus.from_wire(info.get("status")),
            status_message=info.get("status_message", ""),
            tags=_pairs(info.get("tags")),
            params=_pairs(data.get("params")),
            metrics=[_metric(m) for m in data.get("metrics") or []],
            raw=dict(model),
        )

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's ``to_dictionary()``: the attributes (without ``model_uri`` and ``raw``),
        ``status`` as MLflow's number."""
        return {
            "artifact_location": self.artifact_location,
            "creation_timestamp": self.creation_timestamp,
            "experiment_id": self.experiment_id,
            "last_updated_timestamp": self.last_updated_timestamp,
            "metrics": self.metrics,
            "model_id": self.model_id,
            "model_type": self.model_type,
            "name": self.name,
            "params": self.params,
            "source_run_id": self.source_run_id,
            "status": self.status.to_int(),
            "status_message": self.status_message,
            "tags": self.tags,
        }


def _pairs(items: Any) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items or []}


def _metric(point: Mapping[str, Any]) -> Metric:
    """A metric point with MLflow 3's links (None where the server left them out)."""
    links = ("model_id", "run_id", "dataset_name", "dataset_digest")
    return Metric.model_validate({**{k: None for k in links}, **point})


class SetLoggedModelTags(Request):
    """``PATCH logged-models/<id>/tags``."""

    tags: list[ModelVersionTag]


class NoBody(Request):
    """A request whose arguments are all in the path."""


class _Dataset(Entity):
    dataset_name: str
    dataset_digest: str | None = None


class _OrderBy(Entity):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModelsQuery(Request):
    """``POST logged-models/search`` with MLflow 3's dataset filters and ordering."""

    experiment_ids: list[str]
    filter: str | None = None
    datasets: list[_Dataset] | None = None
    max_results: int | None = None
    order_by: list[_OrderBy] | None = None
    page_token: str | None = None


class LoggedModelBody(Response):
    """A ``{"model": {...}}`` body, kept as JSON."""

    model: dict[str, Any]


class LoggedModelsPage(Response):
    """One page of logged models, kept as JSON."""

    models: list[dict[str, Any]] = Field(default_factory=list)
    next_page_token: str | None = None


def search_endpoint() -> Endpoint[SearchLoggedModelsQuery, LoggedModelsPage]:
    """``POST logged-models/search`` (a read: safe to replay)."""
    return Endpoint("POST", "logged-models/search", SearchLoggedModelsQuery, LoggedModelsPage, True)


def _path(model_id: str, suffix: str = "") -> str:
    return f"logged-models/{quote(model_id, safe='')}{suffix}"


def get_endpoint(model_id: str) -> Endpoint[NoBody, LoggedModelBody]:
    """``GET logged-models/<id>``."""
    return Endpoint("GET", _path(model_id), NoBody, LoggedModelBody, True)


def finalize_endpoint(model_id: str) -> Endpoint[FinalizeLoggedModel, LoggedModelBody]:
    """``PATCH logged-models/<id>``: set the final status (a replay sets it again)."""
    return Endpoint("PATCH", _path(model_id), FinalizeLoggedModel, LoggedModelBody, True)


def delete_endpoint(model_id: str) -> Endpoint[NoBody, Empty]:
    """``DELETE logged-models/<id>`` (a second delete answers 404: not replayed blindly)."""
    return Endpoint("DELETE", _path(model_id), NoBody, Empty, False)


def set_tags_endpoint(model_id: str) -> Endpoint[SetLoggedModelTags, Empty]:
    """``PATCH logged-models/<id>/tags`` (setting the same tags again changes nothing)."""
    return Endpoint("PATCH", _path(model_id, "/tags"), SetLoggedModelTags, Empty, True)


def delete_tag_endpoint(model_id: str, key: str) -> Endpoint[NoBody, Empty]:
    """``DELETE logged-models/<id>/tags/<key>`` (a second delete answers 404)."""
    return Endpoint("DELETE", _path(model_id, f"/tags/{quote(key, safe='')}"), NoBody, Empty, False)
