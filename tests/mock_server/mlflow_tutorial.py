"""The classic MLflow tutorial flow, run by MLflow's own client against MLFLOW_TRACKING_URI.

Run as a script by tests/mock_server/test_mlflow_client.py; prints "TUTORIAL OK" at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient


class Doubler(mlflow.pyfunc.PythonModel):
    """A tiny pyfunc model to log and register."""

    def predict(
        self, model_input: list[float], params: dict[str, str] | None = None
    ) -> list[float]:
        """Double each input."""
        return [x * 2 for x in model_input]


def main() -> None:
    """Run the flow and check every read against what was written."""
    assert os.environ["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    experiment = mlflow.set_experiment("tutorial")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({"acc": step / 10, "f1": step / 20}, step=step)
        mlflow.set_tag("team", "research")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "notes.txt"
            path.write_text("hello artifact\n")
            mlflow.log_artifact(str(path))
            mlflow.log_artifact(str(path), artifact_path="docs")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 42.0)
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler())

    client = MlflowClient()
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4], history
    assert history[-1].value == 0.2
    finished = client.get_run(parent.info.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert finished.data.tags["team"] == "research"
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    artifacts = sorted(a.path for a in client.list_artifacts(parent.info.run_id))
    assert artifacts == ["docs", "notes.txt"], artifacts
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(parent.info.run_id, "docs/notes.txt", tmp)
        assert Path(local).read_text() == "hello artifact\n"

    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string="metrics.loss < 0.5 AND params.optimizer = 'adam'",
        order_by=["metrics.acc DESC"],
    )
    assert list(runs["run_id"]) == [parent.info.run_id], runs
    nested = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert [r.info.run_id for r in nested] == [child.info.run_id]

    version = mlflow.register_model(info.model_uri, "tutorial-model")
    assert version.version == "1"
    client.set_registered_model_alias("tutorial-model", "champion", version.version)
    assert client.get_model_version_by_alias("tutorial-model", "champion").version == "1"
    staged = client.transition_model_version_stage("tutorial-model", version.version, "Staging")
    assert staged.current_stage == "Staging"
    latest = client.get_latest_versions("tutorial-model", stages=["Staging"])
    assert [v.version for v in latest] == ["1"]
    # MLflow 3's client adds a filter on the prompt tag to every registry search.
    assert [m.name for m in client.search_registered_models()] == ["tutorial-model"]
    assert [v.version for v in client.search_model_versions("name = 'tutorial-model'")] == ["1"]
    loaded = mlflow.pyfunc.load_model("models:/tutorial-model@champion")
    assert list(loaded.predict([1.0, 2.5])) == [2.0, 5.0]
    sys.stdout.write("TUTORIAL OK\n")


if __name__ == "__main__":
    main()
