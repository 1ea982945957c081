"""The classic MLflow tutorial flow with only the import changed: a grid of runs.

A gradient-boosting classifier is trained for every combination of hyperparameters; each
combination is a run with its params and a per-epoch (per-stage) validation curve.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/sklearn_grid.py
"""

from __future__ import annotations

import itertools

import mlrelay as mlflow  # the only change from MLflow's tutorial


def main() -> None:
    """Train a small grid and log each combination as a run."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0)

    mlflow.set_experiment("sklearn-grid")
    with mlflow.start_run(run_name="grid-search") as parent:
        for lr, depth in itertools.product([0.05, 0.2], [2, 3]):
            with mlflow.start_run(run_name=f"lr={lr},depth={depth}", nested=True):
                mlflow.log_params({"learning_rate": lr, "max_depth": depth, "n_estimators": 30})
                model = GradientBoostingClassifier(
                    learning_rate=lr, max_depth=depth, n_estimators=30, random_state=0
                ).fit(x_train, y_train)
                for epoch, proba in enumerate(model.staged_predict_proba(x_val)):
                    mlflow.log_metrics(
                        {
                            "val_loss": log_loss(y_val, proba),
                            "val_accuracy": accuracy_score(y_val, proba.argmax(axis=1)),
                        },
                        step=epoch,
                    )
                mlflow.set_tag("model", "GradientBoostingClassifier")
    runs = mlflow.search_runs(filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    best = runs.loc[runs["metrics.val_accuracy"].idxmax()]
    print(
        f"{len(runs)} runs logged; best: {best['tags.mlflow.runName']} "
        f"(val_accuracy {best['metrics.val_accuracy']:.3f})"
    )


if __name__ == "__main__":
    main()
