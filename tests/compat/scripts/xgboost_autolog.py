"""``mlflow.xgboost.autolog()`` on ``xgboost.train`` with an evaluation set: params, the
per-iteration evaluation metrics with their steps, feature importances and the model.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME.
"""

import mlflow
import mlflow.xgboost
import xgboost as xgb
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split


def prediction_input():
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:8]


if __name__ == "__main__":
    mlflow.xgboost.autolog()
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=3)
    dtrain = xgb.DMatrix(X_train, label=y_train)
    dvalid = xgb.DMatrix(X_valid, label=y_valid)
    params = {
        "objective": "reg:squarederror",
        "max_depth": 3,
        "eta": 0.3,
        "seed": 42,
        "nthread": 1,
        "eval_metric": ["rmse", "mae"],
    }
    with mlflow.start_run(run_name="xgboost"):
        xgb.train(params, dtrain, num_boost_round=8, evals=[(dtrain, "train"), (dvalid, "valid")])
