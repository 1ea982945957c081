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

from mlrelay._errors import ValidationError

from .pyfunc import CallableModel, ContextModel

__all__ = ["column_type", "infer_signature", "save_model", "tensor_dtype"]

_MODEL_FILE = "model.pkl"
_CUSTOM_FILE = "python_model.pkl"


def _kind(model: Any, flavor: str | None = None) -> str:
    """``onnx`` (bytes, a ``.onnx`` path or an ``onnx.ModelProto``), ``sklearn`` (anything with
    ``predict(X)``), ``context`` (``predict(context, X)``, as MLflow's PythonModel) or
    ``callable`` (a plain function of the input)."""
    import inspect

    if flavor == "onnx" or isinstance(model, bytes) or type(model).__name__ == "ModelProto":
        return "onnx"
    if isinstance(model, str | Path) and str(model).endswith(".onnx"):
        return "onnx"
    predict = getattr(model, "predict", None)
    if callable(predict):
        try:
            required = [
                p
                for p in inspect.signature(predict).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            return "sklearn"
        return "context" if len(required) >= 2 else "sklearn"
    if callable(model):
        return "callable"
    raise ValidationError(
        "log_model takes a scikit-learn estimator (or any object with predict(X)), an object "
        f"with predict(context, model_input), or a function; got {type(model).__name__}",
        field="model",
    )


def _dumps(obj: Any) -> bytes:
    # cloudpickle (when installed) also handles lambdas and classes defined in __main__.
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=4)
    return bytes(cloudpickle.dumps(obj, protocol=4))


_OBJECT_SAMPLE = 1000  # values looked at to type an object column


def column_type(data: Any) -> str:
    """MLflow's type name of a pandas column or a 1-D numpy array, as MLflow infers it:
    ``integer`` / ``long`` / ``float`` / ``double`` by size, ``boolean``, ``string``,
    ``binary``, ``datetime``; object columns by their (first 1,000 non-null) values.

    Raises:
        ValidationError: a type MLflow cannot describe either (unsigned 64-bit, mixed
            objects...).
    """
    dtype = data.dtype
    kind, size = dtype.kind, getattr(dtype, "itemsize", 8)
    if kind == "b":
        return "boolean"
    if kind in "iu" and (size < 4 or (kind == "i" and size == 4)):
        return "integer"
    if kind in "iu" and (size < 8 or (kind == "i" and size == 8)):
        return "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "M":
        return "datetime"
    if kind == "O":
        values = [v for v in list(data[: _OBJECT_SAMPLE * 10]) if v is not None and v == v]
        kinds = {type(v) for v in values[:_OBJECT_SAMPLE]}
        for python_type, name in ((str, "string"), (bytes, "binary"), (bool, "boolean")):
            if kinds <= {python_type}:
                return name
        if kinds <= {int}:
            return "long"
        if kinds <= {int, float}:
            return "double"
    raise ValidationError(
        f"cannot describe values of type {dtype} in an MLflow schema", field="input_example"
    )


def tensor_dtype(dtype: Any) -> str:
    """A tensor spec's dtype as MLflow writes it: the numpy name, flexible sizes dropped
    (``<U10`` is ``str``, ``|S4`` is ``bytes``)."""
    return {"U": "str", "S": "bytes"}.get(dtype.kind) or str(dtype.name)


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


def _schema(data: Any) -> list[dict[str, Any]]:
    """A column spec for pandas data, a tensor spec for arrays (as MLflow infers them)."""
    if type(data).__module__.startswith("pandas"):
        if hasattr(data, "columns"):
            return [
                {"type": column_type(data[c]), "name": str(c), "required": True}
                for c in data.columns
            ]
        return [{"type": column_type(data), "required": True}]
    shape = [-1, *data.shape[1:]]
    return [{"type": "tensor", "tensor-spec": {"dtype": tensor_dtype(data.dtype), "shape": shape}}]


def infer_signature(model: Any, input_example: Any) -> dict[str, str | None]:
    """The ``signature`` block of an MLmodel file, from an example input and the model's
    prediction for it (``model.predict(example)``); as MLflow, a prediction that fails or
    cannot be described leaves the outputs out."""
    import numpy as np

    data = _as_array_or_frame(input_example)
    outputs = None
    if hasattr(model, "predict"):
        try:
            prediction = model.predict(data)
            if not type(prediction).__module__.startswith("pandas"):
                prediction = np.asarray(prediction)
            outputs = json.dumps(_schema(prediction))
        except Exception:
            outputs = None
    return {"inputs": json.dumps(_schema(data)), "outputs": outputs, "params": None}


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
    flavor: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` as an MLflow model into the empty directory ``path``.

    ``flavor="onnx"`` (or bytes, a ``.onnx`` path, an ``onnx.ModelProto``) writes the
    ``onnx`` flavor; otherwise the kind is taken from the object (see :func:`_kind`).

    Returns:
        The MLmodel content written.

    Raises:
        ValidationError: the model has no ``predict`` method or cannot be pickled, or the
            input example cannot be described.
    """
    kind = _kind(model, flavor)
    path.mkdir(parents=True, exist_ok=True)
    if kind == "onnx":
        return _save_onnx(model, path, pip_requirements, artifact_path, run_id)
    stored = _pickled_form(model, kind)
    _write_pickle(stored, path / (_MODEL_FILE if kind == "sklearn" else _CUSTOM_FILE))
    requirements = _requirements(model, pip_requirements)
    if kind != "sklearn" and pip_requirements is None:
        requirements.append(f"mlrelay=={_version('mlrelay') or '0'}")
    python = _write_env(path, requirements)
    mlmodel: dict[str, Any] = {}
    if artifact_path:
        mlmodel["artifact_path"] = artifact_path
    mlmodel["flavors"] = _sklearn_flavors(python) if kind == "sklearn" else _custom_flavors(python)
    _add_identity(mlmodel, run_id)
    if input_example is not None:
        data = _as_array_or_frame(input_example)
        mlmodel["saved_input_example_info"] = _write_input_example(data, path)
        if signature is None:
            signature = infer_signature(stored, data)
    if signature is not None:
        mlmodel["signature"] = signature
    _write_mlmodel(path, mlmodel)
    return mlmodel


def _pickled_form(model: Any, kind: str) -> Any:
    """What is pickled for a model of this kind: the model itself (``sklearn``), or the
    wrapper mlrelay's pyfunc loader calls (``context``, ``callable``)."""
    if kind == "context":
        return ContextModel(model)
    if kind == "callable":
        return CallableModel(model)
    return model


def _write_pickle(stored: Any, file: Path) -> None:
    try:
        data = _dumps(stored)
    except Exception as exc:
        raise ValidationError(f"the model cannot be pickled: {exc}", field="model") from exc
    file.write_bytes(data)


_ENV_FILES = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def _sklearn_flavors(python: str) -> dict[str, Any]:
    """The ``flavors`` of a scikit-learn model: MLflow's ``sklearn`` loader and flavor."""
    return {
        "python_function": {
            "env": dict(_ENV_FILES),
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


def _custom_flavors(python: str) -> dict[str, Any]:
    """The ``flavors`` of a custom model: mlrelay's own pyfunc loader."""
    return {
        "python_function": {
            "env": dict(_ENV_FILES),
            "loader_module": "mlrelay._pyfunc",
            "data": _CUSTOM_FILE,
            "python_version": python,
        }
    }


def _add_identity(mlmodel: dict[str, Any], run_id: str | None) -> None:
    """Add the MLflow version written for, a fresh model UUID and the run, if any."""
    mlmodel["mlflow_version"] = _version("mlflow") or "2.7.1"
    mlmodel["model_uuid"] = uuid.uuid4().hex
    if run_id:
        mlmodel["run_id"] = run_id


def _write_input_example(data: Any, path: Path) -> dict[str, str]:
    """Write ``input_example.json`` (pandas split orient, or a nested list for arrays) and
    return the ``saved_input_example_info`` that describes it."""
    if type(data).__module__.startswith("pandas"):
        text = data.to_json(orient="split", index=False)
        info = {"artifact_path": "input_example.json", "pandas_orient": "split"}
        info["type"] = "dataframe"
    else:
        text = json.dumps(data.tolist())
        info = {"artifact_path": "input_example.json", "type": "ndarray"}
    (path / "input_example.json").write_text(text)
    return info


def _write_mlmodel(path: Path, mlmodel: dict[str, Any]) -> None:
    """Stamp the creation time (UTC, naive, as MLflow) and write the ``MLmodel`` file."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    mlmodel["utc_time_created"] = str(now)
    (path / "MLmodel").write_text(_dump_yaml(mlmodel))


def _write_env(path: Path, requirements: list[str]) -> str:
    python = platform.python_version()
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
    return python


def _save_onnx(
    model: Any,
    path: Path,
    pip_requirements: Sequence[str] | None,
    artifact_path: str | None,
    run_id: str | None,
) -> dict[str, Any]:
    if isinstance(model, bytes):
        data = model
    elif isinstance(model, str | Path):
        source = Path(model)
        if not source.is_file():
            raise ValidationError(f"no ONNX file at {str(source)!r}", field="model")
        data = source.read_bytes()
    elif hasattr(model, "SerializeToString"):
        data = model.SerializeToString()
    else:
        raise ValidationError(
            f"an ONNX model is bytes, a .onnx path or an onnx.ModelProto, got "
            f"{type(model).__name__}",
            field="model",
        )
    (path / "model.onnx").write_bytes(data)
    pins = [f"{n}=={v}" for n in ("mlflow", "onnx", "onnxruntime") if (v := _version(n))]
    python = _write_env(path, list(pip_requirements) if pip_requirements is not None else pins)
    mlmodel: dict[str, Any] = {}
    if artifact_path:
        mlmodel["artifact_path"] = artifact_path
    mlmodel["flavors"] = {
        "onnx": {
            "code": None,
            "data": "model.onnx",
            "onnx_version": _version("onnx"),
            "providers": ["CPUExecutionProvider"],
        },
        "python_function": {
            "env": dict(_ENV_FILES),
            "loader_module": "mlflow.onnx",
            "data": "model.onnx",
            "python_version": python,
        },
    }
    _add_identity(mlmodel, run_id)
    _write_mlmodel(path, mlmodel)
    return mlmodel
