"""Post-training metrics, as MLflow's scikit-learn autologging logs them.

After an autologged ``fit``, the model is remembered with its run. Its predictions
(``predict``, ``predict_proba``, ``predict_log_proba``, ``transform``) are remembered with the
name of the variable the input was passed as (``X_test``; ``X_test-2`` for a second object
under the same name). When a ``sklearn.metrics`` function is then called with one of those
predictions, its value is logged to the model's run as ``<function>_<dataset>``
(``accuracy_score_X_test``; ``accuracy_score-2_X_test`` for the second call), and
``model.score(X_test, y)`` as ``<Class>_score_X_test``; ``metric_info.json`` records each key's
call, as in MLflow. Only ids, names and weak references are held: neither models nor data are
kept alive.

The data a prediction is made on is recorded as an ``eval`` dataset input of the run (with
``log_datasets``), as in MLflow.

Not done (MLflow does them): patching the scorers behind ``get_scorer`` (``scoring=`` strings)
and linking the metric to MLflow 3's logged model.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlrelay import fluent
from mlrelay._pipeline import runs

from ._core import TrainingSession, guard, options, warn_once

__all__ = ["log_value", "patched_metric", "patched_predict", "patched_score", "remember_model"]

_MODULE_DIR = str(Path(__file__).resolve().parents[1])  # src/mlrelay: frames to look past


class _Tracker:
    """The state: models -> (integration, run), predictions -> (run, dataset name), calls."""

    def __init__(self) -> None:
        self.models: dict[int, tuple[str, str]] = {}
        self.predictions: dict[int, tuple[str, str, str]] = {}
        self.datasets: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.calls: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.local = threading.local()

    def paused(self) -> bool:
        return bool(getattr(self.local, "paused", 0))

    def run_of(self, model: Any) -> tuple[str, str] | None:
        found = self.models.get(id(model))
        if found is None or self.paused() or TrainingSession.active():
            return None
        opts = options(found[0])
        return found if opts is not None and opts.get("log_post_training_metrics") else None


_tracker = _Tracker()


class _Pause:
    def __enter__(self) -> None:
        _tracker.local.paused = getattr(_tracker.local, "paused", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _tracker.local.paused -= 1


def _forget(table: dict[int, Any], key: int) -> None:
    table.pop(key, None)


def _remember(table: dict[int, Any], obj: Any, value: Any) -> None:
    try:
        weakref.finalize(obj, _forget, table, id(obj))
    except TypeError:
        return  # not weak-referenceable (a list): not tracked, as its id could be reused
    table[id(obj)] = value


def remember_model(integration: str, model: Any, run_local_id: str) -> None:
    """Remember that ``model`` was fitted in ``run_local_id`` (for post-training metrics)."""
    _remember(_tracker.models, model, (integration, run_local_id))


def _var_name(value: Any, fallback: str) -> str:
    """The name the caller's code holds ``value`` under (MLflow's rule: past mlrelay's frames,
    up through the frames that received it as an argument, then a local name for it)."""
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_code.co_filename.startswith(_MODULE_DIR):
            frame = frame.f_back
        while frame is not None:
            info = inspect.getargvalues(frame)
            passed = [info.locals[a] for a in info.args]
            passed += list(info.locals[info.varargs]) if info.varargs else []
            passed += list(info.locals[info.keywords].values()) if info.keywords else []
            if any(value is arg for arg in passed):
                frame = frame.f_back
                continue
            return next((k for k, v in frame.f_locals.items() if v is value), fallback)
        return fallback
    finally:
        del frame


def _with_index(name: str, index: int) -> str:
    return name if index == 0 else f"{name}-{index + 1}"


def _dataset_name(run: str, dataset: Any) -> str:
    name = _var_name(dataset, "unknown_dataset") if dataset is not None else "unknown_dataset"
    seen = _tracker.datasets[run][name]
    if id(dataset) not in seen:
        seen.append(id(dataset))
    return _with_index(name, seen.index(id(dataset)))


def _first_arg(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    names = [n for n in inspect.signature(fn).parameters if n != "self"]
    return kwargs.get(names[0]) if names else None


def patched_predict(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    """``predict`` (and friends): remember the prediction of an autologged model."""
    found = _tracker.run_of(self)
    if found is None:
        return original(self, *args, **kwargs)
    with _Pause():
        result = original(self, *args, **kwargs)
    guard(
        found[0], "post-training metrics", _note_prediction, found, original, args, kwargs, result
    )
    return result


def _note_prediction(
    found: tuple[str, str], original: Any, args: Any, kwargs: Any, result: Any
) -> None:
    integration, run = found
    data = _first_arg(original, args, kwargs)
    name = _dataset_name(run, data)
    _remember(_tracker.predictions, result, (integration, run, name))
    if (options(integration) or {}).get("log_datasets") and data is not None:
        guard(integration, "logging the evaluation dataset", _log_eval_input, run, data)


def _log_eval_input(run: str, data: Any) -> None:
    """Record the data a prediction was made on as an ``eval`` dataset input of ``run``."""
    from mlrelay._formats.datasets import dataset_input

    from ._log import dataset_of

    dataset = dataset_of(data)
    if dataset is None:
        return
    active = fluent.active_run()
    if active is not None and active.local_id == run:
        fluent.log_input(dataset, "eval")
    elif runs.session.settings().mode == "online":
        item = dataset_input(dataset, context="eval")
        runs.session.client("post-training metrics").log_inputs(runs.server_id(run), [item])


def _loggable(value: Any) -> bool:
    import numpy as np

    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _arg_text(value: Any) -> str:
    import numpy as np

    if value is None or np.isscalar(value):
        if isinstance(value, str) and len(value) > 32:
            return repr(value[:32] + "...")
        return repr(value)
    return _var_name(value, f"<{type(value).__name__}>")


def _call_text(fn: Any, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    names = list(inspect.signature(fn).parameters)
    if owner is not None:
        names = names[1:]
    parts = [f"{n}={_arg_text(a)}" for n, a in zip(names, args, strict=False)]
    parts += [f"{n}={_arg_text(a)}" for n, a in kwargs.items()]
    label = f"{type(owner).__name__}.{fn.__name__}" if owner is not None else fn.__name__
    return f"{label}({', '.join(parts)})"


def patched_metric(original: Any, *args: Any, **kwargs: Any) -> Any:
    """A ``sklearn.metrics`` function: log its value when it scores a remembered prediction."""
    if _tracker.paused() or TrainingSession.active() or not _tracker.predictions:
        return original(*args, **kwargs)
    with _Pause():
        value = original(*args, **kwargs)
    for arg in [*args, *kwargs.values()]:
        found = _tracker.predictions.get(id(arg)) if arg is not None else None
        if found is not None and _loggable(value):
            integration, run, dataset = found
            call = guard(
                integration, "post-training metrics", _call_text, original, None, args, kwargs
            )
            guard(
                integration,
                "post-training metrics",
                log_value,
                integration,
                run,
                original.__name__,
                dataset,
                value,
                call,
            )
            break
    return value


def patched_score(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    """``model.score``: log ``<Class>_score_<dataset>`` for an autologged model."""
    found = _tracker.run_of(self)
    if found is None:
        return original(self, *args, **kwargs)
    with _Pause():
        value = original(self, *args, **kwargs)
    if _loggable(value):
        guard(
            found[0],
            "post-training metrics",
            _note_score,
            found,
            original,
            self,
            args,
            kwargs,
            value,
        )
    return value


def _note_score(
    found: tuple[str, str], original: Any, model: Any, args: Any, kwargs: Any, value: Any
) -> None:
    integration, run = found
    call = _call_text(original, model, args, kwargs)
    dataset = _dataset_name(run, _first_arg(original, args, kwargs))
    log_value(integration, run, f"{type(model).__name__}_score", dataset, value, call)


def log_value(
    integration: str, run: str, metric: str, dataset: str, value: Any, call: str | None
) -> None:
    """Log one post-training metric to ``run`` (a local id) and rewrite ``metric_info.json``."""
    calls = _tracker.calls[run][metric]
    key = f"{_with_index(metric, len(calls))}_{dataset}"
    calls.append((key, call or ""))
    info = dict(sorted(kv for entries in _tracker.calls[run].values() for kv in entries))
    active = fluent.active_run()
    if active is not None and active.local_id == run:
        fluent.log_metric(key, float(value))
        fluent.log_dict(info, "metric_info.json")
        return
    if runs.session.settings().mode != "online":
        warn_once(integration, f"{key} was not logged: its run has ended and mode is offline")
        return
    client = runs.session.client("post-training metrics")
    server_id = runs.server_id(run)
    _log_linked(client, server_id, key, float(value), runs.session.model_outputs.get(run, {}))
    client.log_dict(server_id, info, "metric_info.json")


def _log_linked(client: Any, run_id: str, key: str, value: float, models: dict[int, str]) -> None:
    """Log the point to the ended run, linked to the run's model at step 0 (as MLflow links
    a point logged after the model at its step)."""
    import json

    from mlrelay._protocol.batches import KIND_METRIC, Entry, metrics_body
    from mlrelay._validation import validate_key

    now = int(time.time() * 1000)
    if 0 not in models:
        client.log_metric(run_id, key, value, timestamp=now)
        return
    link = json.dumps({"model_id": models[0]})
    point = Entry(0, KIND_METRIC, validate_key(key, field="metric key"), value, now, 0, link)
    client.send_log_batch(metrics_body(run_id, [point]))
