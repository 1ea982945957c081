"""A mock started with a local artifact root, as `mlflow server --default-artifact-root`
without `--serve-artifacts`: MLflow's client writes the files itself, the server lists and
serves them, and local model-version sources inside a run's folder are taken."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from mlrelay_mock import MockServer

mlflow = pytest.importorskip("mlflow")


def test_mlflow_client_logs_lists_and_downloads_under_a_file_root(tmp_path: Path) -> None:
    """Experiments and runs get file: locations under the root; what MLflow's client writes
    there is listed by artifacts/list and served by /get-artifact."""
    root = tmp_path / "artifacts"
    with MockServer(default_artifact_root=root.as_uri()) as server:
        client = mlflow.MlflowClient(server.url)
        experiment_id = client.create_experiment("file-root")
        location = client.get_experiment(experiment_id).artifact_location
        assert location == f"{root.as_uri()}/{experiment_id}"
        run = client.create_run(experiment_id)
        assert run.info.artifact_uri == f"{location}/{run.info.run_id}/artifacts"
        source = tmp_path / "notes.txt"
        source.write_text("hello")
        client.log_artifact(run.info.run_id, str(source), "docs")
        on_disk = root / experiment_id / run.info.run_id / "artifacts" / "docs" / "notes.txt"
        assert on_disk.read_text() == "hello"
        listed = client.list_artifacts(run.info.run_id, "docs")
        assert [(a.path, a.file_size) for a in listed] == [("docs/notes.txt", 5)]
        served = httpx.get(
            f"{server.url}/get-artifact",
            params={"run_id": run.info.run_id, "path": "docs/notes.txt"},
        )
        assert (served.status_code, served.text) == (200, "hello")


def test_a_local_source_inside_the_run_folder_is_a_valid_model_version(tmp_path: Path) -> None:
    """A file: URI or path inside the run's artifact folder registers (with its run id);
    outside it, or without the run id, MLflow's 400."""
    with MockServer(default_artifact_root=str(tmp_path / "artifacts")) as server:
        client = mlflow.MlflowClient(server.url)
        run = client.create_run(client.create_experiment("sources"))
        client.create_registered_model("m")
        api = f"{server.url}/api/2.0/mlflow/model-versions/create"
        uri = run.info.artifact_uri
        for source in (uri, f"{uri}/model", f"{uri}/model/..", uri[len("file://") :]):
            body = {"name": "m", "source": source, "run_id": run.info.run_id}
            assert httpx.post(api, json=body).status_code == 200, source
        for body in (
            {"name": "m", "source": uri},
            {"name": "m", "source": "/tmp", "run_id": run.info.run_id},
        ):
            refused = httpx.post(api, json=body)
            assert refused.status_code == 400
            assert "To use a local path as a model version" in refused.json()["message"]


def test_only_local_folders_can_be_the_artifact_root() -> None:
    """A remote artifact root is refused up front: the mock stores no remote files."""
    with pytest.raises(ValueError, match="local folder"):
        MockServer(default_artifact_root="s3://bucket/path")
