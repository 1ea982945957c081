"""Models in MLflow's format without MLflow: signatures, MLmodel files, column types.

Where MLflow's own package (in the test venv) infers the same thing, the test compares with it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import mlrelay
from mlrelay._formats.models import column_type, infer_signature, save_model

# Skipped where MLflow is not installed (`make test-lowest`).
NO_MLFLOW = "compared with MLflow's own package, which is not installed here"


class _Doubler:
    """A picklable model: predict doubles its input's first column."""

    def predict(self, x: Any) -> np.ndarray:
        """Double the first column."""
        return np.asarray(x)[:, 0] * 2


class _WithContext:
    """MLflow's PythonModel convention: predict(context, model_input)."""

    def predict(self, context: Any, model_input: Any) -> np.ndarray:
        """The first column."""
        return np.asarray(model_input)[:, 0]


def _mlflow_signature(example: Any, tmp_path: Path) -> dict[str, Any]:
    """The signature MLflow's own sklearn.save_model writes for _Doubler and this example."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_sklearn = pytest.importorskip("mlflow.sklearn", reason=NO_MLFLOW)
        mlflow_sklearn.save_model(
            _Doubler(), tmp_path / "mlflow", serialization_format="cloudpickle",
            input_example=example,
        )  # fmt: skip
    found: dict[str, Any] = yaml.safe_load((tmp_path / "mlflow" / "MLmodel").read_text())
    return found["signature"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "example",
    [
        np.ones((3, 4)),
        np.arange(6, dtype=np.int32).reshape(3, 2),
        pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}),
        pd.DataFrame(
            {"f": np.array([1, 2], dtype=np.float32), "s": ["x", "y"], "t": [True, False]}
        ),
    ],
    ids=["float64-array", "int32-array", "numbers-frame", "mixed-frame"],
)
def test_signature_is_what_mlflow_infers(example: Any, tmp_path: Path) -> None:
    """Inputs and outputs come out as MLflow's save_model writes them for the same model and
    example (tensor specs for arrays; named column specs for DataFrames, whose 1-D prediction
    is one column, as MLflow records it)."""
    ours = infer_signature(_Doubler(), example)
    reference = _mlflow_signature(example, tmp_path)
    for part in ("inputs", "outputs"):
        assert json.loads(ours[part] or "null") == json.loads(reference[part] or "null"), part


def test_a_failing_prediction_leaves_outputs_out() -> None:
    """As MLflow: when the model cannot predict the example, only inputs are described."""
    signature = infer_signature(_Doubler(), np.ones(3))  # 1-D: [:, 0] fails
    assert signature["outputs"] is None
    assert json.loads(signature["inputs"] or "")[0]["tensor-spec"]["shape"] == [-1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([1], dtype=np.int8), "integer"),
        (np.array([1], dtype=np.int32), "integer"),
        (np.array([1], dtype=np.uint32), "long"),
        (np.array([1], dtype=np.int64), "long"),
        (np.array([1.0], dtype=np.float32), "float"),
        (np.array([1.0]), "double"),
        (np.array([True]), "boolean"),
        (np.array(["a"]), "string"),
        (np.array([b"a"]), "binary"),
        (pd.Series(["a", None, "b"]), "string"),
        (pd.Series(["a"], dtype="string"), "string"),
        (pd.Series([b"x"], dtype=object), "binary"),
        (pd.Series(pd.to_datetime(["2024-01-01"])), "datetime"),
    ],
)
def test_column_types_follow_mlflow(values: Any, expected: str) -> None:
    """numpy and pandas columns map to MLflow's type names by kind and size."""
    assert column_type(values) == expected


def test_a_column_mlflow_cannot_type_is_refused() -> None:
    """Mixed objects and unsigned 64-bit integers name the dtype."""
    with pytest.raises(mlrelay.ValidationError, match="object"):
        column_type(pd.Series([1, "a"], dtype=object))
    with pytest.raises(mlrelay.ValidationError, match="uint64"):
        column_type(np.array([1], dtype=np.uint64))


def test_save_model_writes_mlflow_files(tmp_path: Path) -> None:
    """MLmodel with the sklearn (pickle) and python_function flavors, the environment files
    and the input example."""
    save_model(_Doubler(), tmp_path / "m", input_example=[[1.0, 2.0]], pip_requirements=["x==1"])
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == [
        "MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml",
        "requirements.txt", "serving_input_example.json",
    ]  # fmt: skip
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "pickle"
    assert mlmodel["saved_input_example_info"]["type"] == "ndarray"
    assert (tmp_path / "m" / "requirements.txt").read_text() == "x==1\n"
    env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]


def test_a_custom_model_gets_a_signature_through_its_wrapper(tmp_path: Path) -> None:
    """predict(context, model_input) objects are described by calling them as pyfunc does."""
    mlmodel = save_model(_WithContext(), tmp_path / "m", input_example=np.ones((2, 3)))
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlrelay._pyfunc"
    outputs = json.loads(mlmodel["signature"]["outputs"])
    assert outputs == [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]


def test_onnx_bytes_are_written_with_the_onnx_flavor(tmp_path: Path) -> None:
    """Bytes with flavor="onnx" become model.onnx under the onnx and python_function flavors."""
    mlmodel = save_model(b"not-checked-here", tmp_path / "m", flavor="onnx")
    assert set(mlmodel["flavors"]) == {"onnx", "python_function"}
    assert (tmp_path / "m" / "model.onnx").read_bytes() == b"not-checked-here"
    with pytest.raises(mlrelay.ValidationError, match="no ONNX file"):
        save_model(str(tmp_path / "missing.onnx"), tmp_path / "n")


def test_a_model_without_predict_is_refused(tmp_path: Path) -> None:
    """The error names what log_model takes."""
    with pytest.raises(mlrelay.ValidationError, match="object with predict"):
        save_model(object(), tmp_path / "m")
