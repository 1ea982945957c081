"""``mlrelay.lightgbm``: MLflow's ``mlflow.lightgbm`` without MLflow.

A Booster is written as ``model.lgb`` (LightGBM's own text format), a scikit-learn-API model
(``LGBMClassifier``, ...) pickled as ``model.pkl`` (``cloudpickle`` format, which MLflow 2.x
and 3.x both read), in MLflow's ``lightgbm`` flavor with the ``python_function`` flavor. The
lightgbm package is needed only to log or load such a model.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError
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

__all__ = ["autolog", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "lightgbm"


def _format(serialization_format: str | None) -> None:
    if serialization_format not in (None, "cloudpickle", "pickle"):
        raise ValidationError(
            f"serialization_format={serialization_format!r}: mlrelay writes LightGBM models "
            "in the cloudpickle format (which MLflow 2.x and 3.x both read), not skops",
            field="serialization_format",
        )


def log_model(
    lgb_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    await_registration_for: float | None = 300,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra_files: Sequence[str] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    serialization_format: str | None = None,
    skops_trusted_types: list[str] | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a LightGBM model into the active run (one is started when none is), as
    ``mlflow.lightgbm.log_model``; arguments as :func:`mlrelay.sklearn.log_model`.

    Raises:
        ValidationError: lightgbm is not installed, an argument mlrelay does not implement
            (named; ``serialization_format="skops"`` among them), or the model cannot be
            saved.
    """
    unsupported(
        "mlrelay.lightgbm.log_model",
        skops_trusted_types=skops_trusted_types, **kwargs,
    )  # fmt: skip
    _format(serialization_format)
    spec = flavor_spec(
        "lightgbm", lgb_model, code_paths=code_paths, conda_env=conda_env, metadata=metadata,
        extra_pip_requirements=extra_pip_requirements, extra_files=extra_files,
    )  # fmt: skip
    return log_spec(
        spec, model_name(name, artifact_path), signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, registered_model_name=registered_model_name,
        await_registration_for=await_registration_for, params=params, tags=tags,
        model_type=model_type, step=step, model_id=model_id,
    )  # fmt: skip


def save_model(
    lgb_model: Any,
    path: str | Path,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    serialization_format: str | None = None,
    skops_trusted_types: list[str] | None = None,
    extra_files: Sequence[str] | None = None,
    **kwargs: Any,
) -> None:
    """Write a LightGBM model to the new folder ``path``, as ``mlflow.lightgbm.save_model``.

    Raises:
        ValidationError: ``path`` exists and is not empty, lightgbm is missing, or the model
            cannot be saved.
    """
    unsupported(
        "mlrelay.lightgbm.save_model", mlflow_model=mlflow_model,
        skops_trusted_types=skops_trusted_types, **kwargs,
    )  # fmt: skip
    _format(serialization_format)
    spec = flavor_spec(
        "lightgbm", lgb_model, code_paths=code_paths, conda_env=conda_env, metadata=metadata,
        extra_pip_requirements=extra_pip_requirements, extra_files=extra_files,
    )  # fmt: skip
    save_spec(
        spec, path, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements,
    )  # fmt: skip


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The LightGBM model at ``model_uri`` (a Booster or the scikit-learn-API model), as
    ``mlflow.lightgbm.load_model``; models MLflow 3 wrote in the skops format need skops.

    Raises:
        ValidationError: no model there, no lightgbm flavor, or lightgbm is not installed.
    """
    return load_flavor(model_uri, dst_path, "lightgbm")


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Log LightGBM training automatically, as ``mlflow.lightgbm.autolog`` (implemented in
    ``mlrelay._autolog.lightgbm``, imported only when this is called)."""
    module = importlib.import_module("mlrelay._autolog.lightgbm")
    module.autolog(
        log_input_examples=log_input_examples, log_model_signatures=log_model_signatures,
        log_models=log_models, log_datasets=log_datasets, disable=disable, exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions, silent=silent,
        registered_model_name=registered_model_name, extra_tags=extra_tags,
    )  # fmt: skip
