"""``mlflow.sklearn.autolog()`` on a GridSearchCV with no active run: autolog starts the
parent run, logs the best candidate, one child run per candidate up to max_tuning_runs, and
the search's results.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME.
"""

import mlflow
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC


def prediction_input():
    X, _ = load_iris(return_X_y=True, as_frame=True)
    return X.iloc[::15]


if __name__ == "__main__":
    mlflow.sklearn.autolog(max_tuning_runs=3)
    X, y = load_iris(return_X_y=True, as_frame=True)
    grid = {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0]}
    search = GridSearchCV(SVC(random_state=0), grid, cv=3)
    search.fit(X, y)
