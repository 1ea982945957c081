"""mlrelay: log ML experiments to any MLflow-compatible tracking server.

The public surface is listed in ``__all__``; everything else lives in underscore
modules and may change. Names other than the errors are loaded lazily (PEP 562): the
``if TYPE_CHECKING:`` imports below say where each lives, for type checkers and for
``__getattr__`` alike. Importing this package does no I/O and reads no
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
        last_active_run,
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
    "last_active_run",
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


def _lazy_table() -> dict[str, str]:
    """Name -> module, read from the ``if TYPE_CHECKING:`` imports above.

    Those imports are the one list of where each lazily loaded name lives: type checkers
    read them, and this reads them once, on the first lazy attribute access (so ``import
    mlrelay`` itself parses nothing).
    """
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return {
                alias.name: "." * imp.level + (imp.module or "")
                for imp in node.body
                if isinstance(imp, ast.ImportFrom)
                for alias in imp.names
            }
    raise ImportError("mlrelay/__init__.py lost its TYPE_CHECKING imports")  # pragma: no cover


_lazy: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    if not _lazy:
        _lazy.update(_lazy_table())
    module = _lazy.get(name)
    if module is None:
        raise AttributeError(f"module 'mlrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
