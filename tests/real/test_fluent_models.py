"""The fluent API's models, datasets and reproducibility records on a real MLflow server."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import mlrelay
from mlrelay import cli, fluent
from tests._env import child_env
from tests._servers import RunningServer
from tests._timing import deadline
from tests.real.test_models import _load_with_mlflow

pytestmark = pytest.mark.real

OFFLINE_MODEL = textwrap.dedent(
    """
    import json, sys
    import mlrelay
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier
    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    mlrelay.set_experiment(sys.argv[1])
    with mlrelay.start_run() as run:
        mlrelay.log_param("depth", 3)
        mlrelay.log_metric("accuracy", 0.9)
        assert mlrelay.log_model(model, "model", input_example=X[:2]) is None
        mlrelay.sklearn.log_model(model, name="tuned", params={"extra": 1}, model_type="tree")
    print(json.dumps([int(v) for v in model.predict(X[::15])]))
    """
)


def test_model_logged_offline_loads_after_sync(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model logged offline is journaled with the run; `mlrelay sync` stores it as an
    online log_model does on MLflow 3 (a logged model, linked to the run's params and
    metrics, no files in the run's artifacts), and MLflow's own load_model reads it by
    runs:/ and predicts like the original."""

    home = tmp_path / "home"
    experiment = f"offline-model-{uuid.uuid4().hex}"
    env = child_env()
    env.update(MLRELAY_HOME=str(home), MLRELAY_MODE="offline", MLFLOW_TRACKING_URI=mlflow_real.url)
    made = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", OFFLINE_MODEL, experiment],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert made.returncode == 0, made.stderr
    expected = json.loads(made.stdout.strip().splitlines()[-1])
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    assert cli.main(["sync"], out=io.StringIO()) == 0
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None
        [run] = list(client.search_runs([exp.experiment_id]))
    from sklearn.datasets import load_iris

    sample = load_iris(return_X_y=True)[0][::15].tolist()
    uri = f"runs:/{run.info.run_id}/model"
    assert _load_with_mlflow(sys.executable, uri, mlflow_real.url, sample) == expected
    import mlflow

    theirs = mlflow.MlflowClient(mlflow_real.url)
    assert theirs.list_artifacts(run.info.run_id) == []  # the files are the models'
    outputs = theirs.get_run(run.info.run_id).outputs.model_outputs
    models = {m.name: m for m in (theirs.get_logged_model(o.model_id) for o in outputs)}
    assert sorted(models) == ["model", "tuned"]
    assert models["model"].params == {"depth": "3"}
    assert models["tuned"].params == {"depth": "3", "extra": "1"}
    assert models["tuned"].model_type == "tree"
    assert [(m.key, m.value) for m in models["model"].metrics or []] == [("accuracy", 0.9)]
    assert models["model"].status.to_proto() == 2  # READY


def test_datasets_and_environment_are_recorded(mlflow_real: RunningServer, tmp_path: Path) -> None:
    """log_input records a DataFrame (column schema, row count), a numpy array (tensor
    schema) and a file (its digest); log_environment adds the installed packages."""
    import numpy as np
    import pandas as pd

    csv = tmp_path / "train.csv"
    csv.write_text("a,b\n1,2\n")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    fluent.set_tracking_uri(mlflow_real.url)
    with fluent.start_run(log_environment=True) as run:
        fluent.log_input(frame, context="training", name="frame", targets="label")
        fluent.log_input(np.zeros((4, 2)), context="eval", name="array")
        fluent.log_input(csv, context="raw")
    assert fluent.flush(deadline(60))
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        got = client.get_run(run.run_id)
        inputs = {i.dataset.name: i for i in got.inputs.dataset_inputs}  # type: ignore[union-attr]
        assert set(inputs) == {"frame", "array", "train.csv"}
        schema = json.loads(inputs["frame"].dataset.schema_ or "{}")
        assert schema["mlflow_colspec"][0] == {"type": "double", "name": "x", "required": True}
        assert json.loads(inputs["frame"].dataset.profile or "{}")["num_rows"] == 3
        assert "mlflow_tensorspec" in json.loads(inputs["array"].dataset.schema_ or "{}")
        assert inputs["train.csv"].dataset.source_type == "local"
        assert [t.value for t in inputs["frame"].tags] == ["training"]
        env = {f.path for f in client.list_artifacts(run.run_id, "environment")}
        assert env == {"environment/requirements.txt"}
        requirements = Path(
            client.download_artifacts(run.run_id, "environment/requirements.txt", str(tmp_path))
        ).read_text()
        assert f"mlrelay=={mlrelay.__version__}" in requirements
