"""LightGBM autologging with MLflow's names (see :mod:`mlrelay._autolog._boosting`).

Patched: ``lightgbm.train`` (logs the booster as ``model``), ``lightgbm.sklearn.train`` (what
the scikit-learn wrappers call: params, metrics and importances, no model),
``Dataset.__init__`` (keeps the first rows as the input example), and
``fit``/``predict``/``score`` of ``LGBMModel`` and its subclasses, whose fitted wrapper is
logged as ``model``. Metrics are ``<valid name>-<metric>`` per iteration (``valid_0-l2``,
``training-binary_logloss``) at their iteration as step; with early stopping also
``stopped_iteration``, ``best_iteration`` and the best iteration's metrics at the step after
the last. Importances: ``feature_importance_split.json`` and ``feature_importance_gain.json``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from . import _core, _log
from ._boosting import Framework, Training, fit_wrapper_impl, metric_key, patched_data_init
from ._boosting import patched_train as _patched_train

__all__ = ["FLAVOR", "autolog"]

FLAVOR = "lightgbm"


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Turn LightGBM autologging on (or off, with ``disable=True``), as
    ``mlflow.lightgbm.autolog`` does; see the module docstring for what is logged.

    Raises:
        ValidationError: ``extra_tags`` is not a dict.
    """
    from .sklearn import check_common, version_ok

    opts = check_common(FLAVOR, locals())
    if opts is None:
        return
    import lightgbm  # the user asked for LightGBM autologging

    if not version_ok(FLAVOR, lightgbm.__version__, opts):
        return
    opts["log_post_training_metrics"] = True
    _core.configure(FLAVOR, opts)
    _install(lightgbm)


_FRAMEWORK = Framework(
    name=FLAVOR,
    unlogged=(
        "params",
        "train_set",
        "valid_sets",
        "valid_names",
        "fobj",
        "feval",
        "init_model",
        "learning_rates",
        "callbacks",
    ),
    train_set_arg="train_set",
    callback=lambda training: functools.partial(_callback, training),
    importances=lambda model, _opts: {
        kind: dict(
            zip(
                model.feature_name(),
                model.feature_importance(importance_type=kind).tolist(),
                strict=False,
            )
        )
        for kind in ("split", "gain")
    },
    json_indent=2,
    early_stopping=lambda training, model, _a, _k: _early_stopping(training, model),
    datasets=lambda args, kwargs: _datasets(args, kwargs),
)


def _install(lightgbm: Any) -> None:
    from . import sklearn as sk

    fw = _FRAMEWORK
    _core.patch(FLAVOR, lightgbm.Dataset, "__init__", functools.partial(patched_data_init, fw))
    _core.patch(FLAVOR, lightgbm, "train", functools.partial(_patched_train, fw, True))
    _core.patch(FLAVOR, lightgbm.sklearn, "train", functools.partial(_patched_train, fw, False))
    sk.install(FLAVOR, _wrappers(lightgbm), fit_wrapper_impl, allow_children=True)


def _wrappers(lightgbm: Any) -> list[type]:
    # MLflow's choice: the wrappers lightgbm.sklearn defines, LGBMModel included.
    return [
        cls
        for _, cls in inspect.getmembers(lightgbm.sklearn, inspect.isclass)
        if cls.__module__.split(".")[0] == "lightgbm" and issubclass(cls, lightgbm.LGBMModel)
    ]


def _callback(training: Training, env: Any) -> None:
    metrics = {
        metric_key(data, name): value for data, name, value, *_ in env.evaluation_result_list
    }
    _core.guard(FLAVOR, "logging metrics", training.record, metrics, env.iteration)


def _early_stopping(training: Training, model: Any) -> None:
    if model.best_iteration <= 0:
        return
    extra = len(training.results)
    _log.log_metrics(FLAVOR, {"stopped_iteration": extra, "best_iteration": model.best_iteration})
    _log.log_metrics(FLAVOR, training.results[model.best_iteration - 1], step=extra)


def _dataset(dataset: Any, context: str, name: str | None = None) -> None:
    data = dataset.data
    if hasattr(data, "toarray"):
        data = data.toarray()
    _log.log_dataset(data, dataset.label, context=context, name=name)


def _datasets(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    train_set = args[1] if len(args) > 1 else kwargs.get("train_set")
    if train_set is not None:
        _dataset(train_set, "train")
    valid_sets = kwargs.get("valid_sets") or []
    names = kwargs.get("valid_names") or [None] * len(valid_sets)
    for valid_set, name in zip(valid_sets, names, strict=False):
        _dataset(valid_set, "eval", name)
