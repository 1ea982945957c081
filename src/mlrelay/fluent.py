"""The fluent API: MLflow's module-level functions, journal first, never waiting on the network.

``import mlrelay as mlflow`` and the usual tutorial calls work with MLflow's signatures:
``set_experiment``, ``start_run`` (a context manager), ``log_param(s)``, ``log_metric(s)``,
``set_tag(s)``, ``log_artifact(s)``, ``log_text``/``log_dict``/``log_table``, ``end_run``, and
the reading calls (``get_run``, ``search_runs``, ``get_experiment``...). Log calls validate
their input at the call site and hand one tuple to the process's pipeline; they return in
microseconds whether the server is up, slow or down.

- ``run_id=`` on a log call logs into that run through the same pipeline (journal first): a
  run of this process, or any run on the server, whose status it leaves alone.
- ``synchronous=True`` waits until what was logged is delivered, as long as delivery makes
  progress (``MLRELAY_EXIT_TIMEOUT`` without any ends the wait, with a warning; the entries
  stay journaled and are sent later). ``False`` / None: the usual microsecond path. A
  rejection by the server is raised only in strict mode (``MLRELAY_STRICT=1``), as for
  ``flush()``.
- Not taken from MLflow's signatures: ``create_experiment(trace_location=)`` (GenAI trace
  storage) and ``log_input(model=)`` (MLflow 3's logged-model inputs).

This module is the thin front: the state (tracking URI, experiment, mode, client,
pipeline) and the run lifecycle live in :mod:`mlrelay._pipeline.runs`; DagsHub's
``init`` in :mod:`mlrelay._dagshub`.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._dagshub import init
from ._errors import UnsupportedFeatureError, ValidationError
from ._pipeline import runs
from ._pipeline.pipeline import Row
from ._pipeline.runs import ActiveRun, RunHandle, active_run, current, last_active_run, session
from ._protocol.batches import (
    KIND_DATASET,
    KIND_DELETE_TAG,
    KIND_LINKED_METRIC,
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
)
from ._validation import (
    validate_key,
    validate_metric_value,
    validate_param_value,
    validate_step,
    validate_tag_value,
    validate_text,
    validate_timestamp,
)
from .entities import ViewType

if TYPE_CHECKING:
    from .client import Client
    from .entities import Experiment, Run

__all__ = [
    "ActiveRun",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "init",
    "is_tracking_uri_set",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


def _reset() -> None:
    """Forget all fluent state (tests, re-configuration); pending entries stay in the journal."""
    from ._logged_model_api import remember_logged_model

    session.reset()
    remember_logged_model(None)  # last_logged_model() is None again


_warned: set[str] = set()
_time_ns = time.time_ns  # bound once: log_metric's hot path reads it as a global


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(f"mlrelay: {message}", RuntimeWarning, stacklevel=3)


def _run(run_id: str | None) -> RunHandle:
    """The run a call logs into: ``run_id``'s (see :func:`mlrelay._pipeline.runs.target`),
    else the active run (started when none is, as in MLflow)."""
    return runs.current() if run_id is None else runs.target(run_id)


def _sync(synchronous: bool | None, what: str) -> None:
    if synchronous:
        runs.deliver_now(what)


# --- the tracking URI ---------------------------------------------------------------------


def set_tracking_uri(uri: str | os.PathLike[str], *, mode: str | None = None) -> None:
    """Use this tracking server for the fluent API (does not touch ``os.environ``).

    Args:
        uri: the server, ``http(s)://host[:port][/prefix]``.
        mode: ``online`` (send in the background; keep entries in the journal while the
            server is unreachable), ``offline`` (never touch the network; the URI is
            recorded and ``mlrelay sync`` sends later) or ``disabled`` (every call is a
            no-op). Default: ``MLRELAY_MODE``, else online.

    Raises:
        ConfigurationError: the URI or the mode is invalid.
    """
    session.configure(os.fspath(uri), mode=mode)


def get_tracking_uri() -> str:
    """The tracking URI the fluent API uses (resolved from the settings when not set).

    Always a string. With no tracking URI configured, runs are kept in mlrelay's journal
    until ``mlrelay sync --tracking-uri URI`` sends them, and this returns the journal's
    ``file:`` URI (``file:///home/me/.local/share/mlrelay/journal.db``). MLflow returns its
    local store (``sqlite:///mlflow.db``) there, which mlrelay never writes.
    """
    uri = session.tracking_uri or session.settings().tracking_uri
    return uri or session.journal_path().resolve().as_uri()


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI is configured (``set_tracking_uri``, ``MLFLOW_TRACKING_URI``...)."""
    return bool(session.tracking_uri or session.settings().tracking_uri)


# --- experiments --------------------------------------------------------------------------


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active, creating it by name if missing (race-safe), and return
    it, as MLflow does (``set_experiment(...).experiment_id``).

    Waits for the server at most ``MLRELAY_START_TIMEOUT`` (5 s); if it does not
    answer, or offline, the name is recorded, the experiment is created when runs are
    sent, and the returned experiment holds the name and id given (``experiment_id`` is
    ``""`` when only a name was given; ``start_run(experiment_id="")`` uses the active
    experiment).

    Raises:
        NotFoundError: online, no experiment has ``experiment_id``.
        ConfigurationError: online, the experiment is deleted.
    """
    return runs.set_experiment(experiment_name, experiment_id)


def _experiment_id(client: Client) -> str:
    """The active experiment's id, as MLflow resolves it: ``set_experiment``, then
    ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME`` (created if missing), else "0"."""
    settings = session.settings()
    known = session.experiment_id or (None if session.experiment_name else settings.experiment_id)
    if known:
        return known
    name = session.experiment_name or settings.experiment_name
    return client.get_or_create_experiment(name) if name else "0"


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    """Create an experiment on the server now and return its id (MLflow's semantics).

    Raises:
        ResourceAlreadyExistsError: the name is taken.
        APIError: the server could not be reached.
    """
    return str(session.client("create_experiment").create_experiment(name, artifact_location, tags))


def get_experiment(experiment_id: str) -> Experiment:
    """An experiment by id, from the server (``NotFoundError`` if there is none)."""
    return session.client("get_experiment").get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    """An experiment by name, from the server; None if there is none."""
    return session.client("get_experiment_by_name").get_experiment_by_name(name)


def search_experiments(
    view_type: int | str = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    """Experiments matching a filter such as ``"name LIKE 'probe%'"`` (all pages)."""
    found = session.client("search_experiments").search_experiments(
        filter_string,
        view_type=ViewType.wire_name(view_type),
        order_by=order_by,
        max_results=max_results,
    )
    return list(found)


def delete_experiment(experiment_id: str) -> None:
    """Soft-delete an experiment on the server."""
    session.client("delete_experiment").delete_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    """Set a tag on the active experiment (on the server, now)."""
    client = session.client("set_experiment_tag")
    client.set_experiment_tag(_experiment_id(client), key, value)


def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active experiment (on the server, now)."""
    client = session.client("set_experiment_tags")
    experiment_id = _experiment_id(client)
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)


# --- runs ---------------------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
    *,
    log_environment: bool | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it active.

    The run is created on the server within ``MLRELAY_START_TIMEOUT`` (5 s) when it
    answers; otherwise it gets a local id and is created, exactly once, when the
    server is reachable. Use it as a context manager: a block that raises ends the run
    FAILED, Ctrl-C ends it KILLED, otherwise FINISHED.

    Args:
        parent_run_id: nest the run under this run (the active run, if one is; any run on
            the server otherwise), as MLflow does.
        log_system_metrics: sample CPU, memory, disk, network (and NVIDIA GPUs) into the
            run until it ends, under MLflow's ``system/...`` names (default
            ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``; see :mod:`mlrelay.system_metrics`).
            Needs ``mlrelay[system-metrics]`` (psutil).
        log_environment: (default ``MLRELAY_LOG_ENVIRONMENT``) also log the installed
            packages, the entry script and, for a dirty git tree, the diff (bounded).

    Raises:
        ValidationError: a tag is invalid, a run is active and ``nested`` is False, or
            ``parent_run_id`` is not the active run.
    """
    return runs.start(
        run_id,
        experiment_id,
        run_name,
        nested,
        tags,
        description,
        log_environment,
        parent_run_id=parent_run_id,
        log_system_metrics=log_system_metrics,
    ).active_run()


def end_run(status: str = "FINISHED") -> None:
    """End the active run: its entries are delivered first, then its final status.

    Waits while delivery makes progress; when the server stops answering for
    ``MLRELAY_EXIT_TIMEOUT`` seconds (10 s) it returns and the rest stays in the journal.
    """
    runs.end_run(status)


def get_run(run_id: str) -> Run:
    """Fetch a run from the server (a local id is mapped to the server's once known)."""
    return session.client("get_run").get_run(runs.server_id(run_id))


def get_parent_run(run_id: str) -> Run | None:
    """The run ``run_id`` is nested in (its ``mlflow.parentRunId`` tag), or None."""
    client = session.client("get_parent_run")
    parent = client.get_run(runs.server_id(run_id)).data.tags.get("mlflow.parentRunId")
    return client.get_run(runs.server_id(parent)) if parent else None


def delete_run(run_id: str) -> None:
    """Soft-delete a run on the server."""
    session.client("delete_run").delete_run(runs.server_id(run_id))


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The active run's artifact URI (``mlflow-artifacts:/<exp>/<run>/artifacts``), or that
    of ``artifact_path`` below it; a run is started when none is active, as in MLflow.

    While the server does not know the run yet (it did not answer ``start_run`` in time,
    or offline), this is ``runs:/<run_id>``, which mlrelay's and MLflow's artifact and
    model functions accept.
    """
    run = runs.current()
    uri = run.server_info.artifact_uri if run.server_info is not None else None
    if not uri:
        found = runs.server_run(run)
        uri = found.info.artifact_uri if found is not None else None
    base = (uri or f"runs:/{run.run_id}").rstrip("/")
    return f"{base}/{artifact_path.strip('/')}" if artifact_path else base


def _ids_to_search(
    client: Client,
    experiment_ids: Sequence[str] | str | None,
    search_all_experiments: bool,
    experiment_names: Sequence[str] | None,
) -> list[str]:
    if experiment_ids and experiment_names:
        raise ValidationError(
            "pass experiment_ids or experiment_names, not both", field="experiment_ids"
        )
    if experiment_names:
        found = [client.get_experiment_by_name(n) for n in experiment_names if n is not None]
        return [e.experiment_id for e in found if e is not None]
    if experiment_ids:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else experiment_ids
        return [str(i) for i in ids]
    if search_all_experiments:
        return [e.experiment_id for e in client.search_experiments(view_type="ACTIVE_ONLY")]
    return [_experiment_id(client)]


def search_runs(
    experiment_ids: Sequence[str] | str | None = None,
    filter_string: str = "",
    run_view_type: int | str = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: list[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs matching a filter, in the active experiment when no ids or names are given.

    Returns:
        With ``output_format="pandas"`` (the default) and pandas installed, a DataFrame
        with MLflow's columns: ``run_id``, ``experiment_id``, ``status``, ``artifact_uri``,
        ``start_time``, ``end_time`` (UTC datetimes), then ``metrics.<key>`` (NaN where a
        run has none), ``params.<key>`` and ``tags.<key>`` (None where a run has none).
        Otherwise (``"list"``, or no pandas) a list of :class:`mlrelay.Run`.

    Raises:
        ValidationError: both ``experiment_ids`` and ``experiment_names``, or another
            ``output_format``.
    """
    if output_format not in ("pandas", "list"):
        raise ValidationError(
            f"output_format {output_format!r} is not 'pandas' or 'list'", field="output_format"
        )
    client = session.client("search_runs")
    ids = _ids_to_search(client, experiment_ids, search_all_experiments, experiment_names)
    found = (
        list(
            client.search_runs(
                ids,
                filter_string,
                run_view_type=ViewType.wire_name(run_view_type),
                max_results=max_results,
                order_by=order_by,
            )
        )
        if ids
        else []
    )
    if output_format == "list":
        return found
    try:
        return _runs_frame(found)
    except ImportError:
        return found


def _runs_frame(found: list[Run]) -> Any:
    """MLflow's ``search_runs`` DataFrame of these runs (the same columns and nulls)."""
    import numpy as np
    import pandas as pd

    columns: dict[str, list[Any]] = {
        k: [] for k in ("run_id", "experiment_id", "status", "artifact_uri")
    }
    columns["start_time"], columns["end_time"] = [], []
    groups: dict[str, dict[str, list[Any]]] = {"metrics": {}, "params": {}, "tags": {}}
    nulls: dict[str, Any] = {"metrics": np.nan, "params": None, "tags": None}
    for i, run in enumerate(found):
        info = run.info
        for key in ("run_id", "experiment_id", "status", "artifact_uri"):
            columns[key].append(getattr(info, key))
        columns["start_time"].append(pd.to_datetime(info.start_time, unit="ms", utc=True))
        columns["end_time"].append(pd.to_datetime(info.end_time, unit="ms", utc=True))
        data: dict[str, Mapping[str, Any]] = {
            "metrics": run.data.metrics,
            "params": run.data.params,
            "tags": run.data.tags,
        }
        for group, values in data.items():
            known, null = groups[group], nulls[group]
            for key in values:
                known.setdefault(key, [null] * i)
            for key, column in known.items():
                column.append(values.get(key, null))
    for group, known in groups.items():
        columns.update({f"{group}.{key}": column for key, column in known.items()})
    return pd.DataFrame(columns)


# --- logging ------------------------------------------------------------------------------


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Log one metric point to the active run (starting one if none is active), or to the
    run ``run_id``.

    Costs a few microseconds: the point is validated and queued; the background
    pipeline makes it durable and sends it. ``synchronous=True`` waits until it is
    delivered (see the module docstring). As in MLflow 3, the point is linked to the logged
    model ``model_id``, or else to the first model the run logged at the point's step, and
    to ``dataset`` (its name and digest; the dataset is logged as the run's input the first
    time); the links are journaled with the point and sent with it.

    Raises:
        ValidationError: bad key, value, step or timestamp (nothing is queued).
    """
    run = current() if run_id is None else runs.target(run_id)
    try:
        if key not in session.known_keys:
            session.key(key, "metric key")
    except TypeError:  # an unhashable key: validate_key says what is wrong
        session.key(key, "metric key")
    if type(value) is not float:
        value = validate_metric_value(key, value)
    ts = _time_ns() // 1_000_000 if timestamp is None else validate_timestamp(key, timestamp)
    st = (
        0
        if step is None
        else step
        if type(step) is int and -(1 << 63) <= step < 1 << 63  # int64; folded to constants
        else validate_step(key, step)
    )
    row: Row = (run.local_id, KIND_METRIC, key, value, ts, st)
    if model_id is not None or dataset is not None or session.model_outputs:
        row = _linked(row, model_id, dataset)
    (session.sink or session.ensure_sink()).log(row)
    if synchronous:
        _sync(synchronous, "the metric")


def _linked(row: Row, model_id: str | None, dataset: Any) -> Row:
    """The metric point linked as MLflow 3 links it: to ``model_id``, else to the first
    model the run logged at the point's step; and to ``dataset`` (logged as the run's
    input the first time)."""
    run, _, key, value, ts, step = row
    fields: dict[str, str] = {}
    linked = model_id or session.model_outputs.get(run, {}).get(step or 0)
    if linked:
        fields["model_id"] = str(linked)
    if dataset is not None:
        fields.update(dataset_name=str(dataset.name), dataset_digest=str(dataset.digest))
        seen = (run, fields["dataset_name"], fields["dataset_digest"])
        if seen not in session.metric_datasets and runs.current().local_id == run:
            session.metric_datasets.add(seen)
            log_input(dataset)
    if not fields:
        return row
    number = value if isinstance(value, float) else float(str(value))  # validated already
    return run, KIND_LINKED_METRIC, key, (number, json.dumps(fields)), ts, step


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Log several metrics at one step and one timestamp (all validated before any is
    queued); the arguments are :func:`log_metric`'s."""
    run = _run(run_id)
    ts = _time_ns() // 1_000_000 if timestamp is None else validate_timestamp("metrics", timestamp)
    st = (
        0
        if step is None
        else step
        if type(step) is int and -(1 << 63) <= step < 1 << 63  # int64 (log_metric's hot path)
        else validate_step("metrics", step)
    )
    local_id, known = run.local_id, session.known_keys
    rows: list[Row] = []
    for k, v in metrics.items():  # (a framework logger's every step: keep it lean)
        if type(k) is not str or k not in known:
            session.key(k, "metric key")
        value = v if type(v) is float else validate_metric_value(k, v)
        rows.append((local_id, KIND_METRIC, k, value, ts, st))
    if model_id is not None or dataset is not None or session.model_outputs:
        rows = [_linked(row, model_id, dataset) for row in rows]
    session.log_many(rows)
    if synchronous:
        _sync(synchronous, "the metric")


def step_logger(handle: RunHandle) -> Callable[[Mapping[str, Any], int], None]:
    """``log(metrics, step)``: :func:`log_metrics` into ``handle``'s run, for a framework
    logger's every step (Lightning, the ``Trainer``, Keras).

    The same entries, validation and errors as ``log_metrics(metrics, step=step,
    run_id=handle.local_id)``, which it calls whenever its short path does not apply (a
    key not validated yet, a step beyond int64, linked models, an ended run, a reset
    session); a value that is not a float is converted, or refused, by the same function
    as there. The short path skips resolving the run and re-reading the session on each
    call: in a training loop each call runs with cold caches, where every function call
    costs about a microsecond.
    """
    local_id = handle.local_id
    known = session.known_keys
    sink = session.ensure_sink()

    def log(metrics: Mapping[str, Any], step: int) -> None:
        if (
            handle.ended
            or session.sink is not sink
            or session.model_outputs
            or type(step) is not int
            or not -(1 << 63) <= step < 1 << 63
        ):
            log_metrics(metrics, step=step, run_id=local_id)
            return
        ts = _time_ns() // 1_000_000
        rows: list[Row] = []
        for k, v in metrics.items():
            if type(k) is not str or k not in known:
                log_metrics(metrics, step=step, run_id=local_id)  # validates every key
                return
            # (Lightning adds the epoch, an int, to every step's metrics.)
            value = v if type(v) is float else validate_metric_value(k, v)
            rows.append((local_id, KIND_METRIC, k, value, ts, step))
        sink.log_many(rows)

    return log


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param to the active run; returns ``value``."""
    run = runs.current()
    text = validate_param_value(session.key(key, "param key"), value)
    session.log((run.local_id, KIND_PARAM, key, text, None, None))
    _sync(synchronous, "the param")
    return value


def log_params(
    params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    """Log several params to the active run or to ``run_id`` (all validated before any is
    queued)."""
    run = _run(run_id)
    checked = {session.key(k, "param key"): validate_param_value(k, v) for k, v in params.items()}
    for k, v in checked.items():
        session.log((run.local_id, KIND_PARAM, k, v, None, None))
    _sync(synchronous, "the params")


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active run."""
    run = runs.current()
    text = validate_tag_value(session.key(key, "tag key"), value)
    session.log((run.local_id, KIND_TAG, key, text, None, None))
    _sync(synchronous, "the tag")


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags on the active run (all validated before any is queued)."""
    run = runs.current()
    checked = {session.key(k, "tag key"): validate_tag_value(k, v) for k, v in tags.items()}
    for k, v in checked.items():
        session.log((run.local_id, KIND_TAG, k, v, None, None))
    _sync(synchronous, "the tags")


def delete_tag(key: str) -> None:
    """Delete a tag from the active run (in order with the run's other tag changes)."""
    run = runs.current()
    session.log((run.local_id, KIND_DELETE_TAG, session.key(key, "tag key"), "", None, None))


def log_input(
    dataset: Any = None,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
    targets: str | None = None,
) -> None:
    """Record a dataset the active run used, as MLflow's UI shows it.

    Args:
        dataset: a dataset from :func:`mlrelay.data.from_pandas` / ``from_numpy``, a pandas
            DataFrame, a numpy array, a file path or URI, or an :class:`mlrelay.Dataset`
            (name, digest, source, schema and profile are derived as MLflow derives them).
        context: the ``mlflow.data.context`` input tag, e.g. ``"training"``.
        tags: more input tags.
        name: the dataset's name (default ``"dataset"``, or the file's name).
        source: where the data came from, when not the running code.
        targets: the target column of a DataFrame.

    Raises:
        ValidationError: no dataset, or a kind of object mlrelay cannot record.
    """
    from ._formats.datasets import dataset_input
    from ._protocol.entities import InputTag

    if dataset is None:
        raise ValidationError("log_input needs a dataset", field="dataset")
    item = dataset_input(dataset, context=context, name=name, source=source, targets=targets)
    if tags:
        extra = [
            InputTag(
                key=validate_key(k, field="input tag key"),
                value=validate_text(str(v), field="input tag value", key=k),
            )
            for k, v in tags.items()
        ]
        item = item.model_copy(update={"tags": [*item.tags, *extra]})
    run = runs.current()
    try:
        text = item.model_dump_json(by_alias=True, exclude_none=True)
    except ValueError as exc:  # pydantic's: a name or source that is not valid Unicode
        raise ValidationError(
            f"the dataset {item.dataset.name!a} cannot be recorded: {exc}", field="dataset"
        ) from None
    session.log((run.local_id, KIND_DATASET, item.dataset.name, text, None, None))


# --- artifacts ----------------------------------------------------------------------------


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Log a file as an artifact of the active run (or of ``run_id``), under
    ``artifact_path`` if given.

    The file is copied into the journal when this is called and uploaded in the
    background (a later edit of the file does not change the artifact).

    Raises:
        ValidationError: the path is not an existing file.
    """
    path = Path(local_path)
    if not path.is_file():
        raise ValidationError(
            f"log_artifact: {str(path)!r} is not an existing file (use log_artifacts for a "
            "directory)",
            field="local_path",
        )
    runs.journal_artifact(_run(run_id), path, artifact_path, is_dir=False)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Log every file under a directory as artifacts of the active run (or of ``run_id``).

    Raises:
        ValidationError: the path is not an existing directory.
    """
    path = Path(local_dir)
    if not path.is_dir():
        raise ValidationError(
            f"log_artifacts: {str(path)!r} is not an existing directory", field="local_dir"
        )
    runs.journal_artifact(_run(run_id), path, artifact_path, is_dir=True)


def _log_rendered(run: RunHandle, artifact_file: str, render: Callable[[Path], None]) -> None:
    # Rendered straight into the journal, then sent like log_artifact's files (disabled:
    # rendered in a temporary directory, so bad input still raises, and dropped).
    from ._artifacts import artifact_file_parts, rendered

    if session.disabled:
        rendered(artifact_file, render, lambda *_: None)
        return
    name, folder = artifact_file_parts(artifact_file)
    runs.journal_rendered(run, name, folder, render)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Log a string as a text artifact (e.g. ``"notes/summary.txt"``)."""
    from ._artifacts import write_text

    _log_rendered(_run(run_id), artifact_file, lambda target: write_text(text, target))


def log_dict(dictionary: Mapping[str, Any], artifact_file: str, run_id: str | None = None) -> None:
    """Log a dictionary as a JSON or YAML artifact (by the file's extension)."""
    from ._artifacts import write_dict

    _log_rendered(_run(run_id), artifact_file, lambda target: write_dict(dictionary, target))


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib or plotly figure as an image (or HTML) artifact."""
    from ._artifacts import write_figure

    _log_rendered(runs.current(), artifact_file, lambda target: write_figure(figure, target))


def log_image(image: Any, artifact_file: str) -> None:
    """Log a numpy array or PIL image as an image artifact."""
    from ._artifacts import write_image

    _log_rendered(runs.current(), artifact_file, lambda target: write_image(image, target))


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a table (a DataFrame, or a dict of columns) as MLflow does: a split-oriented JSON
    (or parquet) artifact, listed in the run's ``mlflow.loggedArtifacts`` tag so MLflow's UI
    shows it. Logging to the same ``artifact_file`` again appends the rows (to what this
    process logged there; a table another process logged is replaced).

    Raises:
        ValidationError: ``artifact_file`` is not ``.json`` / ``.parquet``, ``data`` is not a
            DataFrame or a dict, or pandas is missing.
    """
    from .tracking._tables import LOGGED_ARTIFACTS_TAG, table_frame, with_table, write_table

    run = _run(run_id)
    frame = table_frame(data, artifact_file)
    previous = run.tables.get(artifact_file)
    if previous is not None:
        import pandas as pd

        frame = pd.concat([previous, frame], ignore_index=True)
    _log_rendered(run, artifact_file, lambda target: write_table(frame, target))
    run.tables[artifact_file] = frame
    if run.logged_artifacts is None:  # what the server lists already, asked once per run
        found = runs.server_run(run)
        run.logged_artifacts = (found.data.tags.get(LOGGED_ARTIFACTS_TAG) if found else "") or ""
    tag = with_table(run.logged_artifacts, artifact_file)
    if tag is not None:
        run.logged_artifacts = tag
        session.log((run.local_id, KIND_TAG, LOGGED_ARTIFACTS_TAG, tag, None, None))


# --- delivery and autolog -----------------------------------------------------------------


def flush(timeout: float | None = None) -> bool:
    """Wait until everything logged so far has reached the server.

    Args:
        timeout: a hard limit in seconds. Without one, waits as long as delivery makes
            progress, giving up after ``MLRELAY_EXIT_TIMEOUT`` seconds without any.

    Returns:
        True when everything was delivered, False otherwise (the rest stays journaled).

    Raises:
        APIStatusError: in strict mode (``MLRELAY_STRICT=1``), the first rejection the
            server sent for a batch (the batch is set aside in the journal either way).
    """
    return runs.flush(timeout)


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Turn on automatic logging for every supported framework that is installed (MLflow's
    ``mlflow.autolog``; see :mod:`mlrelay._autolog` for what each logs).

    Raises:
        UnsupportedFeatureError: an option this build's autolog does not offer was set.
    """
    import importlib
    import inspect

    given = {
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "log_datasets": log_datasets,
        "log_traces": log_traces,
        "disable": disable,
        "exclusive": exclusive,
        "disable_for_unsupported_versions": disable_for_unsupported_versions,
        "silent": silent,
        "extra_tags": extra_tags,
        "exclude_flavors": exclude_flavors,
    }
    try:
        impl = importlib.import_module("mlrelay._autolog").autolog
    except ModuleNotFoundError as exc:
        if exc.name != "mlrelay._autolog":
            raise
        raise UnsupportedFeatureError("autolog is not part of this mlrelay build") from None
    defaults = inspect.signature(autolog).parameters
    accepted = inspect.signature(impl).parameters
    for name, value in given.items():
        if name not in accepted and value != defaults[name].default:
            raise UnsupportedFeatureError(f"autolog({name}=...) is not supported by mlrelay")
    impl(**{k: v for k, v in given.items() if k in accepted})
