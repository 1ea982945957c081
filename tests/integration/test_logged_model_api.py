"""MLflow 3's logged-model API against the bundled mock server: what a model logged by
``log_model`` reads back as, ``last_logged_model`` per process state, the refusals
(bad status, bad output format, a tag key the REST route cannot address), and an MLflow 2
server, where there are no logged models."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay as mlflow  # MLflow 3's snippets with the import changed
from mlrelay.entities import LoggedModel, LoggedModelStatus
from mlrelay.tracking import MlflowClient


def _model() -> object:
    """A tiny fitted scikit-learn model."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])


def test_a_logged_model_reads_back_with_mlflows_attributes(tmp_path: Path) -> None:
    """After sklearn.log_model, get/last/search_logged_models return one LoggedModel with
    MLflow's attributes: id, name, run, READY status, params, tags; tags set and removed;
    its files listed and downloaded by id."""
    with MockServer() as server:
        mlflow.set_tracking_uri(server.url)
        experiment = mlflow.set_experiment("lm")
        assert mlflow.last_logged_model() is None
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(_model(), name="m", params={"a": 1})
        model = mlflow.get_logged_model(info.model_id)
        assert isinstance(model, LoggedModel)
        assert (model.model_id, model.name, model.source_run_id) == (
            info.model_id, "m", run.info.run_id,
        )  # fmt: skip
        assert model.experiment_id == experiment.experiment_id
        assert model.model_uri == f"models:/{info.model_id}"
        assert model.status is LoggedModelStatus.READY
        assert (str(model.status), model.status.name, model.status.to_int()) == ("READY",) * 2 + (
            2,
        )
        assert model.params == {"a": "1"}
        assert model.artifact_location.endswith(f"{info.model_id}/artifacts")
        last = mlflow.last_logged_model()
        assert last is not None
        assert last.model_id == info.model_id
        assert [m.model_id for m in mlflow.search_logged_models(output_format="list")] == [
            info.model_id
        ]
        mlflow.set_logged_model_tags(info.model_id, {"team": "a", "n": 1})
        assert {"team": "a", "n": "1"}.items() <= mlflow.get_logged_model(
            info.model_id
        ).tags.items()
        mlflow.delete_logged_model_tag(info.model_id, "team")
        assert "team" not in mlflow.get_logged_model(info.model_id).tags
        with mlflow.Client(tracking_uri=server.url) as client:
            listed = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
            local = client.download_logged_model_artifacts(info.model_id, "MLmodel", str(tmp_path))
        assert "MLmodel" in listed
        assert f"model_id: {info.model_id}" in Path(local).read_text()


def test_refusals_name_the_field() -> None:
    """A status other than READY/FAILED, an unknown output format and a tag key with '/'
    are ValidationErrors naming the field; an unknown id is NotFoundError."""
    with MockServer() as server, MlflowClient(server.url) as client:
        mlflow.set_tracking_uri(server.url)
        with pytest.raises(mlflow.ValidationError) as status:
            client.finalize_logged_model("m-1", "PENDING")  # type: ignore[arg-type]
        with pytest.raises(mlflow.ValidationError) as output:
            mlflow.search_logged_models(experiment_ids=["0"], output_format="json")  # type: ignore[arg-type]
        with pytest.raises(mlflow.ValidationError) as key:
            mlflow.delete_logged_model_tag("m-1", "a/b")
        with pytest.raises(mlflow.NotFoundError):
            client.get_logged_model("m-missing")
    assert (status.value.field, output.value.field, key.value.field) == (
        "status", "output_format", "key",
    )  # fmt: skip


def test_mlflow_2_has_no_logged_models() -> None:
    """On an MLflow 2 server log_model makes no logged model, so last_logged_model is None,
    and the logged-model calls say the server has no logged models."""
    with MockServer(mlflow_version="2.7.1") as server:
        mlflow.set_tracking_uri(server.url)
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(_model(), name="m")
        assert info.model_id is None
        assert mlflow.last_logged_model() is None
        with pytest.raises(mlflow.RegistryNotSupportedError, match="no logged models"):
            mlflow.search_logged_models(experiment_ids=["0"])
