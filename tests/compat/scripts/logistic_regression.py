"""Logistic regression, as in MLflow's sklearn_logistic_regression example, with the
experiment chosen by ``mlflow.set_experiment`` and its returned Experiment used for the run.

The experiment's name ends with COMPAT_SUFFIX, so that two runs of this script can be told
apart; the tracking server comes from MLFLOW_TRACKING_URI.
"""

import os

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LogisticRegression


def prediction_input():
    return np.array([-3, -0.5, 0, 0.25, 4]).reshape(-1, 1)


if __name__ == "__main__":
    experiment = mlflow.set_experiment("logistic-regression" + os.environ.get("COMPAT_SUFFIX", ""))

    X = np.array([-2, -1, 0, 1, 2, 1]).reshape(-1, 1)
    y = np.array([0, 0, 1, 1, 1, 0])
    lr = LogisticRegression()
    lr.fit(X, y)
    score = lr.score(X, y)

    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="logreg") as run:
        mlflow.log_metric("score", score)
        mlflow.log_params({"C": lr.C, "solver": lr.solver})
        model_info = mlflow.sklearn.log_model(lr, name="model")
        mlflow.set_tag("run_id_seen", run.info.run_id == mlflow.active_run().info.run_id)

    loaded = mlflow.pyfunc.load_model(model_info.model_uri)
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name="check"):
        mlflow.log_metric("loaded_accuracy", float(np.mean(loaded.predict(X) == y)))
