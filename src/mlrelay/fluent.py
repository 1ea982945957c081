"""The fluent API: MLflow's module-level functions, journal first, never waiting on the network.

``import mlrelay as mlflow`` and the usual tutorial calls work: ``set_experiment``,
``start_run`` (a context manager), ``log_param(s)``, ``log_metric(s)``, ``set_tag(s)``,
``end_run``. Log calls validate their input at the call site and hand one tuple to the
process's :class:`~mlrelay._pipeline.pipeline.Pipeline`; they return in microseconds whether the
server is up, slow or down.

State is thin and lazy: the tracking URI and experiment live in a module-level
``_Fluent`` object built on first use; the active-run stack lives in a context
variable; :func:`_reset` restores a clean state (tests, re-configuration).
"""

from __future__ import annotations

import atexit
import contextvars
import getpass
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ._config import Settings, resolve
from ._errors import APIError, ConfigurationError, ValidationError
from ._formats.gitinfo import git_info
from ._pipeline.journal import (
    KIND_ARTIFACT,
    KIND_DATASET,
    KIND_DELETE_TAG,
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
    Journal,
    default_home,
    owner_identity,
)
from ._pipeline.pipeline import Pipeline, PipelineOptions
from ._validation import (
    validate_key,
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


@dataclass
class ActiveRun:
    """A run started with :func:`start_run`; use it as a context manager.

    Attributes:
        run_id: the server's run id when the server answered in time, else a local id
            that ``mlrelay`` maps to the server's id once the run is created there.
        local_id: the journal's id of the run (the ``mlrelay.client_key`` tag).
        experiment_id: the experiment's id, when known.
    """

    run_id: str
    local_id: str
    experiment_id: str | None
    run_name: str | None
    parent: ActiveRun | None = None
    _ended: bool = field(default=False, repr=False)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        end_run(status, _run=self)


_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "mlrelay_run_stack", default=()
)


class _Fluent:
    """The lazily built process-wide state behind the module functions."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.experiment_name: str | None = None
        self.pipeline: Pipeline | None = None
        self.pid = os.getpid()
        self._client: Any = None
        self.client_kwargs: dict[str, Any] = {}
        self.known_keys: set[str] = set()
        self.git_tags: dict[str, str] | None = None
        self.mode: str | None = None  # set_tracking_uri(mode=...) / init(mode=...)
        self.offline_runs: list[str] = []  # ended offline runs, left to `mlrelay sync`
        self._settings: Settings | None = None

    def settings(self) -> Settings:
        """The settings, resolved once and kept until the URI or credentials change."""
        with self.lock:
            if self._settings is None:
                explicit: dict[str, Any] = (
                    {"tracking_uri": self.tracking_uri} if self.tracking_uri else {}
                )
                if self.mode is not None:
                    explicit["mode"] = self.mode
                self._settings = resolve({**self.client_kwargs, **explicit})
            return self._settings

    def configure(
        self,
        tracking_uri: str,
        client_kwargs: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> None:
        """Point at another server (and credentials); settings and client are rebuilt."""
        with self.lock:
            self.tracking_uri = tracking_uri
            if client_kwargs is not None:
                self.client_kwargs = client_kwargs
            if mode is not None:
                self.mode = mode
            self._settings = None
            self._client = None
            if self.pipeline is not None and mode is not None:
                # The pipeline was built for the previous mode; entries stay journaled.
                self.pipeline.close(0.0)
                if self.pipeline.journal is not None:
                    self.pipeline.journal.close()
                self.pipeline = None
            self.settings()  # a bad mode or URI raises here, at the call that set it

    def client(self, purpose: str = "this call") -> Any:
        """The fluent API's Client; in offline mode, a clear error instead of any network I/O."""
        from .client import Client

        if self.settings().mode == "offline":
            raise ConfigurationError(
                f"MLRELAY_MODE is offline: {purpose} needs the tracking server, and offline "
                "mode never touches the network; switch to online or run `mlrelay sync` first"
            )
        with self.lock:
            if self._client is None:
                explicit = {"tracking_uri": self.tracking_uri} if self.tracking_uri else {}
                self._client = Client(**{**self.client_kwargs, **explicit})
            return self._client

    def client_for(self, uri: str) -> Any:
        """A Client for a run's server: the configured one, or (for runs logged before
        ``set_tracking_uri`` pointed elsewhere) one with that server's own credentials."""
        from .client import Client

        if uri.rstrip("/") == (self.settings().tracking_uri or "").rstrip("/"):
            return self.client()
        return Client(tracking_uri=uri)

    def ensure_pipeline(self) -> Pipeline:
        with self.lock:
            if self.pipeline is None or self.pid != os.getpid():
                settings = self.settings()
                self.pid = os.getpid()
                if settings.mode == "disabled":
                    self.pipeline = _DisabledPipeline()
                    return self.pipeline
                home = settings.home or default_home()
                journal = Journal(Path(home) / "journal.db", fsync=settings.fsync)
                online = settings.mode == "online" and settings.tracking_uri
                self.pipeline = Pipeline(
                    journal,
                    self.client_for if online else None,
                    PipelineOptions(
                        strict=settings.strict, max_journal_bytes=settings.max_journal_bytes
                    ),
                    primary_uri=settings.tracking_uri,
                )
            return self.pipeline


class _DisabledPipeline(Pipeline):
    """Stands in for the pipeline when ``MLRELAY_MODE=disabled``: every entry is dropped.

    Calls still validate their input, so unit tests of user code catch bad keys and values.
    """

    def __init__(self) -> None:  # no journal, no threads
        self.options = PipelineOptions()
        self.journal = None  # type: ignore[assignment]
        self._sender = None

    def log(self, row: Any) -> None:
        """Drop the entry."""

    def write_now(self, timeout: float) -> bool:  # noqa: ARG002
        """Nothing to write."""
        return True

    def flush(self, timeout: float | None = None, *, stall: float | None = None) -> bool:  # noqa: ARG002
        """Nothing to deliver."""
        return True

    def pending(self) -> int:
        """Nothing is ever pending."""
        return 0

    def raise_if_strict_failure(self) -> None:
        """Nothing is ever rejected."""

    def close(self, timeout: float) -> int:  # noqa: ARG002
        """Nothing to close."""
        return 0


class _Deadline:
    """Hands out clients whose single attempt ends by a shared deadline (start budget)."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget

    def client(self) -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            from ._errors import APITimeoutError

            raise APITimeoutError(
                "the start budget (MLRELAY_START_TIMEOUT) ran out", method="-", url="-"
            )
        return _state.client().with_options(max_retries=0, timeout=remaining)


_state = _Fluent()


def _reset() -> None:
    """Forget all fluent state (tests, re-configuration); pending entries stay in the journal."""
    global _state
    old = _state
    if old.pipeline is not None:
        old.pipeline.close(0.0)
        if old.pipeline.journal is not None:
            old.pipeline.journal.close()
    if old._client is not None:
        old._client.close()
    _state = _Fluent()
    _stack.set(())


def _after_fork() -> None:
    # A forked child gets its own pipeline (and threads) on first use, and no active run:
    # the parent's runs belong to the parent's pipeline. To log into the parent's run,
    # the child calls start_run(run_id=...), as data-parallel workers do.
    global _state
    parent = _state
    _state = _Fluent()
    _state.tracking_uri = parent.tracking_uri
    _state.experiment_id = parent.experiment_id
    _state.experiment_name = parent.experiment_name
    _state.client_kwargs = dict(parent.client_kwargs)
    _state.mode = parent.mode
    _stack.set(())


os.register_at_fork(after_in_child=_after_fork)


def _budget() -> float:
    return _state.settings().start_timeout


def _get_or_create_experiment(budget: _Deadline, name: str) -> str:
    """The id of experiment ``name``, creating it if missing; safe against a concurrent create."""
    from ._errors import ResourceAlreadyExistsError

    found = budget.client().get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(budget.client().create_experiment(name))
    except ResourceAlreadyExistsError:
        # Another process created it between our look-up and our create.
        found = budget.client().get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


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
    _state.configure(uri, mode=mode)


def get_tracking_uri() -> str | None:
    """The tracking URI the fluent API uses (resolved from settings when not set)."""
    return _state.tracking_uri or _state.settings().tracking_uri


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> str | None:
    """Make an experiment active, creating it by name if missing (race-safe).

    Waits for the server at most ``MLRELAY_START_TIMEOUT`` (5 s); if it does not
    answer, the name is recorded and the experiment is created when runs are sent.

    Returns:
        The experiment id, or None when the server could not be asked in time.
    """
    if experiment_name is None and experiment_id is None:
        raise ValidationError("set_experiment needs a name or an id", field="experiment")
    with _state.lock:
        _state.experiment_name = experiment_name
        _state.experiment_id = experiment_id
    if experiment_id is not None or _state.settings().mode != "online":
        return experiment_id
    assert experiment_name is not None
    try:
        exp_id = _get_or_create_experiment(_Deadline(_budget()), experiment_name)
    except APIError as exc:
        warnings.warn(
            f"mlrelay: could not reach the tracking server for set_experiment ({exc}); "
            "logging continues locally",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    with _state.lock:
        _state.experiment_id = exp_id
    return str(exp_id)


def _system_tags(
    run_name: str | None, parent: ActiveRun | None, description: str | None
) -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    tags = {
        "mlflow.user": user,
        "mlflow.source.name": os.path.basename(sys.argv[0])
        if sys.argv and sys.argv[0]
        else "<console>",
        "mlflow.source.type": "LOCAL",
    }
    if _state.git_tags is None:
        start = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else Path.cwd()
        info = git_info(start)
        _state.git_tags = info.tags() if info else {}
    tags.update(_state.git_tags)
    if run_name:
        tags["mlflow.runName"] = run_name
    if parent is not None:
        tags["mlflow.parentRunId"] = parent.run_id
    if description:
        tags["mlflow.note.content"] = description
    return tags


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
    stack = _stack.get()
    if stack and not nested:
        raise ValidationError(
            f"run {stack[-1].run_id} is already active; end it first or pass nested=True",
            field="run",
        )
    parent = stack[-1] if stack else None
    pipeline = _state.ensure_pipeline()
    settings = _state.settings()
    # MLflow reads MLFLOW_RUN_ID at each start_run; so do we (then .env, via settings).
    run_id = run_id or os.environ.get("MLFLOW_RUN_ID") or settings.run_id
    exp_id = experiment_id or _state.experiment_id or settings.experiment_id
    exp_name = None if exp_id else (_state.experiment_name or settings.experiment_name)
    user_tags = {
        validate_key(k, field="tag key"): validate_tag_value(k, v) for k, v in (tags or {}).items()
    }
    if settings.mode == "disabled":
        run = ActiveRun(run_id or uuid.uuid4().hex, uuid.uuid4().hex, exp_id, run_name, parent)
        _stack.set((*stack, run))
        return run
    online = settings.mode == "online" and bool(settings.tracking_uri)
    if run_id is not None:
        resumed = _resume_journaled(pipeline.journal, run_id, online)
        if resumed is not None:
            resumed.parent = parent
            _stack.set((*stack, resumed))
            if user_tags:
                set_tags(user_tags)
            return resumed
    create_tags = {**_system_tags(run_name, parent, description), **user_tags}
    local_id = uuid.uuid4().hex
    server_id: str | None = run_id
    start_time = int(time.time() * 1000)
    if run_id is None and online:
        try:
            budget = _Deadline(_budget())
            if exp_id is None:
                exp_id = _get_or_create_experiment(budget, exp_name) if exp_name else "0"
            created = budget.client().create_run(
                exp_id,
                start_time=start_time,
                tags=create_tags,
                run_name=run_name,
                client_key=local_id,
            )
            server_id = created.info.run_id
        except APIError as exc:
            warnings.warn(
                f"mlrelay: the tracking server did not answer start_run in time ({exc}); "
                "the run continues locally and is created when the server is reachable",
                RuntimeWarning,
                stacklevel=2,
            )
    elif run_id is not None and online:
        exp_id = _resume_on_server(run_id) or exp_id
    if run_id is not None and exp_id is None:
        exp_id = "0"
    pipeline.journal.add_run(
        local_id=local_id,
        tracking_uri=settings.tracking_uri or "",
        experiment_id=exp_id if (exp_id or not exp_name) else None,
        experiment_name=exp_name,
        run_name=run_name,
        start_time=start_time,
        create_tags=create_tags,
        server_run_id=server_id,
        offline=settings.mode == "offline",
    )
    if run_id is not None and user_tags:
        set_tags(user_tags)
    run = ActiveRun(
        run_id=server_id or local_id,
        local_id=local_id,
        experiment_id=exp_id,
        run_name=run_name,
        parent=parent,
    )
    _stack.set((*stack, run))
    if settings.log_environment if log_environment is None else log_environment:
        _log_environment()
    return run


def _log_environment() -> None:
    import tempfile

    from ._formats.repro import collect

    records = collect()
    if records.tags:
        set_tags(records.tags)
    with tempfile.TemporaryDirectory(prefix="mlrelay-env-") as tmp:
        for artifact, data in records.files.items():
            folder, _, filename = artifact.rpartition("/")
            target = Path(tmp) / filename
            target.write_bytes(data)
            _journal_artifact(target, folder or None, is_dir=False)
            target.unlink()
    for note in records.notes:
        warnings.warn(f"mlrelay: {note}", RuntimeWarning, stacklevel=3)


def _resume_on_server(run_id: str) -> str | None:
    """Resume as MLflow does: the run must exist and not be deleted; it is RUNNING again.

    Returns the run's experiment id, or None when the server did not answer in time.
    """
    try:
        budget = _Deadline(_budget())
        existing = budget.client().get_run(run_id)
        if existing.info.lifecycle_stage == "deleted":
            raise ValidationError(
                f"run {run_id} is deleted; restore it before resuming", field="run_id"
            )
        budget.client().update_run(run_id, status="RUNNING")
        return str(existing.info.experiment_id)
    except APIError as exc:
        warnings.warn(
            f"mlrelay: could not check run {run_id} on the tracking server ({exc}); "
            "logging to it continues locally",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _resume_journaled(journal: Journal, run_id: str, online: bool) -> ActiveRun | None:
    """Continue a run this journal holds (by local or server id) when no live process owns it.

    An offline run is resumed by the local id ``start_run`` returned; its entries go on
    in the same journal record, so ``mlrelay sync`` sends it as one run.
    """
    record = journal.run(run_id) or journal.run_by_server_id(run_id)
    if record is None:
        return None
    if record.orphaned or (record.pid, record.owner_start) == owner_identity():
        if record.server_run_id and online:
            _resume_on_server(record.server_run_id)
        journal.resume(record.local_id)
    elif record.server_run_id is None:
        raise ValidationError(
            f"run {run_id} is being logged by process {record.pid}, which is still running; "
            "it can be resumed once that process has ended",
            field="run_id",
        )
    else:
        return None  # several live processes may log into one server run
    return ActiveRun(
        run_id=record.server_run_id or record.local_id,
        local_id=record.local_id,
        experiment_id=record.experiment_id,
        run_name=record.run_name,
    )


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    stack = _stack.get()
    return stack[-1] if stack else None


def _current() -> ActiveRun:
    run = active_run()
    if run is None:
        return start_run()
    return run


def end_run(status: str = "FINISHED", *, _run: ActiveRun | None = None, _wait: bool = True) -> None:
    """End the active run: its entries are delivered first, then its final status.

    Waits while delivery makes progress; when the server stops answering for
    ``MLRELAY_EXIT_TIMEOUT`` seconds (10 s) it returns and the rest stays in the journal.
    """
    run = _run or active_run()
    if run is None or run._ended:
        return
    run._ended = True
    pipeline = _state.ensure_pipeline()
    if pipeline.journal is None:  # disabled
        _stack.set(tuple(r for r in _stack.get() if r is not run))
        return
    pipeline.write_now(5.0)
    pipeline.journal.end_run(run.local_id, status, int(time.time() * 1000))
    if pipeline._sender is None:
        # Offline: this process never sends the run; releasing it lets `mlrelay sync`
        # take it at once, even while this process lives on (a notebook kernel).
        pipeline.journal.release(run.local_id)
        _state.offline_runs.append(run.local_id)
    stack = _stack.get()
    _stack.set(tuple(r for r in stack if r is not run))
    if not _wait:
        return
    # Deliver the run's entries, then its status, as long as delivery makes progress; a
    # server that stops answering costs at most the exit timeout, and the rest stays
    # in the journal.
    pipeline.flush(stall=_exit_timeout())
    pipeline.raise_if_strict_failure()


def _key(key: Any, field: str) -> str:
    # Validated keys are cached: the hot path then costs one set lookup.
    if key in _state.known_keys:
        return key  # type: ignore[no-any-return]
    validate_key(key, field=field)
    _state.known_keys.add(key)
    return key  # type: ignore[no-any-return]


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log one metric point to the active run (starting one if none is active).

    Costs a few microseconds: the point is validated and queued; the background
    pipeline makes it durable and sends it.

    Raises:
        ValidationError: bad key, value, step or timestamp (nothing is queued).
    """
    run = active_run() or _current()
    if key not in _state.known_keys:
        _key(key, "metric key")
    if type(value) is not float:
        value = validate_metric_value(key, value)
    ts = int(time.time() * 1000) if timestamp is None else validate_timestamp(key, timestamp)
    st = 0 if step is None else (step if type(step) is int else validate_step(key, step))
    pipeline = _state.pipeline or _state.ensure_pipeline()
    pipeline.log((run.local_id, KIND_METRIC, key, value, ts, st))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log several metrics at one step (all validated before any is queued)."""
    ts = int(time.time() * 1000)
    checked = [(_key(k, "metric key"), validate_metric_value(k, v)) for k, v in metrics.items()]
    for k, v in checked:
        log_metric(k, v, step=step, timestamp=ts)


def log_param(key: str, value: Any) -> Any:
    """Log a param to the active run; returns ``value``."""
    run = _current()
    text = validate_param_value(_key(key, "param key"), value)
    _state.ensure_pipeline().log((run.local_id, KIND_PARAM, key, text, None, None))
    return value


def log_params(params: Mapping[str, Any]) -> None:
    """Log several params (all validated before any is queued)."""
    checked = {_key(k, "param key"): validate_param_value(k, v) for k, v in params.items()}
    for k, v in checked.items():
        log_param(k, v)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    run = _current()
    text = validate_tag_value(_key(key, "tag key"), value)
    _state.ensure_pipeline().log((run.local_id, KIND_TAG, key, text, None, None))


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags (all validated before any is queued)."""
    checked = {_key(k, "tag key"): validate_tag_value(k, v) for k, v in tags.items()}
    for k, v in checked.items():
        set_tag(k, v)


def delete_tag(key: str) -> None:
    """Delete a tag from the active run (in order with the run's other tag changes)."""
    run = _current()
    _state.ensure_pipeline().log(
        (run.local_id, KIND_DELETE_TAG, _key(key, "tag key"), "", None, None)
    )


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
    run = _current()
    text = item.model_dump_json(by_alias=True, exclude_none=True)
    _state.ensure_pipeline().log((run.local_id, KIND_DATASET, item.dataset.name, text, None, None))


def _journal_artifact(source: Path, artifact_path: str | None, *, is_dir: bool) -> None:
    # The file is copied into the journal's blob area now, so later edits of it do not
    # change what is sent; the background sender uploads it in order with the run's
    # other entries (offline: `mlrelay sync` does).
    import json

    run = _current()
    pipeline = _state.ensure_pipeline()
    if pipeline.journal is None:  # disabled
        return
    blob = pipeline.journal.add_blob(run.local_id, source)
    spec = json.dumps({"blob": blob, "artifact_path": artifact_path or None, "dir": is_dir})
    pipeline.log((run.local_id, KIND_ARTIFACT, artifact_path or "", spec, None, None))


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
    _journal_artifact(path, artifact_path, is_dir=False)


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
    _journal_artifact(path, artifact_path, is_dir=True)


def _log_rendered(artifact_file: str, render: Any) -> None:
    # Rendered in a private temporary directory, then journaled like log_artifact.
    from ._artifacts import rendered

    rendered(
        artifact_file, render, lambda path, folder: _journal_artifact(path, folder, is_dir=False)
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
    return str(_state.client("create_experiment").create_experiment(name, artifact_location, tags))


def _server_id(run_id: str) -> str:
    pipeline = _state.pipeline
    if pipeline is not None:
        record = pipeline.journal.run(run_id)
        if record is not None and record.server_run_id:
            return record.server_run_id
    return run_id


def get_run(run_id: str) -> Any:
    """Fetch a run from the server (a local id is mapped to the server's once known)."""
    return _state.client("get_run").get_run(_server_id(run_id))


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    *,
    max_results: int | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """Runs matching a filter, in the active experiment when no ids are given."""
    ids = experiment_ids or [_state.experiment_id or _state.settings().experiment_id or "0"]
    return list(
        _state.client("search_runs").search_runs(
            ids, filter_string, max_results=max_results, order_by=order_by
        )
    )


def init(
    repo_owner: str,
    repo_name: str | None = None,
    *,
    host: str | None = None,
    token: str | None = None,
    username: str | None = None,
    check_timeout: float = 5.0,
    export_env: bool = False,
    mode: str | None = None,
) -> str:
    """Point the fluent API at a DagsHub repository's MLflow server.

    The tracking URI becomes ``{host}/{owner}/{repo}.mlflow`` (host: argument,
    ``DAGSHUB_CLIENT_HOST``, or ``https://dagshub.com``). The token comes from the
    argument, ``DAGSHUB_USER_TOKEN``, then the usual resolution (``MLFLOW_TRACKING_*``,
    ``.env``, the keyring). With a user name it is sent as Basic ``user:token``,
    otherwise as a Bearer token. Nothing is created, no browser opens, nothing waits for
    input, and ``os.environ`` is left alone unless ``export_env=True``.

    The endpoint is checked once, within ``check_timeout`` seconds: a missing
    repository or a rejected token raises; an unreachable host falls back to logging
    locally (online mode sends later) with one warning.

    Args:
        repo_owner: the owner, or ``"owner/repo"``.
        repo_name: the repository (omit when ``repo_owner`` is ``"owner/repo"``).
        mode: ``online``, ``offline`` (no check, nothing sent; ``mlrelay sync`` later) or
            ``disabled``; default ``MLRELAY_MODE``, else online.

    Returns:
        The tracking URI.

    Raises:
        ConfigurationError: the repository does not exist at that host.
        AuthenticationError, PermissionDeniedError: the token was refused.
    """
    from ._errors import APIConnectionError, AuthenticationError, NotFoundError, ServerError

    if repo_name is None:
        if repo_owner.count("/") != 1:
            raise ConfigurationError(
                f"init needs (repo_owner, repo_name) or 'owner/repo', got {repo_owner!r}"
            )
        repo_owner, repo_name = repo_owner.split("/")
    dagshub = resolve({"keyring": False})  # DAGSHUB_* from the environment or .env
    base = (host or dagshub.dagshub_host or "https://dagshub.com").rstrip("/")
    uri = f"{base}/{repo_owner}/{repo_name}.mlflow"
    stored = dagshub.dagshub_token.get_secret_value() if dagshub.dagshub_token else None
    secret = token or stored
    kwargs: dict[str, Any] = {}
    source = "the environment, .env or keyring"
    if secret:
        source = "the token argument" if token else dagshub.sources["dagshub_token"]
        kwargs = {"username": username, "password": secret} if username else {"token": secret}
    _state.configure(uri, kwargs, mode=mode)
    if _state.settings().mode != "online":
        return uri
    try:
        probe = _state.client().with_options(max_retries=0, timeout=check_timeout)
        next(probe.search_experiments(max_results=1, page_size=1), None)
    except NotFoundError as exc:
        raise ConfigurationError(
            f"no MLflow server for repository {repo_owner}/{repo_name} at {base} "
            f"(HTTP {exc.status_code}); check the owner and repository name"
        ) from exc
    except AuthenticationError as exc:
        raise AuthenticationError(
            f"{base} rejected the token from {source} for {repo_owner}/{repo_name} "
            f"(HTTP {exc.status_code})",
            method=exc.method,
            url=exc.url,
            status_code=exc.status_code,
            error_code=exc.error_code,
            server_message=exc.server_message,
        ) from exc
    except (APIConnectionError, ServerError) as exc:
        warnings.warn(
            f"mlrelay: {base} is unreachable ({exc}); logging continues locally and is sent "
            "when it is back",
            RuntimeWarning,
            stacklevel=2,
        )
    if export_env:
        os.environ.setdefault("MLFLOW_TRACKING_URI", uri)
        if secret and username:
            os.environ.setdefault("MLFLOW_TRACKING_USERNAME", username)
            os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", secret)
        elif secret:
            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", secret)
    return uri


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
    pipeline = _state.pipeline
    if pipeline is None:
        return True
    done = pipeline.flush(stall=_exit_timeout()) if timeout is None else pipeline.flush(timeout)
    pipeline.raise_if_strict_failure()
    return done


def _exit_timeout() -> float:
    return _state.settings().exit_timeout


@atexit.register
def _at_exit() -> None:
    state = _state
    if state.pipeline is None or state.pid != os.getpid():
        return
    for run in reversed(_stack.get()):
        end_run("FINISHED", _run=run, _wait=False)
    left = state.pipeline.close(_exit_timeout())
    if state.offline_runs and state.pipeline.journal is not None:
        left += state.pipeline.journal.count_pending(state.offline_runs)
    if left and state.pipeline.journal is not None:
        how = "logged offline" if state.pipeline._sender is None else "not yet delivered"
        sys.stderr.write(
            f"mlrelay: {left} entries {how} are kept in {state.pipeline.journal.path}; "
            "run `mlrelay sync` to send them\n"
        )
