"""mlrelay: log ML experiments to any MLflow-compatible tracking server.

The public surface is listed in ``__all__``; everything else lives in underscore
modules and may change. Names other than the errors are loaded lazily (PEP 562): the
``if TYPE_CHECKING:`` imports below say where each lives, for type checkers and for
``__getattr__`` alike. Importing this package does no I/O and reads no
environment: the client, configuration and CLI load on first use.

MLflow's namespaces are submodules, loaded on first access as in MLflow
(``mlrelay.sklearn.log_model``, ``mlrelay.entities.Metric``, ``mlrelay.tracking.MlflowClient``;
see ``_SUBMODULES``). MLflow names outside mlrelay's scope (GenAI tracing, evaluation,
deployments, Projects, some flavors; see ``_UNSUPPORTED``) raise
:class:`UnsupportedFeatureError` naming what to use instead.

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
    JournalDamagedError,
    JournalError,
    JournalVersionError,
    MissingExtraError,
    MlrelayError,
    ModelRegistrationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RegistryNotSupportedError,
    ResourceAlreadyExistsError,
    ServerError,
    UnexpectedResponseError,
    UnsupportedFeatureError,
    ValidationError,
)

if TYPE_CHECKING:
    from ._fluent_logged_models import (
        delete_logged_model_tag,
        finalize_logged_model,
        get_logged_model,
        initialize_logged_model,
        last_logged_model,
        search_logged_models,
        set_logged_model_tags,
    )
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
    from .exceptions import MlflowException
    from .fluent import (
        ActiveRun,
        active_run,
        autolog,
        create_experiment,
        delete_experiment,
        delete_run,
        delete_tag,
        end_run,
        flush,
        get_artifact_uri,
        get_experiment,
        get_experiment_by_name,
        get_parent_run,
        get_run,
        get_tracking_uri,
        init,
        is_tracking_uri_set,
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
        log_table,
        log_text,
        search_experiments,
        search_runs,
        set_experiment,
        set_experiment_tag,
        set_experiment_tags,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from .system_metrics import (
        disable_system_metrics_logging,
        enable_system_metrics_logging,
        set_system_metrics_node_id,
        set_system_metrics_samples_before_logging,
        set_system_metrics_sampling_interval,
    )
    from .tracking import MlflowClient

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
    "JournalDamagedError",
    "JournalError",
    "JournalVersionError",
    "Metric",
    "MissingExtraError",
    "MlflowClient",
    "MlflowException",
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
    "UnsupportedFeatureError",
    "ValidationError",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_logged_model_tag",
    "delete_run",
    "delete_tag",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "end_run",
    "finalize_logged_model",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_logged_model",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "init",
    "initialize_logged_model",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
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
    "log_table",
    "log_text",
    "register_model",
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_logged_model_tags",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
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

# MLflow's namespaces, as submodules imported on first access (``mlrelay.sklearn``).
_SUBMODULES = frozenset(
    {"artifacts", "data", "entities", "exceptions", "keras", "lightgbm", "models", "onnx",
     "pyfunc", "sklearn", "system_metrics", "tracking", "xgboost"}
)  # fmt: skip

_TRACING = (
    "MLflow's GenAI tracing ({name}); trace with MLflow's own package (pip install mlflow), "
    "which sends traces to the same tracking server, and keep mlrelay for runs and metrics"
)
_GENAI = (
    "MLflow's GenAI features ({name}); use MLflow's own package (pip install mlflow) for "
    "them, against the same tracking server"
)
_FLAVOR = (
    "MLflow's {name} model flavor yet; save the model with the framework's own save "
    "function and log the files with mlrelay.log_artifacts, or wrap it in a "
    "mlrelay.pyfunc.PythonModel and log it with mlrelay.pyfunc.log_model"
)
# MLflow names outside mlrelay's scope -> what the error says instead of "no attribute".
_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(
        ("trace", "start_span", "get_trace", "search_traces", "tracing", "log_trace",
         "get_current_active_span", "update_current_trace", "get_last_active_trace_id",
         "set_trace_tag", "delete_trace_tag", "log_feedback", "log_expectation",
         "log_assessment"),
        _TRACING,
    ),
    **dict.fromkeys(
        ("genai", "register_prompt", "load_prompt", "search_prompts", "openai", "langchain",
         "llama_index", "dspy", "anthropic", "bedrock", "gemini", "mistral", "groq",
         "litellm", "autogen", "crewai", "smolagents", "pydantic_ai", "ag2", "strands",
         "agno", "semantic_kernel", "haystack", "txtai"),
        _GENAI,
    ),
    **dict.fromkeys(
        ("pytorch", "tensorflow", "transformers", "sentence_transformers", "spark",
         "catboost", "statsmodels", "prophet", "spacy", "h2o", "paddle", "pmdarima", "shap",
         "johnsnowlabs"),
        _FLAVOR,
    ),
    "evaluate": (
        "mlflow.evaluate; compute metrics with your framework (e.g. sklearn.metrics) and log "
        "them with mlrelay.log_metrics, or use MLflow's own package for model evaluation"
    ),
    "deployments": "MLflow's deployments ({name}); use MLflow's own package (pip install mlflow)",
    "gateway": "MLflow's AI gateway ({name}); use MLflow's own package (pip install mlflow)",
    "projects": (
        "MLflow Projects ({name}); run your training script directly (python train.py), or "
        "use MLflow's own package for Projects"
    ),
    "run": (
        "MLflow Projects (mlflow.run); run your training script directly (python train.py), "
        "or use MLflow's own package for Projects"
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if not _lazy:
        _lazy.update(_lazy_table())
    module = _lazy.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")  # sets the attribute too
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"mlrelay.{name} is not part of this mlrelay version") from None
    if name in _UNSUPPORTED:
        what = _UNSUPPORTED[name].format(name=f"mlflow.{name}")
        raise UnsupportedFeatureError(f"mlrelay does not support {what}")
    raise AttributeError(f"module 'mlrelay' has no attribute {name!r}")


def __dir__() -> list[str]:
    import importlib.util

    present = (n for n in _SUBMODULES if importlib.util.find_spec(f"{__name__}.{n}") is not None)
    return sorted({*__all__, *present})
