"""The entities the mock stores, and their MLflow JSON shapes.

Field names follow the MLflow protos. Default-valued fields are left out of the JSON, as the
real server does (no ``end_time`` until set, no empty lists).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "DatasetInput",
    "Experiment",
    "LoggedModel",
    "ModelVersion",
    "Point",
    "RegisteredModel",
    "Run",
    "encode_double",
    "key_values",
]

DOUBLE_MAX = 1.7976931348623157e308


def encode_double(value: float) -> float | str:
    """A double as MLflow sends it: NaN as the string ``"NaN"``, everything else a number."""
    return "NaN" if math.isnan(value) else value


def key_values(pairs: dict[str, str]) -> list[dict[str, str]]:
    """``{k: v}`` as MLflow's ``[{"key": k, "value": v}]``."""
    return [{"key": k, "value": v} for k, v in pairs.items()]


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        out[name] = value


class Point(NamedTuple):
    """One stored metric point."""

    timestamp: int
    step: int
    value: float
    model_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""

    def sort_value(self) -> float:
        """The value the SQL store orders by (NaN is stored as 0 with an is_nan flag)."""
        return 0.0 if math.isnan(self.value) else self.value

    def to_json(self, key: str, run_id: str | None = None) -> dict[str, Any]:
        """The MLflow ``Metric`` object."""
        out: dict[str, Any] = {
            "key": key,
            "value": encode_double(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }
        _put(out, "dataset_name", self.dataset_name)
        _put(out, "dataset_digest", self.dataset_digest)
        _put(out, "model_id", self.model_id)
        _put(out, "run_id", run_id)
        return out


@dataclass
class Experiment:
    """An experiment."""

    experiment_id: str
    name: str
    artifact_location: str
    creation_time: int
    last_update_time: int
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self, *, workspace: bool) -> dict[str, Any]:
        """The MLflow ``Experiment`` object."""
        out: dict[str, Any] = {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "last_update_time": self.last_update_time,
            "creation_time": self.creation_time,
        }
        _put(out, "tags", key_values(self.tags))
        if workspace:
            out["workspace"] = "default"
        return out


@dataclass
class DatasetInput:
    """A dataset logged as a run input."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str
    profile: str
    tags: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The MLflow ``DatasetInput`` object."""
        dataset: dict[str, Any] = {"name": self.name, "digest": self.digest}
        for name in ("source_type", "source", "schema", "profile"):
            _put(dataset, name, getattr(self, name))
        out: dict[str, Any] = {"dataset": dataset}
        _put(out, "tags", key_values(self.tags))
        return out


@dataclass
class Run:
    """A run, with its params, tags, metric history and inputs/outputs."""

    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    start_time: int
    artifact_uri: str
    status: str = "RUNNING"
    end_time: int | None = None
    lifecycle_stage: str = "active"
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[Point]] = field(default_factory=dict)
    # Keys whose history list is known to be in (timestamp, step, value) order.
    sorted_keys: set[str] = field(default_factory=set)
    latest: dict[str, Point] = field(default_factory=dict)
    seen: set[tuple[str, int, int, float | str]] = field(default_factory=set)
    datasets: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)
    model_outputs: list[tuple[str, int]] = field(default_factory=list)

    def info_json(self) -> dict[str, Any]:
        """The MLflow ``RunInfo`` object."""
        out: dict[str, Any] = {
            "run_uuid": self.run_id,
            "experiment_id": self.experiment_id,
            "run_name": self.run_name,
            "user_id": self.user_id,
            "status": self.status,
            "start_time": self.start_time,
        }
        _put(out, "end_time", self.end_time)
        out["artifact_uri"] = self.artifact_uri
        out["lifecycle_stage"] = self.lifecycle_stage
        out["run_id"] = self.run_id
        return out

    def to_json(self, *, outputs: bool = True) -> dict[str, Any]:
        """The MLflow ``Run`` object (``outputs`` is left out of the ``runs/create`` answer)."""
        data: dict[str, Any] = {}
        _put(data, "metrics", [p.to_json(k) for k, p in self.latest.items()])
        _put(data, "params", key_values(self.params))
        _put(data, "tags", key_values(self.tags))
        inputs: dict[str, Any] = {}
        _put(inputs, "dataset_inputs", [d.to_json() for d in self.datasets])
        _put(inputs, "model_inputs", [{"model_id": m} for m in self.model_inputs])
        out: dict[str, Any] = {"info": self.info_json(), "data": data, "inputs": inputs}
        if outputs:
            out["outputs"] = {}
            _put(
                out["outputs"],
                "model_outputs",
                [{"model_id": m, "step": s} for m, s in self.model_outputs],
            )
        return out


@dataclass
class ModelVersion:
    """A registered model version."""

    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    run_id: str = ""
    run_link: str = ""
    description: str = ""
    user_id: str = ""
    model_id: str = ""
    storage_location: str = ""
    current_stage: str = "None"
    status: str = "READY"
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def download_uri(self) -> str:
        """Where the version's files are (``get-download-uri``)."""
        return self.storage_location or self.source

    def to_json(self) -> dict[str, Any]:
        """The MLflow ``ModelVersion`` object."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": str(self.version),
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "current_stage": self.current_stage,
        }
        _put(out, "description", self.description)
        _put(out, "user_id", self.user_id)
        out["source"] = self.source
        _put(out, "run_id", self.run_id)
        out["status"] = self.status
        _put(out, "tags", key_values(self.tags))
        out["run_link"] = self.run_link
        _put(out, "aliases", sorted(self.aliases))
        _put(out, "model_id", self.model_id)
        return out


@dataclass
class RegisteredModel:
    """A registered model and its versions."""

    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    next_version: int = 1

    def latest_versions(self, stages: list[str] | None = None) -> list[ModelVersion]:
        """The newest version in each stage (all stages when ``stages`` is empty)."""
        newest: dict[str, ModelVersion] = {}
        for version in sorted(self.versions.values(), key=lambda v: v.version):
            newest[version.current_stage] = version
        wanted = {s.lower() for s in stages} if stages else None
        return [v for stage, v in newest.items() if wanted is None or stage.lower() in wanted]

    def to_json(self) -> dict[str, Any]:
        """The MLflow ``RegisteredModel`` object."""
        out: dict[str, Any] = {
            "name": self.name,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
        }
        _put(out, "description", self.description)
        _put(out, "latest_versions", [v.to_json() for v in self.latest_versions()])
        _put(out, "tags", key_values(self.tags))
        _put(
            out,
            "aliases",
            [{"alias": a, "version": str(v)} for a, v in sorted(self.aliases.items())],
        )
        return out


@dataclass
class LoggedModel:
    """An MLflow 3 logged model."""

    model_id: str
    experiment_id: str
    name: str
    artifact_uri: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    model_type: str = ""
    source_run_id: str = ""
    status: str = "LOGGED_MODEL_PENDING"
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # Metric points logged with this model's id: (key, point, run id).
    metrics: list[tuple[str, Point, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The MLflow ``LoggedModel`` object."""
        info: dict[str, Any] = {
            "model_id": self.model_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "creation_timestamp_ms": self.creation_timestamp_ms,
            "last_updated_timestamp_ms": self.last_updated_timestamp_ms,
            "artifact_uri": self.artifact_uri,
            "status": self.status,
        }
        _put(info, "model_type", self.model_type)
        _put(info, "source_run_id", self.source_run_id)
        _put(info, "tags", key_values(self.tags))
        data: dict[str, Any] = {}
        _put(data, "params", key_values(self.params))
        _put(data, "metrics", [point.to_json(key, run_id) for key, point, run_id in self.metrics])
        return {"info": info, "data": data}
