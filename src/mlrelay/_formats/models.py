"""Models in MLflow's format, written without MLflow: an MLmodel file and its environment.

A model logged by mlrelay is a real MLflow model: ``mlflow.pyfunc.load_model`` loads it,
``mlflow models serve`` serves it. :func:`save_model` writes the files every model has
(MLmodel, ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``, the input example and
its serving form) around the files of one flavor (:mod:`mlrelay._formats.flavors`): by
default, scikit-learn estimators and any other picklable object with a ``predict`` method
are written with MLflow's ``sklearn`` flavor in its ``pickle`` serialization format
(readable by MLflow 2.x and 3.x alike) plus the ``python_function`` flavor that points at
it. A signature is inferred from an input example the way MLflow infers it
(:mod:`mlrelay._formats.schema`).

numpy, pandas, the framework packages and PyYAML are imported only when a model is saved.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError

from .flavors import ModelSpec, Written, version_of, write_flavor
from .schema import ModelSignature, column_type, infer_schema, prediction_schema, tensor_dtype

__all__ = [
    "ModelSpec",
    "column_type",
    "for_mlflow_2",
    "infer_signature",
    "save_model",
    "stamp_logged_model",
    "tensor_dtype",
    "write_registered_model_meta",
]


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


def _as_example(example: Any) -> Any:
    """An input example as it is saved: a DataFrame, an array, or a dict of arrays (lists
    and tuples become arrays)."""
    import numpy as np

    if type(example).__module__.startswith("pandas"):
        return example
    if isinstance(example, list | tuple):
        return np.asarray(example)
    if isinstance(example, np.ndarray):
        return example
    if isinstance(example, Mapping) and example:
        return {str(k): np.asarray(v) for k, v in example.items()}
    raise ValidationError(
        f"input_example must be a numpy array, a pandas DataFrame, a dict of arrays or a "
        f"list, got {type(example).__name__}",
        field="input_example",
    )


def _signature_of(predictor: Any, data: Any) -> dict[str, str | None]:
    """The ``signature`` block for an example and the model's prediction for it; as MLflow,
    a prediction that fails or cannot be described leaves the outputs out."""
    import numpy as np

    inputs = infer_schema(data)
    outputs = None
    if predictor is not None:
        try:
            with warnings.catch_warnings():  # an internal call: its warnings are not the user's
                warnings.simplefilter("ignore")
                prediction = predictor.predict(data)
            if isinstance(prediction, list | tuple):
                prediction = np.asarray(prediction)
            outputs = prediction_schema(inputs, prediction).to_json()
        except Exception:
            outputs = None
    return {"inputs": inputs.to_json(), "outputs": outputs, "params": None}


def infer_signature(model: Any, input_example: Any) -> dict[str, str | None]:
    """The ``signature`` block of an MLmodel file, from an example input and the model's
    prediction for it (``model.predict(example)``); as MLflow, a prediction that fails or
    cannot be described leaves the outputs out."""
    return _signature_of(model if hasattr(model, "predict") else None, _as_example(input_example))


def _requirements(spec: ModelSpec, written: Written, extra: Sequence[str] | None) -> list[str]:
    if extra is not None:
        return list(extra)
    wanted = ["mlflow", "numpy", "pandas", *written.packages]
    pins = []
    for name in dict.fromkeys(wanted):
        version = version_of(name)
        if version is not None:
            pins.append(f"{name}=={version}")
        elif name in ("mlflow", "mlrelay"):
            pins.append(name)  # the environment that loads the model needs it
    return [*pins, *(spec.extra_pip_requirements or [])]


def write_registered_model_meta(folder: Path, name: str | None, version: str | None) -> None:
    """Write MLflow's ``registered_model_meta`` into a model folder downloaded through a
    ``models:/`` URI: the registered model's name and version (null for a logged model)."""
    text = _dump_yaml({"model_name": name, "model_version": version})
    (folder / "registered_model_meta").write_text(text, encoding="utf-8")


def _dump_yaml(data: Any, *, sort_keys: bool = False) -> str:
    import yaml

    return str(yaml.safe_dump(data, sort_keys=sort_keys, default_flow_style=False))


def _spec_of(model: Any, flavor: str | None) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    return ModelSpec(_kind(model, flavor), model)


def for_mlflow_2(model: Any, flavor: str | None = None) -> ModelSpec:
    """The model as a spec written in formats MLflow 2 reads: a scikit-learn model whose
    format was not chosen is written with cloudpickle, MLflow 2's default (MLflow 2 cannot
    read skops, MLflow 3's default), and its flavor without MLflow 3's keys."""
    spec = _spec_of(model, flavor)
    if spec.flavor != "sklearn" or spec.options.get("serialization_format"):
        return spec
    options = {**spec.options, "serialization_format": "cloudpickle", "mlflow_2": True}
    return dataclasses.replace(spec, options=options)


def save_model(
    model: Any,
    path: Path,
    *,
    input_example: Any = None,
    signature: ModelSignature | Mapping[str, str | None] | None = None,
    pip_requirements: Sequence[str] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    flavor: str | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` as an MLflow model into the empty directory ``path``.

    ``model`` is a :class:`ModelSpec` (a model and its flavor's options), or a model whose
    kind is taken from the object (see :func:`_kind`); ``flavor="onnx"`` (or bytes, a
    ``.onnx`` path, an ``onnx.ModelProto``) writes the ``onnx`` flavor. ``signature`` is a
    :class:`ModelSignature` or its MLmodel block; None infers one from ``input_example``.
    ``model_id`` (an MLflow 3 logged model, created before the files are written) is
    recorded as MLflow 3 records it: as ``model_id`` and as ``model_uuid``.

    Returns:
        The MLmodel content written.

    Raises:
        ValidationError: the model has no ``predict`` method or cannot be pickled, or the
            input example cannot be described.
    """
    spec = _spec_of(model, flavor)
    path.mkdir(parents=True, exist_ok=True)
    written = write_flavor(spec, path)
    mlmodel: dict[str, Any] = {}
    if artifact_path:
        mlmodel["artifact_path"] = artifact_path
    mlmodel["flavors"] = written.flavors
    _add_identity(mlmodel, run_id, model_id)
    if input_example is not None:
        data = _as_example(input_example)
        mlmodel["saved_input_example_info"] = _write_input_example(data, path)
        if signature is None and spec.infer_signature:
            predictor = written.predictor() if written.predictor is not None else None
            signature = _signature_of(predictor, data)
    if isinstance(signature, ModelSignature):
        signature = signature.to_dict()
    if signature is not None:
        mlmodel["signature"] = dict(signature)
        mlmodel.update(is_signature_from_type_hint=False, type_hint_from_example=False)
    if spec.metadata is not None:
        mlmodel["metadata"] = dict(spec.metadata)
    mlmodel["model_size_bytes"] = _size(path)
    python = _write_environment(path, spec, _requirements(spec, written, pip_requirements))
    if "python_function" in written.flavors:
        conf = written.flavors["python_function"]
        conf.update(env=dict(_ENV_FILES), python_version=python)
    _write_mlmodel(path, mlmodel)
    return mlmodel


def _size(path: Path) -> int:
    """The bytes of every file written so far, as MLflow's ``model_size_bytes``."""
    return sum((Path(root) / f).stat().st_size for root, _, files in os.walk(path) for f in files)


_ENV_FILES = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def _add_identity(mlmodel: dict[str, Any], run_id: str | None, model_id: str | None) -> None:
    """Add the MLflow version written for, the model's UUID (its logged-model id when it has
    one, as MLflow 3; a fresh one otherwise) and the run, if any."""
    mlmodel["mlflow_version"] = version_of("mlflow") or "2.7.1"
    mlmodel["model_uuid"] = model_id or uuid.uuid4().hex
    mlmodel["model_id"] = model_id  # null when there is none, as MLflow 3 writes it
    mlmodel["prompts"] = None
    if run_id:
        mlmodel["run_id"] = run_id


def stamp_logged_model(
    path: Path, mlmodel: dict[str, Any], *, model_id: str, artifact_path: str
) -> dict[str, Any]:
    """Record an MLflow 3 logged model, created after the files were written, in the
    ``MLmodel`` of the folder ``path`` as MLflow 3 records it (``model_id``, ``model_uuid``,
    and its storage URI as ``artifact_path``); the rest of the file, its creation time and
    ``model_size_bytes`` (measured before ``MLmodel`` is written) stay as they are.

    Returns:
        The MLmodel content written.
    """
    stamped = {**mlmodel, "artifact_path": artifact_path, "model_uuid": model_id}
    stamped["model_id"] = model_id
    (path / "MLmodel").write_text(_dump_yaml(stamped, sort_keys=True))
    return stamped


def _write_input_example(data: Any, path: Path) -> dict[str, str]:
    """Write ``input_example.json`` (pandas split orient, a nested list for arrays, an
    object of lists for a dict of arrays) and its serving form ``serving_input_example.json``
    (what ``mlflow models serve`` takes), as MLflow writes them; return the
    ``saved_input_example_info`` that describes them."""
    info = {"artifact_path": "input_example.json"}
    if type(data).__module__.startswith("pandas"):
        example = json.loads(data.to_json(orient="split", index=False, date_format="iso"))
        example.pop("index", None)
        serving: dict[str, Any] = {"dataframe_split": example}
        info.update(pandas_orient="split", type="dataframe")
    else:
        example = (
            data.tolist() if hasattr(data, "tolist") else {k: v.tolist() for k, v in data.items()}
        )
        serving = {"inputs": example}
        info["type"] = "ndarray"
    (path / "input_example.json").write_text(json.dumps(example))
    (path / "serving_input_example.json").write_text(json.dumps(serving, indent=2))
    info["serving_input_path"] = "serving_input_example.json"
    return info


def _write_mlmodel(path: Path, mlmodel: dict[str, Any]) -> None:
    """Stamp the creation time (UTC, naive, as MLflow) and write the ``MLmodel`` file (keys
    sorted, as MLflow writes them)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    mlmodel["utc_time_created"] = str(now)
    (path / "MLmodel").write_text(_dump_yaml(mlmodel, sort_keys=True))


def _conda_env(conda_env: Any) -> dict[str, Any]:
    """A conda environment given as a dict or a YAML file."""
    import yaml

    if isinstance(conda_env, Mapping):
        return dict(conda_env)
    source = Path(conda_env)
    if not source.is_file():
        raise ValidationError(f"no conda environment file at {str(source)!r}", field="conda_env")
    loaded = yaml.safe_load(source.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _pip_of(conda: Mapping[str, Any]) -> list[str]:
    """The pip requirements listed in a conda environment."""
    for dependency in conda.get("dependencies") or []:
        if isinstance(dependency, Mapping) and "pip" in dependency:
            return [str(r) for r in dependency["pip"]]
    return []


def _write_environment(path: Path, spec: ModelSpec, requirements: list[str]) -> str:
    """Write requirements.txt, python_env.yaml and conda.yaml (the given conda environment
    when there is one, its pip section then being the requirements); return the Python
    version written."""
    python = platform.python_version()
    conda = None
    if spec.conda_env is not None:
        conda = _conda_env(spec.conda_env)
        requirements = _pip_of(conda)
    (path / "requirements.txt").write_text("\n".join(requirements) + "\n")
    build = ["pip", "setuptools", "wheel"]
    (path / "python_env.yaml").write_text(
        _dump_yaml(
            {"python": python, "build_dependencies": build, "dependencies": ["-r requirements.txt"]}
        )
    )
    if conda is None:
        conda = {
            "channels": ["conda-forge"],
            "dependencies": [f"python={python}", "pip", {"pip": requirements}],
            "name": "mlflow-env",
        }
    (path / "conda.yaml").write_text(_dump_yaml(conda))
    return python
