"""One ``log_model`` on MLflow 3 lands what MLflow 3's own client lands, read back through
MLflow's own client: one logged model, its files stored once (with the model, not in the
run's artifacts), linked to the run's params and metrics, ``MLmodel`` with MLflow 3's
fields, no ``mlflow.log-model.history`` tag, and ``runs:/<run_id>/<name>`` still naming it.

The same script is run with ``mlflow`` and with ``mlrelay`` as ``mlflow`` in this process,
each into its own experiment of one real MLflow 3.17.2 server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import mlrelay
from tests._servers import RunningServer

pytestmark = pytest.mark.real

HIDDEN = {"mlflow.mlrelay.clientKey"}
"""mlrelay's exactly-once key, under MLflow's system-tag prefix."""

GIT = "mlflow.source.git."
"""mlrelay records the git commit and branch wherever it runs in a checkout; MLflow's
client does only when GitPython is installed (not here): left out of the comparison."""


def _train() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(X, y), X


def _log(flavor: ModuleType, url: str, model: Any, X: Any) -> tuple[str, Any]:
    """MLflow's tutorial: params, a metric over two steps, ``sklearn.log_model``, metrics
    after it (one with a dataset); then a second model with MLflow 3's logged-model fields
    (params, tags, type, step)."""
    flavor.set_tracking_uri(url)
    flavor.set_experiment(f"{flavor.__name__}-{uuid.uuid4().hex[:8]}")
    with flavor.start_run() as run:
        flavor.log_params({"C": 1.0, "solver": "lbfgs"})
        flavor.log_metric("accuracy", 0.9)
        flavor.log_metric("accuracy", 0.95, step=1)
        flavor.log_metric("loss", 0.3)
        info = flavor.sklearn.log_model(model, name="model", input_example=X[:3])
        flavor.log_metric("test_accuracy", 0.93)  # at the model's step: linked to it
        holdout = flavor.data.from_pandas(X[:20], name="holdout")
        flavor.log_metric("holdout_accuracy", 0.91, dataset=holdout)
        flavor.log_metric("accuracy", 0.97, step=2)
        flavor.sklearn.log_model(
            model, name="tuned", params={"extra": 3, "C": 9}, tags={"team": "a"},
            model_type="classifier", step=2,
        )  # fmt: skip
    return run.info.run_id, info


def _tree(client: Any, run_id: str, path: str) -> list[str]:
    """Every file below ``path`` in the run, as MLflow's client lists it."""
    found: list[str] = []
    for f in client.list_artifacts(run_id, path):
        found += _tree(client, run_id, f.path) if f.is_dir else [f.path]
    return sorted(found)


def _landed(client: Any, run_id: str, info: Any, tmp: Path) -> dict[str, Any]:
    """What one side landed, read with MLflow's client, without ids and times."""
    import mlflow

    model = client.get_logged_model(info.model_id)
    mlmodel = yaml.safe_load(
        Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{model.artifact_location}/MLmodel", dst_path=str(tmp)
            )
        ).read_text()
    )
    run = client.get_run(run_id)
    return {
        "run root": _tree(client, run_id, ""),
        "run model files": _tree(client, run_id, "model"),
        "model files": sorted(
            f.path for f in client.list_logged_model_artifacts(info.model_id) if not f.is_dir
        ),
        "run tags": sorted(
            k for k in run.data.tags if k not in HIDDEN | {"mlflow.runName"} and GIT not in k
        ),
        "run user": bool(run.info.user_id),
        "outputs": sorted(
            (client.get_logged_model(o.model_id).name, o.step) for o in run.outputs.model_outputs
        ),
        "tuned": _tuned(client, run),
        "model": (model.name, model.status.to_proto(), model.source_run_id == run_id),
        "model params": model.params,
        "model metrics": sorted(
            (m.key, m.value, m.step, m.dataset_name) for m in model.metrics or []
        ),
        "run inputs": sorted(d.dataset.name for d in run.inputs.dataset_inputs),
        "model tags": sorted(k for k in model.tags if k not in HIDDEN and GIT not in k),
        "MLmodel keys": sorted(mlmodel),
        "MLmodel ids": (mlmodel["model_id"], mlmodel["model_uuid"], mlmodel["run_id"]),
        "MLmodel location": mlmodel["artifact_path"] == model.artifact_location,
        "info": (info.model_uri, info.name, info.artifact_path == model.artifact_location),
    }


def _tuned(client: Any, run: Any) -> tuple[Any, ...]:
    """The second model, logged with MLflow 3's logged-model fields, without its id."""
    [model] = [
        m for m in client.search_logged_models([run.info.experiment_id]) if m.name == "tuned"
    ]
    tags = sorted((k, v) for k, v in model.tags.items() if k in ("team", "mlflow.user"))
    metrics = sorted((m.key, m.value, m.step) for m in model.metrics or [])
    return model.params, tags, model.model_type, metrics


def _without_ids(landed: dict[str, Any], run_id: str, model_id: str) -> dict[str, Any]:
    text = repr(landed).replace(run_id, "<run>").replace(model_id, "<model>")
    return dict(eval(text, {}))  # our own repr of plain values


def test_one_log_model_lands_as_mlflow_3_lands_it(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """The same tutorial logged by MLflow's client and by mlrelay lands the same logged model,
    files, links, MLmodel fields and run tags, as MLflow's client reads them."""
    import mlflow

    model, X = _train()
    client = mlflow.MlflowClient(mlflow_real.url)
    sides = {}
    for flavor in (mlflow, mlrelay):
        run_id, info = _log(flavor, mlflow_real.url, model, X)
        landed = _landed(client, run_id, info, tmp_path / flavor.__name__)
        sides[flavor.__name__] = _without_ids(landed, run_id, info.model_id)
    theirs, ours = sides["mlflow"], sides["mlrelay"]
    assert theirs["run model files"] == [f"model/{f}" for f in theirs["model files"]]  # once
    assert theirs["model metrics"] == [
        ("accuracy", 0.9, 0, None), ("holdout_accuracy", 0.91, 0, "holdout"),
        ("loss", 0.3, 0, None), ("test_accuracy", 0.93, 0, None),
    ]  # fmt: skip
    assert theirs["run inputs"] == ["holdout"]
    assert theirs["tuned"][0] == {"extra": "3", "C": "1.0", "solver": "lbfgs"}  # run's win
    assert theirs["tuned"][3] == [("accuracy", 0.97, 2)]
    for field in theirs:
        assert ours[field] == theirs[field], (
            f"{field}: mlflow {theirs[field]} mlrelay {ours[field]}"
        )


def test_runs_uri_names_the_logged_model(mlflow_real: RunningServer, tmp_path: Path) -> None:
    """``runs:/<run_id>/model`` loads, downloads and registers the logged model mlrelay
    stored with the model (not in the run's artifacts), as it does for MLflow 3's client."""
    model, X = _train()
    run_id, info = _log(mlrelay, mlflow_real.url, model, X)
    uri = f"runs:/{run_id}/model"
    expected = list(model.predict(X[:5]))
    assert list(mlrelay.pyfunc.load_model(uri).predict(X[:5])) == expected
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        assert client.list_run_artifacts(run_id) == []
        local = Path(client.download_artifacts(run_id, "model", str(tmp_path)))
        assert local == tmp_path / "model"
        assert (local / "MLmodel").is_file()
        assert (local / "serving_input_example.json").is_file()
        version = client.register_model(uri, f"iris-{uuid.uuid4().hex[:8]}")
    assert version.source == f"models:/{info.model_id}"  # as MLflow 3 registers it


def _log_pyfunc(flavor: ModuleType, url: str, model: Any, X: Any, files: Path) -> Any:
    """MLflow's pyfunc example: a PythonModel whose artifacts are a logged sklearn model by
    ``models:/<id>``, two local files of one name (which MLflow files under ``0/`` and
    ``1/``), a folder, and the same file again under a second name."""

    class Wrapped(flavor.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
        def load_context(self, context: Any) -> None:
            self.model = flavor.sklearn.load_model(context.artifacts["custom_model"])

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return self.model.predict(model_input)  # (no hints: MLflow would infer from them)

    flavor.set_tracking_uri(url)
    flavor.set_experiment(f"{flavor.__name__}-{uuid.uuid4().hex[:8]}")
    with flavor.start_run():
        inner = flavor.sklearn.log_model(model, name="model", input_example=X[:3])
        return flavor.pyfunc.log_model(
            name="artifacts", python_model=Wrapped(),
            artifacts={
                "custom_model": inner.model_uri,
                "labels": str(files / "a" / "labels.txt"),
                "labels_b": str(files / "b" / "labels.txt"),
                "folder": str(files / "a"),
                "again": str(files / "a" / "labels.txt"),
            },
        )  # fmt: skip


def _model_tree(client: Any, model_id: str, path: str | None) -> list[str]:
    """Every file of a logged model below ``path``, as MLflow's client lists it."""
    found: list[str] = []
    for f in client.list_logged_model_artifacts(model_id, path):
        found += _model_tree(client, model_id, f.path) if f.is_dir else [f.path]
    return sorted(found)


def test_pyfunc_artifacts_are_placed_as_mlflow_places_them(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """A PythonModel's artifacts land in the model where MLflow 3's client puts them (a
    ``models:/`` model at ``artifacts/`` itself with ``registered_model_meta``, clashing
    roots under numbered folders, one URI copied once), and the model predicts."""
    import mlflow

    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "labels.txt").write_text(side)
    model, X = _train()
    client = mlflow.MlflowClient(mlflow_real.url)
    sides = {}
    for flavor in (mlflow, mlrelay):
        info = _log_pyfunc(flavor, mlflow_real.url, model, X, tmp_path)
        files = _model_tree(client, info.model_id, None)
        location = client.get_logged_model(info.model_id).artifact_location
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{location}/MLmodel", dst_path=str(tmp_path / flavor.__name__)
        )
        conf = yaml.safe_load(Path(local).read_text())["flavors"]["python_function"]
        paths = {name: a["path"] for name, a in conf["artifacts"].items()}
        predicted = list(mlflow.pyfunc.load_model(info.model_uri).predict(X[:5]))
        sides[flavor.__name__] = (files, paths, predicted)
    theirs, ours = sides["mlflow"], sides["mlrelay"]
    assert f"{theirs[1]['custom_model']}/registered_model_meta" in theirs[0]
    assert theirs[1]["custom_model"] == "artifacts/0"  # the model folder clashes with all
    assert theirs[1]["again"] == theirs[1]["labels"] != theirs[1]["labels_b"]
    assert theirs[2] == list(model.predict(X[:5]))
    assert ours == theirs


def _log_into(flavor: ModuleType, url: str, model: Any, X: Any) -> tuple[str, str]:
    """MLflow 3's two-step logging: ``initialize_logged_model`` in a run, then
    ``log_model(model_id=...)`` fills it."""
    flavor.set_tracking_uri(url)
    flavor.set_experiment(f"{flavor.__name__}-{uuid.uuid4().hex[:8]}")
    with flavor.start_run() as run:
        flavor.log_param("C", 1.0)
        flavor.log_metric("accuracy", 0.9)
        pending = flavor.initialize_logged_model(name="planned", tags={"team": "a"})
        assert pending.status.value == "PENDING"
        info = flavor.sklearn.log_model(
            model, name="model", input_example=X[:3], model_id=pending.model_id
        )
        assert info.model_id == pending.model_id
    return run.info.run_id, pending.model_id


def test_log_model_fills_an_initialized_logged_model_as_mlflow_does(
    mlflow_real: RunningServer,
) -> None:
    """``log_model(model_id=)`` into a model made by ``initialize_logged_model`` lands as
    with MLflow's client: the same model (no second one), READY, its name, tags and params
    as created, the run's output and metrics linked, and it loads by ``models:/<id>``."""
    import mlflow

    model, X = _train()
    client = mlflow.MlflowClient(mlflow_real.url)
    sides = {}
    for flavor in (mlflow, mlrelay):
        run_id, model_id = _log_into(flavor, mlflow_real.url, model, X)
        found = client.get_logged_model(model_id)
        run = client.get_run(run_id)
        sides[flavor.__name__] = {
            "models in experiment": len(client.search_logged_models([found.experiment_id])),
            "model": (found.name, found.status.to_proto(), found.source_run_id == run_id),
            "tags": sorted(k for k in found.tags if k not in HIDDEN and GIT not in k),
            "params": found.params,
            "metrics": sorted((m.key, m.value, m.step) for m in found.metrics or []),
            "outputs": [(o.model_id == model_id, o.step) for o in run.outputs.model_outputs],
            "files": _model_tree(client, model_id, None),
            "predicts": list(mlflow.pyfunc.load_model(f"models:/{model_id}").predict(X[:3])),
        }
    assert sides["mlflow"]["models in experiment"] == 1
    assert sides["mlflow"]["model"] == ("planned", 2, True)  # READY
    assert sides["mlrelay"] == sides["mlflow"]
