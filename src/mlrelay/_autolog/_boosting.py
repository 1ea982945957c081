"""What XGBoost's and LightGBM's autologging share, as MLflow does it for both: a patched
``train`` (the module's and the one the scikit-learn wrappers call) that logs the booster's
params and ``train``'s own arguments, per-iteration evaluation metrics with their step
(``<data>-<metric>``, ``@`` spelled ``_at_``), early-stopping metrics, feature importances as
``feature_importance_<type>.json`` and, for ``<module>.train``, the booster as ``model``; and a
patched ``fit`` of the scikit-learn wrappers that logs the fitted wrapper as ``model``. Models
are written in MLflow's ``xgboost`` / ``lightgbm`` flavor, as MLflow's autologging writes them.

With matplotlib importable, each importance type is also drawn as
``feature_importance_<type>.png``.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _log
from ._core import TrainingSession, guard, managed_run, options, user_run_active
from ._plots import feature_importance_plot

__all__ = ["Framework", "Training", "metric_key", "patched_data_init", "patched_train"]


@dataclass
class Framework:
    """How one boosting library differs: names and the calls autologging makes on it."""

    name: str
    unlogged: tuple[str, ...]  # train()'s arguments that are not params
    train_set_arg: str
    callback: Callable[[Training], Any]  # a callback object for train(callbacks=[...])
    importances: Callable[[Any, dict[str, Any]], dict[str, dict[str, Any]]]
    json_indent: int | None
    early_stopping: Callable[[Training, Any, tuple[Any, ...], dict[str, Any]], None]
    datasets: Callable[[tuple[Any, ...], dict[str, Any]], None]
    predict: Callable[[Any], Any] | None = None  # for the signature, when not model.predict
    model_options: tuple[str, ...] = ()  # autolog options passed to the flavor writer
    examples: weakref.WeakKeyDictionary[Any, Any] = field(default_factory=weakref.WeakKeyDictionary)


@dataclass
class Training:
    """One autologged ``train`` call: its metric history (for early stopping)."""

    framework: Framework
    results: list[dict[str, float]] = field(default_factory=list)

    def record(self, metrics: dict[str, float], step: int) -> None:
        """Log one iteration's evaluation metrics at ``step``."""
        self.results.append(metrics)
        _log.log_metrics(self.framework.name, metrics, step=step)


def metric_key(data_name: str, metric_name: str) -> str:
    """``<data>-<metric>``, with ``@`` (``ndcg@3``) spelled ``_at_`` as MLflow spells it."""
    return f"{data_name}-{metric_name}".replace("@", "_at_")


def patched_data_init(fw: Framework, original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    """``DMatrix``/``Dataset.__init__``: keep a copy of the first rows as the input example."""
    data = args[0] if args else kwargs.get("data")
    example = None
    if data is not None and not isinstance(data, str) and options(fw.name) is not None:
        example = guard(fw.name, "keeping an input example", _head, data)
    result = original(self, *args, **kwargs)
    if example is not None:
        guard(fw.name, "keeping an input example", fw.examples.__setitem__, self, example)
    return result


def _head(data: Any) -> Any:
    import copy

    return copy.deepcopy(data[: _log.INPUT_EXAMPLE_ROWS])


def fn_params(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], unlogged: Any) -> Any:
    """MLflow's params of a call: every argument of ``original`` given or defaulted, by name,
    except ``unlogged``."""
    params = [p for p in inspect.signature(original).parameters.values() if p.name != "self"]
    values = {p.name: a for p, a in zip(params, args, strict=False)}
    values.update(kwargs)
    values.update({p.name: p.default for p in params[len(args) :] if p.name not in kwargs})
    return {k: v for k, v in values.items() if k not in unlogged}


def _with_callback(
    original: Any, args: tuple[Any, ...], kwargs: dict[str, Any], callback: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    names = list(inspect.signature(original).parameters)
    index = names.index("callbacks")
    if len(args) > index:
        args = (*args[:index], [*(args[index] or []), callback], *args[index + 1 :])
    else:
        kwargs = {**kwargs, "callbacks": [*(kwargs.get("callbacks") or []), callback]}
    return args, kwargs


def patched_train(fw: Framework, log_models: bool, original: Any, *args: Any, **kwargs: Any) -> Any:
    """``train``: logged when no scikit-learn-style fit above it forbids it."""
    opts = options(fw.name)
    if opts is None or (opts["exclusive"] and user_run_active()):
        return original(*args, **kwargs)
    with managed_run(fw.name), TrainingSession(original, allow_children=False) as session:
        if not session.should_log():
            return original(*args, **kwargs)
        return _train(fw, opts, log_models, original, args, kwargs)


def _train(
    fw: Framework,
    opts: dict[str, Any],
    log_models: bool,
    original: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    params = args[0] if args else kwargs.get("params") or {}
    logged = {**params, **fn_params(original, args, kwargs, fw.unlogged)}
    guard(fw.name, "logging params", _log.log_params, fw.name, logged)
    if opts["log_datasets"]:
        guard(fw.name, "logging datasets", fw.datasets, args, kwargs)
    training = Training(fw)
    callback = guard(fw.name, "adding the metrics callback", fw.callback, training)
    if callback is not None:
        args, kwargs = _with_callback(original, args, kwargs, callback)
    model = original(*args, **kwargs)
    guard(fw.name, "logging early stopping", fw.early_stopping, training, model, args, kwargs)
    for kind, values in (
        guard(fw.name, "feature importances", fw.importances, model, opts) or {}
    ).items():
        guard(
            fw.name,
            "logging feature importances",
            _log.log_json,
            f"feature_importance_{kind}.json",
            values,
            indent=fw.json_indent,
        )
        guard(fw.name, "plotting feature importances", feature_importance_plot, kind, values)
    if log_models and opts["log_models"]:
        train_set = args[1] if len(args) > 1 else kwargs.get(fw.train_set_arg)
        example = fw.examples.get(train_set) if train_set is not None else None
        predict = fw.predict(model) if fw.predict is not None else None
        guard(
            fw.name,
            "logging the model",
            _log.log_model,
            model,
            "model",
            example=example,
            log_input_examples=opts["log_input_examples"],
            log_model_signatures=opts["log_model_signatures"],
            registered_model_name=opts.get("registered_model_name"),
            predict=predict,
            flavor=fw.name,
            options={k: opts[k] for k in fw.model_options if k in opts},
            link="all",  # as MLflow links every boosting iteration's metrics
        )
    return model


def fit_wrapper_impl(
    integration: str, opts: dict[str, Any], original: Any, self: Any, args: Any, kwargs: Any
) -> Any:
    """The scikit-learn wrappers' ``fit``: train (logged by the patched ``train`` below it),
    then log the fitted wrapper as ``model``, in the framework's flavor (``integration``)."""
    from .sklearn import example_rows, fit_inputs

    inputs = guard(integration, "reading the training data", fit_inputs, self.fit, args, kwargs)
    example = example_rows(inputs[0]) if inputs and inputs[0] is not None else None
    result = original(self, *args, **kwargs)
    if opts["log_models"]:
        guard(
            integration,
            "logging the model",
            _log.log_model,
            self,
            "model",
            example=example,
            log_input_examples=opts["log_input_examples"],
            log_model_signatures=opts["log_model_signatures"],
            registered_model_name=opts.get("registered_model_name"),
            flavor=integration,
            options={"model_format": opts["model_format"]} if "model_format" in opts else None,
            link="all",
        )
    return result
