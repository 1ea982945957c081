"""MLflow's tracking namespaces against a real MLflow 3.17.2 server, side by side with MLflow's
own client for the same calls: search_runs' DataFrame, MlflowClient, log_table,
mlrelay.artifacts' paths, datasets, errors."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlrelay
from mlrelay.tracking import MlflowClient
from tests._servers import RunningServer

pytestmark = pytest.mark.real

pd = pytest.importorskip("pandas")


@pytest.fixture
def mlflow(mlflow_real: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow's own package, pointed at the real server through the environment; mlrelay's
    fluent API points there too."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow as real
        import mlflow.artifacts
        import mlflow.data
    mlrelay.set_tracking_uri(mlflow_real.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield real


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_search_runs_dataframe_is_mlflows(mlflow: Any) -> None:
    """For the same runs, mlrelay.search_runs and mlflow.search_runs give the same DataFrame:
    columns, dtypes, values and nulls (rows and columns sorted, as MLflow's column order
    follows a set)."""
    exp_id = mlrelay.set_experiment(_name("frame")).experiment_id
    with mlrelay.start_run(run_name="a"):
        mlrelay.log_metrics({"acc": 0.9, "loss": 0.1}, step=2)
        mlrelay.log_params({"lr": 0.1, "depth": 3})
        mlrelay.set_tag("team", "vision")
    with mlrelay.start_run(run_name="b"):
        mlrelay.log_metric("loss", 0.3)
        mlrelay.log_param("lr", 0.2)
    assert mlrelay.flush(30)

    def tidy(frame: Any) -> Any:
        frame = frame.sort_values("run_id").reset_index(drop=True)
        return frame[sorted(frame.columns)]

    ours = tidy(mlrelay.search_runs([exp_id]))
    theirs = tidy(mlflow.search_runs([exp_id]))
    pd.testing.assert_frame_equal(ours, theirs)
    assert {"metrics.acc", "params.depth", "tags.team", "tags.mlflow.runName"} <= set(ours.columns)
    by_name = mlrelay.search_runs(experiment_names=[mlflow.get_experiment(exp_id).name])
    assert sorted(by_name["run_id"]) == sorted(theirs["run_id"])
    listed = mlrelay.search_runs([exp_id], "params.lr = '0.2'", output_format="list")
    their_list = mlflow.search_runs([exp_id], "params.lr = '0.2'", output_format="list")
    assert [r.info.run_id for r in listed] == [r.info.run_id for r in their_list]


def test_mlflow_client_answers_as_mlflows(mlflow: Any, mlflow_real: RunningServer) -> None:
    """The same MlflowClient calls through mlrelay and through MLflow give the same data:
    a run built with positional entities, metric history, paged searches, errors."""
    theirs = mlflow.MlflowClient(mlflow_real.url)
    with MlflowClient(mlflow_real.url) as ours:
        exp_id = ours.create_experiment(_name("client"))
        results = []
        for client, entities in ((ours, mlrelay.entities), (theirs, mlflow.entities)):
            run_id = client.create_run(exp_id, run_name="same").info.run_id
            client.log_batch(
                run_id,
                [entities.Metric("m", 0.5, 1_700_000_000_000, 1)],
                [entities.Param("p", "1")],
                [entities.RunTag("t", "v")],
            )
            client.log_metric(run_id, "m", 0.25, 1_700_000_000_001, 2)
            client.set_terminated(run_id, "FAILED")
            run = client.get_run(run_id)
            history = [(h.step, h.value) for h in client.get_metric_history(run_id, "m")]
            tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.mlrelay.clientKey"}
            results.append((run.data.metrics, run.data.params, tags, history, run.info.status))
        assert results[0] == results[1]
        mine = ours.search_runs([exp_id], max_results=1, order_by=["attributes.start_time"])
        other = theirs.search_runs([exp_id], max_results=1, order_by=["attributes.start_time"])
        assert [r.info.run_id for r in mine] == [r.info.run_id for r in other]
        assert (mine.token is None) == (other.token is None) is False
        with pytest.raises(mlrelay.exceptions.MlflowException) as caught:
            ours.get_run(uuid.uuid4().hex)
        with pytest.raises(mlflow.exceptions.MlflowException) as reference:
            theirs.get_run(uuid.uuid4().hex)
        assert caught.value.error_code == reference.value.error_code
        assert caught.value.get_http_status_code() == reference.value.get_http_status_code()


def test_log_table_writes_what_mlflow_writes(mlflow: Any, tmp_path: Path) -> None:
    """log_table twice to one file, by mlrelay's fluent API, mlrelay's MlflowClient and
    MLflow's client: the same file contents and the same mlflow.loggedArtifacts tag."""
    first = {"question": ["a?", "b?"], "score": [0.5, 1.0]}
    second = pd.DataFrame({"question": ["c?"], "score": [0.25]})
    with mlrelay.start_run() as fluent_run:
        mlrelay.log_table(first, "eval/table.json")
        mlrelay.log_table(second, "eval/table.json")
    with MlflowClient() as ours:
        client_run = ours.create_run("0").info.run_id
        ours.log_table(client_run, first, "eval/table.json")
        ours.log_table(client_run, second, "eval/table.json")
    reference = mlflow.MlflowClient()
    their_run = reference.create_run("0").info.run_id
    reference.log_table(their_run, first, "eval/table.json")
    reference.log_table(their_run, second, "eval/table.json")
    contents, tags = [], []
    for i, run_id in enumerate((fluent_run.info.run_id, client_run, their_run)):
        local = reference.download_artifacts(run_id, "eval/table.json", str(tmp_path / str(i)))
        contents.append(json.loads(Path(local).read_text()))
        tags.append(reference.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert contents[0] == contents[1] == contents[2]
    assert tags[0] == tags[1] == tags[2]


def test_artifacts_module_gives_mlflows_paths(mlflow: Any, tmp_path: Path) -> None:
    """mlrelay.artifacts.list_artifacts / download_artifacts / load_* give the paths and
    contents mlflow.artifacts gives, for runs:/ and mlflow-artifacts:/ URIs and run_id forms."""
    with mlrelay.start_run() as run:
        mlrelay.log_dict({"lr": 0.1}, "cfg/params.json")
        mlrelay.log_text("ok", "cfg/sub/note.txt")
    run_id, root = run.info.run_id, run.info.artifact_uri
    uris = [f"runs:/{run_id}/cfg", f"runs:/{run_id}/cfg/sub", f"{root}/cfg"]
    for uri in uris:
        ours = sorted(f.path for f in mlrelay.artifacts.list_artifacts(uri))
        assert ours == sorted(f.path for f in mlflow.artifacts.list_artifacts(uri)), uri
    for path in ("cfg", None):
        ours = mlrelay.artifacts.list_artifacts(run_id=run_id, artifact_path=path)
        theirs = mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path=path)
        assert sorted(f.path for f in ours) == sorted(f.path for f in theirs)
    cases: list[dict[str, str]] = [
        {"artifact_uri": f"runs:/{run_id}/cfg/sub"},
        {"artifact_uri": f"{root}/cfg/params.json"},
        {"run_id": run_id, "artifact_path": "cfg/sub/note.txt"},
        {"run_id": run_id},
    ]
    for i, case in enumerate(cases):
        mine = mlrelay.artifacts.download_artifacts(**case, dst_path=str(tmp_path / f"o{i}"))
        other = mlflow.artifacts.download_artifacts(**case, dst_path=str(tmp_path / f"t{i}"))
        assert Path(mine).relative_to(tmp_path / f"o{i}") == Path(other).relative_to(
            tmp_path / f"t{i}"
        ), case
    uri = f"runs:/{run_id}/cfg/params.json"
    assert mlrelay.artifacts.load_dict(uri) == mlflow.artifacts.load_dict(uri)
    note = f"runs:/{run_id}/cfg/sub/note.txt"
    assert mlrelay.artifacts.load_text(note) == mlflow.artifacts.load_text(note)


def test_datasets_land_as_mlflows(mlflow: Any) -> None:
    """A DataFrame logged with mlrelay.data.from_pandas + log_input is recorded like the same
    DataFrame logged with MLflow's mlflow.data.from_pandas + log_input."""
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "quality": [3, 5, 6]})
    source = "https://example.org/wine.csv"
    with mlrelay.start_run() as ours:
        mlrelay.log_input(mlrelay.data.from_pandas(df, source, "quality", "wine"), "training")
    assert mlrelay.flush(30)
    with mlflow.start_run() as theirs:
        mlflow.log_input(mlflow.data.from_pandas(df, source, "quality", "wine"), "training")
    client = mlflow.MlflowClient()
    recorded = []
    for run_id in (ours.info.run_id, theirs.info.run_id):
        [item] = client.get_run(run_id).inputs.dataset_inputs
        d = item.dataset
        recorded.append(
            (d.name, d.digest, d.source_type, d.source, d.schema, d.profile,
             {t.key: t.value for t in item.tags})
        )  # fmt: skip
    assert recorded[0] == recorded[1]


def test_run_id_and_parent_run_id_on_the_real_server(mlflow: Any) -> None:
    """log_metric(run_id=...) into a finished run lands and leaves it FINISHED, as MLflow's
    does; start_run(parent_run_id=...) gives the nesting MLflow's get_parent_run reads."""
    with mlrelay.start_run() as parent:
        pass
    mlrelay.log_metric("after", 1.0, step=3, run_id=parent.info.run_id)
    with mlrelay.start_run(parent_run_id=parent.info.run_id) as child:
        mlrelay.log_metric("child", 2.0, synchronous=True)
    client = mlflow.MlflowClient()
    got = client.get_run(parent.info.run_id)
    assert got.data.metrics == {"after": 1.0}
    assert got.info.status == "FINISHED"
    assert client.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert client.get_run(child.info.run_id).data.metrics == {"child": 2.0}
