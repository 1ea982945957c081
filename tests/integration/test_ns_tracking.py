"""MLflow's tracking namespaces with the import changed: ``MlflowClient``, ``mlrelay.artifacts``,
``mlrelay.data``, the fluent additions (``run_id=``, ``synchronous=``, ``log_table``,
``search_runs`` as a DataFrame, experiments), against the bundled mock server."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay as mlflow  # the only change from MLflow's snippets
from mlrelay._pipeline import runs
from mlrelay.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlrelay.exceptions import MlflowException
from mlrelay.tracking import MlflowClient

pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")


@pytest.fixture
def client(server: MockServer) -> Iterator[MlflowClient]:
    """MLflow's client class over the mock server (the fluent API points there too)."""
    mlflow.set_tracking_uri(server.url)
    with MlflowClient() as c:
        yield c


def _journal_records(server_run_id: str) -> list[runs.RunRecord]:
    pipeline = runs.session.pipeline
    assert pipeline is not None
    return [s.run for s in pipeline.journal.status() if s.run.server_run_id == server_run_id]


# --- MlflowClient ---------------------------------------------------------------------------


def test_mlflow_client_tracking_calls_in_mlflows_argument_order(client: MlflowClient) -> None:
    """MlflowClient's run calls take MLflow's positional order, entities are built
    positionally, and search_runs pages with a token as MLflow's PagedList does."""
    exp_id = client.create_experiment("client-flow", tags={"team": "a"})
    experiment = client.get_experiment_by_name("client-flow")
    assert experiment is not None
    assert experiment.tags == {"team": "a"}
    run = client.create_run(exp_id, None, {"mlflow.user": "ada"}, "first")
    run_id = run.info.run_id
    assert (run.info.run_name, run.info.user_id) == ("first", "ada")
    client.log_metric(run_id, "loss", 0.5, 1_700_000_000_000, 3)
    assert client.log_param(run_id, "lr", 0.1) == 0.1
    client.set_tag(run_id, "stage", "dev")
    client.log_batch(
        run_id,
        [Metric("loss", 0.25, 1_700_000_000_001, 4), Metric("acc", 0.9, 1_700_000_000_001, 4)],
        [Param("layers", "3")],
        [RunTag("kind", "test")],
    )
    client.update_run(run_id, name="renamed")
    client.set_terminated(run_id)
    got = client.get_run(run_id)
    assert got.data.metrics == {"loss": 0.25, "acc": 0.9}
    assert got.data.params == {"lr": "0.1", "layers": "3"}
    assert (got.data.tags["stage"], got.data.tags["kind"]) == ("dev", "test")
    assert (got.info.run_name, got.info.status) == ("renamed", "FINISHED")
    assert RunStatus.is_terminated(RunStatus.from_string(got.info.status))
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (3, 0.5),
        (4, 0.25),
    ]
    second = client.create_run(exp_id).info.run_id
    order = ["attributes.start_time ASC", "attributes.run_id ASC"]
    page = client.search_runs([exp_id], max_results=1, order_by=order)
    assert len(page) == 1
    assert page.token
    rest = client.search_runs([exp_id], "", ViewType.ACTIVE_ONLY, 1, order, page.token)
    assert {page[0].info.run_id, rest[0].info.run_id} == {run_id, second}
    client.delete_run(second)
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [second]
    assert deleted.token is None
    client.restore_run(second)
    assert len(client.search_runs(exp_id, run_view_type=ViewType.ALL)) == 2


def test_mlflow_client_experiments_and_errors(client: MlflowClient) -> None:
    """Experiments by MLflow's names and view types; a missing run raises MlflowException
    with MLflow's error code and HTTP status."""
    exp_id = client.create_experiment("exp-a")
    client.set_experiment_tag(exp_id, "k", "v")
    client.rename_experiment(exp_id, "exp-b")
    assert client.get_experiment(exp_id).name == "exp-b"
    assert client.get_experiment_by_name("exp-a") is None
    client.delete_experiment(exp_id)
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [exp_id]
    assert exp_id in {e.experiment_id for e in client.search_experiments(ViewType.ALL, None)}
    client.restore_experiment(exp_id)
    client.delete_experiment_tag(exp_id, "k")
    assert client.get_experiment(exp_id).tags == {}
    with pytest.raises(MlflowException) as caught:
        client.get_run("0" * 32)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert caught.value.get_http_status_code() == 404
    assert isinstance(caught.value, mlflow.exceptions.RestException)


def test_mlflow_client_artifacts_and_tables(client: MlflowClient, tmp_path: Path) -> None:
    """Artifacts through MlflowClient, and log_table as MLflow writes it: appended on a second
    call, split JSON, listed in the mlflow.loggedArtifacts tag once."""
    run_id = client.create_run("0").info.run_id
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "f.txt").write_text("f")
    client.log_artifact(run_id, str(tmp_path / "f.txt"))
    client.log_artifacts(run_id, str(tmp_path / "d"), "dir")
    client.log_text(run_id, "hello", "notes/t.txt")
    client.log_dict(run_id, {"a": 1}, "cfg.json")
    client.log_table(run_id, {"x": [1, 2], "y": ["a", "b"]}, "tables/t.json")
    client.log_table(run_id, pd.DataFrame({"x": [3], "y": ["c"]}), "tables/t.json")
    assert sorted(f.path for f in client.list_artifacts(run_id)) == [
        "cfg.json", "dir", "f.txt", "notes", "tables",
    ]  # fmt: skip
    local = client.download_artifacts(run_id, "tables/t.json", str(tmp_path / "dl"))
    assert local == str(tmp_path / "dl" / "tables" / "t.json")
    assert json.loads(Path(local).read_text()) == {
        "columns": ["x", "y"],
        "data": [[1, "a"], [2, "b"], [3, "c"]],
    }
    tag = client.get_run(run_id).data.tags["mlflow.loggedArtifacts"]
    assert json.loads(tag) == [{"path": "tables/t.json", "type": "table"}]
    with pytest.raises(mlflow.UnsupportedFeatureError, match="artifact_file"):
        client.log_image(run_id, np.zeros((2, 2)), key="img", step=1)


def test_mlflow_client_registry(client: MlflowClient, tmp_path: Path) -> None:
    """The registry through MlflowClient: versions, aliases, stages, tags by stage, and the
    searches' PagedList (all results, token None)."""
    run_id = client.create_run("0").info.run_id
    (tmp_path / "model.pkl").write_bytes(b"m")
    client.log_artifact(run_id, str(tmp_path / "model.pkl"), "model")
    client.create_registered_model("churn", {"team": "a"}, "first model")
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    v1 = client.create_model_version("churn", source, run_id)
    assert (v1.version, v1.run_id, v1.status) == ("1", run_id, "READY")
    client.set_registered_model_alias("churn", "champion", v1.version)
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    client.transition_model_version_stage("churn", "1", "Staging")
    assert [v.version for v in client.get_latest_versions("churn", ["Staging"])] == ["1"]
    client.set_model_version_tag("churn", key="checked", value="yes", stage="Staging")
    assert {t.key: t.value for t in client.get_model_version("churn", "1").tags}["checked"] == "yes"
    assert client.update_model_version("churn", "1", "better").description == "better"
    found = client.search_model_versions("name = 'churn'")
    assert [v.version for v in found] == ["1"]
    assert found.token is None
    assert [m.name for m in client.search_registered_models()] == ["churn"]
    with pytest.raises(mlflow.ValidationError, match="page"):
        client.search_registered_models(page_token="next")
    client.delete_registered_model_alias("churn", "champion")
    assert client.get_model_version_stages("churn", "1") == [
        "None", "Staging", "Production", "Archived",
    ]  # fmt: skip


# --- run_id= and synchronous= -----------------------------------------------------------------


def test_run_id_logs_into_an_ended_run_without_changing_its_status(server: MockServer) -> None:
    """After `with start_run() as run`, log_metric/log_params/log_text(run_id=...) still land
    in that run through the journal; its status stays FINISHED, and at the end the attached
    journal record ends RESUMED (so no status is ever sent for it)."""
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        mlflow.log_metric("train_loss", 0.5)
    run_id = run.info.run_id
    mlflow.log_metric("test_acc", 0.75, run_id=run_id)
    mlflow.log_metrics({"test_f1": 0.7}, step=2, run_id=run_id)
    mlflow.log_params({"evaluated": True}, run_id=run_id)
    mlflow.log_text("report", "eval/report.txt", run_id=run_id)
    assert mlflow.flush(20)
    got = mlflow.get_run(run_id)
    assert got.data.metrics == {"train_loss": 0.5, "test_acc": 0.75, "test_f1": 0.7}
    assert got.data.params == {"evaluated": "True"}
    assert got.info.status == "FINISHED"
    assert [f.path for f in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="eval")]
    records = _journal_records(run_id)
    assert sorted(r.status or "" for r in records) == ["", "FINISHED"]
    pipeline = runs.session.pipeline
    assert pipeline is not None
    runs.session.end_attached(pipeline)
    assert sorted(r.status or "" for r in _journal_records(run_id)) == ["FINISHED", "RESUMED"]


def test_run_id_of_a_run_only_on_the_server(client: MlflowClient) -> None:
    """run_id= of a run another client created: the entries land, the run stays RUNNING."""
    run_id = client.create_run("0").info.run_id
    mlflow.log_metric("m", 1.0, step=5, run_id=run_id)
    mlflow.log_artifact(__file__, "src", run_id=run_id)
    assert mlflow.flush(20)
    got = client.get_run(run_id)
    assert got.data.metrics == {"m": 1.0}
    assert got.info.status == "RUNNING"
    assert [f.path for f in client.list_artifacts(run_id, "src")] == [f"src/{Path(__file__).name}"]


def test_run_id_of_a_run_active_in_another_thread_uses_that_run(server: MockServer) -> None:
    """A worker thread (its own context, no active run) logging with the main thread's run
    id logs into that run's journal record: no second record, one run on the server."""
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        worker = threading.Thread(
            target=lambda: [
                mlflow.log_metric("w", float(i), step=i, run_id=run_id) for i in range(3)
            ]
        )
        worker.start()
        worker.join()
        assert len(_journal_records(run_id)) == 1
    assert mlflow.get_run(run_id).data.metrics == {"w": 2.0}


def test_run_id_of_an_unknown_local_run_is_refused(server: MockServer) -> None:
    """A run only this journal holds, ended and never created on the server, cannot be
    attached to: the error says why and what to do instead."""
    mlflow.set_tracking_uri(server.url, mode="offline")
    with mlflow.start_run() as run:
        pass
    with pytest.raises(mlflow.ValidationError, match="not on the tracking server yet"):
        mlflow.log_metric("m", 1.0, run_id=run.local_id)


def test_synchronous_true_with_a_slow_server(server: MockServer) -> None:
    """log_metric(synchronous=True) against a log-batch delayed by 1 s: the point is on the
    server when the call returns (a read with another client sees it at once)."""
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run, MlflowClient(server.url) as reader:
        mlflow.log_metric("first", 1.0, synchronous=True)
        server.faults.add("latency", method="POST", path="*/runs/log-batch", delay=1.0)
        mlflow.log_metric("slow", 2.0, synchronous=True)
        assert reader.get_run(run.info.run_id).data.metrics["slow"] == 2.0


def test_synchronous_true_with_the_server_down_warns_and_keeps_the_entry(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the server refusing log-batch (503), synchronous=True gives up after
    MLRELAY_EXIT_TIMEOUT without progress, warns that the entry is journaled, and the entry
    lands once the server takes it again."""
    monkeypatch.setenv("MLRELAY_EXIT_TIMEOUT", "1")
    mlflow.set_tracking_uri(server.url)
    run = mlflow.start_run()
    mlflow.log_metric("ok", 1.0, synchronous=True)
    outage = server.faults.add("status", status=503, path="*/runs/log-batch")
    with pytest.warns(RuntimeWarning, match="journaled but not delivered"):
        mlflow.log_metric("late", 2.0, synchronous=True)
    server.faults.remove(outage.id)
    assert mlflow.flush(30)
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"ok": 1.0, "late": 2.0}


# --- start_run, experiments, search_runs ----------------------------------------------------


def test_parent_run_id_nests_under_a_run_that_is_not_active(client: MlflowClient) -> None:
    """start_run(parent_run_id=...) with no active run nests under that run (the tag MLflow's
    UI reads); a parent_run_id other than the active run is refused."""
    parent = client.create_run("0").info.run_id
    with mlflow.start_run(parent_run_id=parent) as child:
        assert mlflow.active_run() is child
        with pytest.raises(mlflow.ValidationError, match="parent_run_id"):
            mlflow.start_run(nested=True, parent_run_id=client.create_run("0").info.run_id)
        with mlflow.start_run(nested=True, parent_run_id=child.info.run_id) as grandchild:
            pass
    got = mlflow.get_parent_run(child.info.run_id)
    assert got is not None
    assert got.info.run_id == parent
    of_grandchild = client.get_parent_run(grandchild.info.run_id)
    assert of_grandchild is not None
    assert of_grandchild.info.run_id == child.info.run_id
    assert mlflow.get_parent_run(parent) is None


def test_fluent_experiment_calls(server: MockServer) -> None:
    """get_experiment(_by_name), search_experiments with MLflow's view types,
    set_experiment_tag(s) on the active experiment, delete_experiment."""
    mlflow.set_tracking_uri(server.url)
    experiment = mlflow.set_experiment("fluent-exp")
    assert isinstance(experiment, mlflow.entities.Experiment)
    assert experiment.name == "fluent-exp"
    exp_id = experiment.experiment_id
    mlflow.set_experiment_tag("owner", "ada")
    mlflow.set_experiment_tags({"a": 1, "b": "2"})
    experiment = mlflow.get_experiment(exp_id)
    assert experiment.tags == {"owner": "ada", "a": "1", "b": "2"}
    assert mlflow.get_experiment_by_name("fluent-exp") == experiment
    assert mlflow.get_experiment_by_name("no-such") is None
    names = {e.name for e in mlflow.search_experiments(filter_string="name LIKE 'fluent%'")}
    assert names == {"fluent-exp"}
    mlflow.delete_experiment(exp_id)
    assert [e.name for e in mlflow.search_experiments(view_type=ViewType.DELETED_ONLY)] == [
        "fluent-exp"
    ]
    assert "fluent-exp" in {e.name for e in mlflow.search_experiments(view_type="ALL")}


def test_search_runs_returns_mlflows_dataframe(server: MockServer) -> None:
    """search_runs gives MLflow's DataFrame: info columns, then metrics.* (NaN where missing),
    params.* and tags.* (None where missing); output_format="list" gives Runs; experiments by
    name or all of them."""
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("frame")
    with mlflow.start_run(run_name="a"):
        mlflow.log_metric("acc", 0.9)
        mlflow.log_param("lr", 0.1)
    with mlflow.start_run(run_name="b") as second:
        mlflow.log_metric("loss", 0.3)
    assert mlflow.flush(20)
    frame = mlflow.search_runs(order_by=["attributes.start_time ASC"])
    assert list(frame.columns[:6]) == [
        "run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time",
    ]  # fmt: skip
    assert {"metrics.acc", "metrics.loss", "params.lr", "tags.mlflow.runName"} <= set(frame.columns)
    assert list(frame["tags.mlflow.runName"]) == ["a", "b"]
    assert frame["metrics.acc"].isna().tolist() == [False, True]
    assert frame["params.lr"].isna().tolist() == [False, True]
    assert str(frame["start_time"].dt.tz) == "UTC"
    listed = mlflow.search_runs(filter_string="metrics.loss > 0", output_format="list")
    assert [r.info.run_id for r in listed] == [second.info.run_id]
    assert len(mlflow.search_runs(experiment_names=["frame", "missing"])) == 2
    assert len(mlflow.search_runs(search_all_experiments=True)) == 2
    with pytest.raises(mlflow.ValidationError, match="not both"):
        mlflow.search_runs(["1"], experiment_names=["frame"])


def test_get_tracking_uri_is_always_a_string(server: MockServer) -> None:
    """Unset: the journal's file: URI (where runs are kept), and is_tracking_uri_set() is
    False; set: the server's URI."""
    uri = mlflow.get_tracking_uri()
    assert isinstance(uri, str)
    assert uri.startswith("file://")
    assert uri.endswith("/journal.db")
    assert not mlflow.is_tracking_uri_set()
    mlflow.set_tracking_uri(server.url)
    assert mlflow.get_tracking_uri() == server.url
    assert mlflow.tracking.get_tracking_uri() == server.url
    assert mlflow.is_tracking_uri_set()


def test_get_artifact_uri(server: MockServer) -> None:
    """The active run's artifact URI from the server; while the server does not know the run,
    the runs:/ form MLflow's functions accept."""
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        assert mlflow.get_artifact_uri() == run.info.artifact_uri
        assert mlflow.get_artifact_uri("model") == f"{run.info.artifact_uri}/model"
    server.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mlflow.start_run() as late:
            assert mlflow.get_artifact_uri("m") == f"runs:/{late.local_id}/m"


# --- log_table, artifacts, datasets ------------------------------------------------------------


def test_fluent_log_table_appends_and_tags(client: MlflowClient) -> None:
    """Fluent log_table: the same file twice holds both tables' rows, in MLflow's split JSON,
    and the mlflow.loggedArtifacts tag lists each table once, keeping what was there."""
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        client.set_tag(run_id, "mlflow.loggedArtifacts", '[{"path": "old.json", "type": "table"}]')
        mlflow.log_table({"q": ["a"], "score": [1.0]}, "eval.json")
        mlflow.log_table(pd.DataFrame({"q": ["b"], "score": [0.5]}), "eval.json")
        mlflow.log_table({"only": 1}, artifact_file="one.json")
    assert json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/eval.json")) == {
        "columns": ["q", "score"],
        "data": [["a", 1.0], ["b", 0.5]],
    }
    tag = json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert [t["path"] for t in tag] == ["old.json", "eval.json", "one.json"]
    with pytest.raises(mlflow.ValidationError, match=r"\.json or \.parquet"):
        mlflow.log_table({"a": [1]}, "t.csv")


def test_artifacts_module_paths_as_mlflow(client: MlflowClient, tmp_path: Path) -> None:
    """mlrelay.artifacts: runs:/ and mlflow-artifacts:/ URIs download to <dst>/<last part>
    and list relative to the URI's folder; run_id + artifact_path lists from the run's root;
    load_text / load_dict read files."""
    with mlflow.start_run() as run:
        mlflow.log_dict({"lr": 0.1}, "cfg/params.json")
        mlflow.log_text("ok", "cfg/sub/note.txt")
    run_id, root = run.info.run_id, run.info.artifact_uri
    assert root is not None
    got = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/cfg", dst_path=str(tmp_path))
    assert got == str(tmp_path / "cfg")
    assert (tmp_path / "cfg" / "sub" / "note.txt").read_text() == "ok"
    by_run = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="cfg/sub/note.txt", dst_path=str(tmp_path / "r")
    )
    assert Path(by_run).read_text() == "ok"
    assert Path(by_run).name == "note.txt"
    listed = mlflow.artifacts.list_artifacts(f"runs:/{run_id}/cfg/sub")
    assert [f.path for f in listed] == ["sub/note.txt"]
    by_path = mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="cfg")
    assert sorted(f.path for f in by_path) == ["cfg/params.json", "cfg/sub"]
    proxied = mlflow.artifacts.list_artifacts(f"{root}/cfg")
    assert sorted(f.path for f in proxied) == ["cfg/params.json", "cfg/sub"]
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/cfg/params.json") == {"lr": 0.1}
    assert mlflow.artifacts.load_text(f"{root}/cfg/sub/note.txt") == "ok"
    with pytest.raises(mlflow.ValidationError, match="exactly one"):
        mlflow.artifacts.download_artifacts()
    with pytest.raises(MlflowException, match="JSON"):
        mlflow.artifacts.load_dict(f"runs:/{run_id}/cfg/sub/note.txt")


def test_datasets_from_mlflow_data_are_logged_with_log_input(server: MockServer) -> None:
    """mlrelay.data.from_pandas / from_numpy give datasets log_input records as MLflow does
    (name, digest, context and extra input tags), and keep the data (.df, .features)."""
    mlflow.set_tracking_uri(server.url)
    df = pd.DataFrame({"x": [1.0, 2.0], "quality": [0, 1]})
    wine = mlflow.data.from_pandas(df, source="data/wine.csv", targets="quality", name="wine")
    arrays = mlflow.data.from_numpy(np.ones((3, 2)), targets=np.zeros(3), name="arr")
    assert wine.df is df
    assert wine.targets == "quality"
    assert arrays.features.shape == (3, 2)
    with mlflow.start_run() as run:
        mlflow.log_input(wine, context="training", tags={"split": "train"})
        mlflow.log_input(arrays, "eval")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert by_name["wine"].dataset.digest == wine.digest
    assert {t.key: t.value for t in by_name["wine"].tags} == {
        "mlflow.data.context": "training",
        "split": "train",
    }
    assert json.loads(by_name["arr"].dataset.profile or "{}")["targets_shape"] == [3]
