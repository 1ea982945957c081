"""MLflow's model namespaces through the fluent API, against the mock server: MLflow-style
code with only the import changed logs models into the active run and loads them back by
every kind of model URI."""

from __future__ import annotations

import inspect
import io
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlrelay_mock import MockServer

import mlrelay
import mlrelay as mlflow
import mlrelay.lightgbm
import mlrelay.models
import mlrelay.onnx
import mlrelay.pyfunc
import mlrelay.sklearn
import mlrelay.xgboost
from mlrelay import cli, fluent
from mlrelay.models import infer_signature


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh mock server, set as the fluent API's tracking URI."""
    with MockServer() as s:
        fluent.set_tracking_uri(s.url)
        yield s


def _wine() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import ElasticNet

    frame = load_wine(as_frame=True).frame
    X = frame.drop(columns="target")
    return ElasticNet(alpha=0.1, l1_ratio=0.5).fit(X, frame["target"]), X


def test_the_sklearn_tutorial_runs_with_the_import_changed(server: MockServer) -> None:
    """log_model(name=, signature=infer_signature(...), input_example=) in a run returns
    MLflow's ModelInfo; pyfunc.load_model predicts like the model on a DataFrame, a dict, an
    array and a list; sklearn.load_model gives the estimator back; Model.load reads its
    MLmodel; the same files load by runs:/ too."""
    model, X = _wine()
    signature = infer_signature(X, model.predict(X))
    mlflow.set_experiment("wine")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", 0.1)
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=X[:5]
        )
    assert isinstance(info, mlrelay.models.ModelInfo)
    assert info.model_id is not None
    assert info.model_uri == f"models:/{info.model_id}"
    assert (info.run_id, info.name) == (run.info.run_id, "model")
    assert info.artifact_path.endswith(f"/models/{info.model_id}/artifacts")  # MLflow 3's
    assert info.signature == signature
    assert info.saved_input_example_info is not None
    assert info.saved_input_example_info["serving_input_path"] == "serving_input_example.json"
    assert set(info.flavors) == {"python_function", "sklearn"}
    expected = model.predict(X[:4])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    for data in (X[:4], X[:4].to_dict(orient="list"), X[:4].to_numpy(), X[:4].to_numpy().tolist()):
        np.testing.assert_allclose(loaded.predict(data), expected)
    by_run = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert type(by_run) is type(model)
    np.testing.assert_allclose(by_run.predict(X[:4]), expected)
    meta = mlrelay.models.Model.load(info.model_uri)
    assert meta.signature == signature
    assert meta.run_id == run.info.run_id
    assert mlrelay.models.get_model_info(info.model_uri).signature == signature


def test_registered_models_load_by_version_alias_and_latest(server: MockServer) -> None:
    """registered_model_name gives MLflow's int version; models:/<name>/<version>,
    models:/<name>@<alias> and models:/<name>/latest load the same model."""
    model, X = _wine()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m", registered_model_name="wine-net")
    assert info.registered_model_version == 1
    assert info.model_version is not None
    assert info.model_version.name == "wine-net"
    with mlrelay.Client(tracking_uri=server.url) as client:
        client.set_registered_model_alias("wine-net", "champion", 1)
    expected = model.predict(X[:3])
    for uri in ("models:/wine-net/1", "models:/wine-net@champion", "models:/wine-net/latest"):
        np.testing.assert_allclose(mlflow.pyfunc.load_model(uri).predict(X[:3]), expected)


def test_log_model_starts_a_run_when_none_is_active(server: MockServer) -> None:
    """As MLflow 2, a log_model call with no active run starts one (left active) and logs
    the model into it; artifact_path, MLflow's deprecated alias, names the model."""
    model, _ = _wine()
    assert mlflow.active_run() is None
    info = mlflow.sklearn.log_model(model, "legacy")
    run = mlflow.active_run()
    assert run is not None
    assert info.run_id == run.info.run_id
    assert info.name == "legacy"
    with mlrelay.Client(tracking_uri=server.url) as client:  # stored with the logged model
        assert client.list_artifacts(run.info.run_id) == []
        listed = {f.path for f in client.list_artifacts(run.info.run_id, "legacy")}
        assert "legacy/MLmodel" in listed
    mlflow.end_run()


def test_what_mlrelay_does_not_implement_is_refused_by_name(server: MockServer) -> None:
    """name and artifact_path together raise a ValidationError naming the argument, and a
    model_id naming no logged model raises NotFoundError, before any file is uploaded."""
    model, _ = _wine()
    with mlflow.start_run():
        with pytest.raises(mlrelay.ValidationError, match="give only `name`"):
            mlflow.sklearn.log_model(model, artifact_path="a", name="b")
        with pytest.raises(mlrelay.NotFoundError):
            mlflow.sklearn.log_model(model, name="b", model_id="m-123")
    assert not [r for r in server.requests if r.method == "PUT"]


class Greeter(mlflow.pyfunc.PythonModel):
    """A PythonModel whose greeting and names come from two artifacts."""

    def load_context(self, context: mlrelay.pyfunc.PythonModelContext) -> None:
        """Read the greeting file and the folder of names."""
        self.greeting = Path(context.artifacts["greeting"]).read_text()
        self.known = sorted(p.name for p in Path(context.artifacts["names"]).iterdir())

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[str]:
        """A greeting for each name in the input that the names folder knows."""
        return [f"{self.greeting} {n}" for n in model_input["name"] if n in self.known]


def test_a_python_model_with_artifacts_round_trips(server: MockServer, tmp_path: Path) -> None:
    """pyfunc.log_model(python_model=, artifacts=) copies a local file and an artifact of
    another run (a runs:/ URI, a folder) into the model; load_context reads both from local
    paths after loading by the returned URI."""
    (tmp_path / "names").mkdir()
    for name in ("ada", "grace"):
        (tmp_path / "names" / name).write_text("")
    (tmp_path / "greeting.txt").write_text("hello")
    with mlflow.start_run() as source:
        mlflow.log_artifacts(str(tmp_path / "names"), "names")
    assert fluent.flush(30)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="greeter",
            python_model=Greeter(),
            artifacts={
                "greeting": str(tmp_path / "greeting.txt"),
                "names": f"runs:/{source.info.run_id}/names",
            },
            input_example=pd.DataFrame({"name": ["ada", "bob"]}),
        )
    assert info.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert loaded.predict(pd.DataFrame({"name": ["ada", "grace", "eve"]})) == [
        "hello ada", "hello grace",
    ]  # fmt: skip
    assert loaded.predict({"name": ["grace"]}) == ["hello grace"]
    assert isinstance(loaded.unwrap_python_model(), Greeter)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text()
    assert "mlrelay" in requirements
    assert "cloudpickle" in requirements


def _boosted() -> tuple[pd.DataFrame, Any, Any]:
    import lightgbm as lgb
    import xgboost as xgb

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=list("abcd"))
    y = X["a"] * 2 - X["c"]
    return (
        X,
        xgb.XGBRegressor(n_estimators=8).fit(X, y),
        lgb.LGBMRegressor(n_estimators=8, verbose=-1).fit(X, y),
    )


def test_xgboost_and_lightgbm_models_round_trip(server: MockServer) -> None:
    """xgboost.log_model and lightgbm.log_model write their flavors; their load_model gives
    the same class back and pyfunc predicts like the original."""
    X, xgb_model, lgb_model = _boosted()
    with mlflow.start_run():
        xgb_info = mlflow.xgboost.log_model(xgb_model, name="xgb", input_example=X[:2])
        lgb_info = mlflow.lightgbm.log_model(lgb_model, name="lgb", input_example=X[:2])
    assert xgb_info.flavors["xgboost"]["model_format"] == "ubj"
    assert lgb_info.flavors["lightgbm"]["model_class"] == "lightgbm.sklearn.LGBMRegressor"
    for module, info, model in (
        (mlflow.xgboost, xgb_info, xgb_model),
        (mlflow.lightgbm, lgb_info, lgb_model),
    ):
        native = module.load_model(info.model_uri)
        assert type(native) is type(model)
        np.testing.assert_allclose(native.predict(X), model.predict(X), rtol=1e-6)
        pyfunc_model = mlflow.pyfunc.load_model(info.model_uri)
        np.testing.assert_allclose(pyfunc_model.predict(X), model.predict(X), rtol=1e-6)


def test_an_onnx_model_round_trips(server: MockServer) -> None:
    """onnx.log_model stores the ModelProto; onnx.load_model gives it back and pyfunc runs it
    with onnxruntime (a dict of outputs for an array, as MLflow)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "two"], ["Y"])],
        "double",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with mlflow.start_run():
        info = mlflow.onnx.log_model(model, name="onnx")
    assert mlflow.onnx.load_model(info.model_uri) == model
    out = mlflow.pyfunc.load_model(info.model_uri).predict(np.array([[1.0, 2.5]]))
    assert {k: v.tolist() for k, v in out.items()} == {"Y": [[2.0, 5.0]]}


def test_set_signature_rewrites_a_runs_model(server: MockServer) -> None:
    """set_signature on runs:/<run_id>/<path> replaces the MLmodel's signature on the
    server; Model.load reads the new one."""
    model, X = _wine()
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model")
    assert fluent.flush(30)
    uri = f"runs:/{run.info.run_id}/model"
    assert mlrelay.models.Model.load(uri).signature is None
    signature = infer_signature(X, model.predict(X))
    mlrelay.models.set_signature(uri, signature)
    assert mlrelay.models.Model.load(uri).signature == signature


def test_offline_a_model_is_journaled_and_described(server: MockServer) -> None:
    """Offline, log_model still returns a ModelInfo (runs:/ with the run's local id) and
    sends nothing; registration says it needs the server."""
    model, X = _wine()
    fluent.set_tracking_uri(server.url, mode="offline")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
        with pytest.raises(mlrelay.ConfigurationError, match="needs the tracking server"):
            mlflow.sklearn.log_model(model, name="again", registered_model_name="x")
    assert info.model_uri == f"runs:/{run.local_id}/model"
    assert info.signature is not None
    assert not [r for r in server.requests if r.method == "PUT"]
    assert cli.main(["sync"], out=io.StringIO()) == 0
    fluent.set_tracking_uri(server.url, mode="online")
    loaded = mlflow.sklearn.load_model(info.model_uri)  # the local id now names the synced run
    np.testing.assert_allclose(loaded.predict(X[:3]), model.predict(X[:3]))


def test_autolog_forwards_every_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    """sklearn/xgboost/lightgbm.autolog import mlrelay._autolog.<framework> only when called
    and pass it every one of their arguments by name, unchanged."""
    for framework in ("sklearn", "xgboost", "lightgbm"):
        calls: list[dict[str, Any]] = []
        fake = types.ModuleType(f"mlrelay._autolog.{framework}")
        fake.autolog = _recorder(calls)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"mlrelay._autolog.{framework}", fake)
        autolog = getattr(mlrelay, framework).autolog
        autolog(disable=True, silent=True, extra_tags={"k": "v"})
        expected = {
            name: p.default for name, p in inspect.signature(autolog).parameters.items()
        } | {"disable": True, "silent": True, "extra_tags": {"k": "v"}}
        assert calls == [expected], framework


def _recorder(calls: list[dict[str, Any]]) -> Any:
    """A stand-in autolog that records the keyword arguments of each call."""

    def autolog(**kwargs: Any) -> None:
        calls.append(kwargs)

    return autolog


def test_the_older_log_model_takes_a_model_signature(server: MockServer) -> None:
    """mlrelay.log_model (mlrelay's own, flavor from the object) writes a ModelSignature from
    infer_signature into the MLmodel as MLflow's block."""
    model, X = _wine()
    signature = infer_signature(X, model.predict(X))
    with mlflow.start_run() as run:
        info = mlrelay.log_model(model, "model", signature=signature)
    assert info is not None
    assert info.signature == signature
    assert mlrelay.models.Model.load(f"runs:/{run.info.run_id}/model").signature == signature
