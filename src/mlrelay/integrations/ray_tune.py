"""Sweeps on Ray Tune: each trial its own run, nested under the sweep's run, logged by the
Ray worker that runs the trial.

::

    import mlrelay
    from mlrelay.integrations.ray_tune import with_mlrelay
    from ray import tune


    def train(config):
        for step in range(10):
            loss = config["lr"] * (10 - step)
            mlrelay.log_metric("loss", loss, step=step)  # journaled in this worker
            tune.report({"loss": loss})


    with mlrelay.start_run(run_name="sweep"):  # the parent run, in the driver
        tune.Tuner(with_mlrelay(train), param_space={"lr": tune.loguniform(1e-4, 1e-1)}).fit()

Design note. Ray's own integration offers two patterns, and this module takes a third:

- ``MLflowLoggerCallback`` logs on the *driver* what trials report through Tune. A point
  reaches the log only after it crossed Ray's result queue; a worker killed meanwhile loses
  it, and the driver logs every trial's points through one process.
- ``setup_mlflow(config)``, called inside the trainable, starts the trial's run in the
  worker but never ends it: the run is left RUNNING (or ends with the worker process).

:func:`with_mlrelay` wraps the trainable as ``tune.with_parameters`` does. In the worker it
starts the trial's run before the trainable runs and ends it after, with the status the
trial ended with. Everything the trainable logs with mlrelay is journaled by the worker
itself, in the journal of its ``MLRELAY_HOME``, within about 100 ms, and sent by the
worker's own sender. So:

- a worker killed mid-trial (kill -9, OOM, a node lost) loses at most the last fraction of
  a second; the rest is sent, and the run ended KILLED, by whoever recovers the journal's
  orphaned runs first: a process logging online from that journal to the same server (the
  driver, another trial's worker: they look every 10 s), or the next ``mlrelay sync``;
- a trial that returns (or raises) returns only after its run's entries and status were
  delivered, waiting as long as delivery makes progress, at most ``MLRELAY_EXIT_TIMEOUT``
  without any (then the rest stays in the journal for ``mlrelay sync``);
- a trial Tune stops (a stopper, a scheduler such as ASHA, the end of the sweep) is stopped
  inside ``tune.report`` by ``SystemExit(0)``, and Tune does not wait for the trial's thread
  after that: it calls the trainable's ``cleanup`` and then lets the worker go, and at the
  end of a sweep kills it within seconds. So the stopped trial's thread only journals the
  end of its run (FINISHED, as Ray's MLflow callback records a stopped trial), and the
  delivery is waited for in ``cleanup``, through a mixin Tune adds to the trainable's class
  (``__mixins__``, the hook Ray's own integrations used). Without it, runs of trials
  stopped at the end of a sweep were left RUNNING on the server until recovered.

What the driver passes to its trials is captured when :func:`with_mlrelay` is called,
pickled with the trainable, and holds no credential: the parent run's id, its experiment,
the tracking URI set in the driver and the mode (online/offline). Workers resolve
credentials and ``MLRELAY_HOME`` from their own environment (``.env``, the keyring), so
set them there, e.g. ``ray.init(runtime_env={"env_vars": {...}})``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import mlrelay.fluent as fluent
from mlrelay._errors import ValidationError
from mlrelay._pipeline import runs
from mlrelay._pipeline.runs import ActiveRun, session
from mlrelay._validation import validate_key, validate_tag_value

try:
    from ray import tune
    from ray.tune.utils import flatten_dict
except ModuleNotFoundError as exc:  # pragma: no cover - the suite has Ray installed
    raise ModuleNotFoundError(
        "mlrelay.integrations.ray_tune needs Ray Tune: pip install 'ray[tune]'", name=exc.name
    ) from exc

__all__ = ["TRIAL_ID_TAG", "with_mlrelay"]

TRIAL_ID_TAG = "ray.tune.trialId"
"""The tag holding the Tune trial id of a trial's run."""

Trainable = Callable[[dict[str, Any]], Any]


def with_mlrelay(
    trainable: Trainable,
    *,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
    tags: Mapping[str, Any] | None = None,
    log_config: bool = True,
) -> Trainable:
    """Make each trial of ``trainable`` its own run, started and ended in the Ray worker.

    Call it in the driver, inside the sweep's run (``with mlrelay.start_run(...)``): that
    run becomes every trial's parent (the ``mlflow.parentRunId`` tag, as MLflow nests runs).
    In the worker, before ``trainable(config)`` runs, the trial's run is started, named after
    the trial, tagged with its trial id (:data:`TRIAL_ID_TAG`) and given the trial's config
    as params (nested keys joined by ``/``). ``trainable`` logs into it with the fluent API
    (``mlrelay.log_metric(...)``). When it returns, the run ends FINISHED, also when Tune
    stops the trial early (a scheduler's or stopper's decision, as Ray's MLflow callback
    records it); FAILED when it raises; KILLED on KeyboardInterrupt.

    Args:
        trainable: a function trainable, ``def train(config)`` (a generator function too),
            possibly wrapped by ``tune.with_parameters`` or ``tune.with_resources`` (the
            resources and mixins they attach are kept).
        parent_run_id: nest the trials under this run instead of the active run.
        experiment_id: the trials' experiment; default the parent's (the active run's),
            else the driver's active experiment (``set_experiment``, ``MLFLOW_EXPERIMENT_*``).
        tracking_uri: the server the trials log to; default the one the driver set
            (``set_tracking_uri``, ``MLFLOW_TRACKING_URI``), else the workers' own setting.
        tags: more tags for every trial's run.
        log_config: log the trial's config as the run's params (default True).

    Returns:
        A function trainable to pass to ``tune.Tuner`` in place of ``trainable``.

    Raises:
        ValidationError: ``trainable`` is a class (a ``tune.Trainable``), or a tag is invalid
            (in the driver, before any trial runs).
    """
    if inspect.isclass(trainable) or not callable(trainable):
        raise ValidationError(
            f"with_mlrelay wraps a function trainable, def train(config); got {trainable!r}",
            field="trainable",
        )
    sweep = _Sweep.from_driver(parent_run_id, experiment_id, tracking_uri, tags, log_config)
    return sweep.wrap(trainable)


@dataclass(frozen=True)
class _Sweep:
    """What every trial needs from the driver; pickled with the trainable, no credentials."""

    parent_run_id: str | None
    experiment_id: str | None
    experiment_name: str | None
    tracking_uri: str | None
    mode: str
    log_config: bool
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_driver(
        cls,
        parent_run_id: str | None,
        experiment_id: str | None,
        tracking_uri: str | None,
        tags: Mapping[str, Any] | None,
        log_config: bool,
    ) -> _Sweep:
        """The sweep as the driver sees it now (see :func:`with_mlrelay`)."""
        parent = fluent.active_run()
        if parent_run_id is None and parent is not None:
            parent_run_id = parent.info.run_id
            experiment_id = experiment_id or parent.info.experiment_id or None
        settings = session.settings()
        if tracking_uri is None and fluent.is_tracking_uri_set():
            tracking_uri = fluent.get_tracking_uri()
        return cls(
            parent_run_id=parent_run_id,
            experiment_id=experiment_id or session.experiment_id or settings.experiment_id,
            experiment_name=session.experiment_name or settings.experiment_name,
            tracking_uri=tracking_uri,
            mode=settings.mode,
            log_config=log_config,
            tags={
                validate_key(k, field="tag key"): validate_tag_value(k, v)
                for k, v in (tags or {}).items()
            },
        )

    def wrap(self, trainable: Trainable) -> Trainable:
        """``trainable`` run inside :meth:`trial`: a function trainable of the same kind
        (a generator function stays one), with :class:`_DeliverOnStop` among its mixins."""
        wrapped: Any
        if inspect.isgeneratorfunction(trainable):

            @functools.wraps(trainable)
            def trial_generator(config: dict[str, Any]) -> Iterator[Any]:
                with self.trial(config):
                    yield from trainable(config)

            wrapped = trial_generator
        else:

            @functools.wraps(trainable)
            def trial(config: dict[str, Any]) -> Any:
                with self.trial(config):
                    return trainable(config)

            wrapped = trial
        # Tune builds the trial's class from these mixins and its function trainable's class.
        wrapped.__mixins__ = (_DeliverOnStop, *getattr(trainable, "__mixins__", ()))
        return wrapped  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def trial(self, config: dict[str, Any]) -> Iterator[ActiveRun]:
        """The trial's run, from before the trainable runs to after it ended (in the worker).

        A trial that returns or raises ends its run and waits for delivery here, before
        Tune hears of it. A trial Tune stops (``SystemExit(0)`` raised in ``tune.report``,
        or a generator closed) only journals the end of its run: Tune goes on without
        waiting for this thread, so the delivery is waited for in the trainable's
        ``cleanup`` (:class:`_DeliverOnStop`), which Tune does wait for.
        """
        with _open_trials.opened():
            run = self._start(config)
            try:
                yield run
            except (SystemExit, GeneratorExit) as exc:
                if isinstance(exc, GeneratorExit) or exc.code in (None, 0):
                    handle = session.live.get(run.local_id)
                    if handle is not None:
                        runs.end_run("FINISHED", run=handle, wait=False)
                else:
                    run.__exit__(type(exc), exc, exc.__traceback__)
                raise
            except BaseException as exc:
                run.__exit__(type(exc), exc, exc.__traceback__)
                raise
            run.__exit__(None, None, None)

    def _start(self, config: dict[str, Any]) -> ActiveRun:
        self._configure_worker()
        context = tune.get_context()
        trial_id = context.get_trial_id()
        tags = {**self.tags, TRIAL_ID_TAG: trial_id} if trial_id else self.tags
        run = fluent.start_run(
            run_name=context.get_trial_name(),
            experiment_id=self.experiment_id,
            parent_run_id=self.parent_run_id,
            tags=tags,
        )
        if self.log_config and config:
            try:
                fluent.log_params(flatten_dict(dict(config), delimiter="/"))
            except BaseException as exc:
                run.__exit__(type(exc), exc, exc.__traceback__)
                raise
        return run

    def _configure_worker(self) -> None:
        """Point this worker at the driver's server, mode and experiment, once per process
        (a reused actor runs several trials)."""
        if self.tracking_uri is not None and (
            fluent.get_tracking_uri() != self.tracking_uri or session.settings().mode != self.mode
        ):
            fluent.set_tracking_uri(self.tracking_uri, mode=self.mode)
        name = self.experiment_name
        if not self.experiment_id and name and session.experiment_name != name:
            fluent.set_experiment(name)


class _OpenTrials:
    """The trials of this worker process whose runs are not ended yet (in the journal)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        """Count a trial as open for the block."""
        with self._changed:
            self._count += 1
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()

    def wait_ended(self, timeout: float) -> bool:
        """Wait until no trial of this process is open; False if one still is after
        ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)


_open_trials = _OpenTrials()

END_JOURNALED_WITHIN = 10.0
"""Seconds a stopped trial's thread gets to journal the end of its run (it commits what is
queued first, at most 5 s) before ``cleanup`` delivers what is there."""


class _DeliverOnStop(tune.Trainable):
    """Mixed into the class Tune makes for the wrapped trainable (its ``__mixins__``).

    Tune calls ``cleanup`` when it stops a trial and waits for it before it lets the worker
    go (a worker let go at the end of a sweep is killed within seconds). Tune's own cleanup
    wakes the trial's thread in ``tune.report`` without waiting for it; this one then waits
    until the thread journaled the end of the trial's run, and delivers what this process
    logged, as long as delivery makes progress (``mlrelay.flush``).
    """

    def cleanup(self) -> None:
        """Tune's cleanup, then the trial's run delivered (see the class docstring)."""
        try:
            super().cleanup()  # type: ignore[no-untyped-call]
        finally:
            _open_trials.wait_ended(END_JOURNALED_WITHIN)
            fluent.flush()
