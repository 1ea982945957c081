"""``mlrelay.sklearn``: MLflow's ``mlflow.sklearn`` without MLflow.

Models are written in MLflow's ``sklearn`` flavor (``pickle`` serialization by default, which
MLflow 2.x and 3.x both read; ``cloudpickle`` and ``skops`` on request) with the
``python_function`` flavor, so ``mlflow.sklearn.load_model`` and ``mlflow.pyfunc.load_model``
load them; :func:`load_model` reads models MLflow wrote too (skops included, with skops
installed).

>>> import mlrelay as mlflow  # doctest: +SKIP
>>> from mlrelay.models import infer_signature  # doctest: +SKIP
>>> signature = infer_signature(X, model.predict(X))  # doctest: +SKIP
>>> info = mlflow.sklearn.log_model(model, name="model", signature=signature)  # doctest: +SKIP
>>> mlflow.sklearn.load_model(info.model_uri).predict(X)  # doctest: +SKIP
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

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = [
    SERIALIZATION_FORMAT_SKOPS,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
]


def _options(
    serialization_format: str | None, pyfunc_predict_fn: str, skops_trusted_types: Any
) -> dict[str, Any]:
    return {
        "serialization_format": serialization_format,
        "pyfunc_predict_fn": pyfunc_predict_fn,
        "skops_trusted_types": skops_trusted_types,
    }


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    await_registration_for: float | None = 300,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: Mapping[str, Any] | None = None,
    extra_files: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    name: str | None = None,
    skops_trusted_types: list[str] | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a scikit-learn model into the active run (one is started when none is), as
    ``mlflow.sklearn.log_model``: ``name`` (``artifact_path`` is its deprecated alias),
    ``signature`` (inferred from ``input_example`` when None, none when False),
    ``registered_model_name``, ``serialization_format`` (``skops``, ``cloudpickle`` or
    ``pickle``; by default skops when it is installed, as MLflow 3, else pickle; a model
    skops refuses falls back to cloudpickle with a warning) and the rest as MLflow.

    Returns:
        The :class:`~mlrelay.models.ModelInfo` (``model_uri`` is ``models:/<model_id>`` on
        MLflow 3 servers).

    Raises:
        ValidationError: an argument mlrelay does not implement (logging into
            an existing logged model, ``model_id``), or the model cannot
            be saved.
        ConfigurationError, RegistryNotSupportedError: see
            :func:`mlrelay._fluent_models.log_spec`.
    """
    unsupported(
        "mlrelay.sklearn.log_model", **kwargs,
    )  # fmt: skip
    spec = flavor_spec(
        "sklearn", sk_model, _options(serialization_format, pyfunc_predict_fn, skops_trusted_types),
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
    sk_model: Any,
    path: str | Path,
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Any = None,
    serialization_format: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    pyfunc_predict_fn: str = "predict",
    metadata: Mapping[str, Any] | None = None,
    skops_trusted_types: list[str] | None = None,
    extra_files: Sequence[str] | None = None,
) -> None:
    """Write a scikit-learn model to the new folder ``path``, as ``mlflow.sklearn.save_model``
    (arguments as :func:`log_model`).

    Raises:
        ValidationError: ``path`` exists and is not empty, or the model cannot be saved.
    """
    unsupported("mlrelay.sklearn.save_model", mlflow_model=mlflow_model)
    spec = flavor_spec(
        "sklearn", sk_model, _options(serialization_format, pyfunc_predict_fn, skops_trusted_types),
        code_paths=code_paths, conda_env=conda_env, metadata=metadata,
        extra_pip_requirements=extra_pip_requirements, extra_files=extra_files,
    )  # fmt: skip
    save_spec(
        spec, path, signature=signature, input_example=input_example,
        pip_requirements=pip_requirements,
    )  # fmt: skip


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The scikit-learn model at ``model_uri`` (a local path, ``runs:/``, ``models:/<name>/
    <version>``, ``models:/<name>@<alias>``, ``models:/<model_id>``), as
    ``mlflow.sklearn.load_model``.

    Raises:
        ValidationError: no model there, or it has no sklearn flavor.
        NotFoundError: no such model on the server.
    """
    return load_flavor(model_uri, dst_path, "sklearn")


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    log_post_training_metrics: bool = True,
    serialization_format: str = "cloudpickle",
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: dict[str, Any] | None = None,
) -> None:
    """Log scikit-learn training automatically, as ``mlflow.sklearn.autolog`` (implemented
    in ``mlrelay._autolog.sklearn``, imported only when this is called)."""
    module = importlib.import_module("mlrelay._autolog.sklearn")
    module.autolog(
        log_input_examples=log_input_examples, log_model_signatures=log_model_signatures,
        log_models=log_models, log_datasets=log_datasets, disable=disable, exclusive=exclusive,
        disable_for_unsupported_versions=disable_for_unsupported_versions, silent=silent,
        max_tuning_runs=max_tuning_runs, log_post_training_metrics=log_post_training_metrics,
        serialization_format=serialization_format, registered_model_name=registered_model_name,
        pos_label=pos_label, extra_tags=extra_tags,
    )  # fmt: skip
