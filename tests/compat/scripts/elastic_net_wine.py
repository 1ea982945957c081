"""Elastic-net on the wine-quality style CSV, in the spirit of MLflow's sklearn_elasticnet_wine
example: read a CSV, train, log params and metrics, infer the signature, log the model.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME. The CSV is written from scikit-learn's bundled wine data.
"""

import os
import tempfile

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split


def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    mae = mean_absolute_error(actual, pred)
    r2 = r2_score(actual, pred)
    return rmse, mae, r2


def write_csv(folder):
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame["quality"] = wine.target.astype("float64") * 2.0 + 4.0
    path = os.path.join(folder, "wine-quality.csv")
    frame.to_csv(path, index=False)
    return path


def prediction_input():
    return load_wine(as_frame=True).data.iloc[::20]


if __name__ == "__main__":
    np.random.seed(40)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(tmp)
        data = pd.read_csv(csv_path)
        train, test = train_test_split(data, random_state=42)
        train_x = train.drop(["quality"], axis=1)
        test_x = test.drop(["quality"], axis=1)
        train_y = train[["quality"]]
        test_y = test[["quality"]]

        alpha, l1_ratio = 0.05, 0.3
        with mlflow.start_run():
            lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42, max_iter=5000)
            lr.fit(train_x, train_y)
            predicted = lr.predict(test_x)
            rmse, mae, r2 = eval_metrics(test_y, predicted)

            mlflow.log_param("alpha", alpha)
            mlflow.log_param("l1_ratio", l1_ratio)
            mlflow.log_metric("rmse", rmse)
            mlflow.log_metric("r2", r2)
            mlflow.log_metric("mae", mae)
            mlflow.set_tag("dataset", "wine-quality.csv")
            mlflow.log_artifact(csv_path, artifact_path="data")

            signature = infer_signature(train_x, lr.predict(train_x))
            mlflow.sklearn.log_model(lr, "model", signature=signature, input_example=train_x[:5])
