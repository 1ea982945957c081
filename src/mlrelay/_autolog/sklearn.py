"""scikit-learn autologging with MLflow's names, so dashboards built on MLflow's autologged
keys keep working.

Patched, as MLflow patches them: ``fit``, ``fit_transform`` and ``fit_predict`` of every
estimator ``sklearn.utils.all_estimators()`` lists, plus ``GridSearchCV``,
``RandomizedSearchCV`` and ``Pipeline`` (preprocessing, imputation, feature extraction and
selection, and ``ColumnTransformer`` are left out: data preparation, not models); their
``predict``, ``predict_proba``, ``predict_log_proba``, ``transform`` and ``score``, and the
``sklearn.metrics`` functions, for post-training metrics; ``cross_validate`` and friends run
with autologging off.

One autologged ``fit`` logs, to the active run (or to a run started for it, tagged
``mlflow.autologging=sklearn`` and ``extra_tags``, ended when ``fit`` returns):

- params: ``get_params(deep=True)`` (``deep=False`` for a parameter search), ``str()`` of
  each value cut at 6,000 characters; tags ``estimator_name`` and ``estimator_class``;
- the training data as a dataset input (context ``train``) when ``log_datasets``;
- the model as ``model``, with a signature inferred from the first 5 training rows and,
  with ``log_input_examples``, those rows as its input example;
- ``training_score``, and for classifiers ``training_accuracy_score``,
  ``training_precision_score``, ``training_recall_score``, ``training_f1_score`` and, with
  ``predict_proba``, ``training_log_loss`` and ``training_roc_auc``; for regressors
  ``training_mean_squared_error``, ``training_root_mean_squared_error``,
  ``training_mean_absolute_error`` and ``training_r2_score``; ``estimator.html``;
- for ``GridSearchCV``/``RandomizedSearchCV``: ``best_<param>`` params, ``best_cv_score``,
  the ``best_estimator`` model, ``cv_results.csv``, and one child run per candidate (the
  ``max_tuning_runs`` best by rank) with its params and ``mean_*``/``std_*``/``rank_*``
  results.

- for classifiers, when matplotlib is importable: ``training_confusion_matrix.png`` and,
  with two classes, ``training_roc_curve.png`` and ``training_precision_recall_curve.png``.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

from mlrelay._errors import ValidationError

from . import _core, _log, _metrics, _plots
from ._core import TrainingSession, guard, managed_run, options, user_run_active

__all__ = ["FLAVOR", "autolog"]

FLAVOR = "sklearn"
logger = logging.getLogger("mlrelay.autolog")

_FIT_METHODS = ("fit", "fit_transform", "fit_predict")
_PREDICT_METHODS = ("predict", "predict_proba", "transform", "predict_log_proba")
_EXCLUDED_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
_EXCLUDED_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)
_NOT_METRICS = ("check_scoring", "get_scorer", "make_scorer", "get_scorer_names")
_AUTOLOG_OFF_IN = (
    "cross_validate",
    "cross_val_predict",
    "cross_val_score",
    "learning_curve",
    "permutation_test_score",
    "validation_curve",
)
# The versions MLflow 3.17.2 tests its autologging against (ml-package-versions.yml).
SUPPORTED = {
    "sklearn": ((1, 6, 0), (1, 9, 1)),
    "xgboost": ((2, 1, 2), (3, 4, 1)),
    "lightgbm": ((4, 6, 0), (4, 7, 0)),
}


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, str] | None = None,
) -> None:
    """Turn scikit-learn autologging on (or off, with ``disable=True``), as
    ``mlflow.sklearn.autolog`` does; see the module docstring for what is logged.

    Calling it again changes the options without patching anything twice; ``disable=True``
    puts back every original method (``LogisticRegression.fit is original`` again).
    Models are written in MLflow's ``sklearn`` flavor in ``serialization_format``
    (``cloudpickle``, ``pickle`` or ``skops``), as MLflow writes them.

    Raises:
        ValidationError: ``max_tuning_runs`` is negative, or ``extra_tags`` is not a dict.
    """
    if max_tuning_runs is not None and max_tuning_runs < 0:
        raise ValidationError(
            f"max_tuning_runs must be non-negative, got {max_tuning_runs}",
            field="max_tuning_runs",
        )
    opts = check_common(FLAVOR, locals())
    if opts is None:
        return
    import sklearn  # the user asked for scikit-learn autologging

    if not version_ok(FLAVOR, sklearn.__version__, opts):
        return
    _core.configure(FLAVOR, opts)
    install(FLAVOR, estimators(), _fit_sklearn, allow_children=False)


def check_common(integration: str, given: dict[str, Any]) -> dict[str, Any] | None:
    """Validate the options every integration shares; ``disable`` turns it off (None)."""
    extra = given.get("extra_tags")
    if extra is not None and not isinstance(extra, dict):
        raise ValidationError(
            f"extra_tags must be a dict, got {type(extra).__name__}", field="extra_tags"
        )
    if given.get("disable"):
        turn_off(integration)
        return None
    opts = dict(given)
    opts["extra_tags"] = {k: v for k, v in (extra or {}).items() if k != _core.AUTOLOGGING_TAG}
    return opts


def turn_off(integration: str) -> None:
    """Turn an integration off and put back every original it replaced."""
    _core.configure(integration, None)
    _core.unpatch(integration)
    if not _core.any_on():
        _core.unpatch(_core.SHARED)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ""
        parts.append(int(digits or 0))
    return tuple(parts)


def version_ok(integration: str, version: str, opts: dict[str, Any]) -> bool:
    """False (autologging stays off) for a version outside the tested range when
    ``disable_for_unsupported_versions``; otherwise True, with a log line below the range."""
    low, high = SUPPORTED[integration]
    installed = _version(version)
    if opts.get("disable_for_unsupported_versions") and not low <= installed <= high:
        turn_off(integration)
        return False
    if installed < low and not opts.get("silent"):
        logger.warning(
            "mlrelay %s autologging is tested with versions %s to %s; %s is installed",
            integration,
            ".".join(map(str, low)),
            ".".join(map(str, high)),
            version,
        )
    return True


def estimators() -> list[type]:
    """The estimator classes MLflow patches: ``all_estimators()`` plus the searches and
    ``Pipeline``, without data preparation."""
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    found = {cls for _, cls in all_estimators()} | {GridSearchCV, RandomizedSearchCV, Pipeline}
    return sorted(
        (
            cls
            for cls in found
            if not cls.__module__.startswith(_EXCLUDED_MODULES)
            and f"{cls.__module__}.{cls.__name__}" not in _EXCLUDED_CLASSES
        ),
        key=lambda cls: (cls.__module__, cls.__name__),
    )


def install(integration: str, classes: list[type], fit_impl: Any, *, allow_children: bool) -> None:
    """Patch the fit, predict and score methods of ``classes`` (once), and the metric
    functions and the cross-validation helpers when scikit-learn is imported."""
    fit = functools.partial(patched_fit, integration, fit_impl, allow_children)
    for cls in classes:
        for name in _FIT_METHODS:
            _core.patch_method(integration, cls, name, fit)
        for name in _PREDICT_METHODS:
            _core.patch_method(integration, cls, name, _metrics.patched_predict)
        _core.patch_method(integration, cls, "score", _metrics.patched_score)
    if "sklearn.metrics" in sys.modules:
        _patch_metric_functions()


def _patch_metric_functions() -> None:
    """The metric functions and the cross-validation helpers: patched once for all
    integrations (under ``SHARED``), put back when the last integration is turned off."""
    import inspect

    import sklearn.metrics
    import sklearn.model_selection

    for name in sklearn.metrics.__all__:
        fn = getattr(sklearn.metrics, name, None)
        if name in _NOT_METRICS or name.startswith("plot_") or inspect.isclass(fn):
            continue
        if callable(fn):
            _core.patch(_core.SHARED, sklearn.metrics, name, _metrics.patched_metric)
    for name in _AUTOLOG_OFF_IN:
        if hasattr(sklearn.model_selection, name):
            _core.patch(_core.SHARED, sklearn.model_selection, name, _without_autolog)


def _without_autolog(original: Any, *args: Any, **kwargs: Any) -> Any:
    with _core.disabled_scope():
        return original(*args, **kwargs)


def patched_fit(
    integration: str,
    fit_impl: Any,
    allow_children: bool,
    original: Any,
    self: Any,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """The wrapper of every patched fit method: the outermost fit is logged (in a run
    started for it when none is active); nested fits and disabled states call through."""
    opts = options(integration)
    if opts is None or (opts["exclusive"] and user_run_active()):
        return original(self, *args, **kwargs)
    with managed_run(integration), TrainingSession(self, allow_children=allow_children) as s:
        if not s.should_log():
            return original(self, *args, **kwargs)
        result = fit_impl(integration, opts, original, self, args, kwargs)
        if opts.get("log_post_training_metrics", True):
            guard(integration, "post-training metrics", _remember, integration, self)
        return result


def _remember(integration: str, model: Any) -> None:
    from mlrelay import fluent

    run = fluent.active_run()
    if run is not None:
        _metrics.remember_model(integration, model, run.local_id)


# --- what one fit logs ---------------------------------------------------------------------


def fit_inputs(fit: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(X, y, sample_weight)`` of a fit call, found by the fit's parameter names."""
    import inspect

    names = [n for n in inspect.signature(fit).parameters if n != "self"]
    x_name, y_name = [*names, "X", "y"][:2]
    if len(args) >= 2:
        x, y = args[0], args[1]
    elif len(args) == 1:
        x, y = args[0], kwargs.get(y_name)
    else:
        x, y = kwargs.get(x_name), kwargs.get(y_name)
    weight = None
    if "sample_weight" in names:
        index = names.index("sample_weight")
        weight = args[index] if len(args) > index else kwargs.get("sample_weight")
    return x, y, weight


def _is_search(estimator: Any) -> bool:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, GridSearchCV | RandomizedSearchCV)


def estimator_tags(estimator: Any) -> dict[str, str]:
    """MLflow's ``estimator_name`` and ``estimator_class`` tags."""
    cls = type(estimator)
    return {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}


def _fit_sklearn(
    integration: str, opts: dict[str, Any], original: Any, self: Any, args: Any, kwargs: Any
) -> Any:
    inputs = guard(integration, "reading the training data", fit_inputs, self.fit, args, kwargs)
    x, y, weight = inputs or (None, None, None)
    guard(integration, "logging params", _log_before, integration, opts, self, x, y)
    result = original(self, *args, **kwargs)
    guard(
        integration, "logging the fitted model", _log_after, integration, opts, self, x, y, weight
    )
    return result


def _log_before(integration: str, opts: dict[str, Any], estimator: Any, x: Any, y: Any) -> None:
    _log.log_params(integration, estimator.get_params(deep=not _is_search(estimator)))
    _log.set_tags(integration, estimator_tags(estimator))
    if opts["log_datasets"] and x is not None:
        guard(integration, "logging the training dataset", _log.log_dataset, x, y)


def example_rows(x: Any) -> Any:
    """A copy of the first 5 rows of ``x`` (MLflow's input example), or None."""
    import copy

    try:
        return copy.deepcopy(x[: _log.INPUT_EXAMPLE_ROWS])
    except Exception:
        return None


def _log_after(
    integration: str, opts: dict[str, Any], estimator: Any, x: Any, y: Any, weight: Any
) -> None:
    """What a fit logs once it returns, in MLflow's order, which decides what the logged
    models are linked to (on MLflow 3 a logged model gets the run's params and step-0
    metrics as they are on the server when it is created, and later step-0 points go to the
    run's first model): the training metrics and ``best_cv_score``, then ``model`` (linked
    to them), then ``best_estimator`` (its own params and the search's, linked to no metric
    and not a model later points link to), then the ``best_<param>`` params."""
    example = example_rows(x) if x is not None else None
    search = _is_search(estimator)
    if y is not None and x is not None:
        metrics = guard(
            integration, "training metrics", training_metrics,
            estimator, x, y, weight, opts.get("pos_label"),
        )  # fmt: skip
        _log.log_metrics(integration, metrics or {})
        if _is_classifier(estimator):
            guard(integration, "plots", _plots.classifier_plots, estimator, x, y, weight)
    if search and hasattr(estimator, "best_score_"):
        guard(
            integration, "logging best_cv_score", _log.log_metrics,
            integration, {"best_cv_score": estimator.best_score_},
        )  # fmt: skip
    if opts["log_models"]:
        params = guard(integration, "reading params", model_params, estimator)
        guard(
            integration, "logging the model", _log_model,
            opts, estimator, "model", example, params,
        )  # fmt: skip
    best_id = None
    if search and hasattr(estimator, "best_estimator_") and opts["log_models"]:
        best = estimator.best_estimator_
        best_id = guard(
            integration, "logging best_estimator", _log_model,
            opts, best, "best_estimator", example, best.get_params(deep=True), "none",
        )  # fmt: skip
    if search and hasattr(estimator, "best_params_"):
        best_params = {f"best_{k}": v for k, v in estimator.best_params_.items()}
        guard(integration, "logging best params", _log.log_params, integration, best_params)
    guard(integration, "logging estimator.html", _log_html, estimator)
    if search:
        _log_search_runs(integration, opts, estimator, x, y, best_id)


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def _log_model(
    opts: dict[str, Any], model: Any, name: str, example: Any, params: Any, link: Any = "step"
) -> str | None:
    return _log.log_model(
        model,
        name,
        flavor="sklearn",
        example=example,
        log_input_examples=opts["log_input_examples"],
        log_model_signatures=opts["log_model_signatures"],
        registered_model_name=opts.get("registered_model_name") if name == "model" else None,
        options={"serialization_format": opts.get("serialization_format") or "cloudpickle"},
        params=params,
        link=link,
    )


def model_params(estimator: Any) -> dict[str, Any]:
    """The params MLflow's autologging gives the logged ``model``: the estimator's (not deep
    for a parameter search) and a search's ``best_<param>``."""
    params = dict(estimator.get_params(deep=not _is_search(estimator)))
    best = getattr(estimator, "best_params_", None) or {}
    return params | {f"best_{k}": v for k, v in best.items()}


def _computed(name: str, compute: Any) -> dict[str, float]:
    try:
        return {name: compute()}
    except Exception as exc:
        logger.warning("The metric %s was not computed: %s", name, exc)
        return {}


def _classifier_metrics(model: Any, x: Any, y: Any, weight: Any, pos_label: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    average = "weighted" if pos_label is None else "binary"
    pred = model.predict(x)
    common = {"pos_label": pos_label, "average": average, "sample_weight": weight}
    out: dict[str, Any] = {}
    for name, fn in (
        ("precision", m.precision_score),
        ("recall", m.recall_score),
        ("f1", m.f1_score),
    ):
        out |= _computed(f"training_{name}_score", lambda fn=fn: fn(y, pred, **common))
    out |= _computed(
        "training_accuracy_score",
        lambda: m.accuracy_score(y, pred, normalize=True, sample_weight=weight),
    )
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)
        out |= _computed("training_log_loss", lambda: m.log_loss(y, proba, sample_weight=weight))
        score = proba[:, 1] if np.shape(proba)[1:] == (2,) else proba
        out |= _computed(
            "training_roc_auc",
            lambda: m.roc_auc_score(
                y, score, average="weighted", sample_weight=weight, multi_class="ovo"
            ),
        )
    return out


def _regressor_metrics(model: Any, x: Any, y: Any, weight: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics as m

    pred = model.predict(x)
    kw = {"sample_weight": weight, "multioutput": "uniform_average"}
    out: dict[str, Any] = {}
    out |= _computed("training_mean_squared_error", lambda: m.mean_squared_error(y, pred, **kw))
    out |= _computed("training_mean_absolute_error", lambda: m.mean_absolute_error(y, pred, **kw))
    out |= _computed("training_r2_score", lambda: m.r2_score(y, pred, **kw))
    if "training_mean_squared_error" in out:
        out["training_root_mean_squared_error"] = np.sqrt(out["training_mean_squared_error"])
    return out


def training_metrics(model: Any, x: Any, y: Any, weight: Any, pos_label: Any) -> dict[str, Any]:
    """MLflow's training metrics for a fitted classifier or regressor, and ``training_score``."""
    import inspect

    from sklearn.base import is_classifier, is_regressor

    out: dict[str, Any] = {}
    if is_classifier(model):
        out = _classifier_metrics(model, x, y, weight, pos_label)
    elif is_regressor(model):
        out = _regressor_metrics(model, x, y, weight)
    if hasattr(model, "score"):
        with_weight = "sample_weight" in inspect.signature(model.score).parameters
        args = (x, y, weight) if with_weight else (x, y)
        out |= _computed("training_score", lambda: model.score(*args))
    return out


_HTML = """
<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8"/>
  </head>
  <body>
    {body}
  </body>
</html>
    """


def _log_html(estimator: Any) -> None:
    from sklearn.utils import estimator_html_repr

    from mlrelay import fluent

    fluent.log_text(_HTML.format(body=estimator_html_repr(estimator)), "estimator.html")


# --- parameter searches --------------------------------------------------------------------


def _log_search_runs(
    integration: str, opts: dict[str, Any], search: Any, x: Any, y: Any, best_id: Any = None
) -> None:
    """The child runs of a parameter search and its ``cv_results.csv``; the best candidate's
    results are linked to the ``best_estimator`` model ``best_id``, as MLflow links them."""
    if not hasattr(search, "cv_results_"):
        return
    dataset = _log.dataset_of(x, y) if opts["log_datasets"] and x is not None else None
    guard(
        integration, "creating child runs", child_runs,
        integration, search, opts["max_tuning_runs"], dataset, best_id,
    )  # fmt: skip
    guard(integration, "logging cv_results.csv", _log_cv_results, search.cv_results_)


def _log_cv_results(results: Any) -> None:
    import pandas as pd

    frame = pd.DataFrame.from_dict(results)
    _log.log_artifact_file("cv_results.csv", lambda p: frame.to_csv(p, index=False))


def _best_rows(results: dict[str, Any], limit: int | None) -> list[int]:
    import numpy as np

    count = len(results["params"])
    if limit is None:
        return list(range(count))
    rank = "rank_test_score"
    if rank not in results:
        rank = next(k for k in results if "rank_test_" in k)
        logger.warning("Top %s child runs are chosen by the %s column", limit, rank)
    order = np.argsort(np.asarray(results[rank]), kind="stable")
    return [int(i) for i in order[:limit]]


def child_runs(
    integration: str, search: Any, limit: int | None, dataset: Any, best_id: str | None = None
) -> None:
    """One finished child run per candidate (the ``limit`` best by rank), as MLflow: the
    seed estimator's params with the candidate's, and its mean/std/rank results (the best
    candidate's linked to the ``best_estimator`` model ``best_id``)."""
    import numbers

    from mlrelay import fluent
    from mlrelay._pipeline import runs

    seed = search.estimator
    base = seed.get_params(deep=not _is_search(seed))
    results = search.cv_results_
    tags = {_core.AUTOLOGGING_TAG: integration, **estimator_tags(seed)}
    for row in _best_rows(results, limit):
        candidate = results["params"][row]
        values = {k: v[row] for k, v in results.items() if not k.startswith(("param", "split"))}
        metrics = {k: v for k, v in values.items() if isinstance(v, numbers.Number)}
        fluent.start_run(nested=True, tags=tags)
        try:
            _log.log_params(integration, {**base, **candidate})
            best = row == getattr(search, "best_index_", None)
            _log.log_metrics(integration, metrics, model_id=best_id if best else None)
            if dataset is not None:
                fluent.log_input(dataset, "train")
        finally:
            runs.end_run("FINISHED", run=runs.current(), wait=False)
