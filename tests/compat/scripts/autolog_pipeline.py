"""``mlflow.autolog()`` on a scikit-learn Pipeline inside the user's own run, followed by a
post-training metric computed with ``sklearn.metrics`` on the fitted model's predictions.

The tracking server comes from MLFLOW_TRACKING_URI and the experiment from
MLFLOW_EXPERIMENT_NAME.
"""

import mlflow
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def prediction_input():
    X, _ = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:8]


if __name__ == "__main__":
    mlflow.autolog()
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=7)
    pipeline = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=0.75))])
    with mlflow.start_run(run_name="pipeline"):
        pipeline.fit(X_train, y_train)
        mean_squared_error(y_test, pipeline.predict(X_test))
        mlflow.log_param("split_seed", 7)
