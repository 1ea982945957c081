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

The entities users build take MLflow's positional arguments too (``Metric(key, value,
timestamp, step)``, ``Param(key, value)``, ``RunTag(key, value)``, ``Dataset(name, digest,
source_type, source)``, ...); keywords and pydantic's validation work as before.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CLIENT_KEY_TAG",
    "CLIENT_KEY_TAGS",
    "LEGACY_CLIENT_KEY_TAG",
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

CLIENT_KEY_TAG = "mlflow.mlrelay.clientKey"
"""The tag carrying the client-generated key that makes creating a run or a model version
exactly-once: after an ambiguous failure, a search for the key finds what was created.
Under MLflow's ``mlflow.`` system-tag prefix, so MLflow's UI keeps it out of the user's tags."""

LEGACY_CLIENT_KEY_TAG = "mlrelay.client_key"
"""The name the key had before mlrelay 0.2; runs and versions created then carry it, so
searches for a key look for both names (journals written then still sync exactly once)."""

CLIENT_KEY_TAGS = (CLIENT_KEY_TAG, LEGACY_CLIENT_KEY_TAG)
"""Both names, newest first."""

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


_MISSING: Any = object()
"""A positional argument not given: left out, so pydantic reports the missing field."""


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that were given (MLflow-style positional construction)."""
    return {k: v for k, v in fields.items() if v is not _MISSING}


class Metric(Entity):
    """One metric point.

    Args:
        key: the metric name (at most 250 characters of MLflow's allowed set).
        value: the value; NaN and infinities are allowed.
        timestamp: Unix epoch milliseconds, >= 0.
        step: the training step (may be negative), default 0.

    >>> Metric("loss", 0.25, 1700000000000, 3)
    Metric(key='loss', value=0.25, timestamp=1700000000000, step=3)
    """

    key: str
    value: float
    timestamp: int
    step: int = 0

    def __init__(
        self,
        key: str = _MISSING,
        value: float = _MISSING,
        timestamp: int = _MISSING,
        step: int = _MISSING,
        **data: Any,
    ) -> None:
        super().__init__(**_given(key=key, value=value, timestamp=timestamp, step=step), **data)


class _KeyValue(Entity):
    """A key and a string value, built as ``Cls(key, value)`` or with keywords."""

    key: str
    value: str

    def __init__(self, key: str = _MISSING, value: str = _MISSING, **data: Any) -> None:
        super().__init__(**_given(key=key, value=value), **data)


class Param(_KeyValue):
    """A run parameter: set once per run; its value is a string of at most 6000 characters."""


class RunTag(_KeyValue):
    """A run tag: a string value of at most 8000 characters; setting it again overwrites it."""


class ExperimentTag(_KeyValue):
    """An experiment tag: a string value of at most 20000 characters."""


class InputTag(_KeyValue):
    """A tag on a dataset input, such as ``mlflow.data.context = training``."""


class Dataset(Entity):
    """A dataset as MLflow records it; ``source``, ``schema`` and ``profile`` are JSON strings.

    Built as MLflow's ``Dataset(name, digest, source_type, source, schema=None, profile=None)``.
    """

    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None

    def __init__(
        self,
        name: str = _MISSING,
        digest: str = _MISSING,
        source_type: str = _MISSING,
        source: str = _MISSING,
        schema: str | None = _MISSING,
        profile: str | None = _MISSING,
        **data: Any,
    ) -> None:
        fields = _given(
            name=name, digest=digest, source_type=source_type, source=source, profile=profile
        )
        super().__init__(**fields, **_given(schema=schema), **data)


class DatasetInput(Entity):
    """A dataset used by a run, with its input tags (MLflow's ``DatasetInput(dataset, tags)``)."""

    dataset: Dataset
    tags: list[InputTag] = Field(default_factory=list)

    def __init__(
        self, dataset: Dataset = _MISSING, tags: list[InputTag] | None = _MISSING, **data: Any
    ) -> None:
        super().__init__(**_given(dataset=dataset, tags=[] if tags is None else tags), **data)


class Experiment(Entity):
    """An experiment: a named group of runs.

    ``tags`` is a dict, as in MLflow's client; the wire list is ``tag_list``.
    """

    experiment_id: str
    name: str
    artifact_location: str | None = None
    lifecycle_stage: str = "active"
    last_update_time: int | None = None
    creation_time: int | None = None
    tag_list: list[ExperimentTag] = Field(default_factory=list, alias="tags")

    @property
    def tags(self) -> dict[str, str]:
        """The experiment's tags as a dict."""
        return {t.key: t.value for t in self.tag_list}

    @property
    def tags_dict(self) -> dict[str, str]:
        """The name earlier mlrelay versions gave :attr:`tags`."""
        return self.tags


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
    """An artifact file or directory of a run (``path`` relative to the run's root); built
    as MLflow's ``FileInfo(path, is_dir, file_size)`` too."""

    path: str
    is_dir: bool = False
    file_size: int | None = None

    def __init__(
        self,
        path: str = _MISSING,
        is_dir: bool = _MISSING,
        file_size: int | None = _MISSING,
        **data: Any,
    ) -> None:
        super().__init__(**_given(path=path, is_dir=is_dir, file_size=file_size), **data)
