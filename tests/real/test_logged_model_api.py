"""MLflow 3's logged-model API through ``import mlrelay as mlflow`` answers what MLflow's own
client answers for the same model on a real MLflow 3.17.2 server: ``get_logged_model``,
``last_logged_model``, ``search_logged_models`` (DataFrame and list, paging),
``MlflowClient.list_logged_model_artifacts``, tags set and deleted, ``finalize``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import mlrelay
from mlrelay.entities import LoggedModelStatus
from mlrelay.tracking import MlflowClient
from tests._servers import RunningServer

pytestmark = pytest.mark.real

FIELDS = (
    "model_id", "experiment_id", "name", "artifact_location", "creation_timestamp",
    "last_updated_timestamp", "model_type", "source_run_id", "status_message", "tags",
    "params", "model_uri",
)  # fmt: skip


def _view(model: Any) -> dict[str, Any]:
    """A logged model's fields, status as its name and metrics as plain tuples."""
    metrics = [
        (m.key, m.value, m.timestamp, m.step, m.model_id, m.run_id, m.dataset_name,
         m.dataset_digest)
        for m in model.metrics or []
    ]  # fmt: skip
    return {
        **{f: getattr(model, f) for f in FIELDS},
        "status": (str(model.status), model.status.name),
        "metrics": metrics,
    }


def _log(url: str) -> tuple[str, str]:
    """MLflow 3's quickstart with mlrelay: a run with a param and a metric, then
    ``sklearn.log_model`` with model params; returns the experiment and the model's id."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    mlrelay.set_tracking_uri(url)
    experiment = mlrelay.set_experiment(f"lmapi-{uuid.uuid4().hex[:8]}")
    with mlrelay.start_run():
        mlrelay.log_param("C", 1)
        mlrelay.log_metric("acc", 0.9)
        model = LogisticRegression(max_iter=300).fit(X, y)
        info = mlrelay.sklearn.log_model(model, name="m", params={"a": 1})
    assert info.model_id
    return str(experiment.experiment_id), info.model_id


def test_logged_model_reads_match_mlflows(mlflow_real: RunningServer) -> None:
    """get_logged_model, last_logged_model, both search_logged_models outputs, the client's
    paged search and artifact listing give MLflow's own client's fields for the same model."""
    import mlflow

    experiment_id, model_id = _log(mlflow_real.url)
    theirs = mlflow.MlflowClient(mlflow_real.url)
    expected = _view(theirs.get_logged_model(model_id))
    assert expected["params"] == {"C": "1", "a": "1"}
    assert expected["metrics"]
    assert _view(mlrelay.get_logged_model(model_id)) == expected
    last = mlrelay.last_logged_model()
    assert last is not None
    assert _view(last) == expected
    assert last.status == LoggedModelStatus.READY == "READY"
    [listed] = mlrelay.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert _view(listed) == expected

    mlflow.set_tracking_uri(mlflow_real.url)
    ours_df = mlrelay.search_logged_models(experiment_ids=[experiment_id])
    theirs_df = mlflow.search_logged_models(experiment_ids=[experiment_id])
    assert list(ours_df.columns) == list(theirs_df.columns)
    for column in ours_df.columns:
        if column == "metrics":
            assert len(ours_df[column][0]) == len(theirs_df[column][0])
        else:
            assert ours_df[column][0] == theirs_df[column][0], column
    assert str(ours_df["status"][0]) == str(theirs_df["status"][0]) == "READY"

    with MlflowClient(mlflow_real.url) as client:
        _client_reads_match(client, theirs, experiment_id, model_id)


def _client_reads_match(
    client: MlflowClient, theirs: Any, experiment_id: str, model_id: str
) -> None:
    """MlflowClient's paged search and artifact listing against MLflow's client."""
    for name in ("zz", "m"):
        flt = f"name = '{name}'"
        ours = client.search_logged_models([experiment_id], filter_string=flt, max_results=1)
        mine = theirs.search_logged_models([experiment_id], filter_string=flt, max_results=1)
        assert [m.model_id for m in ours] == [m.model_id for m in mine]
        assert (ours.token is None) == (mine.token is None)
        if ours.token:  # the token is the server's: the next pages agree too
            after = client.search_logged_models([experiment_id], page_token=ours.token)
            want = theirs.search_logged_models([experiment_id], page_token=mine.token)
            assert [m.model_id for m in after] == [m.model_id for m in want]
    files = client.list_logged_model_artifacts(model_id)
    listed = theirs.list_logged_model_artifacts(model_id)
    assert [(f.path, f.is_dir, f.file_size) for f in files] == [
        (f.path, f.is_dir, f.file_size) for f in listed
    ]
    assert "MLmodel" in {f.path for f in files}


def test_logged_model_tags_and_status_land_as_mlflow_reads_them(
    mlflow_real: RunningServer,
) -> None:
    """Tags set and deleted through the fluent API and MlflowClient, and a finalize, are what
    MLflow's client then reads; an unknown model is NotFoundError, as MLflow's error."""
    import mlflow

    _, model_id = _log(mlflow_real.url)
    theirs = mlflow.MlflowClient(mlflow_real.url)
    with MlflowClient(mlflow_real.url) as client:
        _tags_and_status(client, theirs, model_id)


def _tags_and_status(client: MlflowClient, theirs: Any, model_id: str) -> None:
    """Tags set and deleted by both APIs, then finalize, each read back by MLflow."""
    mlrelay.set_logged_model_tags(model_id, {"stage": "dev", "n": 3})
    client.set_logged_model_tags(model_id, {"owner": "me"})
    tags = theirs.get_logged_model(model_id).tags
    assert (tags["stage"], tags["n"], tags["owner"]) == ("dev", "3", "me")
    mlrelay.delete_logged_model_tag(model_id, "stage")
    client.delete_logged_model_tag(model_id, "owner")
    assert {"stage", "owner"}.isdisjoint(theirs.get_logged_model(model_id).tags)
    assert client.get_logged_model(model_id).tags == theirs.get_logged_model(model_id).tags

    failed = mlrelay.finalize_logged_model(model_id, "FAILED")
    assert failed.status == LoggedModelStatus.FAILED
    assert str(theirs.get_logged_model(model_id).status) == "FAILED"
    assert client.finalize_logged_model(model_id, LoggedModelStatus.READY).status == "READY"
    with pytest.raises(mlrelay.NotFoundError):
        mlrelay.get_logged_model("m-" + uuid.uuid4().hex)
    with pytest.raises(mlrelay.ValidationError):
        mlrelay.finalize_logged_model(model_id, "PENDING")  # type: ignore[arg-type]
