"""Pure pieces of models and datasets: signatures, MLmodel files, dataset records, repro."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import mlrelay
from mlrelay._datasets import dataset_input
from mlrelay._models import infer_signature, save_model
from mlrelay._repro import collect


class _Doubler:
    """A picklable model: predict doubles its input's first column."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Double the first column."""
        return np.asarray(x)[:, 0] * 2


def test_signature_of_an_array_is_a_tensor_spec() -> None:
    """numpy inputs give MLflow's tensor specs, batch dimension -1."""
    signature = infer_signature(_Doubler(), np.ones((3, 4)))
    assert json.loads(signature["inputs"] or "") == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}
    ]
    assert json.loads(signature["outputs"] or "") == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}
    ]


def test_signature_of_a_dataframe_is_a_column_spec() -> None:
    """pandas inputs give named column specs; the prediction one unnamed column."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    signature = infer_signature(_Doubler(), frame)
    assert json.loads(signature["inputs"] or "") == [
        {"type": "double", "name": "a", "required": True},
        {"type": "long", "name": "b", "required": True},
    ]
    assert json.loads(signature["outputs"] or "") == [{"type": "double", "required": True}]


def test_save_model_writes_mlflow_files(tmp_path: Path) -> None:
    """MLmodel with the sklearn (pickle) and python_function flavors, the environment files
    and the input example."""
    save_model(_Doubler(), tmp_path / "m", input_example=[[1.0, 2.0]], pip_requirements=["x==1"])
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == [
        "MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml",
        "requirements.txt",
    ]  # fmt: skip
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "pickle"
    assert (tmp_path / "m" / "requirements.txt").read_text() == "x==1\n"


def test_a_model_without_predict_is_refused(tmp_path: Path) -> None:
    """The error names what log_model takes."""
    with pytest.raises(mlrelay.ValidationError, match="object with predict"):
        save_model(object(), tmp_path / "m")


def test_dataset_records() -> None:
    """DataFrame: column schema and row count; array: tensor schema and shape; the digest
    changes with the data; anything else is a clear error."""
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    item = dataset_input(frame, context="training", name="f")
    assert json.loads(item.dataset.profile or "") == {"num_rows": 2, "num_elements": 2}
    assert item.tags[0].value == "training"
    other = dataset_input(pd.DataFrame({"x": [1.0, 3.0]}), name="f")
    assert other.dataset.digest != item.dataset.digest
    array = dataset_input(np.zeros((5, 3)))
    assert json.loads(array.dataset.profile or "")["features_shape"] == [5, 3]
    with pytest.raises(mlrelay.ValidationError, match="pandas DataFrame, a numpy array"):
        dataset_input({"not": "data"})
    with pytest.raises(mlrelay.ValidationError, match="neither an existing file nor a URI"):
        dataset_input("no/such/file.csv")


def test_reproducibility_records_packages_and_the_script(tmp_path: Path) -> None:
    """collect() pins installed packages and copies a small entry script."""
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    records = collect(script)
    assert b"pydantic==" in records.files["environment/requirements.txt"]
    assert records.files["code/train.py"] == b"print('hi')\n"


def test_reproducibility_logs_the_diff_of_a_dirty_tree(tmp_path: Path) -> None:
    """In a git work tree with uncommitted changes: dirty tag true and the diff as a file."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git(
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "0",
    )
    script = tmp_path / "train.py"
    script.write_text("a = 1\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "1")
    assert collect(script).tags == {"mlflow.source.git.dirty": "false"}
    script.write_text("a = 2\n")
    records = collect(script)
    assert records.tags == {"mlflow.source.git.dirty": "true"}
    assert b"+a = 2" in records.files["code/git.diff"]
