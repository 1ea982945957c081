"""Request and response messages of the MLflow REST API, and the endpoint table.

Requests are strict (``extra="forbid"``, frozen) so a typo in a field name fails
here instead of being silently ignored by the server; responses are tolerant.
Field names are MLflow's JSON names. Every endpoint states whether replaying it is
harmless (``idempotent``): the retry layer replays only those blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    Metric,
    Param,
    Run,
    RunInfo,
    RunTag,
)

__all__ = [
    "ENDPOINTS",
    "CreateExperiment",
    "CreateExperimentResponse",
    "CreateRun",
    "DeleteExperimentTag",
    "DeleteTag",
    "Empty",
    "Endpoint",
    "ExperimentIdRequest",
    "ExperimentResponse",
    "GetExperiment",
    "GetExperimentByName",
    "GetMetricHistory",
    "GetMetricHistoryResponse",
    "GetRun",
    "LogBatch",
    "LogInputs",
    "LogMetric",
    "LogParam",
    "Request",
    "Response",
    "RunIdRequest",
    "RunResponse",
    "SearchExperiments",
    "SearchExperimentsResponse",
    "SearchRuns",
    "SearchRunsResponse",
    "SetExperimentTag",
    "SetTag",
    "UpdateExperiment",
    "UpdateRun",
    "UpdateRunResponse",
]


class Request(BaseModel):
    """Base of request messages: unknown fields are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


class Response(BaseModel):
    """Base of response messages: unknown fields are kept, never an error."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Empty(Response):
    """The ``{}`` body of a successful mutation."""


# --- experiments -----------------------------------------------------------------------


class CreateExperiment(Request):
    """``POST experiments/create``."""

    name: str
    artifact_location: str | None = None
    tags: list[ExperimentTag] | None = None


class CreateExperimentResponse(Response):
    """The id of the new experiment."""

    experiment_id: str


class GetExperiment(Request):
    """``GET experiments/get``."""

    experiment_id: str


class GetExperimentByName(Request):
    """``GET experiments/get-by-name``."""

    experiment_name: str


class ExperimentResponse(Response):
    """An ``{"experiment": ...}`` body."""

    experiment: Experiment


class SearchExperiments(Request):
    """``POST experiments/search``; MLflow requires ``max_results``."""

    max_results: int
    filter: str | None = None
    order_by: list[str] | None = None
    view_type: str | None = None
    page_token: str | None = None


class SearchExperimentsResponse(Response):
    """One page of experiments."""

    experiments: list[Experiment] = Field(default_factory=list)
    next_page_token: str | None = None


class UpdateExperiment(Request):
    """``POST experiments/update`` (rename)."""

    experiment_id: str
    new_name: str


class ExperimentIdRequest(Request):
    """A body with only an experiment id (delete, restore)."""

    experiment_id: str


class SetExperimentTag(Request):
    """``POST experiments/set-experiment-tag``."""

    experiment_id: str
    key: str
    value: str


class DeleteExperimentTag(Request):
    """``POST experiments/delete-experiment-tag``."""

    experiment_id: str
    key: str


# --- runs ------------------------------------------------------------------------------


class CreateRun(Request):
    """``POST runs/create``: the server assigns the id, so this is not idempotent."""

    experiment_id: str
    start_time: int
    user_id: str | None = None
    run_name: str | None = None
    tags: list[RunTag] | None = None


class RunResponse(Response):
    """A ``{"run": ...}`` body."""

    run: Run


class GetRun(Request):
    """``GET runs/get``."""

    run_id: str


class UpdateRun(Request):
    """``POST runs/update``: only the fields present change."""

    run_id: str
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class UpdateRunResponse(Response):
    """The updated run info."""

    run_info: RunInfo


class RunIdRequest(Request):
    """A body with only a run id (delete, restore)."""

    run_id: str


class SearchRuns(Request):
    """``POST runs/search``."""

    experiment_ids: list[str]
    filter: str | None = None
    run_view_type: str | None = None
    max_results: int | None = None
    order_by: list[str] | None = None
    page_token: str | None = None


class SearchRunsResponse(Response):
    """One page of runs."""

    runs: list[Run] = Field(default_factory=list)
    next_page_token: str | None = None


class LogMetric(Request):
    """``POST runs/log-metric``."""

    run_id: str
    key: str
    value: float
    timestamp: int
    step: int = 0


class LogParam(Request):
    """``POST runs/log-parameter``."""

    run_id: str
    key: str
    value: str


class SetTag(Request):
    """``POST runs/set-tag``."""

    run_id: str
    key: str
    value: str


class DeleteTag(Request):
    """``POST runs/delete-tag``."""

    run_id: str
    key: str


class LogBatch(Request):
    """``POST runs/log-batch``: at most 1000 metrics, 100 params, 100 tags, 1000 in all."""

    run_id: str
    metrics: list[Metric] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)
    tags: list[RunTag] = Field(default_factory=list)


class LogInputs(Request):
    """``POST runs/log-inputs``."""

    run_id: str
    datasets: list[DatasetInput] = Field(default_factory=list)


class GetMetricHistory(Request):
    """``GET metrics/get-history``."""

    run_id: str
    metric_key: str
    max_results: int | None = None
    page_token: str | None = None


class GetMetricHistoryResponse(Response):
    """One page of a metric's history (``{}`` for an unknown run or key)."""

    metrics: list[Metric] = Field(default_factory=list)
    next_page_token: str | None = None


# --- the endpoint table ------------------------------------------------------------------

ReqT = TypeVar("ReqT", bound=Request)
RespT = TypeVar("RespT", bound=Response)


@dataclass(frozen=True)
class Endpoint(Generic[ReqT, RespT]):
    """One REST operation: how to send it, what it returns, and whether replays are safe.

    Attributes:
        method: the HTTP method; GET arguments go in the query string, others in a JSON body.
        path: the path below ``/api/2.0/mlflow/``.
        request: the request model.
        response: the response model.
        idempotent: whether sending it twice has the same effect as once.
    """

    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    request: type[ReqT]
    response: type[RespT]
    idempotent: bool


class ENDPOINTS:
    """Every tracking endpoint the client uses, by operation name."""

    create_experiment = Endpoint(
        "POST", "experiments/create", CreateExperiment, CreateExperimentResponse, False
    )
    get_experiment = Endpoint("GET", "experiments/get", GetExperiment, ExperimentResponse, True)
    get_experiment_by_name = Endpoint(
        "GET", "experiments/get-by-name", GetExperimentByName, ExperimentResponse, True
    )
    search_experiments = Endpoint(
        "POST", "experiments/search", SearchExperiments, SearchExperimentsResponse, True
    )
    # Rename to the same name is a no-op, so a replay is harmless.
    update_experiment = Endpoint("POST", "experiments/update", UpdateExperiment, Empty, True)
    # A second delete/restore answers 404, so these are not replayed blindly.
    delete_experiment = Endpoint("POST", "experiments/delete", ExperimentIdRequest, Empty, False)
    restore_experiment = Endpoint("POST", "experiments/restore", ExperimentIdRequest, Empty, False)
    set_experiment_tag = Endpoint(
        "POST", "experiments/set-experiment-tag", SetExperimentTag, Empty, True
    )
    delete_experiment_tag = Endpoint(
        "POST", "experiments/delete-experiment-tag", DeleteExperimentTag, Empty, False
    )
    create_run = Endpoint("POST", "runs/create", CreateRun, RunResponse, False)
    get_run = Endpoint("GET", "runs/get", GetRun, RunResponse, True)
    update_run = Endpoint("POST", "runs/update", UpdateRun, UpdateRunResponse, True)
    delete_run = Endpoint("POST", "runs/delete", RunIdRequest, Empty, True)
    restore_run = Endpoint("POST", "runs/restore", RunIdRequest, Empty, True)
    search_runs = Endpoint("POST", "runs/search", SearchRuns, SearchRunsResponse, True)
    log_metric = Endpoint("POST", "runs/log-metric", LogMetric, Empty, True)
    log_param = Endpoint("POST", "runs/log-parameter", LogParam, Empty, True)
    set_tag = Endpoint("POST", "runs/set-tag", SetTag, Empty, True)
    delete_tag = Endpoint("POST", "runs/delete-tag", DeleteTag, Empty, False)
    log_batch = Endpoint("POST", "runs/log-batch", LogBatch, Empty, True)
    log_inputs = Endpoint("POST", "runs/log-inputs", LogInputs, Empty, True)
    get_metric_history = Endpoint(
        "GET", "metrics/get-history", GetMetricHistory, GetMetricHistoryResponse, True
    )
