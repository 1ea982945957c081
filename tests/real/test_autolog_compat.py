"""The same scikit-learn script, autologged once by MLflow's own ``mlflow.sklearn.autolog()``
and once by mlrelay's, against the real MLflow 3.17.2 server; the two sets of runs are then
compared through MLflow's own client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._servers import RunningServer

pytestmark = [pytest.mark.real, pytest.mark.slow]

SRC = str(Path(__file__).resolve().parents[2] / "src")
TIMING = {"mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"}
COMPARED_TAGS = ("estimator_name", "estimator_class", "mlflow.autologging")

SCRIPT = """
import sys
if sys.argv[1] == "mlflow":
    import mlflow
    from mlflow.sklearn import autolog
else:
    import mlrelay as mlflow
    from mlrelay._autolog.sklearn import autolog
mlflow.set_tracking_uri(sys.argv[2])
mlflow.set_experiment(sys.argv[3])
import sklearn.metrics
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

autolog()
X, y = make_classification(n_samples=300, n_features=6, random_state=0)
X_test, y_test = X[:60], y[:60]
model = LogisticRegression(max_iter=200).fit(X, y)
sklearn.metrics.f1_score(y_test, model.predict(X_test))
Xr, yr = make_regression(n_samples=200, n_features=4, random_state=1)
with mlflow.start_run():
    Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=0.5))]).fit(Xr, yr)
grid = {"C": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, y)
"""


def _log_with(client: str, server: RunningServer, workdir: Path) -> None:
    script = workdir / "autolog_script.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_"))}
    env.update(PYTHONPATH=SRC, MLRELAY_HOME=str(workdir / f"home-{client}"))
    done = subprocess.run(
        [sys.executable, str(script), client, server.url, f"autolog-{client}"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def _runs(client: Any, name: str) -> dict[str, Any]:
    """The experiment's runs, keyed by what identifies the same run in both experiments."""
    experiment = client.get_experiment_by_name(name)
    found = {}
    for run in client.search_runs([experiment.experiment_id]):
        tags = run.data.tags
        child = f"child C={run.data.params['C']}" if "mlflow.parentRunId" in tags else "top"
        found[f"{tags.get('estimator_name')} {child}"] = run
    return found


def _compare(theirs: Any, ours: Any) -> None:
    assert ours.data.params == theirs.data.params
    assert set(ours.data.metrics) == set(theirs.data.metrics)
    for key, value in theirs.data.metrics.items():
        if key not in TIMING:
            assert ours.data.metrics[key] == pytest.approx(value, abs=1e-9, rel=0), key
    for tag in COMPARED_TAGS:
        assert ours.data.tags.get(tag) == theirs.data.tags.get(tag), tag


def test_mlrelay_autolog_lands_what_mlflows_autolog_lands(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """Same params (keys and values), metric keys and values (within 1e-9; search timings by
    key only), estimator and autologging tags, and the same child runs of the grid search
    (count and params), for a classifier with a post-training metric, a Pipeline in a user's
    run and a 6-candidate GridSearchCV (5 children by default)."""
    from mlflow import MlflowClient

    _log_with("mlflow", mlflow_real, tmp_path)
    _log_with("mlrelay", mlflow_real, tmp_path)
    client = MlflowClient(mlflow_real.url)
    theirs, ours = _runs(client, "autolog-mlflow"), _runs(client, "autolog-mlrelay")
    assert sorted(ours) == sorted(theirs)
    assert sum(k.startswith("LogisticRegression child") for k in ours) == 5
    for key, run in theirs.items():
        _compare(run, ours[key])
    assert "f1_score_X_test" in ours["LogisticRegression top"].data.metrics
    for key in ("LogisticRegression top", "GridSearchCV top"):
        run_ids = (theirs[key].info.run_id, ours[key].info.run_id)
        listed = [{f.path for f in client.list_artifacts(r)} for r in run_ids]
        assert "estimator.html" in listed[0] & listed[1]
    grid = [
        {f.path for f in client.list_artifacts(r.info.run_id)}
        for r in (theirs["GridSearchCV top"], ours["GridSearchCV top"])
    ]
    assert "cv_results.csv" in grid[0] & grid[1]
