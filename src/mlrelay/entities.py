"""MLflow's entities under MLflow's names: ``from mlrelay.entities import Metric, Run, ViewType``.

The run, experiment, metric, param, tag, dataset and file entities are mlrelay's wire
entities, which have MLflow's shape: the same attribute names, ``run.data.metrics`` /
``params`` / ``tags`` and ``experiment.tags`` as dicts, and MLflow's positional
constructors (``Metric(key, value, timestamp, step)``, ``Param(key, value)``,
``RunTag(key, value)``). They are pydantic models, so keywords and validation work too.

``ViewType``, ``LifecycleStage`` and ``RunStatus`` are MLflow's classes of constants
(``ViewType.ACTIVE_ONLY == 1``, ``RunStatus.FINISHED == 3``), with their ``to_string`` /
``from_string``. Every mlrelay call that takes a view type takes these ints or the names.

``LoggedModel`` has MLflow 3's attributes (``model_id``, ``name``, ``status`` as a
``LoggedModelStatus``, ``tags`` / ``params`` dicts, ``metrics``...), read from the server's
JSON (its ``raw`` keeps that JSON, fields this version does not know included).

Differences from MLflow: ``Dataset.source`` is the source's JSON text (MLflow's is a
``DatasetSource`` object) and its schema is ``schema_``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from ._errors import ValidationError
from ._protocol.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    FileInfo,
    InputTag,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunTag,
)
from ._protocol.logged_models import LoggedModel, LoggedModelStatus

__all__ = [
    "Dataset",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "InputTag",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelStatus",
    "Metric",
    "ModelVersion",
    "PagedList",
    "Param",
    "RegisteredModel",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunStatus",
    "RunTag",
    "ViewType",
]

T = TypeVar("T")

ViewName = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]


class ViewType:
    """Which lifecycle stages a search returns: ``ACTIVE_ONLY`` (1), ``DELETED_ONLY`` (2),
    ``ALL`` (3), as in MLflow."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3
    _VIEW_TO_STRING: ClassVar[dict[int, str]] = {
        1: "active_only",
        2: "deleted_only",
        3: "all",
    }
    _STRING_TO_VIEW: ClassVar[dict[str, int]] = {v: k for k, v in _VIEW_TO_STRING.items()}

    @classmethod
    def from_string(cls, view_str: str) -> int:
        """``"active_only"`` -> 1 (MLflow's lower-case names).

        Raises:
            ValidationError: an unknown name.
        """
        if view_str not in cls._STRING_TO_VIEW:
            raise ValidationError(
                f"{view_str!r} is not a view type; valid: {', '.join(cls._STRING_TO_VIEW)}",
                field="view_type",
            )
        return cls._STRING_TO_VIEW[view_str]

    @classmethod
    def to_string(cls, view_type: int) -> str:
        """1 -> ``"active_only"``.

        Raises:
            ValidationError: an unknown view type.
        """
        if view_type not in cls._VIEW_TO_STRING:
            raise ValidationError(
                f"{view_type!r} is not a view type; valid: 1, 2, 3", field="view_type"
            )
        return cls._VIEW_TO_STRING[view_type]

    @classmethod
    def wire_name(cls, view_type: int | str) -> ViewName:
        """The name the REST API takes (``ACTIVE_ONLY``...) for a view type given as MLflow's
        int or as a name in either case.

        Raises:
            ValidationError: an unknown view type.
        """
        if isinstance(view_type, str):
            number = cls.from_string(view_type.lower())
        else:
            number = view_type
            cls.to_string(number)
        names: dict[int, ViewName] = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}
        return names[number]


class LifecycleStage:
    """A run's or an experiment's lifecycle stage: ``active`` or ``deleted``."""

    ACTIVE = "active"
    DELETED = "deleted"
    _VALID_STAGES: ClassVar[frozenset[str]] = frozenset({ACTIVE, DELETED})

    @classmethod
    def view_type_to_stages(cls, view_type: int = ViewType.ALL) -> list[str]:
        """The stages a view type shows."""
        stages = []
        if view_type in (ViewType.ACTIVE_ONLY, ViewType.ALL):
            stages.append(cls.ACTIVE)
        if view_type in (ViewType.DELETED_ONLY, ViewType.ALL):
            stages.append(cls.DELETED)
        return stages

    @classmethod
    def is_valid(cls, lifecycle_stage: str) -> bool:
        """Whether ``lifecycle_stage`` is ``active`` or ``deleted``."""
        return lifecycle_stage in cls._VALID_STAGES

    @classmethod
    def matches_view_type(cls, view_type: int, lifecycle_stage: str) -> bool:
        """Whether a search with ``view_type`` shows something in ``lifecycle_stage``.

        Raises:
            ValidationError: an unknown stage or view type.
        """
        if not cls.is_valid(lifecycle_stage):
            raise ValidationError(
                f"invalid lifecycle stage {lifecycle_stage!r}", field="lifecycle_stage"
            )
        ViewType.to_string(view_type)
        return lifecycle_stage in cls.view_type_to_stages(view_type)


class RunStatus:
    """A run's status as MLflow numbers it: RUNNING 1, SCHEDULED 2, FINISHED 3, FAILED 4,
    KILLED 5. ``run.info.status`` itself is the name (``"FINISHED"``), as in MLflow."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5
    _STRING_TO_STATUS: ClassVar[dict[str, int]] = {
        "RUNNING": 1,
        "SCHEDULED": 2,
        "FINISHED": 3,
        "FAILED": 4,
        "KILLED": 5,
    }
    _STATUS_TO_STRING: ClassVar[dict[int, str]] = {v: k for k, v in _STRING_TO_STATUS.items()}
    _TERMINATED: ClassVar[frozenset[int]] = frozenset({3, 4, 5})

    @staticmethod
    def from_string(status_str: str) -> int:
        """``"FINISHED"`` -> 3.

        Raises:
            ValidationError: an unknown status.
        """
        if status_str not in RunStatus._STRING_TO_STATUS:
            raise ValidationError(
                f"{status_str!r} is not a run status; valid: "
                f"{', '.join(RunStatus._STRING_TO_STATUS)}",
                field="status",
            )
        return RunStatus._STRING_TO_STATUS[status_str]

    @staticmethod
    def to_string(status: int) -> str:
        """3 -> ``"FINISHED"``.

        Raises:
            ValidationError: an unknown status.
        """
        if status not in RunStatus._STATUS_TO_STRING:
            raise ValidationError(f"{status!r} is not a run status (1..5)", field="status")
        return RunStatus._STATUS_TO_STRING[status]

    @staticmethod
    def is_terminated(status: int) -> bool:
        """Whether the status is FINISHED, FAILED or KILLED."""
        return status in RunStatus._TERMINATED

    @staticmethod
    def all_status() -> list[int]:
        """Every status, 1..5."""
        return list(RunStatus._STATUS_TO_STRING)


class PagedList(list[T]):
    """One page of search results (a list) and ``token``, the next page's token (None after
    the last page), as MLflow's ``PagedList``."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
