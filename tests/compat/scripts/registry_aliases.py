"""The model registry with aliases, as in MLflow's registry tutorial: log and register a
model, register a second version from ``runs:/``, point the ``champion`` and ``challenger``
aliases at them, describe and tag, and load the champion by ``models:/<name>@champion``.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME; the registered model's name ends with COMPAT_SUFFIX, so that two
runs of this script can be told apart.
"""

import os

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso


def prediction_input():
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:6]


if __name__ == "__main__":
    name = "diabetes-lasso" + os.environ.get("COMPAT_SUFFIX", "")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    client = MlflowClient()

    with mlflow.start_run(run_name="lasso-v1"):
        first = Lasso(alpha=0.5).fit(X, y)
        mlflow.log_param("alpha", 0.5)
        mlflow.log_metric("train_r2", first.score(X, y))
        info = mlflow.sklearn.log_model(
            first, name="model", input_example=X.iloc[:3], registered_model_name=name
        )

    with mlflow.start_run(run_name="lasso-v2") as run:
        second = Lasso(alpha=0.1).fit(X, y)
        mlflow.log_param("alpha", 0.1)
        mlflow.log_metric("train_r2", second.score(X, y))
        mlflow.sklearn.log_model(second, name="model", input_example=X.iloc[:3])
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)

    client.update_registered_model(name, description="Lasso on the diabetes data")
    client.set_registered_model_tag(name, "task", "regression")
    client.set_registered_model_alias(name, "champion", info.registered_model_version)
    client.set_registered_model_alias(name, "challenger", version.version)
    client.set_model_version_tag(name, version.version, "validation", "pending")
    client.update_model_version(name, version.version, description="smaller alpha")

    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    with mlflow.start_run(run_name="serve-champion"):
        for step, value in enumerate(champion.predict(prediction_input())):
            mlflow.log_metric("champion_prediction", float(value), step=step)
        by_alias = client.get_model_version_by_alias(name, "challenger")
        mlflow.set_tag("challenger_version", by_alias.version)
