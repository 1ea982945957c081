"""Quickstart: log a small training run with mlrelay's Client, then read it back.

Configure the server with environment variables, exactly as for MLflow:

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/quickstart.py

    # DagsHub (Basic auth with your user name and an access token):
    MLFLOW_TRACKING_URI=https://dagshub.com/<owner>/<repo>.mlflow \
    MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<token> python examples/quickstart.py
"""

from __future__ import annotations

import math
import time

import mlrelay


def train(client: mlrelay.Client, experiment_id: str) -> str:
    """A toy training loop: params once, a loss and an accuracy per epoch, a tag at the end."""
    run = client.create_run(experiment_id, run_name="quickstart", tags={"team": "demo"})
    run_id = run.info.run_id
    params = {"learning_rate": 0.01, "epochs": 20, "optimizer": "adam"}
    client.log_batch(run_id, params=[mlrelay.Param(key=k, value=str(v)) for k, v in params.items()])
    points = []
    for epoch in range(params["epochs"]):
        ts = int(time.time() * 1000)
        loss = 2.0 * math.exp(-0.2 * epoch)
        points.append(mlrelay.Metric(key="loss", value=loss, timestamp=ts, step=epoch))
        points.append(
            mlrelay.Metric(key="accuracy", value=1 - loss / 2.2, timestamp=ts, step=epoch)
        )
    client.log_batch(run_id, metrics=points)  # one request, split automatically if large
    client.set_tag(run_id, "stage", "finished-training")
    client.set_terminated(run_id)
    return run_id


def main() -> None:
    """Log one run and print what the server now holds."""
    with mlrelay.Client() as client:  # MLFLOW_TRACKING_URI and credentials from the environment
        name = "mlrelay-quickstart"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run_id = train(client, experiment_id)

        run = client.get_run(run_id)
        history = client.get_metric_history(run_id, "loss")
        print(f"Tracking server : {client.tracking_uri}")
        print(f"Experiment      : {name} (id {experiment_id})")
        print(f"Run             : {run.info.run_name} ({run_id}), status {run.info.status}")
        print(f"Params          : {run.data.params_dict}")
        print(f"Latest metrics  : { {k: round(v, 4) for k, v in run.data.metrics_dict.items()} }")
        print(
            f"Loss history    : {len(history)} points, first {history[0].value:.3f}, "
            f"last {history[-1].value:.3f}"
        )
        user_tags = {
            k: v for k, v in run.data.tags_dict.items() if not k.startswith(("mlflow.", "mlrelay."))
        }
        print(f"Tags            : {user_tags}")


if __name__ == "__main__":
    main()
