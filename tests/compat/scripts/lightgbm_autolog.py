"""``mlflow.lightgbm.autolog()`` on ``lightgbm.train`` with validation sets: params, the
per-iteration validation metrics with their steps, feature importances and the model.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME.
"""

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def prediction_input():
    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:8]


if __name__ == "__main__":
    mlflow.lightgbm.autolog()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.3, random_state=5)
    train_set = lgb.Dataset(X_train, label=y_train)
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
    params = {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "num_leaves": 7,
        "learning_rate": 0.2,
        "seed": 42,
        "num_threads": 1,
        "deterministic": True,
        "verbose": -1,
    }
    with mlflow.start_run(run_name="lightgbm"):
        lgb.train(
            params,
            train_set,
            num_boost_round=6,
            valid_sets=[train_set, valid_set],
            valid_names=["train", "valid"],
        )
