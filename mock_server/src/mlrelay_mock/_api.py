"""The MLflow REST endpoints: request decoding, one small handler per operation, JSON answers.

Each handler is a plain function ``(state, fields) -> dict``; :func:`api` registers it under
``/api/<v>/mlflow/<path>`` and the UI mirror ``/ajax-api/<v>/mlflow/<path>``. The wrapper decodes
the query string (GET) or the JSON body (others) into :class:`~mlrelay_mock._fields.Fields`,
turns :class:`~mlrelay_mock._errors.MlflowError` into MLflow's error body, and never lets an
unexpected exception escape as anything but a JSON 500.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlrelay_mock._artifacts import (
    ArtifactStore,
    DiskArtifacts,
    MemoryArtifacts,
    clean_path,
    join,
)
from mlrelay_mock._downloads import validate_path_is_safe
from mlrelay_mock._errors import MlflowError, bad_request, invalid, missing
from mlrelay_mock._fields import Fields, run_id_of
from mlrelay_mock._logged_search import DatasetFilter, LoggedOrder
from mlrelay_mock._model import Point, encode_double
from mlrelay_mock._paging import (
    absolute_if_local,
    bulk_request,
    experiments_max_results,
    history_page,
    interval_max_results,
    logged_models_max_results,
    model_versions_max_results,
    registered_models_max_results,
    runs_max_results,
)
from mlrelay_mock._search import NULL_OPS, Clause, parse_filter, parse_order_by
from mlrelay_mock._sources import local_path
from mlrelay_mock._store import RUN_NAME_TAG, MetricIn, Store

__all__ = ["AppState", "error_response", "json_response", "mlflow_routes"]

logger = logging.getLogger("mlrelay_mock")

Handler = Callable[["AppState", Fields], dict[str, Any]]

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
LOGGED_MODEL_STATUSES = (
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)
_ADJECTIVES = ("bouncy", "calm", "clever", "gentle", "honest", "lucky", "merry", "polite", "sly")
_ANIMALS = ("wolf", "owl", "fox", "newt", "crab", "lark", "mole", "yak", "toad", "hare")


@dataclass
class AppState:
    """Everything one app instance serves: the store, the artifacts and its settings."""

    store: Store
    artifacts: ArtifactStore
    version: str
    data_dir: Path | None = None
    multipart: bool = False
    # The artifact root as a file: URI when the server keeps artifacts in a local folder
    # (``--default-artifact-root``), None when they are served as mlflow-artifacts:.
    file_root: str | None = None
    uploads: dict[str, dict[int, bytes]] = field(default_factory=dict)  # upload id -> parts
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)

    @property
    def v3(self) -> bool:
        """Whether the server poses as MLflow 3 or later."""
        return self.store.v3

    def now_ms(self) -> int:
        """The current time in epoch milliseconds."""
        return int(self.clock() * 1000)

    def run_name(self) -> str:
        """A random ``adjective-animal-NNN`` run name, like MLflow's."""
        r = self.rng
        return f"{r.choice(_ADJECTIVES)}-{r.choice(_ANIMALS)}-{r.randint(0, 999)}"

    def artifact_path(self, uri: str) -> str | None:
        """Where the files of an artifact location are in :attr:`artifacts` (None: not here)."""
        return artifact_root_path(uri, self.file_root)

    def reset(self) -> None:
        """Forget every experiment, run, model and artifact (and their files on disk; files
        under a ``file:`` artifact root are the caller's and stay)."""
        v3 = self.store.v3
        self.store.close()
        if self.data_dir is not None:
            (self.data_dir / "ops.jsonl").unlink(missing_ok=True)
            shutil.rmtree(self.data_dir / "artifacts", ignore_errors=True)
        self.store, self.artifacts = open_storage(self.data_dir, v3=v3, file_root=self.file_root)


def open_storage(
    data_dir: Path | None, *, v3: bool, file_root: str | None
) -> tuple[Store, ArtifactStore]:
    """The store and the artifact storage of an app: in memory, or kept in ``data_dir``;
    with a ``file:`` artifact root, artifacts are the files under that folder."""
    oplog = data_dir / "ops.jsonl" if data_dir is not None else None
    store = Store(oplog, v3=v3, artifact_root=file_root or "mlflow-artifacts:")
    artifacts: ArtifactStore
    if file_root is not None:
        artifacts = DiskArtifacts(local_path(file_root))
    elif data_dir is not None:
        artifacts = DiskArtifacts(data_dir / "artifacts")
    else:
        artifacts = MemoryArtifacts()
    return store, artifacts


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def error_response(error: MlflowError) -> Response:
    """MLflow's JSON error body with the status of its error code."""
    return json_response(error.body(), error.status)


def _reject_constant(token: str) -> Any:
    # A bare NaN/Infinity token is invalid JSON; the real server accepts it and then stores
    # zeros (protocol notes, gotcha 1). The mock refuses it so the client bug is visible.
    raise ValueError(f"non-standard JSON token {token}")


def parse_json_body(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body (``{}`` when empty); 400 for anything else."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_reject_constant)
        if isinstance(data, str):  # old clients double-encode; MLflow decodes twice
            data = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"Malformed JSON request body: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request(f"The request body must be a JSON object, not {type(data).__name__}.")
    return data


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise invalid("Bad Request. Content-Type header is missing.")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid("Bad Request. Content-Type must be one of ['application/json'].")


async def read_fields(request: Request, *, v3: bool = True) -> Fields:
    """The request's arguments: query string for GET (JSON body if none), else JSON body.

    MLflow 2.7 (``v3=False``) checks no Content-Type and reads fields leniently."""
    if request.method == "GET" and request.query_params:
        data: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            data.setdefault(key, []).append(value)
        for key, value in request.path_params.items():
            data[key] = [value]
        return Fields(data, from_query=True, lenient=not v3)
    if request.method in ("POST", "PUT") and v3:
        _check_content_type(request)
    data = parse_json_body(await request.body())
    for key, value in request.path_params.items():
        data.setdefault(key, value)
    return Fields(data, lenient=not v3)


def _endpoint(handler: Handler, state: AppState) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            fields = await read_fields(request, v3=state.v3)
            return json_response(handler(state, fields))
        except MlflowError as error:
            return error_response(error)
        except Exception:  # a bug in the mock: still answer in MLflow's shape
            logger.exception("mock server error on %s %s", request.method, request.url.path)
            return error_response(MlflowError("INTERNAL_ERROR", "Internal error in the mock"))

    return endpoint


@dataclass(frozen=True)
class _Spec:
    method: str
    path: str
    handler: Handler
    version: str
    v3_only: bool
    roots: tuple[str, ...]


_SPECS: list[_Spec] = []


def api(
    method: str,
    path: str,
    *,
    version: str = "2.0",
    v3_only: bool = False,
    roots: tuple[str, ...] = ("api", "ajax-api"),
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method /api/<version>/mlflow/<path>`` (and ``/ajax-api``).

    ``roots``: the URL roots it is served under (MLflow serves a few UI endpoints only
    under ``ajax-api``)."""

    def register(handler: Handler) -> Handler:
        _SPECS.append(_Spec(method, path, handler, version, v3_only, roots))
        return handler

    return register


def mlflow_routes(state: AppState) -> list[Route]:
    """Starlette routes for every registered endpoint this server version has."""
    by_path: dict[str, dict[str, Handler]] = {}
    for spec in _SPECS:
        if spec.v3_only and not state.v3:
            continue
        for root in spec.roots:
            url = f"/{root}/{spec.version}/mlflow/{spec.path}"
            by_path.setdefault(url, {})[spec.method] = spec.handler
    routes = []
    for url, handlers in by_path.items():
        for method, handler in handlers.items():
            routes.append(Route(url, _endpoint(handler, state), methods=[method]))
    return routes


def _paged(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if items:
        out[key] = items
    if token:
        out["next_page_token"] = token
    return out


def _tag_pairs(f: Fields) -> list[tuple[str, str]]:
    return f.key_values("tags")


# -- experiments -------------------------------------------------------------------------------


@api("POST", "experiments/create")
def create_experiment(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/create``."""
    experiment_id = s.store.create_experiment(
        name=f.string("name", required=True),
        artifact_location=absolute_if_local(f.string("artifact_location")),
        tags=_tag_pairs(f),
        now=s.now_ms(),
    )
    return {"experiment_id": experiment_id}


@api("GET", "experiments/get")
def get_experiment(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/get`` (deleted experiments are returned too)."""
    experiment = s.store.experiment(f.string("experiment_id", required=True))
    return {"experiment": experiment.to_json(workspace=s.v3)}


@api("GET", "experiments/get-by-name")
def get_experiment_by_name(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/get-by-name``."""
    experiment = s.store.experiment_by_name(f.string("experiment_name", required=True))
    return {"experiment": experiment.to_json(workspace=s.v3)}


def _search_experiments(s: AppState, f: Fields) -> dict[str, Any]:
    experiments, token = s.store.search_experiments(
        view_type=f.enum("view_type", VIEW_TYPES, default="ACTIVE_ONLY") or "ACTIVE_ONLY",
        clauses=parse_filter(f.string("filter")),
        order_by=parse_order_by(f.strings("order_by")),
        max_results=experiments_max_results(f, v3=s.v3),
        page_token=f.string("page_token"),
    )
    return _paged("experiments", [e.to_json(workspace=s.v3) for e in experiments], token)


api("POST", "experiments/search")(_search_experiments)
api("GET", "experiments/search")(_search_experiments)


@api("POST", "experiments/update")
def update_experiment(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/update`` (rename)."""
    s.store.rename_experiment(
        experiment_id=f.string("experiment_id", required=True),
        new_name=f.string("new_name", required=True),
        now=s.now_ms(),
    )
    return {}


@api("POST", "experiments/delete")
def delete_experiment(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/delete`` (soft; a second delete is a 404)."""
    s.store.delete_experiment(
        experiment_id=f.string("experiment_id", required=True), now=s.now_ms()
    )
    return {}


@api("POST", "experiments/restore")
def restore_experiment(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/restore`` (restoring an active experiment is a 404)."""
    s.store.restore_experiment(
        experiment_id=f.string("experiment_id", required=True), now=s.now_ms()
    )
    return {}


@api("POST", "experiments/set-experiment-tag")
def set_experiment_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/set-experiment-tag``."""
    s.store.set_experiment_tag(
        experiment_id=f.string("experiment_id", required=True),
        key=f.string("key", required=True),
        value=f.string("value"),
    )
    return {}


@api("POST", "experiments/delete-experiment-tag", v3_only=True)  # not in 2.7
def delete_experiment_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``experiments/delete-experiment-tag``."""
    s.store.delete_experiment_tag(
        experiment_id=f.string("experiment_id", required=True), key=f.string("key", required=True)
    )
    return {}


# -- runs --------------------------------------------------------------------------------------


@api("POST", "runs/create")
def create_run(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/create``: the server makes the id, and a name when none is given."""
    tags = _tag_pairs(f)
    run_name = f.string("run_name")
    tag_name = dict(tags).get(RUN_NAME_TAG)
    if run_name and tag_name and run_name != tag_name:
        raise invalid(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{run_name}', mlflow.runName='{tag_name}')."
        )
    run = s.store.create_run(
        run_id=uuid.uuid4().hex,
        experiment_id=f.string("experiment_id"),
        user_id=f.string("user_id"),
        run_name=run_name or tag_name or s.run_name(),
        start_time=f.int64("start_time", default=0) or 0,
        tags=tags,
    )
    return {"run": run.to_json(outputs=False)}


@api("GET", "runs/get")
def get_run(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/get`` (``run_id`` or the legacy ``run_uuid``)."""
    return {"run": s.store.run(run_id_of(f)).to_json()}


@api("POST", "runs/update")
def update_run(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/update``: only the fields present change; unknown statuses are ignored."""
    run = s.store.update_run(
        run_id=run_id_of(f),
        status=f.enum("status", RUN_STATUSES),
        end_time=f.int64("end_time"),
        run_name=f.optional_string("run_name"),
    )
    return {"run_info": run.info_json()}


@api("POST", "runs/delete")
def delete_run(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/delete`` (idempotent)."""
    s.store.delete_run(run_id=f.string("run_id", required=True))
    return {}


@api("POST", "runs/restore")
def restore_run(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/restore`` (idempotent)."""
    s.store.restore_run(run_id=f.string("run_id", required=True))
    return {}


@api("POST", "runs/search")
def search_runs(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/search``: no experiment ids means no runs."""
    runs, token = s.store.search_runs(
        experiment_ids=f.strings("experiment_ids"),
        view_type=f.enum("run_view_type", VIEW_TYPES, default="ACTIVE_ONLY") or "ACTIVE_ONLY",
        clauses=parse_filter(f.string("filter"))
        if s.v3
        else _v2_filter(parse_filter(f.string("filter"))),
        order_by=parse_order_by(f.strings("order_by")),
        max_results=runs_max_results(f, v3=s.v3),
        page_token=f.string("page_token"),
    )
    return _paged("runs", [r.to_json() for r in runs], token)


def _v2_filter(clauses: list[Clause]) -> list[Clause]:
    """MLflow 2.7 has no ``IS NULL`` / ``IS NOT NULL`` in run filters."""
    for clause in clauses:
        if clause.op in NULL_OPS:
            prefix = {"param": "params", "tag": "tags", "metric": "metrics"}.get(
                clause.entity, clause.entity
            )
            words = [f"{prefix}.{clause.key}", "IS", clause.op[len("IS ") :]]
            raise invalid("Invalid clause(s) in filter string: " + ", ".join(map(repr, words)))
    return clauses


def _metric(f: Fields) -> MetricIn:
    timestamp = f.int64("timestamp", required=True)
    assert timestamp is not None
    if timestamp < 0:
        raise invalid(
            f"Invalid value {timestamp} for parameter '{f.label('timestamp')}' supplied. "
            "It must be a non-negative integer."
        )
    value = f.double("value", required=True)
    assert value is not None
    return (
        f.string("key", required=True),
        value,
        timestamp,
        f.int64("step", default=0) or 0,
        f.string("model_id"),
        f.string("dataset_name"),
        f.string("dataset_digest"),
    )


_PLAIN_METRIC_FIELDS = frozenset({"key", "value", "timestamp", "step", "run_id"})
_INT64_MAX = 2**63 - 1


def _plain_metric(data: dict[str, Any]) -> MetricIn | None:
    """The common well-formed metric, decoded without :class:`Fields` (``None`` otherwise).

    A throughput shortcut for big batches: it accepts only what the full path would accept
    unchanged, and leaves everything else (strings, camelCase, extras, errors) to it.
    """
    key, value = data.get("key"), data.get("value")
    timestamp, step = data.get("timestamp"), data.get("step", 0)
    if (
        type(key) is str
        and key
        and (type(value) is float or (type(value) is int and -(2**53) < value < 2**53))
        and type(timestamp) is int
        and 0 <= timestamp <= _INT64_MAX
        and type(step) is int
        and -_INT64_MAX <= step <= _INT64_MAX
        and _PLAIN_METRIC_FIELDS.issuperset(data)
    ):
        return (key, float(value), timestamp, step, "", "", "")
    return None


def _batch_metrics(f: Fields) -> list[MetricIn]:
    raw = f.raw("metrics")
    if not isinstance(raw, list) or not all(type(m) is dict for m in raw):
        return [_metric(m) for m in f.objects("metrics")]
    out = []
    for i, item in enumerate(raw):
        plain = _plain_metric(item)
        out.append(plain if plain is not None else _metric(f.nested(item, f"metrics[{i}].")))
    return out


@api("POST", "runs/log-metric")
def log_metric(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/log-metric``: an identical point is stored once."""
    s.store.log_batch(run_id=run_id_of(f), metrics=[_metric(f)], params=[], tags=[])
    return {}


@api("POST", "runs/log-parameter")
def log_param(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/log-parameter``: the same value again is a no-op, another value a 400."""
    s.store.log_batch(
        run_id=run_id_of(f),
        metrics=[],
        params=[(f.string("key", required=True), f.string("value"))],
        tags=[],
        single_param=True,
    )
    return {}


@api("POST", "runs/set-tag")
def set_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/set-tag`` (overwrites; ``mlflow.runName`` renames the run)."""
    s.store.log_batch(
        run_id=run_id_of(f),
        metrics=[],
        params=[],
        tags=[(f.string("key", required=True), f.string("value"))],
    )
    return {}


@api("POST", "runs/delete-tag")
def delete_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/delete-tag`` (a missing tag is a 404)."""
    s.store.delete_tag(run_id=f.string("run_id", required=True), key=f.string("key", required=True))
    return {}


@api("POST", "runs/log-batch")
def log_batch(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/log-batch``: all-or-nothing, with MLflow's limits."""
    s.store.log_batch(
        run_id=f.string("run_id", required=True),
        metrics=_batch_metrics(f),
        params=f.key_values("params"),
        tags=f.key_values("tags"),
    )
    return {}


@api("POST", "runs/log-inputs")
def log_inputs(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/log-inputs``: datasets (and MLflow 3 model inputs)."""
    datasets = []
    for item in f.objects("datasets"):
        dataset = item.message("dataset") or Fields({})
        datasets.append(
            {
                "name": dataset.string("name"),
                "digest": dataset.string("digest"),
                "source_type": dataset.string("source_type"),
                "source": dataset.string("source"),
                "schema": dataset.string("schema"),
                "profile": dataset.string("profile"),
                "tags": dict(item.key_values("tags")),
            }
        )
    models = [m.string("model_id", required=True) for m in f.objects("models")]
    s.store.log_inputs(run_id=f.string("run_id", required=True), datasets=datasets, models=models)
    return {}


@api("POST", "runs/outputs", v3_only=True)
def log_outputs(s: AppState, f: Fields) -> dict[str, Any]:
    """``runs/outputs`` (MLflow 3): logged models produced by a run."""
    models = [
        (m.string("model_id", required=True), m.int64("step", default=0) or 0)
        for m in f.objects("models", required=True)
    ]
    s.store.log_outputs(run_id=f.string("run_id", required=True), models=models)
    return {}


@api("POST", "runs/log-model")
def log_model_legacy(s: AppState, f: Fields) -> dict[str, Any]:
    """Legacy ``runs/log-model``: appends to the ``mlflow.log-model.history`` tag."""
    run_id = f.string("run_id", required=True)
    model_json = f.string("model_json", required=True)
    try:
        model = json.loads(model_json)
    except ValueError:
        raise invalid("Malformed model info. \n {model_json}") from None
    mandatory = ("artifact_path", "flavors", "utc_time_created", "run_id")
    if not isinstance(model, dict) or any(k not in model for k in mandatory):
        raise invalid(f"Model json is missing mandatory fields: {list(mandatory)}")
    run = s.store.active_run(run_id)
    try:
        history = json.loads(run.tags.get("mlflow.log-model.history", "[]"))
    except ValueError:
        history = []  # a truncated or hand-set tag: start a new history, as MLflow would fail to
    if not isinstance(history, list):
        history = []
    history.append(model)
    s.store.log_batch(
        run_id=run_id,
        metrics=[],
        params=[],
        tags=[("mlflow.log-model.history", json.dumps(history))],
    )
    return {}


@api("GET", "metrics/get-history")
def get_metric_history(s: AppState, f: Fields) -> dict[str, Any]:
    """``metrics/get-history``: all points, or pages when ``max_results`` is given (2.7
    has no paging here: it always answers with every point)."""
    points = s.store.history(run_id_of(f), f.string("metric_key", required=True))
    points, token = history_page(points, f, v3=s.v3)
    key = f.string("metric_key")
    return _paged("metrics", [p.to_json(key) for p in points], token)


@api("GET", "metrics/get-history-bulk", roots=("ajax-api",))
def get_history_bulk(s: AppState, f: Fields) -> dict[str, Any]:
    """The UI's ``/ajax-api/2.0/mlflow/metrics/get-history-bulk`` (not under ``/api``): the
    points of several runs, by run id then (timestamp, step, value); always a ``metrics`` list."""
    run_ids, key, size = bulk_request(f, v3=s.v3)
    rows = [
        {
            "key": key,
            "value": encode_double(p.value),
            "timestamp": p.timestamp,
            "step": p.step,
            "run_id": run_id,
        }
        for run_id in sorted(set(run_ids))
        for p in s.store.history(run_id, key)
    ]
    return {"metrics": rows[:size]}


def _sample(points: list[Point], max_results: int) -> list[Point]:
    if len(points) <= max_results:
        return points
    if max_results == 1:
        return points[:1]
    step = (len(points) - 1) / (max_results - 1)
    indices = sorted({round(i * step) for i in range(max_results)})
    return [points[i] for i in indices]


@api("GET", "metrics/get-history-bulk-interval", v3_only=True)  # not in 2.7
def get_history_bulk_interval(s: AppState, f: Fields) -> dict[str, Any]:
    """``metrics/get-history-bulk-interval``: a sample per run that keeps the first and last."""
    run_ids = f.strings("run_ids")
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > 100:
        raise invalid(
            "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. "
            f"Received {len(run_ids)} run_ids. See the API docs for more information about "
            "request parameters."
        )
    key = f.string("metric_key", required=True)
    start, end = f.int64("start_step"), f.int64("end_step")
    max_results = interval_max_results(f)
    if (start is None) != (end is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise invalid(
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}."
        )
    out: list[dict[str, Any]] = []
    for run_id in run_ids:
        points = sorted(s.store.history(run_id, key), key=lambda p: (p.step, p.timestamp))
        if start is not None and end is not None:
            points = [p for p in points if start <= p.step <= end]
        out.extend(p.to_json(key, run_id) for p in _sample(points, max_results))
    return _paged("metrics", out, None)


@api("GET", "artifacts/list")
def list_run_artifacts(s: AppState, f: Fields) -> dict[str, Any]:
    """Tracking ``artifacts/list``: run-relative paths under the run's ``artifact_uri``."""
    path = f.string("path")
    if f.has("path"):  # checked before the run is looked up, as MLflow does
        path = validate_path_is_safe(path, v3=s.v3)
    run = s.store.run(run_id_of(f))
    rel = clean_path(path)
    out: dict[str, Any] = {"root_uri": run.artifact_uri}
    root = s.artifact_path(run.artifact_uri)
    if root is None:
        return out
    entries = s.artifacts.list(join(root, rel))
    if entries:
        prefix = rel + "/" if rel else ""
        out["files"] = [e.to_json(prefix) for e in entries]
    return out


def artifact_root_path(uri: str, file_root: str | None = None) -> str | None:
    """The storage path of an ``mlflow-artifacts:`` URI (or, on a server whose artifact root
    is the local folder ``file_root``, of a ``file:`` URI under it); ``None`` otherwise."""
    if file_root is not None and (uri == file_root or uri.startswith(file_root + "/")):
        return clean_path(urllib.parse.unquote(uri[len(file_root) :]))
    if not uri.startswith("mlflow-artifacts:"):
        return None
    rest = uri[len("mlflow-artifacts:") :]
    if rest.startswith("//"):  # mlflow-artifacts://host:port/path
        rest = rest[2:].partition("/")[2]
    return clean_path(rest)


# -- model registry ----------------------------------------------------------------------------


@api("POST", "registered-models/create")
def create_registered_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/create`` (an existing name is RESOURCE_ALREADY_EXISTS, 400)."""
    model = s.store.create_registered_model(
        name=f.string("name", required=True),
        tags=_tag_pairs(f),
        description=f.string("description"),
        now=s.now_ms(),
    )
    return {"registered_model": model.to_json()}


@api("GET", "registered-models/get")
def get_registered_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/get``."""
    return {"registered_model": s.store.registered_model(f.string("name", required=True)).to_json()}


@api("POST", "registered-models/rename")
def rename_registered_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/rename``."""
    model = s.store.rename_registered_model(
        name=f.string("name", required=True),
        new_name=f.string("new_name", required=True),
        now=s.now_ms(),
    )
    return {"registered_model": model.to_json()}


@api("PATCH", "registered-models/update")
def update_registered_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/update`` (PATCH)."""
    model = s.store.update_registered_model(
        name=f.string("name", required=True), description=f.string("description"), now=s.now_ms()
    )
    return {"registered_model": model.to_json()}


@api("DELETE", "registered-models/delete")
def delete_registered_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/delete`` (DELETE with a JSON body)."""
    s.store.delete_registered_model(name=f.string("name", required=True))
    return {}


@api("GET", "registered-models/search")
def search_registered_models(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/search`` (GET; default 100 per page, at most 1000)."""
    models, token = s.store.search_registered_models(
        clauses=parse_filter(f.string("filter")),
        order_by=parse_order_by(f.strings("order_by")),
        max_results=registered_models_max_results(f, v3=s.v3),
        page_token=f.string("page_token"),
    )
    return _paged("registered_models", [m.to_json() for m in models], token)


def _latest_versions(s: AppState, f: Fields) -> dict[str, Any]:
    model = s.store.registered_model(f.string("name", required=True))
    versions = model.latest_versions(f.strings("stages"))
    return _paged("model_versions", [v.to_json() for v in versions], None)


api("POST", "registered-models/get-latest-versions")(_latest_versions)
api("GET", "registered-models/get-latest-versions")(_latest_versions)


@api("POST", "registered-models/set-tag")
def set_registered_model_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/set-tag``."""
    s.store.set_registered_model_tag(
        name=f.string("name", required=True),
        key=f.string("key", required=True),
        value=f.string("value"),
    )
    return {}


@api("DELETE", "registered-models/delete-tag")
def delete_registered_model_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``registered-models/delete-tag`` (DELETE)."""
    s.store.delete_registered_model_tag(
        name=f.string("name", required=True), key=f.string("key", required=True)
    )
    return {}


@api("POST", "registered-models/alias")
def set_alias(s: AppState, f: Fields) -> dict[str, Any]:
    """Set (or move) an alias."""
    s.store.set_alias(
        name=f.string("name", required=True),
        alias=f.string("alias", required=True),
        version=f.string("version", required=True),
    )
    return {}


@api("DELETE", "registered-models/alias")
def delete_alias(s: AppState, f: Fields) -> dict[str, Any]:
    """Delete an alias (idempotent)."""
    s.store.delete_alias(
        name=f.string("name", required=True), alias=f.string("alias", required=True)
    )
    return {}


@api("GET", "registered-models/alias")
def get_by_alias(s: AppState, f: Fields) -> dict[str, Any]:
    """The version an alias points at."""
    version = s.store.version_by_alias(
        f.string("name", required=True), f.string("alias", required=True)
    )
    return {"model_version": version.to_json()}


@api("POST", "model-versions/create")
def create_model_version(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/create`` (each call makes a new version)."""
    version = s.store.create_model_version(
        name=f.string("name", required=True),
        source=f.string("source", required=True),
        run_id=f.string("run_id"),
        tags=_tag_pairs(f),
        run_link=f.string("run_link"),
        description=f.string("description"),
        model_id=f.string("model_id"),
        now=s.now_ms(),
    )
    return {"model_version": version.to_json()}


@api("GET", "model-versions/get")
def get_model_version(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/get``."""
    version = s.store.model_version(
        f.string("name", required=True), f.string("version", required=True)
    )
    return {"model_version": version.to_json()}


@api("PATCH", "model-versions/update")
def update_model_version(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/update`` (PATCH)."""
    version = s.store.update_model_version(
        name=f.string("name", required=True),
        version=f.string("version", required=True),
        description=f.string("description"),
        now=s.now_ms(),
    )
    return {"model_version": version.to_json()}


@api("DELETE", "model-versions/delete")
def delete_model_version(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/delete`` (a second delete is a 404)."""
    s.store.delete_model_version(
        name=f.string("name", required=True), version=f.string("version", required=True)
    )
    return {}


@api("GET", "model-versions/search")
def search_model_versions(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/search`` (GET)."""
    versions, token = s.store.search_model_versions(
        clauses=parse_filter(f.string("filter")),
        order_by=parse_order_by(f.strings("order_by")),
        max_results=model_versions_max_results(f, v3=s.v3),
        page_token=f.string("page_token"),
    )
    return _paged("model_versions", [v.to_json() for v in versions], token)


@api("POST", "model-versions/transition-stage")
def transition_stage(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/transition-stage`` (deprecated in MLflow, still served)."""
    version = s.store.transition_stage(
        name=f.string("name", required=True),
        version=f.string("version", required=True),
        stage=f.string("stage", required=True),
        archive_existing=f.boolean("archive_existing_versions"),
        now=s.now_ms(),
    )
    return {"model_version": version.to_json()}


@api("POST", "model-versions/set-tag")
def set_model_version_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/set-tag``."""
    s.store.set_model_version_tag(
        name=f.string("name", required=True),
        version=f.string("version", required=True),
        key=f.string("key", required=True),
        value=f.string("value"),
    )
    return {}


@api("DELETE", "model-versions/delete-tag")
def delete_model_version_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``model-versions/delete-tag`` (DELETE)."""
    s.store.delete_model_version_tag(
        name=f.string("name", required=True),
        version=f.string("version", required=True),
        key=f.string("key", required=True),
    )
    return {}


@api("GET", "model-versions/get-download-uri")
def get_download_uri(s: AppState, f: Fields) -> dict[str, Any]:
    """Where a version's files are: its source (``models:/`` sources resolved at creation)."""
    version = s.store.model_version(
        f.string("name", required=True), f.string("version", required=True)
    )
    uri = version.download_uri
    return {"artifact_uri": uri}


# -- logged models (MLflow 3) ------------------------------------------------------------------


@api("POST", "logged-models", v3_only=True)
def create_logged_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``POST logged-models``: a pending model with its own artifact location."""
    model_id = f"m-{uuid.uuid4().hex}"
    model = s.store.create_logged_model(
        model_id=model_id,
        experiment_id=f.string("experiment_id", required=True),
        name=f.string("name") or s.run_name(),
        model_type=f.string("model_type"),
        source_run_id=f.string("source_run_id"),
        params=f.key_values("params"),
        tags=_tag_pairs(f),
        now=s.now_ms(),
    )
    return {"model": model.to_json()}


@api("GET", "logged-models/{model_id}", v3_only=True)
def get_logged_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``GET logged-models/<id>``."""
    model = s.store.logged_model(
        f.string("model_id", required=True), allow_deleted=f.boolean("allow_deleted")
    )
    return {"model": model.to_json()}


@api("PATCH", "logged-models/{model_id}", v3_only=True)
def finalize_logged_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``PATCH logged-models/<id>``: finalize with a status."""
    status = f.enum("status", LOGGED_MODEL_STATUSES)
    if status is None:
        raise missing("status")
    model = s.store.finalize_logged_model(
        model_id=f.string("model_id", required=True), status=status, now=s.now_ms()
    )
    return {"model": model.to_json()}


@api("DELETE", "logged-models/{model_id}", v3_only=True)
def delete_logged_model(s: AppState, f: Fields) -> dict[str, Any]:
    """``DELETE logged-models/<id>``."""
    s.store.delete_logged_model(model_id=f.string("model_id", required=True))
    return {}


@api("POST", "logged-models/search", v3_only=True)
def search_logged_models(s: AppState, f: Fields) -> dict[str, Any]:
    """``logged-models/search``: filter, datasets, order_by and paging, as MLflow 3."""
    models, token = s.store.search_logged_models(
        experiment_ids=f.strings("experiment_ids"),
        clauses=parse_filter(f.string("filter")),
        datasets=[
            DatasetFilter(d.string("dataset_name"), d.string("dataset_digest") or None)
            for d in f.objects("datasets")
        ],
        order_by=[
            LoggedOrder(
                o.string("field_name", required=True),
                o.boolean("ascending", default=True),
                o.string("dataset_name"),
                o.string("dataset_digest"),
            )
            for o in f.objects("order_by")
        ],
        max_results=logged_models_max_results(f),
        page_token=f.string("page_token"),
    )
    return _paged("models", [m.to_json() for m in models], token)


@api("PATCH", "logged-models/{model_id}/tags", v3_only=True)
def set_logged_model_tags(s: AppState, f: Fields) -> dict[str, Any]:
    """``PATCH logged-models/<id>/tags``."""
    s.store.set_logged_model_tags(model_id=f.string("model_id", required=True), tags=_tag_pairs(f))
    return {}


@api("DELETE", "logged-models/{model_id}/tags/{tag_key:path}", v3_only=True)
def delete_logged_model_tag(s: AppState, f: Fields) -> dict[str, Any]:
    """``DELETE logged-models/<id>/tags/<key>``."""
    s.store.delete_logged_model_tag(
        model_id=f.string("model_id", required=True), key=f.string("tag_key", required=True)
    )
    return {}


@api("POST", "logged-models/{model_id}/params", v3_only=True)
def log_logged_model_params(s: AppState, f: Fields) -> dict[str, Any]:
    """``POST logged-models/<id>/params``."""
    s.store.log_logged_model_params(
        model_id=f.string("model_id", required=True), params=f.key_values("params")
    )
    return {}


@api("GET", "logged-models/{model_id}/artifacts/directories", v3_only=True)
def list_logged_model_artifacts(s: AppState, f: Fields) -> dict[str, Any]:
    """``GET logged-models/<id>/artifacts/directories``."""
    model = s.store.logged_model(f.string("model_id", required=True))
    rel = clean_path(f.string("artifact_directory_path"))
    out: dict[str, Any] = {"root_uri": model.artifact_uri}
    root = s.artifact_path(model.artifact_uri)
    entries = s.artifacts.list(join(root, rel)) if root is not None else None
    if entries:
        prefix = rel + "/" if rel else ""
        out["files"] = [e.to_json(prefix) for e in entries]
    return out


@api("GET", "server-info", version="3.0", v3_only=True)
def server_info(s: AppState, _f: Fields) -> dict[str, Any]:
    """``/api/3.0/mlflow/server-info``: capability flags."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": s.multipart,
        "multipart_downloads_enabled": False,
    }
