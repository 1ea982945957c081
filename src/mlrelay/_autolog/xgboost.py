"""XGBoost autologging with MLflow's names (see :mod:`mlrelay._autolog._boosting`).

Patched: ``xgboost.train`` (logs the booster as ``model``), ``xgboost.sklearn.train`` (what the
scikit-learn wrappers call: params, metrics and importances, no model), ``DMatrix.__init__``
(keeps the first rows as the input example), and ``fit``/``predict``/``score`` of the
``XGBModel`` subclasses (``XGBClassifier``...), whose fitted wrapper is logged as ``model``.
Metrics are ``<eval name>-<metric>`` per iteration (``validation_0-rmse``, ``train-logloss``)
at their iteration as step; with early stopping also ``stopped_iteration``,
``best_iteration`` and the best iteration's metrics at the step after the last.
Importances: ``feature_importance_<type>.json`` for each of ``importance_types``
(default ``["weight"]``).
"""

from __future__ import annotations

import inspect
from typing import Any

from . import _core, _log
from ._boosting import Framework, Training, fit_wrapper_impl, metric_key, patched_data_init
from ._boosting import patched_train as _patched_train

__all__ = ["FLAVOR", "autolog"]

FLAVOR = "xgboost"
_callback_class: Any = None


def autolog(
    importance_types: list[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Turn XGBoost autologging on (or off, with ``disable=True``), as
    ``mlflow.xgboost.autolog`` does; see the module docstring for what is logged.

    Models are written in MLflow's ``xgboost`` flavor, in ``model_format`` (``ubj``,
    ``json`` or ``xgb``).

    Raises:
        ValidationError: ``extra_tags`` is not a dict.
    """
    from .sklearn import check_common, version_ok

    opts = check_common(FLAVOR, locals())
    if opts is None:
        return
    import xgboost  # the user asked for XGBoost autologging

    if not version_ok(FLAVOR, xgboost.__version__, opts):
        return
    opts["importance_types"] = list(importance_types or ["weight"])
    opts["log_post_training_metrics"] = True
    _core.configure(FLAVOR, opts)
    _install(xgboost)


def _install(xgboost: Any) -> None:
    from . import sklearn as sk

    fw = _framework(xgboost)
    _core.patch(FLAVOR, xgboost.DMatrix, "__init__", _bind(patched_data_init, fw))
    _core.patch(FLAVOR, xgboost, "train", _bind(_patched_train, fw, True))
    _core.patch(FLAVOR, xgboost.sklearn, "train", _bind(_patched_train, fw, False))
    sk.install(FLAVOR, _wrappers(xgboost), fit_wrapper_impl, allow_children=True)


def _bind(fn: Any, *bound: Any) -> Any:
    import functools

    return functools.partial(fn, *bound)


_fw: Framework | None = None


def _framework(xgboost: Any) -> Framework:
    global _fw
    if _fw is None:
        _fw = Framework(
            name=FLAVOR,
            unlogged=(
                "params",
                "dtrain",
                "evals",
                "obj",
                "feval",
                "evals_result",
                "xgb_model",
                "callbacks",
                "learning_rates",
            ),
            train_set_arg="dtrain",
            callback=_callback,
            importances=_importances,
            json_indent=None,
            early_stopping=_early_stopping,
            datasets=_datasets,
            predict=lambda model: lambda x: model.predict(xgboost.DMatrix(x)),
            model_options=("model_format",),
        )
    return _fw


def _wrappers(xgboost: Any) -> list[type]:
    base = xgboost.sklearn.XGBModel
    return [
        cls
        for _, cls in inspect.getmembers(xgboost.sklearn, inspect.isclass)
        if issubclass(cls, base) and cls is not base
    ]


def _callback(training: Training) -> Any:
    """An ``xgboost.callback.TrainingCallback`` that logs each iteration's metrics."""
    global _callback_class
    if _callback_class is None:
        import xgboost

        class _Callback(xgboost.callback.TrainingCallback):
            def __init__(self, training: Training) -> None:
                super().__init__()
                self.training = training

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:  # noqa: ARG002
                metrics = {
                    metric_key(data, name): values[-1]
                    for data, by_metric in evals_log.items()
                    for name, values in by_metric.items()
                }
                _core.guard(FLAVOR, "logging metrics", self.training.record, metrics, epoch)
                return False

        _callback_class = _Callback
    return _callback_class(training)


def _early_stopping(training: Training, model: Any, args: Any, kwargs: Any) -> None:
    import xgboost.training

    names = list(inspect.signature(xgboost.training.train).parameters)
    if not (
        len(args) > names.index("early_stopping_rounds") or kwargs.get("early_stopping_rounds")
    ):
        return
    extra = len(training.results)
    _log.log_metrics(
        FLAVOR, {"stopped_iteration": extra - 1, "best_iteration": model.best_iteration}
    )
    _log.log_metrics(FLAVOR, training.results[model.best_iteration], step=extra)


def _importances(model: Any, opts: dict[str, Any]) -> dict[str, Any]:
    return {kind: model.get_score(importance_type=kind) for kind in opts["importance_types"]}


def _dataset(dmatrix: Any, context: str, name: str | None = None) -> None:
    data = dmatrix.get_data()
    if hasattr(data, "toarray"):
        data = data.toarray()
    _log.log_dataset(data, context=context, name=name)


def _datasets(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    dtrain = args[1] if len(args) > 1 else kwargs.get("dtrain")
    if dtrain is not None:
        _dataset(dtrain, "train")
    for dmatrix, name in kwargs.get("evals") or ():
        _dataset(dmatrix, "eval", name)
