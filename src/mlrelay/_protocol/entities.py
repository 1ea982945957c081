"""MLflow entities as they appear on the wire: experiments, runs, metrics, params, tags, datasets.

These models are what the server sends back, so they are tolerant: unknown fields
from newer servers are kept (``extra="allow"``) and never rejected; int64 fields
accept JSON numbers or numeric strings. They are also what users hand to
``Client.log_batch``, so the fields users set are validated like any pydantic model.

Metric values follow MLflow's encoding: NaN and infinities travel as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (a bare ``NaN`` JSON token is silently
stored as 0 by the server, so it is never emitted). MLflow stores infinities as
±1.7976931348623157e308 and returns those finite numbers; NaN comes back as ``"NaN"``
and is read as ``float("nan")``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CLIENT_KEY_TAG",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "InputTag",
    "Metric",
    "ModelVersion",
    "ModelVersionTag",
    "Param",
    "RegisteredModel",
    "RegisteredModelAlias",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "ViewType",
]

CLIENT_KEY_TAG = "mlrelay.client_key"
"""The tag carrying the client-generated key that makes creating a run or a model version
exactly-once: after an ambiguous failure, a search for the key finds what was created."""

RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
"""The run states MLflow knows."""

ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]
"""Which lifecycle stages a search returns."""


class Entity(BaseModel):
    """Base of every wire entity: keeps unknown fields, encodes NaN/Inf as MLflow does."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        ser_json_inf_nan="strings",
        populate_by_name=True,
    )


class Metric(Entity):
    """One metric point.

    Args:
        key: the metric name (at most 250 characters of MLflow's allowed set).
        value: the value; NaN and infinities are allowed.
        timestamp: Unix epoch milliseconds, >= 0.
        step: the training step (may be negative), default 0.

    >>> Metric(key="loss", value=0.25, timestamp=1700000000000, step=3)
    Metric(key='loss', value=0.25, timestamp=1700000000000, step=3)
    """

    key: str
    value: float
    timestamp: int
    step: int = 0


class Param(Entity):
    """A run parameter: set once per run; its value is a string of at most 6000 characters."""

    key: str
    value: str


class RunTag(Entity):
    """A run tag: a string value of at most 8000 characters; setting it again overwrites it."""

    key: str
    value: str


class ExperimentTag(Entity):
    """An experiment tag: a string value of at most 20000 characters."""

    key: str
    value: str


class InputTag(Entity):
    """A tag on a dataset input, such as ``mlflow.data.context = training``."""

    key: str
    value: str


class Dataset(Entity):
    """A dataset as MLflow records it; ``source``, ``schema`` and ``profile`` are JSON strings."""

    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None


class DatasetInput(Entity):
    """A dataset used by a run, with its input tags."""

    dataset: Dataset
    tags: list[InputTag] = Field(default_factory=list)


class Experiment(Entity):
    """An experiment: a named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str | None = None
    lifecycle_stage: str = "active"
    last_update_time: int | None = None
    creation_time: int | None = None
    tags: list[ExperimentTag] = Field(default_factory=list)

    @property
    def tags_dict(self) -> dict[str, str]:
        """The experiment's tags as a dict."""
        return {t.key: t.value for t in self.tags}


class RunInfo(Entity):
    """A run's metadata: identity, status, times and where its artifacts go."""

    run_id: str
    experiment_id: str
    run_name: str | None = None
    user_id: str | None = None
    status: str = "RUNNING"  # a str, not RunStatus: newer servers may add states
    start_time: int | None = None
    end_time: int | None = None
    artifact_uri: str | None = None
    lifecycle_stage: str = "active"


class RunData(Entity):
    """A run's data, as MLflow's client shows it: ``metrics`` (the latest value per key),
    ``params`` and ``tags`` are dicts.

    The wire lists are kept as ``metric_list`` (each latest :class:`Metric`, with its step
    and timestamp), ``param_list`` and ``tag_list``.
    """

    metric_list: list[Metric] = Field(default_factory=list, alias="metrics")
    param_list: list[Param] = Field(default_factory=list, alias="params")
    tag_list: list[RunTag] = Field(default_factory=list, alias="tags")

    @property
    def metrics(self) -> dict[str, float]:
        """Latest value per metric key (the server picks it by step, then timestamp)."""
        return {m.key: m.value for m in self.metric_list}

    @property
    def params(self) -> dict[str, str]:
        """Params as a dict."""
        return {p.key: p.value for p in self.param_list}

    @property
    def tags(self) -> dict[str, str]:
        """Tags as a dict (mlrelay's own exactly-once key included, when the server sent it)."""
        return {t.key: t.value for t in self.tag_list}

    @property
    def metrics_dict(self) -> dict[str, float]:
        """The name earlier mlrelay versions gave :attr:`metrics`."""
        return self.metrics

    @property
    def params_dict(self) -> dict[str, str]:
        """The name earlier mlrelay versions gave :attr:`params`."""
        return self.params

    @property
    def tags_dict(self) -> dict[str, str]:
        """The name earlier mlrelay versions gave :attr:`tags`."""
        return self.tags


class RunInputs(Entity):
    """The inputs of a run: datasets (and, on MLflow 3, logged models)."""

    dataset_inputs: list[DatasetInput] = Field(default_factory=list)


class Run(Entity):
    """A run: its info, its data and its inputs."""

    info: RunInfo
    data: RunData = Field(default_factory=RunData)
    inputs: RunInputs = Field(default_factory=RunInputs)


class ModelVersionTag(Entity):
    """A tag on a registered model or a model version."""

    key: str
    value: str


class ModelVersion(Entity):
    """One version of a registered model."""

    name: str
    version: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    current_stage: str | None = None
    description: str | None = None
    source: str | None = None
    run_id: str | None = None
    status: str | None = None
    status_message: str | None = None
    tags: list[ModelVersionTag] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    run_link: str | None = None
    user_id: str | None = None
    model_id: str | None = None  # MLflow 3: the logged model this version was made from


class RegisteredModelAlias(Entity):
    """An alias pointing at one version."""

    alias: str
    version: str


class RegisteredModel(Entity):
    """A named model in the registry, with its latest version per stage."""

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = Field(default_factory=list)
    tags: list[ModelVersionTag] = Field(default_factory=list)
    aliases: list[RegisteredModelAlias] = Field(default_factory=list)


class FileInfo(Entity):
    """An artifact file or directory of a run (``path`` relative to the run's root)."""

    path: str
    is_dir: bool = False
    file_size: int | None = None
