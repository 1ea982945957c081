"""``mlrelay.onnx``: MLflow's ``mlflow.onnx`` without MLflow.

An ONNX model (an ``onnx.ModelProto``, its serialized bytes, or a ``.onnx`` file) is written
as ``model.onnx`` in MLflow's ``onnx`` flavor with the ``python_function`` flavor, which
``mlrelay.pyfunc`` and ``mlflow.pyfunc`` run with onnxruntime. onnx is needed to load the
model back as a ``ModelProto``, onnxruntime to predict with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlrelay._fluent_models import (
    flavor_spec,
    load_flavor,
    log_spec,
    model_name,
    save_spec,
    unsupported,
)
from mlrelay._formats.schema import ModelSignature
from mlrelay._registry import ModelInfo

__all__ = ["load_model", "log_model", "save_model"]

FLAVOR_NAME = "onnx"


def log_model(
    onnx_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    await_registration_for: float | None = 300,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    onnx_execution_providers: list[str] | None = None,
    onnx_session_options: Any = None,
    metadata: Mapping[str, Any] | None = None,
    save_as_external_data: bool = True,  # noqa: ARG001 - one model.onnx file either way
    extra_files: Sequence[str] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log an ONNX model into the active run (one is started when none is), as
    ``mlflow.onnx.log_model``; arguments as :func:`mlrelay.sklearn.log_model`, and
    ``onnx_execution_providers`` (default ``["CPUExecutionProvider"]``).

    Raises:
        ValidationError: an argument mlrelay does not implement (named), or the model is
            not bytes, a .onnx file or a ModelProto.
    """
    unsupported(
        "mlrelay.onnx.log_model", onnx_session_options=onnx_session_options, **kwargs,
    )  # fmt: skip
    spec = flavor_spec(
        "onnx", onnx_model, {"onnx_execution_providers": onnx_execution_providers},
        code_paths=code_paths, conda_env=conda_env, metadata=metadata,
        extra_pip_requirements=extra_pip_requirements, extra_files=extra_files,
    )  # fmt: skip
    return log_spec(
        spec, model_name(name, artifact_path), signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, registered_model_name=registered_model_name,
        await_registration_for=await_registration_for, params=params, tags=tags,
        model_type=model_type, step=step, model_id=model_id,
    )  # fmt: skip


def save_model(
    onnx_model: Any,
    path: str | Path,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    onnx_execution_providers: list[str] | None = None,
    onnx_session_options: Any = None,
    metadata: Mapping[str, Any] | None = None,
    save_as_external_data: bool = True,  # noqa: ARG001 - one model.onnx file either way
    extra_files: Sequence[str] | None = None,
    **kwargs: Any,
) -> None:
    """Write an ONNX model to the new folder ``path``, as ``mlflow.onnx.save_model``.

    Raises:
        ValidationError: ``path`` exists and is not empty, or as :func:`log_model`.
    """
    unsupported(
        "mlrelay.onnx.save_model", mlflow_model=mlflow_model,
        onnx_session_options=onnx_session_options, **kwargs,
    )  # fmt: skip
    spec = flavor_spec(
        "onnx", onnx_model, {"onnx_execution_providers": onnx_execution_providers},
        code_paths=code_paths, conda_env=conda_env, metadata=metadata,
        extra_pip_requirements=extra_pip_requirements, extra_files=extra_files,
    )  # fmt: skip
    save_spec(
        spec, path, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements,
    )  # fmt: skip


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The ``onnx.ModelProto`` at ``model_uri``, as ``mlflow.onnx.load_model``.

    Raises:
        ValidationError: no model there, no onnx flavor, or onnx is not installed.
    """
    return load_flavor(model_uri, dst_path, "onnx")
