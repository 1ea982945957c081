"""Autologging (mlrelay._autolog) against the mock server over real sockets: what one ``fit``
logs, under MLflow's names; nesting; searches; post-training metrics; and the guarantees of
the patches (reversible, applied once, never changing what ``fit`` returns or raises)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from mlrelay_mock import MockServer
from sklearn import metrics, model_selection
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlrelay
from mlrelay import fluent
from mlrelay._autolog import _core, _log
from mlrelay._autolog import lightgbm as lgb_autolog
from mlrelay._autolog import sklearn as sk_autolog
from mlrelay._autolog import xgboost as xgb_autolog

CLASSIFIER_METRICS = {
    "training_score",
    "training_accuracy_score",
    "training_precision_score",
    "training_recall_score",
    "training_f1_score",
    "training_log_loss",
    "training_roc_auc",
}
REGRESSOR_METRICS = {
    "training_score",
    "training_mean_squared_error",
    "training_root_mean_squared_error",
    "training_mean_absolute_error",
    "training_r2_score",
}


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh mock server, the fluent API pointed at it; every integration off afterwards."""
    with MockServer() as s:
        fluent.set_tracking_uri(s.url)
        try:
            yield s
        finally:
            for integration in (sk_autolog, xgb_autolog, lgb_autolog):
                integration.autolog(disable=True)
            _core._warned.clear()


@pytest.fixture
def reader(server: MockServer) -> Iterator[mlrelay.Client]:
    """A Client reading what the mock server stored."""
    with mlrelay.Client(tracking_uri=server.url) as client:
        yield client


def _data() -> tuple[Any, Any]:
    return make_classification(n_samples=120, n_features=4, random_state=0)


def _last_run(reader: mlrelay.Client) -> Any:
    run = mlrelay.last_active_run()
    assert run is not None
    mlrelay.flush()
    return reader.get_run(run.info.run_id)


def _children(reader: mlrelay.Client, parent: Any) -> list[Any]:
    return list(
        reader.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
    )


def _has_model(reader: mlrelay.Client, run_id: str, name: str) -> bool:
    """Whether ``runs:/<run_id>/<name>`` holds a model (on MLflow 3 and the mock, its files
    are stored with the logged model, which the run's listing of ``name`` shows)."""
    return f"{name}/MLmodel" in {f.path for f in reader.list_artifacts(run_id, name)}


def test_a_classifier_fit_logs_mlflows_params_metrics_tags_model_and_dataset(
    reader: mlrelay.Client,
) -> None:
    """A fit with no active run is logged in a run started for it and ended after it:
    get_params as strings, MLflow's classifier metric names, the estimator tags, the
    mlflow.autologging tag, extra_tags, the model, estimator.html and the training dataset."""
    sk_autolog.autolog(extra_tags={"team": "search"})
    x, y = _data()
    model = LogisticRegression(C=0.5)
    assert model.fit(x, y) is model
    assert mlrelay.active_run() is None
    run = _last_run(reader)
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.5"
    assert run.data.params["class_weight"] == "None"
    assert set(run.data.metrics) == CLASSIFIER_METRICS
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(model.score(x, y))
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.data.tags["mlflow.autologging"] == "sklearn"
    assert run.data.tags["team"] == "search"
    assert "estimator.html" in {f.path for f in reader.list_artifacts(run.info.run_id)}
    assert _has_model(reader, run.info.run_id, "model")
    [dataset] = run.inputs.dataset_inputs
    assert [t.value for t in dataset.tags] == ["train"]
    assert '"targets_shape": [120]' in (dataset.dataset.profile or "")


def test_a_regressor_fit_logs_mlflows_regressor_metrics(reader: mlrelay.Client) -> None:
    """A regressor gets MLflow's regression metric names, RMSE the root of MSE."""
    sk_autolog.autolog(log_models=False, log_datasets=False)
    x, y = make_regression(n_samples=80, n_features=3, noise=5.0, random_state=1)
    LinearRegression().fit(x, y)
    run = _last_run(reader)
    assert set(run.data.metrics) == REGRESSOR_METRICS
    mse = run.data.metrics["training_mean_squared_error"]
    assert run.data.metrics["training_root_mean_squared_error"] == pytest.approx(mse**0.5)
    assert run.inputs.dataset_inputs == []
    assert not _has_model(reader, run.info.run_id, "model")


def test_a_fit_inside_a_user_run_logs_there_without_the_autologging_tag(
    reader: mlrelay.Client,
) -> None:
    """In the user's run, autolog logs into it and leaves it open (MLflow sets no
    mlflow.autologging tag on a run it did not start); exclusive=True logs nothing there."""
    sk_autolog.autolog(log_models=False)
    x, y = _data()
    with mlrelay.start_run() as run:
        LogisticRegression().fit(x, y)
        assert mlrelay.active_run() is not None
    stored = reader.get_run(run.info.run_id)
    assert stored.data.tags["estimator_name"] == "LogisticRegression"
    assert "mlflow.autologging" not in stored.data.tags
    sk_autolog.autolog(exclusive=True)
    with mlrelay.start_run() as run:
        LogisticRegression().fit(x, y)
    assert reader.get_run(run.info.run_id).data.params == {}


def test_a_pipeline_is_logged_once_as_its_outermost_fit(reader: mlrelay.Client) -> None:
    """A Pipeline's inner fits (its steps) are not logged again: one run, the Pipeline's
    deep params (step__param) and tags."""
    sk_autolog.autolog(log_models=False)
    x, y = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    with mlrelay.start_run() as run:
        pipe.fit(x, y)
    stored = reader.get_run(run.info.run_id)
    assert stored.data.tags["estimator_name"] == "Pipeline"
    assert stored.data.params["clf__C"] == "1.0"
    assert stored.data.params["scale__with_mean"] == "True"
    experiment = stored.info.experiment_id
    assert len(list(reader.search_runs([experiment]))) == 1


def test_a_grid_search_logs_best_params_score_results_and_one_child_per_candidate(
    reader: mlrelay.Client,
) -> None:
    """GridSearchCV: best_<param>, best_cv_score, cv_results.csv, the best_estimator model,
    and child runs for the max_tuning_runs best candidates with their params and scores."""
    sk_autolog.autolog(max_tuning_runs=2)
    x, y = _data()
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0, 100.0]}, cv=3)
    search.fit(x, y)
    parent = _last_run(reader)
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert "estimator" in parent.data.params  # deep=False for a search
    assert "estimator__C" not in parent.data.params
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    paths = {f.path for f in reader.list_artifacts(parent.info.run_id)}
    assert {"cv_results.csv", "estimator.html"} <= paths
    assert _has_model(reader, parent.info.run_id, "model")
    assert _has_model(reader, parent.info.run_id, "best_estimator")
    children = _children(reader, parent)
    assert len(children) == 2
    ranks = list(search.cv_results_["rank_test_score"])
    best_two = {str(search.cv_results_["params"][ranks.index(r)]["C"]) for r in sorted(ranks)[:2]}
    assert {c.data.params["C"] for c in children} == best_two
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"mean_test_score", "std_test_score", "rank_test_score"} <= set(child.data.metrics)
        assert child.data.tags["mlflow.autologging"] == "sklearn"
        assert child.data.params["max_iter"] == "100"


def test_post_training_metrics_are_logged_with_mlflows_keys(reader: mlrelay.Client) -> None:
    """After fit, sklearn.metrics on the model's predictions and model.score log
    <fn>_<dataset variable>, a second call <fn>-2_<dataset>, to the fit's (ended) run."""
    sk_autolog.autolog(log_models=False)
    x, y = _data()
    model = LogisticRegression().fit(x, y)
    X_holdout = x[:40]  # the variable's name becomes the metric key
    predicted = model.predict(X_holdout)
    first = metrics.accuracy_score(y[:40], predicted)
    second = metrics.accuracy_score(y[:40], predicted)
    score = model.score(X_holdout, y[:40])
    run = _last_run(reader)
    assert run.data.metrics["accuracy_score_X_holdout"] == pytest.approx(first)
    assert run.data.metrics["accuracy_score-2_X_holdout"] == pytest.approx(second)
    assert run.data.metrics["LogisticRegression_score_X_holdout"] == pytest.approx(score)
    assert "metric_info.json" in {f.path for f in reader.list_artifacts(run.info.run_id)}
    contexts = [t.value for d in run.inputs.dataset_inputs for t in d.tags]
    assert sorted(contexts) == ["eval", "train"]


def test_cross_val_score_runs_with_autologging_off(reader: mlrelay.Client) -> None:
    """cross_val_score's internal fits log nothing (MLflow turns autolog off inside); like
    MLflow, only calls through the module attribute looked up after autolog() are covered."""
    sk_autolog.autolog()
    x, y = _data()
    with mlrelay.start_run() as run:
        model_selection.cross_val_score(LogisticRegression(), x, y, cv=3)
    stored = reader.get_run(run.info.run_id)
    assert stored.data.params == {}
    assert len(list(reader.search_runs([stored.info.experiment_id]))) == 1


def test_disable_restores_every_original_and_autolog_twice_patches_once(
    server: MockServer,
) -> None:
    """disable=True puts back the very function objects (fit, predict, score, the metric
    functions), inherited methods included; a second autolog() call wraps nothing twice."""
    originals = {
        "fit": LogisticRegression.fit,
        "predict": LogisticRegression.predict,
        "score": LogisticRegression.score,
        "accuracy": metrics.accuracy_score,
    }
    own = set(vars(LogisticRegression))
    sk_autolog.autolog()
    patched_fit = LogisticRegression.fit
    assert patched_fit is not originals["fit"]
    assert metrics.accuracy_score is not originals["accuracy"]
    sk_autolog.autolog(log_models=False)
    assert LogisticRegression.fit is patched_fit
    assert patched_fit.__wrapped__ is originals["fit"]
    sk_autolog.autolog(disable=True)
    assert LogisticRegression.fit is originals["fit"]
    assert LogisticRegression.predict is originals["predict"]
    assert LogisticRegression.score is originals["score"]
    assert metrics.accuracy_score is originals["accuracy"]
    assert set(vars(LogisticRegression)) == own


def test_fit_returns_and_raises_exactly_what_the_original_does(reader: mlrelay.Client) -> None:
    """The user's exception, raised inside the original fit, propagates as the same object
    and the run started for the fit ends FAILED; a fit's return value is the original's."""
    sk_autolog.autolog(log_models=False)
    error = ValueError("the user's own error")

    class Exploding:
        """Training data that fails when scikit-learn reads it."""

        def __array__(self, *args: Any, **kwargs: Any) -> Any:
            raise error

    with pytest.raises(ValueError, match="the user's own error") as raised:
        LogisticRegression().fit(Exploding(), [0, 1])
    assert raised.value is error
    assert _last_run(reader).info.status == "FAILED"
    x, y = _data()
    model = LogisticRegression()
    assert model.fit(x, y) is model
    assert _last_run(reader).info.status == "FINISHED"


def test_a_failure_in_mlrelays_logging_is_one_warning_and_fit_goes_on(
    reader: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside mlrelay's logging becomes one RuntimeWarning (not repeated), the
    fit still returns its model and the rest is logged; silent=True hides the warning."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(_log, "log_params", broken)
    sk_autolog.autolog(log_models=False)
    x, y = _data()
    model = LogisticRegression()
    with pytest.warns(RuntimeWarning, match="logging params failed .*disk on fire"):
        assert model.fit(x, y) is model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(x, y)  # the same failure again: no second warning
    assert "training_score" in _last_run(reader).data.metrics
    _core._warned.clear()
    sk_autolog.autolog(log_models=False, silent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(x, y)


def test_max_tuning_runs_must_not_be_negative(server: MockServer) -> None:
    """max_tuning_runs=-1 is refused with a ValidationError naming the option."""
    with pytest.raises(mlrelay.ValidationError, match="max_tuning_runs"):
        sk_autolog.autolog(max_tuning_runs=-1)


def test_xgboost_train_logs_params_metrics_per_step_importances_and_model(
    reader: mlrelay.Client,
) -> None:
    """xgboost.train: booster params and train()'s own, <eval>-<metric> at each iteration
    as step, feature_importance_weight.json, the model, the train/eval datasets."""
    xgb = pytest.importorskip("xgboost")
    xgb_autolog.autolog()
    x, y = _data()
    train, valid = xgb.DMatrix(x[:80], label=y[:80]), xgb.DMatrix(x[80:], label=y[80:])
    params = {"objective": "binary:logistic", "max_depth": 2, "eval_metric": "logloss"}
    xgb.train(params, train, 4, evals=[(train, "train"), (valid, "valid")])
    run = _last_run(reader)
    assert run.data.tags["mlflow.autologging"] == "xgboost"
    assert run.data.params["max_depth"] == "2"
    assert run.data.params["num_boost_round"] == "4"
    assert set(run.data.metrics) == {"train-logloss", "valid-logloss"}
    history = reader.get_metric_history(run.info.run_id, "valid-logloss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    paths = {f.path for f in reader.list_artifacts(run.info.run_id)}
    assert "feature_importance_weight.json" in paths
    assert _has_model(reader, run.info.run_id, "model")
    assert len(run.inputs.dataset_inputs) == 3


def test_xgboost_classifier_fit_logs_validation_metrics_and_the_wrapper(
    reader: mlrelay.Client,
) -> None:
    """XGBClassifier.fit with eval_set logs validation_0-<metric> per step in one run."""
    xgb = pytest.importorskip("xgboost")
    xgb_autolog.autolog()
    x, y = _data()
    xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y, eval_set=[(x, y)])
    run = _last_run(reader)
    assert set(run.data.metrics) == {"validation_0-logloss"}
    assert run.data.params["max_depth"] == "2"
    assert _has_model(reader, run.info.run_id, "model")
    assert len(list(reader.search_runs([run.info.experiment_id]))) == 1


def test_lightgbm_train_logs_metrics_importances_and_early_stopping(
    reader: mlrelay.Client,
) -> None:
    """lightgbm.train: <valid>-<metric> per step, split and gain importances (indented JSON),
    and, with early stopping, stopped_iteration and best_iteration."""
    lgb = pytest.importorskip("lightgbm")
    lgb_autolog.autolog(log_models=False)
    x, y = _data()
    train = lgb.Dataset(x[:80], label=y[:80])
    valid = lgb.Dataset(x[80:], label=y[80:], reference=train)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4}
    callbacks = [lgb.early_stopping(2, verbose=False)]
    lgb.train(params, train, 20, valid_sets=[valid], valid_names=["valid"], callbacks=callbacks)
    run = _last_run(reader)
    assert {"valid-binary_logloss", "stopped_iteration", "best_iteration"} <= set(run.data.metrics)
    paths = {f.path for f in reader.list_artifacts(run.info.run_id)}
    assert {"feature_importance_split.json", "feature_importance_gain.json"} <= paths
    history = reader.get_metric_history(run.info.run_id, "valid-binary_logloss")
    assert len(history) == int(run.data.metrics["stopped_iteration"]) + 1
    assert np.isfinite(run.data.metrics["best_iteration"])
