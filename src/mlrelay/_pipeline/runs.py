"""The fluent API's session: its settings, client, pipeline, and the lifecycle of its runs.

:mod:`mlrelay.fluent` is the thin front over this module. Here live

- :class:`Session`, the process-wide state built lazily on first use (tracking URI,
  experiment, mode, the Client, the :class:`~mlrelay._pipeline.pipeline.Pipeline`), one
  instance, ``session``, reset in place by :meth:`Session.reset` and after ``fork``;
- :class:`ActiveRun` and the active-run stack (a context variable);
- starting a run (created on the server within ``MLRELAY_START_TIMEOUT`` when it answers,
  otherwise journaled with a local id and created later, exactly once), resuming one,
  ending one, and the at-exit flush;
- the run a call with ``run_id=`` logs into (:func:`target`): a run of this process that has
  not ended, else a journal record *attached* to the server's run. An attached record's
  entries are journaled and sent like any others; it never changes the run's status (it
  ends as ``RESUMED``, a status the sender never sends). One limit: if the process is
  killed before it exits normally, crash recovery ends an attached record KILLED like any
  run that never ended, and so sets the server run's status to KILLED.

In ``disabled`` mode no pipeline and no journal exist: entries go to :data:`DISCARD`.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import getpass
import inspect
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, PrivateAttr

from mlrelay import _system_metrics as system_metrics
from mlrelay._config import Settings, resolve
from mlrelay._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    JournalError,
    MissingExtraError,
    NotFoundError,
    UnexpectedResponseError,
    ValidationError,
    wrong_address,
)
from mlrelay._formats.gitinfo import git_info
from mlrelay._protocol.batches import KIND_ARTIFACT, KIND_METRIC, KIND_TAG
from mlrelay._protocol.entities import Experiment, Run, RunData, RunInfo, RunInputs, RunTag
from mlrelay._system_metrics import SystemMetricsMonitor
from mlrelay._validation import validate_key, validate_tag_value, validate_text

from .journal import RESUMED, Journal, RunRecord, default_home, owner_identity
from .pipeline import Pipeline, PipelineOptions, Row

if TYPE_CHECKING:
    from mlrelay.client import Client

logger = logging.getLogger("mlrelay")

__all__ = [
    "DISCARD",
    "ActiveRun",
    "RunHandle",
    "Session",
    "active_run",
    "context_tags",
    "current",
    "deliver_now",
    "end_run",
    "flush",
    "journal_artifact",
    "last_active_run",
    "server_id",
    "server_run",
    "session",
    "set_experiment",
    "start",
    "target",
]


@dataclass(eq=False)
class RunHandle:
    """A run this process has started or resumed: what the log calls need, kept light
    (the hot path reads ``local_id``), plus what :class:`ActiveRun` shows.

    ``run_id`` is the server's id when the server answered ``start_run`` in time, else the
    local id until the run is created there (see :meth:`ActiveRun.refresh`).
    """

    run_id: str
    local_id: str
    experiment_id: str | None
    run_name: str | None
    parent: RunHandle | None = None
    start_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    server_info: RunInfo | None = None  # the server's answer to runs/create, when it came
    status: str = "RUNNING"
    end_time: int | None = None
    ended: bool = False
    view: ActiveRun | None = None
    attached: bool = False  # a record that only adds entries to a server run (see target)
    tables: dict[str, Any] = field(default_factory=dict)  # log_table: artifact file -> rows
    logged_artifacts: str | None = None  # the mlflow.loggedArtifacts tag; None: not read yet
    monitor: SystemMetricsMonitor | None = None  # log_system_metrics: ends with the run

    def active_run(self) -> ActiveRun:
        """The :class:`ActiveRun` users see for this run (one per handle)."""
        if self.view is None:
            self.view = ActiveRun.of(self)
        return self.view


class ActiveRun(Run):
    """The run :func:`mlrelay.start_run` started: a :class:`~mlrelay.Run` (``.info``,
    ``.data``) and a context manager, as in MLflow.

    ``.info`` is the server's answer to ``runs/create`` when the server answered within
    ``MLRELAY_START_TIMEOUT``. Otherwise it is built locally: ``run_id`` is then the
    run's local id (``mlrelay.get_run`` and every log call accept it), ``artifact_uri`` is
    None and ``experiment_id`` is ``""`` when only the experiment's name is known; once the
    background sender has created the run on the server, :meth:`refresh` (called by
    ``active_run()``, ``end_run()`` and the ``run_id`` attribute) puts the server's id in.
    ``.info.status`` and ``.info.end_time`` change when the run ends. ``.data`` holds the
    tags the run was created with; metrics and params logged later are on the server
    (``mlrelay.get_run(run.info.run_id).data``), as in MLflow.

    The attributes of earlier mlrelay versions remain: ``run_id``, ``local_id``,
    ``experiment_id``, ``run_name``, ``parent``.
    """

    model_config = ConfigDict(frozen=False)
    _handle: RunHandle = PrivateAttr()

    @classmethod
    def of(cls, handle: RunHandle) -> ActiveRun:
        """The view of ``handle``."""
        tags = dict(handle.tags)
        if handle.run_name:
            tags.setdefault("mlflow.runName", handle.run_name)
        view = cls.model_construct(
            info=_info_of(handle),
            data=RunData(tags=[RunTag(key=k, value=v) for k, v in tags.items()]),
            inputs=RunInputs(),
        )
        view._handle = handle  # noqa: SLF001  (same class)
        return view

    def refresh(self) -> ActiveRun:
        """Bring ``.info`` up to date: the server's id once known, the final status."""
        handle = self._handle
        if handle.run_id == handle.local_id:
            known = server_id(handle.local_id)
            if known != handle.local_id:
                handle.run_id = known
        info = _info_of(handle)
        if info != self.info:
            self.info = info
        return self

    @property
    def run_id(self) -> str:
        """The run's id (``.info.run_id``)."""
        return self.refresh().info.run_id

    @property
    def local_id(self) -> str:
        """The journal's id of the run (its exactly-once key)."""
        return self._handle.local_id

    @property
    def experiment_id(self) -> str | None:
        """The experiment's id, when known."""
        return self._handle.experiment_id

    @property
    def run_name(self) -> str | None:
        """The run's name, when given or assigned by the server."""
        return self.info.run_name

    @property
    def parent(self) -> ActiveRun | None:
        """The run this one is nested in."""
        parent = self._handle.parent
        return parent.active_run() if parent is not None else None

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
        end_run(status, run=self._handle)


def _info_of(handle: RunHandle) -> RunInfo:
    base = handle.server_info
    update = {"status": handle.status, "end_time": handle.end_time, "run_id": handle.run_id}
    if base is not None:
        return base.model_copy(update=update)
    return RunInfo(
        run_id=handle.run_id,
        experiment_id=handle.experiment_id or "",
        run_name=handle.run_name,
        user_id=handle.tags.get("mlflow.user"),
        status=handle.status,
        start_time=handle.start_time,
        end_time=handle.end_time,
        artifact_uri=None,
        lifecycle_stage="active",
    )


class Sink(Protocol):
    """Where log calls put their entries: the pipeline, or :data:`DISCARD`."""

    def log(self, row: Row) -> None:
        """Take one entry."""

    def log_many(self, rows: list[Row]) -> None:
        """Take several entries, in order."""


class _Discard:
    """The sink of ``MLRELAY_MODE=disabled``: every entry is dropped (calls still validate)."""

    def log(self, row: Row) -> None:
        """Drop the entry."""

    def log_many(self, rows: list[Row]) -> None:
        """Drop the entries."""


DISCARD = _Discard()

_stack: contextvars.ContextVar[tuple[RunHandle, ...]] = contextvars.ContextVar(
    "mlrelay_run_stack", default=()
)


class Session:
    """The process-wide state behind the fluent API, built lazily on first use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._init()

    def _init(self) -> None:
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.experiment_name: str | None = None
        self.pipeline: Pipeline | None = None
        self.sink: Sink | None = None  # the pipeline, or DISCARD; None until first use
        self.pid = os.getpid()
        self._client: Client | None = None
        self.client_kwargs: dict[str, Any] = {}
        self.known_keys: set[str] = set()
        self.git_tags: dict[str, str] | None = None
        self.mode: str | None = None  # set_tracking_uri(mode=...) / init(mode=...)
        self.offline_runs: list[str] = []  # ended offline runs, left to `mlrelay sync`
        self.last_run: RunHandle | None = None  # for last_active_run()
        self.live: dict[str, RunHandle] = {}  # runs started here and not ended, by local id
        self.targets: dict[str, RunHandle] = {}  # run_id= of log calls -> the run (target)
        self.told_no_server = False
        self.exit_spent = 0.0  # of MLRELAY_EXIT_TIMEOUT, spent waiting without delivery
        self.exiting = False  # the at-exit flush (or a SIGTERM's) is under way
        self._settings: Settings | None = None
        # MLflow 3: the first logged model of a run at each step (local run id -> step ->
        # model id), to which that run's later metric points at that step are linked.
        self.model_outputs: dict[str, dict[int, str]] = {}
        self.metric_datasets: set[tuple[str, str, str]] = set()  # (run, name, digest) logged

    # --- configuration ----------------------------------------------------------------

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

    @property
    def disabled(self) -> bool:
        """Whether ``MLRELAY_MODE=disabled``: calls validate, nothing is kept or sent."""
        return self.settings().mode == "disabled"

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
            # Not closed: the sender may be in a request with it (it goes with its last user).
            self._client = None
            if mode is not None:  # the pipeline was built for the previous mode
                self._close_pipeline()  # (entries stay journaled)
            self.settings()  # a bad mode or URI raises here, at the call that set it

    def _close_pipeline(self) -> None:
        if self.pipeline is not None:
            self.end_attached(self.pipeline)
            self.pipeline.close(0.0)
            self.pipeline.journal.close()
        self.pipeline = None
        self.sink = None

    def reset(self) -> None:
        """Forget all state (tests, re-configuration); pending entries stay journaled."""
        with self.lock:
            self._close_pipeline()
            if self._client is not None:
                self._client.close()
            self._init()
        _stack.set(())

    def end_attached(self, pipeline: Pipeline) -> None:
        """End the records :func:`target` attached to server runs as ``RESUMED``: their
        entries are still sent, the runs' statuses are left as they are."""
        with self.lock:
            attached = {id(h): h for h in self.targets.values() if h.attached and not h.ended}
            self.targets.clear()
        if not attached:
            return
        pipeline.write_now(5.0)
        now = int(time.time() * 1000)
        for handle in attached.values():
            handle.ended = True
            record = pipeline.journal.run(handle.local_id)
            if record is not None and record.status is None:
                pipeline.journal.end_run(handle.local_id, RESUMED, now)
                if not pipeline.sends:  # offline: `mlrelay sync` sends it
                    pipeline.journal.release(handle.local_id)

    def after_fork(self) -> None:
        """In a forked child: keep the configuration, drop the parent's pipeline and runs.

        The child gets its own pipeline (and threads) on first use, and no active run: the
        parent's runs belong to the parent's pipeline. To log into the parent's run, the
        child calls ``start_run(run_id=...)``, as data-parallel workers do.
        """
        kept = (self.tracking_uri, self.experiment_id, self.experiment_name, self.mode)
        kwargs = dict(self.client_kwargs)
        self.lock = threading.RLock()  # the parent's lock may have been held at the fork
        self._init()
        self.tracking_uri, self.experiment_id, self.experiment_name, self.mode = kept
        self.client_kwargs = kwargs
        _stack.set(())

    # --- the client and the pipeline ----------------------------------------------------

    def client(self, purpose: str = "this call") -> Client:
        """The fluent API's Client; in offline mode, a clear error instead of any network I/O."""
        from mlrelay.client import Client

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

    def client_for(self, uri: str) -> Client:
        """A Client for a run's server: the configured one, or (for runs logged before
        ``set_tracking_uri`` pointed elsewhere) one with that server's own credentials."""
        from mlrelay.client import Client

        if uri.rstrip("/") == (self.settings().tracking_uri or "").rstrip("/"):
            return self.client()
        return Client(tracking_uri=uri)

    def ensure_pipeline(self) -> Pipeline:
        """This process's pipeline, built on first use (and again in a forked child).

        Raises:
            ConfigurationError: in ``disabled`` mode, which has no pipeline.
        """
        with self.lock:
            if self.pipeline is None or self.pid != os.getpid():
                settings = self.settings()
                if settings.mode == "disabled":
                    raise ConfigurationError("MLRELAY_MODE is disabled: nothing is journaled")
                self.pid = os.getpid()
                journal = Journal(self.journal_path(), fsync=settings.fsync)
                online = settings.mode == "online" and bool(settings.tracking_uri)
                self.pipeline = Pipeline(
                    journal,
                    self.client_for if online else None,
                    PipelineOptions(
                        strict=settings.strict,
                        max_journal_bytes=settings.max_journal_bytes,
                        max_in_flight=settings.max_in_flight,
                    ),
                    primary_uri=settings.tracking_uri,
                )
                self.sink = self.pipeline
                install_sigterm_handler()
            return self.pipeline

    def journal_path(self) -> Path:
        """Where this process's journal is (``MLRELAY_HOME``/journal.db)."""
        return Path(self.settings().home or default_home()) / "journal.db"

    def ensure_sink(self) -> Sink:
        """Where log calls put entries: the pipeline, or :data:`DISCARD` when disabled."""
        if self.sink is None or self.pid != os.getpid():
            if self.disabled:
                self.sink = DISCARD
            else:
                self.ensure_pipeline()
        assert self.sink is not None
        return self.sink

    def log(self, row: Row) -> None:
        """Queue one entry (the hot path of every log call)."""
        (self.sink or self.ensure_sink()).log(row)

    def log_many(self, rows: list[Row]) -> None:
        """Queue several entries, in order."""
        (self.sink or self.ensure_sink()).log_many(rows)

    def key(self, key: Any, field: str) -> str:
        """``key``, validated once per process (the hot path then costs one set lookup)."""
        if type(key) is not str or key not in self.known_keys:
            validate_key(key, field=field)
            self.known_keys.add(key)
        return key  # type: ignore[no-any-return]  # validated as a str above


session = Session()
"""The one session of this process."""

os.register_at_fork(after_in_child=lambda: session.after_fork())


class _Deadline:
    """Hands out clients whose single attempt ends by a shared deadline (start budget)."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + session.settings().start_timeout

    def client(self) -> Client:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0.05:
            raise APITimeoutError(
                "the start budget (MLRELAY_START_TIMEOUT) ran out", method="-", url="-"
            )
        return session.client().with_options(max_retries=0, timeout=remaining)


def set_experiment(experiment_name: str | None, experiment_id: str | None) -> Experiment:
    """Make an experiment active; online, find or create it within the start budget and
    return it as the server has it. Offline, or when the server cannot be asked in time,
    the returned experiment has the name and id given (``""`` for an id not known yet:
    runs started with it go to the named experiment, created when they are sent).

    Raises:
        ValidationError: neither a name nor an id.
        NotFoundError: online, no experiment has ``experiment_id``.
        ConfigurationError: online, the experiment is deleted.
    """
    if experiment_name is None and experiment_id is None:
        raise ValidationError("set_experiment needs a name or an id", field="experiment")
    if isinstance(experiment_name, str):
        validate_text(experiment_name, field="experiment name", key=experiment_name)
    with session.lock:
        session.experiment_name = experiment_name
        session.experiment_id = experiment_id
    settings = session.settings()
    if settings.mode == "online" and not settings.tracking_uri:
        _notice_no_server()
    unknown = Experiment(experiment_id=experiment_id or "", name=experiment_name or "")
    if settings.mode != "online" or not settings.tracking_uri:
        return unknown
    try:
        found = _find_experiment(experiment_name, experiment_id)
    except NotFoundError as exc:
        if exc.error_code == "ENDPOINT_NOT_FOUND":
            raise wrong_address(settings.tracking_uri or "", exc) from exc
        raise
    except APIError as exc:
        _warn(f"{_no_answer(exc, 'set_experiment')}; logging continues locally")
        return unknown
    if found.lifecycle_stage == "deleted":
        raise ConfigurationError(
            f"experiment {found.name!r} (id {found.experiment_id}) is deleted: restore it "
            "(MlflowClient().restore_experiment) or set another one"
        )
    with session.lock:
        session.experiment_id = found.experiment_id
    return found


def _find_experiment(name: str | None, experiment_id: str | None) -> Experiment:
    """The experiment by id, or by name (created if missing), within the start budget."""
    budget = _Deadline()
    if experiment_id is not None:
        return budget.client().get_experiment(experiment_id)
    assert name is not None
    return budget.client().get_experiment(budget.client().get_or_create_experiment(name))


def _notice_no_server() -> None:
    """Say once per process that, with no tracking URI, runs are kept in the journal."""
    if session.told_no_server:
        return
    session.told_no_server = True
    logger.warning(
        "mlrelay: no tracking URI is set (MLFLOW_TRACKING_URI, set_tracking_uri or init), so "
        "runs are kept in the journal at %s; send them with `mlrelay sync --tracking-uri URI`",
        session.ensure_pipeline().journal.path,
    )


def _warn(message: str) -> None:
    """Warn, attributing the warning to the user's line that called into mlrelay."""
    package = str(Path(__file__).resolve().parents[1])
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"mlrelay: {message}", RuntimeWarning, stacklevel=level)


# --- starting a run -----------------------------------------------------------------------


@dataclass
class _Start:
    """What ``start_run`` was asked for, resolved against the session's settings."""

    run_id: str | None
    experiment_id: str | None
    experiment_name: str | None
    run_name: str | None
    parent: RunHandle | None
    user_tags: dict[str, str]
    description: str | None
    parent_run_id: str | None = None  # a parent that is not active here (parent_run_id=)
    ask_server: bool = True  # False: never wait for the server (the sender creates the run)


def start(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_environment: bool | None = None,
    parent_run_id: str | None = None,
    log_system_metrics: bool | None = None,
    *,
    experiment_name: str | None = None,
    ask_server: bool = True,
) -> RunHandle:
    """Start (or resume, with ``run_id``) a run, make it active and return its handle
    (``mlrelay.start_run`` returns its view, ``.active_run()``, which framework loggers
    never build). ``experiment_name``: the run's experiment by name. ``ask_server=False``:
    never wait for the server (the run keeps its local id until the sender creates it)."""
    stack = _stack.get()
    _check_nesting(stack, nested, parent_run_id)
    settings = session.settings()
    asked = _resolve_start(
        settings,
        stack,
        run_id=run_id,
        experiment_id=experiment_id,
        experiment_name=experiment_name,
        run_name=run_name,
        tags=tags,
        description=description,
        parent_run_id=parent_run_id,
        ask_server=ask_server,
    )
    exp_id = asked.experiment_id
    if settings.mode == "disabled":
        local_id = uuid.uuid4().hex
        run = RunHandle(asked.run_id or local_id, local_id, exp_id, run_name, asked.parent)
        run.start_time, run.tags = int(time.time() * 1000), dict(asked.user_tags)
        _stack.set((*stack, run))
        return run
    if settings.mode == "online" and not settings.tracking_uri:
        _notice_no_server()
    system = _system_sampler(log_system_metrics)
    resumed = _resume_journaled(asked)
    run = resumed or _new_run(asked, settings)
    with session.lock:
        session.live[run.local_id] = run
        for key in [k for k, h in session.targets.items() if h.local_id == run.local_id]:
            del session.targets[key]  # resumed: the run is logged through its new handle
    if asked.run_id is not None:
        _log_tags(run, asked.user_tags)
    _stack.set((*stack, run))
    if resumed is None and (
        settings.log_environment if log_environment is None else log_environment
    ):
        _log_environment(run)
    if system is not None:
        _monitor_system(run, system, resumed=asked.run_id is not None)
    return run


def _resolve_start(
    settings: Settings,
    stack: tuple[RunHandle, ...],
    *,
    run_id: str | None,
    experiment_id: str | None,
    experiment_name: str | None,
    run_name: str | None,
    tags: Mapping[str, Any] | None,
    description: str | None,
    parent_run_id: str | None,
    ask_server: bool,
) -> _Start:
    """What ``start_run`` was asked for, validated and resolved against the settings."""
    exp_id = experiment_id or (
        None if experiment_name else session.experiment_id or settings.experiment_id
    )
    return _Start(
        # MLflow reads MLFLOW_RUN_ID at each start_run; so do we (then .env, via settings).
        run_id=run_id or os.environ.get("MLFLOW_RUN_ID") or settings.run_id,
        experiment_id=exp_id,
        experiment_name=None
        if exp_id
        else (experiment_name or session.experiment_name or settings.experiment_name),
        run_name=None if run_name is None else validate_text(run_name, field="run name", key=None),
        parent=stack[-1] if stack else None,
        user_tags={
            validate_key(k, field="tag key"): validate_tag_value(k, v)
            for k, v in (tags or {}).items()
        },
        description=None
        if description is None
        else validate_tag_value("mlflow.note.content", description),
        parent_run_id=None if stack or parent_run_id is None else server_id(parent_run_id),
        ask_server=ask_server,
    )


_System = tuple[tuple[float, int, "str | None"], system_metrics.Sampler]


def _system_sampler(asked: bool | None) -> _System | None:
    """The settings and a sampler when the run is to log system metrics (``asked``, else
    ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``), checked before the run starts.

    Raises:
        ValidationError: a setting is not a positive number.
        MissingExtraError: psutil is missing and the call asked (the environment only warns).
    """
    if not (system_metrics.enabled_by_default() if asked is None else asked):
        return None
    settings = system_metrics.settings()
    try:
        return settings, system_metrics.Sampler()
    except MissingExtraError as exc:
        if asked:
            raise
        _warn(f"MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING is set, but {exc}")
        return None


def _monitor_system(run: RunHandle, system: _System, *, resumed: bool) -> None:
    """Sample system metrics into ``run`` until it ends (see ``_system_metrics``)."""
    (interval, samples, node_id), sampler = system
    run.monitor = system_monitor(run, interval, samples, node_id, resumed=resumed, sampler=sampler)
    run.monitor.start()


def system_monitor(
    run: RunHandle,
    interval: float,
    samples: int,
    node_id: str | None,
    *,
    resumed: bool,
    sampler: system_metrics.Sampler | None = None,
) -> SystemMetricsMonitor:
    """A (not started) monitor journaling system metrics into ``run`` until it ends; a
    resumed run goes on from its last system metric step."""

    def log(points: Mapping[str, float], step: int, timestamp: int) -> None:
        for key, value in points.items():
            session.log((run.local_id, KIND_METRIC, key, value, timestamp, step))

    return system_metrics.SystemMetricsMonitor(
        log,
        interval=interval,
        samples=samples,
        node_id=node_id,
        running=lambda: not run.ended,
        first_step=functools.partial(next_system_step, run) if resumed else 0,
        sampler=sampler,
    )


def next_system_step(run: RunHandle) -> int:
    """The step after the last system metric point of a resumed run (0 if the server does
    not say in time); called on the monitor's thread."""
    found = server_run(run)
    steps = [m.step for m in found.data.metric_list if m.key.startswith("system/")] if found else []
    return max(steps, default=-1) + 1


def _check_nesting(stack: tuple[RunHandle, ...], nested: bool, parent_run_id: str | None) -> None:
    """MLflow's rules: a run may start while another is active only nested, under it."""
    if stack and not nested:
        raise ValidationError(
            f"run {stack[-1].run_id} is already active; end it first or pass nested=True",
            field="run",
        )
    if parent_run_id is not None and stack and parent_run_id not in _ids_of(stack[-1]):
        raise ValidationError(
            f"parent_run_id {parent_run_id} is not the active run {stack[-1].run_id}; "
            "a nested run's parent is the active run",
            field="parent_run_id",
        )


def _new_run(start: _Start, settings: Settings) -> RunHandle:
    """A run this journal does not hold yet: created on the server now when it answers."""
    pipeline = session.ensure_pipeline()
    journal = pipeline.journal
    online = settings.mode == "online" and bool(settings.tracking_uri)
    create_tags = {**_system_tags(start), **start.user_tags}
    run = RunHandle(
        start.run_id or "",
        uuid.uuid4().hex,
        start.experiment_id,
        start.run_name,
        start.parent,
        start_time=int(time.time() * 1000),
        tags=create_tags,
    )
    if start.run_id is None and online and start.ask_server:
        _create_on_server(start, run)
    elif start.run_id is not None and online and start.ask_server:
        run.experiment_id = _resume_on_server(start.run_id) or run.experiment_id
    if start.run_id is not None and run.experiment_id is None:
        run.experiment_id = "0"
    if start.run_id is None and online and not start.ask_server and pipeline.sends:
        # Nothing asked a server to create it: the sender's first create need not look
        # for an earlier one. Marked before it is journaled: the sender never sees it
        # unmarked (a mark left by a failed add_run names no run).
        pipeline.sender.journaled_here(run.local_id)
    journal.add_run(
        local_id=run.local_id,
        tracking_uri=settings.tracking_uri or "",
        experiment_id=run.experiment_id
        if (run.experiment_id or not start.experiment_name)
        else None,
        experiment_name=start.experiment_name,
        run_name=start.run_name,
        start_time=run.start_time,
        create_tags=create_tags,
        server_run_id=run.run_id or None,
        offline=settings.mode == "offline",
    )
    run.run_id = run.run_id or run.local_id
    return run


def _create_on_server(start: _Start, run: RunHandle) -> None:
    """Create ``run`` on the server within the start budget; when the server is late, the
    run keeps its local id and the sender creates it later."""
    try:
        budget = _Deadline()
        if run.experiment_id is None:
            name = start.experiment_name
            run.experiment_id = budget.client().get_or_create_experiment(name) if name else "0"
        created = budget.client().create_run(
            run.experiment_id,
            start_time=run.start_time,
            tags=run.tags,
            run_name=start.run_name,
            user_id=run.tags.get("mlflow.user"),
            client_key=run.local_id,
        )
        run.run_id, run.server_info = created.info.run_id, created.info
        run.run_name = created.info.run_name or run.run_name
    except NotFoundError as exc:
        if exc.error_code != "ENDPOINT_NOT_FOUND":
            raise
        raise wrong_address(session.settings().tracking_uri or "", exc) from exc
    except APIError as exc:
        _warn(f"{_no_answer(exc, 'start_run')}; the run continues locally and is created "
              "when the server is reachable")  # fmt: skip


def _no_answer(exc: APIError, call: str) -> str:
    """What went wrong with the server at ``call``, in words that match what happened."""
    if isinstance(exc, APITimeoutError):
        return f"the tracking server did not answer {call} in time ({exc})"
    if isinstance(exc, APIConnectionError):
        return f"could not connect to the tracking server for {call} ({exc})"
    if isinstance(exc, UnexpectedResponseError):
        return f"the tracking server's answer to {call} is not MLflow's ({exc})"
    return f"the tracking server failed {call} ({exc})"


def context_tags() -> dict[str, str]:
    """MLflow's context tags of this process: the user, the script (``argv[0]`` as given,
    as MLflow records it), the source type and the git commit, branch and repository."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    script = sys.argv[0] if sys.argv and sys.argv[0] else None
    tags = {
        "mlflow.user": user,
        "mlflow.source.name": script or "<console>",
        "mlflow.source.type": "LOCAL",
    }
    if session.git_tags is None:
        info = git_info(Path(script).resolve().parent if script else Path.cwd())
        session.git_tags = info.tags() if info else {}
    tags.update(session.git_tags)
    return tags


def _system_tags(start: _Start) -> dict[str, str]:
    tags = context_tags()
    if start.run_name:
        tags["mlflow.runName"] = start.run_name
    if start.parent is not None:
        tags["mlflow.parentRunId"] = start.parent.run_id
    elif start.parent_run_id is not None:
        tags["mlflow.parentRunId"] = start.parent_run_id
    if start.description:
        tags["mlflow.note.content"] = start.description
    return tags


def _log_tags(run: RunHandle, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        session.log((run.local_id, KIND_TAG, key, value, None, None))


def _log_environment(run: RunHandle) -> None:
    import tempfile

    from mlrelay._formats.repro import collect

    records = collect()
    _log_tags(run, records.tags)
    with tempfile.TemporaryDirectory(prefix="mlrelay-env-") as tmp:
        for artifact, data in records.files.items():
            folder, _, filename = artifact.rpartition("/")
            target = Path(tmp) / filename
            target.write_bytes(data)
            journal_artifact(run, target, folder or None, is_dir=False)
            target.unlink()
    for note in records.notes:
        _warn(note)


def _resume_on_server(run_id: str) -> str | None:
    """Resume as MLflow does: the run must exist and not be deleted; it is RUNNING again.

    Returns the run's experiment id, or None when the server did not answer in time.
    """
    try:
        budget = _Deadline()
        existing = budget.client().get_run(run_id)
        if existing.info.lifecycle_stage == "deleted":
            raise ValidationError(
                f"run {run_id} is deleted; restore it before resuming", field="run_id"
            )
        budget.client().update_run(run_id, status="RUNNING")
        return str(existing.info.experiment_id)
    except APIError as exc:
        _warn(f"could not check run {run_id} on the tracking server ({exc}); logging to it "
              "continues locally")  # fmt: skip
        return None


def _resume_journaled(start: _Start) -> RunHandle | None:
    """Continue a run this journal holds (by local or server id) when no live process owns it.

    An offline run is resumed by the local id ``start_run`` returned; its entries go on
    in the same journal record, so ``mlrelay sync`` sends it as one run.
    """
    if start.run_id is None:
        return None
    journal = session.ensure_pipeline().journal
    record = journal.run(start.run_id) or journal.run_by_server_id(start.run_id)
    if record is None:
        return None
    if record.orphaned or (record.pid, record.owner_start) == owner_identity():
        settings = session.settings()
        if record.server_run_id and settings.mode == "online" and settings.tracking_uri:
            _resume_on_server(record.server_run_id)
        journal.resume(record.local_id)
    elif record.server_run_id is None:
        raise ValidationError(
            f"run {start.run_id} is being logged by process {record.pid}, which is still "
            "running; it can be resumed once that process has ended",
            field="run_id",
        )
    else:
        return None  # several live processes may log into one server run
    return RunHandle(
        run_id=record.server_run_id or record.local_id,
        local_id=record.local_id,
        experiment_id=record.experiment_id,
        run_name=record.run_name,
        parent=start.parent,
        start_time=record.start_time,
        tags=dict(record.create_tags),
    )


# --- the active run, ending it, flushing ----------------------------------------------------


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    stack = _stack.get()
    return stack[-1].active_run().refresh() if stack else None


def last_active_run() -> ActiveRun | None:
    """The active run, else the run this process ended last, else None."""
    stack = _stack.get()
    handle = stack[-1] if stack else session.last_run
    return handle.active_run().refresh() if handle is not None else None


def current(*, ask_server: bool = True) -> RunHandle:
    """The active run's handle, starting a run when none is (as MLflow's log calls do;
    ``ask_server=False``: without waiting for the server, as framework loggers do)."""
    stack = _stack.get()
    if stack:
        return stack[-1]
    return start(ask_server=ask_server)


def end_run(status: str = "FINISHED", *, run: RunHandle | None = None, wait: bool = True) -> None:
    """End ``run`` (default: the active run); see ``mlrelay.end_run``.

    With ``wait``, waits while delivery makes progress, at most ``MLRELAY_EXIT_TIMEOUT``
    seconds without any; the rest stays in the journal. Without it (framework loggers),
    online, the end is queued behind the run's entries and journaled by the writer.
    """
    if run is None:
        stack = _stack.get()
        run = stack[-1] if stack else None
    if run is None or run.ended:
        return
    if run.monitor is not None:
        run.monitor.finish()
    run.ended, run.status, run.end_time = True, status, int(time.time() * 1000)
    session.last_run = run
    session.live.pop(run.local_id, None)
    _stack.set(tuple(r for r in _stack.get() if r is not run))
    if session.disabled:
        return
    pipeline = session.ensure_pipeline()
    if not wait and pipeline.sends and not session.exiting:
        # Queued behind the run's entries: the caller (a framework logger at the end of
        # training) never waits for a journal commit.
        pipeline.end_run(run.local_id, status, run.end_time)
        if run.view is not None:
            run.view.refresh()
        return
    pipeline.write_now(5.0)
    try:
        pipeline.journal.end_run(run.local_id, status, run.end_time)
        if not pipeline.sends:
            # Offline: this process never sends the run; releasing it lets `mlrelay sync`
            # take it at once, even while this process lives on (a notebook kernel).
            pipeline.journal.release(run.local_id)
    except JournalError as exc:
        if not isinstance(exc.__cause__, sqlite3.OperationalError):
            raise  # damage, say: the user is told (a full or read-only disk is only warned)
        logger.warning(
            "mlrelay: could not record the end (%s) of run %s in the journal at %s (%s); "
            "what was journaled is kept, and the run is ended KILLED when it is recovered",
            status,
            run.run_id,
            pipeline.journal.path,
            exc,
        )
    if not pipeline.sends:
        session.offline_runs.append(run.local_id)
    if wait:
        wait_for_delivery(pipeline)
        pipeline.raise_if_strict_failure()
    if run.view is not None:
        run.view.refresh()


def server_id(run_id: str) -> str:
    """The server's id for a run id (a local id is mapped once the run exists there)."""
    pipeline = session.pipeline
    if pipeline is not None:
        record = pipeline.journal.run(run_id)
        if record is not None and record.server_run_id:
            return record.server_run_id
    return run_id


def _ids_of(handle: RunHandle) -> tuple[str, ...]:
    """The ids a run is known by here: its id, its local id, the server's id once known."""
    if handle.run_id != handle.local_id:
        return (handle.run_id, handle.local_id)
    return (handle.local_id, server_id(handle.local_id))


def target(run_id: str) -> RunHandle:
    """The run a call with ``run_id=`` logs into, journal first like any log call.

    ``run_id`` is a server id or a local id. A run of this process that has not ended
    (active in this context or any other thread) is logged into directly. Any other run is
    logged into through a journal record *attached* to the server's run: its entries are
    sent like any others, and it ends as ``RESUMED`` when this process exits, so the run's
    status is never changed (see the module docstring for the one exception).

    Raises:
        ValidationError: the run is only in this journal, has ended and is not on the
            tracking server yet, so there is no server run to attach to.
    """
    for handle in reversed(_stack.get()):
        if run_id == handle.run_id or run_id == handle.local_id:
            return handle
    found = session.targets.get(run_id)  # the hot path: no lock (the sender may hold it)
    if found is not None and not found.ended:
        return found
    with session.lock:
        found = session.targets.get(run_id)
        if found is None or found.ended:
            found = session.targets[run_id] = _resolve_target(run_id)
        return found


def _resolve_target(run_id: str) -> RunHandle:
    now = int(time.time() * 1000)
    if session.disabled:  # nothing is kept: a handle for the entries to be dropped under
        return RunHandle(run_id, uuid.uuid4().hex, None, None, start_time=now, attached=True)
    for handle in list(session.live.values()):
        if not handle.ended and run_id in _ids_of(handle):
            return handle
    journal = session.ensure_pipeline().journal
    record = journal.run(run_id) or journal.run_by_server_id(run_id)
    live = session.live.get(record.local_id) if record is not None else None
    if live is not None and not live.ended:
        return live
    return _attach(run_id, record, journal, now)


def _attach(run_id: str, record: RunRecord | None, journal: Journal, now: int) -> RunHandle:
    settings = session.settings()
    server_run_id = run_id if record is None else record.server_run_id
    if server_run_id is None:
        raise ValidationError(
            f"run {run_id} is not on the tracking server yet and is not running in this "
            "process, so nothing can be logged into it; log into it before it ends, or "
            "continue it with start_run(run_id=...)",
            field="run_id",
        )
    experiment_id = record.experiment_id if record is not None else None
    handle = RunHandle(server_run_id, uuid.uuid4().hex, experiment_id, None, start_time=now)
    handle.attached = True
    journal.add_run(
        local_id=handle.local_id,
        tracking_uri=record.tracking_uri if record is not None else settings.tracking_uri or "",
        experiment_id=experiment_id,
        experiment_name=None,
        run_name=None,
        start_time=now,
        create_tags={},
        server_run_id=server_run_id,
        offline=settings.mode == "offline",
    )
    return handle


def server_run(handle: RunHandle) -> Run | None:
    """The run as the server has it now, asked within the start budget and remembered in
    the run's ``.info``; None offline, while the run is not on the server yet, or when the
    server does not answer in time."""
    settings = session.settings()
    run_id = handle.run_id if handle.run_id != handle.local_id else server_id(handle.local_id)
    if settings.mode != "online" or not settings.tracking_uri or run_id == handle.local_id:
        return None
    try:
        found = _Deadline().client().get_run(run_id)
    except APIError as exc:
        _warn(f"could not read run {run_id} from the tracking server ({exc})")
        return None
    if handle.server_info is None or handle.server_info.artifact_uri is None:
        handle.server_info = found.info
    return found


def warm_up(purpose: str) -> None:
    """Open the journal and build the sender's client (credentials, TLS context) now, for
    a framework logger built before training, so none of it competes with the first
    steps. Nothing is asked of the server."""
    if session.disabled:
        return
    session.ensure_pipeline()
    settings = session.settings()
    if settings.mode == "online" and settings.tracking_uri:
        session.client(purpose)


def deliver_now(what: str) -> bool:
    """``synchronous=True``: wait until what was logged so far is delivered, as long as
    delivery makes progress (``MLRELAY_EXIT_TIMEOUT`` without any ends the wait); warn and
    return False when it was not delivered (it stays journaled and is sent later)."""
    if flush(None):
        return True
    _warn(f"{what} is journaled but not delivered yet: the tracking server did not take it in "
          "time; it is sent when the server answers")  # fmt: skip
    return False


def journal_artifact(
    run: RunHandle,
    source: Path,
    artifact_path: str | None,
    *,
    is_dir: bool,
    model: dict[str, Any] | None = None,
) -> None:
    """Copy a file or directory into the journal now and queue its upload in run order.

    Later edits of the user's file do not change what is sent; the background sender
    uploads it (offline: ``mlrelay sync`` does). ``model`` marks a model folder written by
    ``log_model`` (its logged-model fields: params, tags, model_type, step), which is sent
    as ``Client.log_saved_model`` stores it: a logged model on MLflow 3.
    """
    if session.disabled:
        return
    blob = session.ensure_pipeline().journal.add_blob(run.local_id, source)
    _queue_artifact(run, blob, artifact_path, is_dir=is_dir, model=model)


def journal_rendered(
    run: RunHandle, name: str, artifact_path: str | None, render: Callable[[Path], None]
) -> None:
    """Have ``render`` write a file named ``name`` straight into the journal (no temporary
    copy: ``log_text``, ``log_dict``, ``log_figure``, ``log_image``, ``log_table``) and
    queue its upload in run order. A render that raises leaves nothing behind, and the
    error is the caller's."""
    journal = session.ensure_pipeline().journal
    blob, target = journal.new_blob(run.local_id, name)
    try:
        render(target)
        os.chmod(target, 0o600)  # (its folder is the owner's alone meanwhile)
    except BaseException:
        journal.drop_blob(blob)
        raise
    _queue_artifact(run, blob, artifact_path, is_dir=False)


def _queue_artifact(
    run: RunHandle,
    blob: str,
    artifact_path: str | None,
    *,
    is_dir: bool,
    model: dict[str, Any] | None = None,
) -> None:
    """Queue the upload of a blob already in the journal, in run order."""
    import json

    fields: dict[str, Any] = {"blob": blob, "artifact_path": artifact_path or None, "dir": is_dir}
    if model is not None:
        fields["model"] = model
    spec = json.dumps(fields)
    session.log((run.local_id, KIND_ARTIFACT, artifact_path or "", spec, None, None))


def flush(timeout: float | None = None) -> bool:
    """Wait until everything logged so far has reached the server (see ``mlrelay.flush``)."""
    pipeline = session.pipeline
    if pipeline is None:
        return True
    done = wait_for_delivery(pipeline) if timeout is None else pipeline.flush(timeout)
    pipeline.raise_if_strict_failure()
    return done


def wait_for_delivery(pipeline: Pipeline) -> bool:
    """Wait while delivery makes progress, within what is left of the exit budget.

    ``MLRELAY_EXIT_TIMEOUT`` is one budget for the whole process: time spent waiting
    without any delivery (an ``end_run`` or ``flush()`` while the server is down, then the
    at-exit flush) is taken from it, so a script ends within one budget, not one per wait.
    A wait that delivers everything gives the budget back.
    """
    left = max(session.settings().exit_timeout - session.exit_spent, 0.0)
    started = time.monotonic()
    done = pipeline.flush(stall=left)
    if done:
        session.exit_spent = 0.0
    else:
        session.exit_spent += min(time.monotonic() - started, left)
    return done


def _exit_budget_left() -> float:
    return max(session.settings().exit_timeout - session.exit_spent, 0.0)


def _shutdown(status: str) -> None:
    """End this process's active runs with ``status`` and deliver within the exit budget;
    say what is left in the journal."""
    pipeline = session.pipeline
    if pipeline is None or session.pid != os.getpid() or session.exiting:
        return
    session.exiting = True
    for run in reversed(_stack.get()):
        end_run(status, run=run, wait=False)
    session.end_attached(pipeline)
    left = pipeline.close(_exit_budget_left())
    if session.offline_runs:
        left += pipeline.journal.count_pending(session.offline_runs)
    if left:
        how = "not yet delivered" if pipeline.sends else "logged offline"
        sys.stderr.write(
            f"mlrelay: {left} entries {how} are kept in {pipeline.journal.path}; "
            "run `mlrelay sync` to send them\n"
        )


@atexit.register
def _at_exit() -> None:
    _shutdown("FINISHED")


@dataclass
class _SigtermState:
    installed: bool = False
    previous: Any = None  # the handler that was there: SIG_DFL or the user's function


_sigterm = _SigtermState()


def install_sigterm_handler() -> None:
    """Deliver what is logged before a SIGTERM ends the process (how Slurm and Kubernetes
    preempt a job), then hand the signal on.

    Installed once, when the pipeline is built, and only from the main thread (Python runs
    signal handlers there). A handler that was already there is kept and called after
    mlrelay delivered; a SIGTERM that was ignored stays ignored. A handler installed later
    replaces this one (call ``mlrelay.flush()`` in it).
    """
    if _sigterm.installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:  # None: not set from Python
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (AttributeError, ValueError, OSError):  # no SIGTERM here, or not allowed
        return
    _sigterm.installed, _sigterm.previous = True, previous


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: journal everything, deliver within the exit budget, then chain."""
    previous = _sigterm.previous
    pipeline = session.pipeline
    if callable(previous):
        # The user's handler decides whether the process ends: deliver, keep the runs open.
        if pipeline is not None and session.pid == os.getpid() and not session.exiting:
            pipeline.flush(_exit_budget_left())
        previous(signum, frame)
        return
    if session.exiting:
        return  # the at-exit flush is under way and bounded by the same budget
    _shutdown("KILLED")
    # End as the default action would, so a scheduler sees a process killed by SIGTERM.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # (where the signal did not end the process at once)
