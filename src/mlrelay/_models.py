"""Models in MLflow's format, written without MLflow: an MLmodel file and its environment.

A model logged by mlrelay is a real MLflow model: ``mlflow.pyfunc.load_model`` loads it,
``mlflow models serve`` serves it. Supported here: scikit-learn estimators and any other
picklable object with a ``predict`` method, written with MLflow's ``sklearn`` flavor in its
``pickle`` serialization format (readable by MLflow 2.x and 3.x alike) plus the
``python_function`` flavor that points at it. A signature is inferred from an input example
(numpy arrays, pandas DataFrames, lists) the way MLflow writes it.

numpy, pandas, scikit-learn and PyYAML are imported only when a model is saved.
"""

from __future__ import annotations

import datetime
import json
import pickle
import platform
import uuid
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ._errors import ValidationError

__all__ = ["infer_signature", "save_model"]

_MODEL_FILE = "model.pkl"


def _dtype_name(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "f":
        return "double" if size == 8 else "float"
    if kind in "iu":
        return "long" if size == 8 else "integer"
    if kind == "b":
        return "boolean"
    if kind in "OUS":
        return "string"
    raise ValidationError(
        f"cannot describe a column of dtype {dtype} in a model signature", field="input_example"
    )


def _as_array_or_frame(example: Any) -> Any:
    import numpy as np

    if type(example).__module__.startswith("pandas"):
        return example
    if isinstance(example, list | tuple):
        return np.asarray(example)
    if isinstance(example, np.ndarray):
        return example
    raise ValidationError(
        f"input_example must be a numpy array, a pandas DataFrame or a list, got "
        f"{type(example).__name__}",
        field="input_example",
    )


def _schema(data: Any, *, named: bool) -> list[dict[str, Any]]:
    if type(data).__module__.startswith("pandas"):
        if hasattr(data, "columns"):
            return [
                {"type": _dtype_name(data[c].dtype), "name": str(c), "required": True}
                for c in data.columns
            ]
        return [{"type": _dtype_name(data.dtype), "required": True}]
    if not named:  # a model's 1-D answer to a DataFrame: one unnamed column
        return [{"type": _dtype_name(data.dtype), "required": True}]
    shape = [-1, *data.shape[1:]]
    return [{"type": "tensor", "tensor-spec": {"dtype": str(data.dtype), "shape": shape}}]


def infer_signature(model: Any, input_example: Any) -> dict[str, str | None]:
    """The ``signature`` block of an MLmodel file, from an example input and the model's
    prediction for it."""
    data = _as_array_or_frame(input_example)
    frame = type(data).__module__.startswith("pandas")
    inputs = _schema(data, named=True)
    outputs = None
    if hasattr(model, "predict"):
        import numpy as np

        prediction = np.asarray(model.predict(data))
        outputs = json.dumps(_schema(prediction, named=not frame))
    return {"inputs": json.dumps(inputs), "outputs": outputs, "params": None}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _requirements(model: Any, extra: Sequence[str] | None) -> list[str]:
    if extra is not None:
        return list(extra)
    wanted = ["mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy"]
    module = type(model).__module__.split(".")[0]
    if module not in ("sklearn", "builtins", "__main__"):
        wanted.append(module)
    pins = []
    for name in wanted:
        version = _version(name)
        if version is not None:
            pins.append(f"{name}=={version}")
        elif name == "mlflow":
            pins.append("mlflow")  # the environment that loads the model needs it
    return pins


def _dump_yaml(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def save_model(
    model: Any,
    path: Path,
    *,
    input_example: Any = None,
    signature: dict[str, str | None] | None = None,
    pip_requirements: Sequence[str] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` as an MLflow model into the empty directory ``path``.

    Returns:
        The MLmodel content written.

    Raises:
        ValidationError: the model has no ``predict`` method or cannot be pickled, or the
            input example cannot be described.
    """
    if not callable(getattr(model, "predict", None)):
        raise ValidationError(
            f"log_model takes an object with a predict method (a scikit-learn estimator, for "
            f"example), got {type(model).__name__}",
            field="model",
        )
    path.mkdir(parents=True, exist_ok=True)
    try:
        (path / _MODEL_FILE).write_bytes(pickle.dumps(model, protocol=4))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValidationError(f"the model cannot be pickled: {exc}", field="model") from exc
    python = platform.python_version()
    requirements = _requirements(model, pip_requirements)
    (path / "requirements.txt").write_text("\n".join(requirements) + "\n")
    build = ["pip", "setuptools", "wheel"]
    (path / "python_env.yaml").write_text(
        _dump_yaml(
            {"python": python, "build_dependencies": build, "dependencies": ["-r requirements.txt"]}
        )
    )
    (path / "conda.yaml").write_text(
        _dump_yaml(
            {
                "channels": ["conda-forge"],
                "dependencies": [f"python={python}", "pip", {"pip": requirements}],
                "name": "mlflow-env",
            }
        )
    )
    mlmodel: dict[str, Any] = {}
    if artifact_path:
        mlmodel["artifact_path"] = artifact_path
    mlmodel["flavors"] = {
        "python_function": {
            "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
            "loader_module": "mlflow.sklearn",
            "model_path": _MODEL_FILE,
            "predict_fn": "predict",
            "python_version": python,
        },
        "sklearn": {
            "code": None,
            "pickled_model": _MODEL_FILE,
            "serialization_format": "pickle",
            "sklearn_version": _version("scikit-learn"),
        },
    }
    mlmodel["mlflow_version"] = _version("mlflow") or "2.7.1"
    mlmodel["model_uuid"] = uuid.uuid4().hex
    if run_id:
        mlmodel["run_id"] = run_id
    if input_example is not None:
        data = _as_array_or_frame(input_example)
        if type(data).__module__.startswith("pandas"):
            text = data.to_json(orient="split", index=False)
            info = {"artifact_path": "input_example.json", "pandas_orient": "split"}
            info["type"] = "dataframe"
        else:
            text = json.dumps(data.tolist())
            info = {"artifact_path": "input_example.json", "type": "ndarray"}
        (path / "input_example.json").write_text(text)
        mlmodel["saved_input_example_info"] = info
        if signature is None:
            signature = infer_signature(model, data)
    if signature is not None:
        mlmodel["signature"] = signature
    mlmodel["utc_time_created"] = str(
        datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    )
    (path / "MLmodel").write_text(_dump_yaml(mlmodel))
    return mlmodel
