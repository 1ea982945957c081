"""The fluent API: MLflow's module-level functions, journal first, never waiting on the network.

``import mlrelay as mlflow`` and the usual tutorial calls work: ``set_experiment``,
``start_run`` (a context manager), ``log_param(s)``, ``log_metric(s)``, ``set_tag(s)``,
``end_run``. Log calls validate their input at the call site and hand one tuple to the
process's pipeline; they return in microseconds whether the server is up, slow or down.

This module is the thin front: the state (tracking URI, experiment, mode, client,
pipeline) and the run lifecycle live in :mod:`mlrelay._pipeline.runs`; DagsHub's
``init`` in :mod:`mlrelay._dagshub`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._dagshub import init
from ._errors import ValidationError
from ._pipeline import runs
from ._pipeline.runs import ActiveRun, active_run, last_active_run, session
from ._protocol.batches import KIND_DATASET, KIND_DELETE_TAG, KIND_METRIC, KIND_PARAM, KIND_TAG
from ._validation import (
    validate_metric_value,
    validate_param_value,
    validate_step,
    validate_tag_value,
    validate_timestamp,
)

__all__ = [
    "ActiveRun",
    "active_run",
    "create_experiment",
    "delete_tag",
    "end_run",
    "flush",
    "get_run",
    "get_tracking_uri",
    "init",
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
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


def _reset() -> None:
    """Forget all fluent state (tests, re-configuration); pending entries stay in the journal."""
    session.reset()


def set_tracking_uri(uri: str, *, mode: str | None = None) -> None:
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
    session.configure(uri, mode=mode)


def get_tracking_uri() -> str | None:
    """The tracking URI the fluent API uses (resolved from settings when not set)."""
    return session.tracking_uri or session.settings().tracking_uri


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> str | None:
    """Make an experiment active, creating it by name if missing (race-safe).

    Waits for the server at most ``MLRELAY_START_TIMEOUT`` (5 s); if it does not
    answer, the name is recorded and the experiment is created when runs are sent.

    Returns:
        The experiment id, or None when the server could not be asked in time.
    """
    return runs.set_experiment(experiment_name, experiment_id)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_environment: bool | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it active.

    The run is created on the server within ``MLRELAY_START_TIMEOUT`` (5 s) when it
    answers; otherwise it gets a local id and is created, exactly once, when the
    server is reachable. Use it as a context manager: a block that raises ends the run
    FAILED, Ctrl-C ends it KILLED, otherwise FINISHED.

    ``log_environment`` (default ``MLRELAY_LOG_ENVIRONMENT``) also logs the installed
    packages, the entry script and, for a dirty git tree, the diff (bounded in size).

    Raises:
        ValidationError: a tag is invalid, or a run is active and ``nested`` is False.
    """
    return runs.start_run(
        run_id, experiment_id, run_name, nested, tags, description, log_environment
    )


def end_run(status: str = "FINISHED") -> None:
    """End the active run: its entries are delivered first, then its final status.

    Waits while delivery makes progress; when the server stops answering for
    ``MLRELAY_EXIT_TIMEOUT`` seconds (10 s) it returns and the rest stays in the journal.
    """
    runs.end_run(status)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point to the active run (starting one if none is active).

    Costs a few microseconds: the point is validated and queued; the background
    pipeline makes it durable and sends it.

    Raises:
        ValidationError: bad key, value, step or timestamp (nothing is queued).
    """
    run = runs.current()
    if key not in session.known_keys:
        session.key(key, "metric key")
    if type(value) is not float:
        value = validate_metric_value(key, value)
    ts = int(time.time() * 1000) if timestamp is None else validate_timestamp(key, timestamp)
    st = 0 if step is None else (step if type(step) is int else validate_step(key, step))
    (session.sink or session.ensure_sink()).log((run.local_id, KIND_METRIC, key, value, ts, st))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step (all validated before any is queued)."""
    ts = int(time.time() * 1000)
    checked = [
        (session.key(k, "metric key"), validate_metric_value(k, v)) for k, v in metrics.items()
    ]
    for k, v in checked:
        log_metric(k, v, step=step, timestamp=ts)


def log_param(key: str, value: Any) -> Any:
    """Log a param to the active run; returns ``value``."""
    run = runs.current()
    text = validate_param_value(session.key(key, "param key"), value)
    session.log((run.local_id, KIND_PARAM, key, text, None, None))
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Log several params (all validated before any is queued)."""
    checked = {session.key(k, "param key"): validate_param_value(k, v) for k, v in params.items()}
    for k, v in checked.items():
        log_param(k, v)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    run = runs.current()
    text = validate_tag_value(session.key(key, "tag key"), value)
    session.log((run.local_id, KIND_TAG, key, text, None, None))


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags (all validated before any is queued)."""
    checked = {session.key(k, "tag key"): validate_tag_value(k, v) for k, v in tags.items()}
    for k, v in checked.items():
        set_tag(k, v)


def delete_tag(key: str) -> None:
    """Delete a tag from the active run (in order with the run's other tag changes)."""
    run = runs.current()
    session.log((run.local_id, KIND_DELETE_TAG, session.key(key, "tag key"), "", None, None))


def log_input(
    dataset: Any,
    context: str | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
    targets: str | None = None,
) -> None:
    """Record a dataset the active run used, as MLflow's UI shows it.

    Args:
        dataset: a pandas DataFrame, a numpy array, a file path or URI, or an
            :class:`mlrelay.Dataset` (name, digest, source, schema and profile are
            derived as MLflow derives them).
        context: the ``mlflow.data.context`` input tag, e.g. ``"training"``.
        name: the dataset's name (default ``"dataset"``, or the file's name).
        source: where the data came from, when not the running code.
        targets: the target column of a DataFrame.
    """
    from ._formats.datasets import dataset_input

    item = dataset_input(dataset, context=context, name=name, source=source, targets=targets)
    run = runs.current()
    text = item.model_dump_json(by_alias=True, exclude_none=True)
    session.log((run.local_id, KIND_DATASET, item.dataset.name, text, None, None))


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Log a file as an artifact of the active run, under ``artifact_path`` if given.

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
    runs.journal_artifact(runs.current(), path, artifact_path, is_dir=False)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Log every file under a directory as artifacts of the active run.

    Raises:
        ValidationError: the path is not an existing directory.
    """
    path = Path(local_dir)
    if not path.is_dir():
        raise ValidationError(
            f"log_artifacts: {str(path)!r} is not an existing directory", field="local_dir"
        )
    runs.journal_artifact(runs.current(), path, artifact_path, is_dir=True)


def _log_rendered(artifact_file: str, render: Callable[[Path], None]) -> None:
    # Rendered in a private temporary directory, then journaled like log_artifact.
    from ._artifacts import rendered

    run = runs.current()
    rendered(
        artifact_file,
        render,
        lambda path, folder: runs.journal_artifact(run, path, folder, is_dir=False),
    )


def log_text(text: str, artifact_file: str) -> None:
    """Log a string as a text artifact of the active run (e.g. ``"notes/summary.txt"``)."""
    from ._artifacts import write_text

    _log_rendered(artifact_file, lambda target: write_text(text, target))


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> None:
    """Log a dictionary as a JSON or YAML artifact (by the file's extension)."""
    from ._artifacts import write_dict

    _log_rendered(artifact_file, lambda target: write_dict(dictionary, target))


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib or plotly figure as an image (or HTML) artifact."""
    from ._artifacts import write_figure

    _log_rendered(artifact_file, lambda target: write_figure(figure, target))


def log_image(image: Any, artifact_file: str) -> None:
    """Log a numpy array or PIL image as an image artifact."""
    from ._artifacts import write_image

    _log_rendered(artifact_file, lambda target: write_image(image, target))


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    """Create an experiment on the server now and return its id (MLflow's semantics).

    Raises:
        ResourceAlreadyExistsError: the name is taken.
        APIError: the server could not be reached.
    """
    return str(session.client("create_experiment").create_experiment(name, artifact_location, tags))


def get_run(run_id: str) -> Any:
    """Fetch a run from the server (a local id is mapped to the server's once known)."""
    return session.client("get_run").get_run(runs.server_id(run_id))


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    *,
    max_results: int | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """Runs matching a filter, in the active experiment when no ids are given."""
    ids = experiment_ids or [session.experiment_id or session.settings().experiment_id or "0"]
    return list(
        session.client("search_runs").search_runs(
            ids, filter_string, max_results=max_results, order_by=order_by
        )
    )


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
