"""mlrelay: log ML experiments to any MLflow-compatible tracking server.

The public surface is listed in ``__all__``; everything else lives in underscore
modules and may change. Importing this package does no I/O and reads no
environment: the client, configuration and CLI load on first use.

>>> import mlrelay
>>> with mlrelay.start_run():  # doctest: +SKIP
...     mlrelay.log_metric("loss", 0.25, step=1)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ArtifactsNotProxiedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    MlrelayError,
    ModelRegistrationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RegistryNotSupportedError,
    ResourceAlreadyExistsError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)

if TYPE_CHECKING:
    from ._fluent_models import (
        log_model,
        register_model,
        search_model_versions,
        search_registered_models,
    )
    from ._protocol.entities import (
        Dataset,
        DatasetInput,
        Experiment,
        FileInfo,
        InputTag,
        Metric,
        ModelVersion,
        Param,
        RegisteredModel,
        Run,
        RunData,
        RunInfo,
        RunInputs,
        RunTag,
    )
    from ._registry import ModelInfo
    from ._retry import RetryPolicy
    from .client import Client
    from .fluent import (
        ActiveRun,
        active_run,
        create_experiment,
        delete_tag,
        end_run,
        flush,
        get_run,
        get_tracking_uri,
        init,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_image,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )

from ._version import __version__

# name -> module that defines it; loaded on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "ActiveRun": ".fluent",
    "active_run": ".fluent",
    "create_experiment": ".fluent",
    "delete_tag": ".fluent",
    "end_run": ".fluent",
    "flush": ".fluent",
    "get_run": ".fluent",
    "get_tracking_uri": ".fluent",
    "init": ".fluent",
    "log_artifact": ".fluent",
    "log_artifacts": ".fluent",
    "log_dict": ".fluent",
    "log_figure": ".fluent",
    "log_image": ".fluent",
    "log_input": ".fluent",
    "log_metric": ".fluent",
    "log_metrics": ".fluent",
    "log_model": "._fluent_models",
    "log_param": ".fluent",
    "log_params": ".fluent",
    "log_text": ".fluent",
    "register_model": "._fluent_models",
    "search_model_versions": "._fluent_models",
    "search_registered_models": "._fluent_models",
    "search_runs": ".fluent",
    "set_experiment": ".fluent",
    "set_tag": ".fluent",
    "set_tags": ".fluent",
    "set_tracking_uri": ".fluent",
    "start_run": ".fluent",
    "Client": ".client",
    "RetryPolicy": "._retry",
    "Dataset": "._protocol.entities",
    "DatasetInput": "._protocol.entities",
    "Experiment": "._protocol.entities",
    "FileInfo": "._protocol.entities",
    "InputTag": "._protocol.entities",
    "ModelInfo": "._registry",
    "ModelVersion": "._protocol.entities",
    "RegisteredModel": "._protocol.entities",
    "Metric": "._protocol.entities",
    "Param": "._protocol.entities",
    "Run": "._protocol.entities",
    "RunData": "._protocol.entities",
    "RunInfo": "._protocol.entities",
    "RunInputs": "._protocol.entities",
    "RunTag": "._protocol.entities",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ActiveRun",
    "ArtifactsNotProxiedError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "FileInfo",
    "InputTag",
    "Metric",
    "MlrelayError",
    "ModelInfo",
    "ModelRegistrationError",
    "ModelVersion",
    "NotFoundError",
    "Param",
    "PermissionDeniedError",
    "RateLimitError",
    "RegisteredModel",
    "RegistryNotSupportedError",
    "ResourceAlreadyExistsError",
    "RetryPolicy",
    "Run",
    "RunData",
    "RunInfo",
    "RunInputs",
    "RunTag",
    "ServerError",
    "UnexpectedResponseError",
    "ValidationError",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_tag",
    "end_run",
    "flush",
    "get_run",
    "get_tracking_uri",
    "init",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
