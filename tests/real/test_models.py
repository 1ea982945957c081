"""Models logged by mlrelay are real MLflow models: MLflow's own package loads them.

The model is logged and registered through ``mlrelay.Client``; a subprocess running MLflow's
own package (the test venv's for 3.17.2, ``.venv-mlflow27``'s for 2.7.1) loads it by
``runs:/`` and by ``models:/<name>@champion`` and predicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import mlrelay
from tests._env import child_env
from tests._servers import RunningServer
from tests._timing import deadline
from tests.conftest import MLFLOW27_VENV

pytestmark = pytest.mark.real

LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import mlflow.pyfunc
    X = np.array(json.loads(sys.argv[2]))
    print(json.dumps([int(v) for v in mlflow.pyfunc.load_model(sys.argv[1]).predict(X)]))
    """
)


def _train():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y), X


def _load_with_mlflow(
    python: str, uri: str, tracking: str, X: object, **extra_env: str
) -> list[int]:
    env = child_env()
    env["MLFLOW_TRACKING_URI"] = tracking
    env.update(extra_env)
    proc = subprocess.run(
        [python, "-W", "ignore", "-c", LOAD, uri, json.dumps(X)],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(240),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: list[int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _logged_model(client: mlrelay.Client, model_id: str):  # type: ignore[no-untyped-def]
    from mlrelay._protocol import registry

    endpoint = registry.logged_model_endpoint("GET", model_id)
    return client._transport.call(endpoint, registry.NoFields()).model.info


def test_sklearn_model_loads_with_mlflow_and_is_promoted(mlflow_real: RunningServer) -> None:
    """A scikit-learn model logged by mlrelay loads with mlflow.pyfunc.load_model by runs:/ and
    by models:/<name>@champion and predicts like the original; promotion reaches Production."""
    model, X = _train()
    sample = X[::10].tolist()
    expected = [int(v) for v in model.predict(X[::10])]
    name = f"iris-{uuid.uuid4().hex[:8]}"
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        run = client.create_run(client.create_experiment(f"models-{uuid.uuid4().hex}"))
        run_id = run.info.run_id
        info = client.log_model(
            run_id, model, "model", input_example=X[:3], registered_model_name=name
        )
        assert info.model_id is not None
        assert info.model_uri == f"models:/{info.model_id}"  # as MLflow 3 returns it
        assert info.registered_model_version == 1  # an int, as MLflow's
        version = info.model_version
        assert version is not None
        assert version.status == "READY"
        client.transition_model_version_stage(name, version.version, "Staging")
        promoted = client.transition_model_version_stage(
            name, version.version, "production", archive_existing_versions=True
        )
        assert promoted.current_stage == "Production"
        client.set_registered_model_alias(name, "champion", version.version)
        assert client.get_model_version_by_alias(name, "champion").version == version.version
        assert [v.version for v in client.get_latest_versions(name, ["Production"])] == [
            version.version
        ]
        assert client.get_model_version(name, version.version).current_stage == "Production"
        tags = client.get_run(run_id).data.tags_dict
        assert "mlflow.log-model.history" not in tags  # MLflow 3's client records none
        assert client.list_run_artifacts(run_id) == []  # stored once: with the logged model
        # MLflow 3's Models view: a READY logged model, linked as the run's output.
        assert version.source == f"models:/{info.model_id}"  # by the logged model, as MLflow 3
        logged = _logged_model(client, info.model_id)
        assert (logged.status, logged.source_run_id) == ("LOGGED_MODEL_READY", run_id)
        by_id = client.register_model(f"models:/{info.model_id}", name)
        assert (by_id.version, by_id.run_id) == ("2", run_id)
        # The same files behind every way of naming the model, plus MLflow's
        # registered_model_meta where it was downloaded by models:/, as MLflow's download.
        files = [
            "MLmodel", "conda.yaml", "input_example.json", "model.skops", "python_env.yaml",
            "requirements.txt", "serving_input_example.json",
        ]  # fmt: skip
        for uri in (f"models:/{name}@champion", f"models:/{name}/2", f"runs:/{run_id}/model"):
            folder = Path(client.download_model(uri))
            meta = ["registered_model_meta"] if uri.startswith("models:/") else []
            assert sorted(p.name for p in folder.iterdir()) == sorted(files + meta), uri
            if uri == f"models:/{name}/2":
                text = (folder / "registered_model_meta").read_text()
                assert text == f"model_name: {name}\nmodel_version: '2'\n"  # MLflow's form
    for uri in (f"runs:/{run_id}/model", f"models:/{name}@champion", f"models:/{info.model_id}"):
        assert _load_with_mlflow(sys.executable, uri, mlflow_real.url, sample) == expected


def test_sklearn_model_loads_with_mlflow_2_7(mlflow27: RunningServer) -> None:
    """The same model logged to a real MLflow 2.7.1 server loads with MLflow 2.7.1's own
    mlflow.pyfunc.load_model and predicts like the original."""
    model, X = _train()
    sample = X[::10].tolist()
    expected = [int(v) for v in model.predict(X[::10])]
    with mlrelay.Client(tracking_uri=mlflow27.url) as client:
        run_id = client.create_run(client.create_experiment(f"m27-{uuid.uuid4().hex}")).info.run_id
        client.log_model(run_id, model, "model", input_example=X[:3])
    python = str(Path(MLFLOW27_VENV) / "bin" / "python")
    assert _load_with_mlflow(python, f"runs:/{run_id}/model", mlflow27.url, sample) == expected


def _halve(x):  # type: ignore[no-untyped-def]
    """A plain function used as a model."""
    import numpy as np

    return (np.asarray(x)[:, 0] // 2).astype(int)


class _Offset:
    """A custom model with MLflow's PythonModel convention: predict(context, model_input)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def predict(self, context, model_input):  # type: ignore[no-untyped-def]
        """The first column plus the offset."""
        import numpy as np

        return (np.asarray(model_input)[:, 0] + self.offset).astype(int)


def test_custom_models_load_with_mlflow(mlflow_real: RunningServer) -> None:
    """A plain function and an object with predict(context, model_input) are logged as pyfunc
    models that MLflow's load_model runs. (Code defined in an importable module is pickled by
    reference, as MLflow does: the loader needs that module, here on PYTHONPATH.)"""
    sample = [[4.0, 0.0], [9.0, 1.0]]
    code = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        run_id = client.create_run(client.create_experiment(f"c-{uuid.uuid4().hex}")).info.run_id
        client.log_model(run_id, _halve, "fn")
        client.log_model(run_id, _Offset(10), "offset")
    for name, expected in (("fn", [2, 4]), ("offset", [14, 19])):
        uri = f"runs:/{run_id}/{name}"
        assert _load_with_mlflow(sys.executable, uri, mlflow_real.url, sample, **code) == expected


LOAD_ONNX = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import mlflow.pyfunc
    model = mlflow.pyfunc.load_model(sys.argv[1])
    out = model.predict(np.array(json.loads(sys.argv[2]), dtype=np.float32))
    print(json.dumps({k: np.asarray(v).tolist() for k, v in out.items()}))
    """
)


def test_onnx_model_loads_with_mlflow(mlflow_real: RunningServer) -> None:
    """An onnx.ModelProto (Y = X + 1) is logged with the onnx flavor; MLflow's load_model
    runs it through onnxruntime."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "one"], ["Y"])],
        "plus-one",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        run_id = client.create_run(client.create_experiment(f"o-{uuid.uuid4().hex}")).info.run_id
        info = client.log_model(run_id, model, "onnx")
        assert set(info.flavors) == {"onnx", "python_function"}
    env = child_env()
    env["MLFLOW_TRACKING_URI"] = mlflow_real.url
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", LOAD_ONNX, f"runs:/{run_id}/onnx", "[[1, 2]]"],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(240),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"Y": [[2.0, 3.0]]}
