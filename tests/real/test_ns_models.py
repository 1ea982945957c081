"""MLflow's model namespaces against a real MLflow 3.17.2 server, both ways: models logged by
MLflow-style code with ``import mlrelay as mlflow`` load with MLflow's own package (in a
child process, as a user's serving code would), and models logged by MLflow's package load
with mlrelay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlrelay
import mlrelay as mlflow
import mlrelay.lightgbm
import mlrelay.models
import mlrelay.pyfunc
import mlrelay.sklearn
import mlrelay.xgboost
from mlrelay import fluent
from mlrelay.models import infer_signature
from tests._env import child_env
from tests._servers import RunningServer
from tests.conftest import MLFLOW27_VENV
from tests.integration.test_ns_models import _wine
from tests.real.test_models import _load_with_mlflow

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]

MLFLOW_LOADS = textwrap.dedent(
    """
    import io, json, sys
    import pandas as pd
    import mlflow, mlflow.pyfunc, mlflow.models
    # The frames here are all doubles; JSON turns whole ones (127.0) into ints.
    X = pd.read_json(io.StringIO(sys.argv[2]), orient="split").astype("float64")
    out = {}
    for uri in json.loads(sys.argv[1]):
        flavor, _, uri = uri.rpartition(" ")
        model = getattr(mlflow, flavor or "pyfunc").load_model(uri)
        out[uri + (" " + flavor if flavor else "")] = [str(v) for v in model.predict(X)]
        if not flavor:
            signature = mlflow.models.get_model_info(uri).signature
            out[uri + " signature"] = signature.to_dict() if signature else None
    print(json.dumps(out))
    """
)


def _mlflow(script: str, args: list[str], tracking: str) -> dict[str, Any]:
    """Run ``script`` with MLflow's own package in a child process; its last line is JSON."""
    env = child_env()
    env.update(MLFLOW_TRACKING_URI=tracking, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_the_sklearn_tutorial_model_loads_with_mlflow(mlflow_real: RunningServer) -> None:
    """The elastic-net tutorial with the import changed (signature, input example,
    registration): mlrelay's pyfunc and sklearn loaders, and MLflow's pyfunc and sklearn
    loaders by models:/<model_id>, runs:/ and models:/<name>/1, all predict like the model,
    and MLflow reads the signature mlrelay inferred."""
    model, X = _wine()
    name = f"wine-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(mlflow_real.url)
    mlflow.set_experiment(f"ns-{uuid.uuid4().hex}")
    with mlflow.start_run() as run:
        mlflow.log_params({"alpha": 0.1, "l1_ratio": 0.5})
        signature = infer_signature(X, model.predict(X))
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=X[:5],
            registered_model_name=name,
        )  # fmt: skip
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.registered_model_version == 1
    sample = X[::20]
    expected = model.predict(sample)
    close = np.testing.assert_allclose  # the same floats, up to BLAS's last bits
    close(mlflow.pyfunc.load_model(info.model_uri).predict(sample), expected, rtol=1e-12)
    close(mlflow.sklearn.load_model(f"models:/{name}/1").predict(sample), expected, rtol=1e-12)
    uris = [info.model_uri, f"runs:/{run.info.run_id}/model", f"models:/{name}/1"]
    uris.append(f"sklearn {info.model_uri}")
    out = _mlflow(MLFLOW_LOADS, [json.dumps(uris), sample.to_json(orient="split")], mlflow_real.url)
    for uri in uris:
        flavor, _, bare = uri.rpartition(" ")
        found = [float(v) for v in out[bare + (" " + flavor if flavor else "")]]
        close(found, expected, rtol=1e-12, err_msg=uri)
    assert out[f"{info.model_uri} signature"] == signature.to_dict()


class Scaler(mlrelay.pyfunc.PythonModel):
    """A PythonModel whose scale factor is an artifact, read in load_context."""

    def load_context(self, context: mlrelay.pyfunc.PythonModelContext) -> None:
        """Read the factor."""
        self.factor = float(Path(context.artifacts["factor"]).read_text())

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """The first column, scaled."""
        return model_input.iloc[:, 0] * self.factor


def test_a_python_model_logged_by_mlrelay_loads_with_mlflow(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """pyfunc.log_model(python_model=, artifacts=) is MLflow's own format on the server:
    MLflow's load_model copies the artifact, calls load_context and predicts (mlrelay being
    installed, as the model's requirements say), as mlrelay's load_model does."""
    (tmp_path / "factor.txt").write_text("2.5")
    frame = pd.DataFrame({"x": [1.5, 2.0, 4.25]})
    fluent.set_tracking_uri(mlflow_real.url)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="scaler", python_model=Scaler(), input_example=frame,
            artifacts={"factor": str(tmp_path / "factor.txt")},
        )  # fmt: skip
    expected = ["3.75", "5.0", "10.625"]
    assert [str(v) for v in mlflow.pyfunc.load_model(info.model_uri).predict(frame)] == expected
    out = _mlflow(MLFLOW_LOADS, [json.dumps([info.model_uri]), frame.to_json(orient="split")],
                  mlflow_real.url)  # fmt: skip
    assert out[info.model_uri] == expected


def test_boosters_logged_by_mlrelay_load_with_mlflow(mlflow_real: RunningServer) -> None:
    """XGBoost and LightGBM models logged by mlrelay load with MLflow's xgboost, lightgbm and
    pyfunc loaders and predict like the originals."""
    import lightgbm as lgb
    import xgboost as xgb

    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(50, 3)), columns=["a", "b", "c"]).round(6)
    y = (X["a"] > X["b"]).astype(int)
    xgb_model = xgb.XGBClassifier(n_estimators=4).fit(X, y)
    lgb_model = lgb.LGBMClassifier(n_estimators=4, verbose=-1).fit(X, y)
    fluent.set_tracking_uri(mlflow_real.url)
    with mlflow.start_run():
        xgb_uri = mlflow.xgboost.log_model(xgb_model, name="xgb", input_example=X[:2]).model_uri
        lgb_uri = mlflow.lightgbm.log_model(lgb_model, name="lgb", input_example=X[:2]).model_uri
    uris = [xgb_uri, lgb_uri, f"xgboost {xgb_uri}", f"lightgbm {lgb_uri}"]
    out = _mlflow(MLFLOW_LOADS, [json.dumps(uris), X.to_json(orient="split")], mlflow_real.url)
    for uri, model in ((xgb_uri, xgb_model), (lgb_uri, lgb_model)):
        expected = [str(v) for v in model.predict(X)]
        assert out[uri] == expected
        flavor = "xgboost" if uri == xgb_uri else "lightgbm"
        assert out[f"{uri} {flavor}"] == expected


MLFLOW_LOGS = textwrap.dedent(
    """
    import json, sys, tempfile, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    import mlflow, mlflow.pyfunc, mlflow.sklearn, mlflow.xgboost
    import numpy as np, pandas as pd, xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    class Offset(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.offset = float(Path(context.artifacts["offset"]).read_text())
        def predict(self, context, model_input, params=None):
            return (model_input["a"] + self.offset).tolist()

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(40, 2)), columns=["a", "b"]).round(6)  # exact in JSON
    y = (X["a"] > 0).astype(int)
    sk, xg = LogisticRegression().fit(X, y), xgb.XGBClassifier(n_estimators=3).fit(X, y)
    offset = Path(tempfile.mkdtemp()) / "offset.txt"
    offset.write_text("10")
    mlflow.set_experiment(sys.argv[1])
    with mlflow.start_run() as run:
        infos = {
            "sklearn": mlflow.sklearn.log_model(sk, name="sk", input_example=X[:2],
                                                registered_model_name=sys.argv[2]),
            "xgboost": mlflow.xgboost.log_model(xg, name="xgb", input_example=X[:2]),
            "pyfunc": mlflow.pyfunc.log_model(name="offset", python_model=Offset(),
                                              artifacts={"offset": str(offset)}),
        }
    out = {k: {"uri": v.model_uri} for k, v in infos.items()}
    out["sklearn"]["expected"] = [str(v) for v in sk.predict(X)]
    out["xgboost"]["expected"] = [str(v) for v in xg.predict(X)]
    out["pyfunc"]["expected"] = [str(v + 10) for v in X["a"]]
    out["run_id"], out["X"] = run.info.run_id, X.to_json(orient="split")
    print(json.dumps(out))
    """
)


def test_models_logged_by_mlflow_load_with_mlrelay(mlflow_real: RunningServer) -> None:
    """Models MLflow's own package logged (sklearn in MLflow 3's skops format and registered,
    XGBoost, a PythonModel subclass of MLflow's with an artifact) load with mlrelay by
    models:/<model_id>, models:/<name>/1 and runs:/, and predict like the originals."""
    import io

    name = f"by-mlflow-{uuid.uuid4().hex[:8]}"
    out = _mlflow(MLFLOW_LOGS, [f"by-mlflow-{uuid.uuid4().hex}", name], mlflow_real.url)
    X = pd.read_json(io.StringIO(out["X"]), orient="split")
    fluent.set_tracking_uri(mlflow_real.url)
    for kind in ("sklearn", "xgboost", "pyfunc"):
        model = mlrelay.pyfunc.load_model(out[kind]["uri"])
        assert [str(v) for v in model.predict(X)] == out[kind]["expected"], kind
    native = mlflow.sklearn.load_model(f"models:/{name}/1")
    assert [str(v) for v in native.predict(X)] == out["sklearn"]["expected"]
    booster = mlflow.xgboost.load_model(out["xgboost"]["uri"])
    assert [str(v) for v in booster.predict(X)] == out["xgboost"]["expected"]
    assert mlflow.models.Model.load(out["sklearn"]["uri"]).flavors["sklearn"][
        "serialization_format"
    ] == "skops"  # fmt: skip


def test_an_sklearn_model_logged_to_mlflow_2_7_loads_with_it(mlflow27: RunningServer) -> None:
    """On a 2.7.1 server (no logged models) log_model returns runs:/<run_id>/<name>, which
    MLflow 2.7.1's own pyfunc loader reads."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    fluent.set_tracking_uri(mlflow27.url)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:3])
    assert info.model_id is None
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    sample = X[::10].tolist()
    python = str(Path(MLFLOW27_VENV) / "bin" / "python")
    expected = [int(v) for v in model.predict(X[::10])]
    assert _load_with_mlflow(python, info.model_uri, mlflow27.url, sample) == expected
