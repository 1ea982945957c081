"""``mlrelay.xgboost``: MLflow's ``mlflow.xgboost`` without MLflow.

Boosters and scikit-learn-API models (``XGBClassifier``, ...) are written in MLflow's
``xgboost`` flavor (``model.ubj`` by default, the class recorded to load it back) with the
``python_function`` flavor. The xgboost package is needed only to log or load such a model.
"""

from __future__ import annotations

import importlib
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

__all__ = ["autolog", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "xgboost"


def log_model(
    xgb_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    await_registration_for: float | None = 300,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    model_format: str = "ubj",
    metadata: Mapping[str, Any] | None = None,
    extra_files: Sequence[str] | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log an XGBoost model into the active run (one is started when none is), as
    ``mlflow.xgboost.log_model``; arguments as :func:`mlrelay.sklearn.log_model`, and
    ``model_format`` (``ubj``, ``json`` or ``xgb``).

    Raises:
        ValidationError: xgboost is not installed, an argument mlrelay does not implement
            (named), or the model cannot be saved.
    """
    unsupported(
        "mlrelay.xgboost.log_model", **kwargs,
    )  # fmt: skip
    spec = flavor_spec(
        "xgboost", xgb_model, {"model_format": model_format}, code_paths=code_paths,
        conda_env=conda_env, metadata=metadata, extra_pip_requirements=extra_pip_requirements,
        extra_files=extra_files,
    )  # fmt: skip
    return log_spec(
        spec, model_name(name, artifact_path), signature=signature, input_example=input_example,
        pip_requirements=pip_requirements, registered_model_name=registered_model_name,
        await_registration_for=await_registration_for, params=params, tags=tags,
        model_type=model_type, step=step, model_id=model_id,
    )  # fmt: skip


def save_model(
    xgb_model: Any,
    path: str | Path,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    model_format: str = "ubj",
    metadata: Mapping[str, Any] | None = None,
    extra_files: Sequence[str] | None = None,
    **kwargs: Any,
) -> None:
    """Write an XGBoost model to the new folder ``path``, as ``mlflow.xgboost.save_model``.

    Raises:
        ValidationError: ``path`` exists and is not empty, xgboost is missing, or the model
            cannot be saved.
    """
    unsupported("mlrelay.xgboost.save_model", mlflow_model=mlflow_model, **kwargs)
    spec = flavor_spec(
        "xgboost", xgb_model, {"model_format": model_format}, code_paths=code_paths,
        conda_env=conda_env, metadata=metadata, extra_pip_requirements=extra_pip_requirements,
        extra_files=extra_files,
    )  # fmt: skip
    save_spec(
        spec, path, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements,
    )  # fmt: skip


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The XGBoost model at ``model_uri`` (a Booster or the scikit-learn-API class it was
    logged as), as ``mlflow.xgboost.load_model``.

    Raises:
        ValidationError: no model there, no xgboost flavor, or xgboost is not installed.
    """
    return load_flavor(model_uri, dst_path, "xgboost")


def autolog(
    importance_types: list[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Log XGBoost training automatically, as ``mlflow.xgboost.autolog`` (implemented in
    ``mlrelay._autolog.xgboost``, imported only when this is called)."""
    module = importlib.import_module("mlrelay._autolog.xgboost")
    module.autolog(
        importance_types=importance_types, log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures, log_models=log_models,
        log_datasets=log_datasets, disable=disable, exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions, silent=silent,
        registered_model_name=registered_model_name, model_format=model_format,
        extra_tags=extra_tags,
    )  # fmt: skip
