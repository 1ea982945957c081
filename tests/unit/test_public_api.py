"""The public surface: one front door, a pinned list, nothing heavy at import."""

from __future__ import annotations

import subprocess
import sys

import mlrelay

EXPECTED = [
    "APIConnectionError", "APIError", "APIStatusError", "APITimeoutError", "ActiveRun",
    "ArtifactsNotProxiedError", "AuthenticationError", "BadRequestError", "Client",
    "ConfigurationError", "ConflictError", "Dataset", "DatasetInput", "Experiment", "FileInfo",
    "InputTag", "JournalDamagedError", "JournalError", "JournalVersionError", "Metric",
    "MissingExtraError", "MlflowClient", "MlflowException", "MlrelayError", "ModelInfo",
    "ModelRegistrationError", "ModelVersion", "NotFoundError", "Param", "PermissionDeniedError",
    "RateLimitError", "RegisteredModel", "RegistryNotSupportedError", "ResourceAlreadyExistsError",
    "RetryPolicy", "Run", "RunData", "RunInfo", "RunInputs", "RunTag", "ServerError",
    "UnexpectedResponseError", "UnsupportedFeatureError", "ValidationError", "__version__",
    "active_run", "autolog", "create_experiment", "delete_experiment", "delete_logged_model_tag",
    "delete_run", "delete_tag", "disable_system_metrics_logging",
    "enable_system_metrics_logging", "end_run", "finalize_logged_model", "flush",
    "get_artifact_uri",
    "get_experiment", "get_experiment_by_name", "get_logged_model", "get_parent_run", "get_run",
    "get_tracking_uri", "init", "initialize_logged_model", "is_tracking_uri_set", "last_active_run",
    "last_logged_model",
    "log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image", "log_input",
    "log_metric", "log_metrics", "log_model", "log_param", "log_params", "log_table", "log_text",
    "register_model", "search_experiments", "search_logged_models", "search_model_versions",
    "search_registered_models", "search_runs", "set_experiment", "set_experiment_tag",
    "set_experiment_tags", "set_logged_model_tags",
    "set_system_metrics_node_id", "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval", "set_tag", "set_tags", "set_tracking_uri",
    "start_run"
]  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    """__all__ is exactly the reviewed list, sorted, and every name resolves."""
    assert mlrelay.__all__ == EXPECTED
    assert sorted(mlrelay.__all__) == mlrelay.__all__
    for name in mlrelay.__all__:
        assert getattr(mlrelay, name) is not None


def test_public_classes_come_from_the_right_layer() -> None:
    """Every exception derives from MlrelayError; Client lives in mlrelay.client."""
    for name in mlrelay.__all__:
        obj = getattr(mlrelay, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, mlrelay.MlrelayError), name
    assert mlrelay.Client.__module__ == "mlrelay.client"


NAMESPACES = [
    "mlrelay.artifacts", "mlrelay.data", "mlrelay.entities", "mlrelay.exceptions",
    "mlrelay.lightgbm", "mlrelay.models", "mlrelay.onnx", "mlrelay.pyfunc", "mlrelay.sklearn",
    "mlrelay.tracking", "mlrelay.xgboost",
]  # fmt: skip


def test_import_loads_nothing_heavy() -> None:
    """`import mlrelay` loads neither httpx, pydantic, tenacity, keyring, dotenv, boto3, the
    CLI, any of MLflow's namespaces (mlrelay.sklearn, mlrelay.tracking, ...), nor the
    integrations (mlrelay.integrations.ray_tune) and the tools they are for (ray)."""
    heavy = [
        "httpx", "pydantic", "tenacity", "keyring", "dotenv", "mlrelay.client", "mlrelay.cli",
        "mlrelay.fluent", "sqlite3", "pandas", "numpy", "boto3", "botocore", *NAMESPACES,
        "mlrelay.integrations", "mlrelay.integrations.ray_tune", "ray",
    ]  # fmt: skip
    code = f"import sys, mlrelay; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_namespaces_load_on_first_attribute_access() -> None:
    """`mlrelay.entities` (no import statement) loads that submodule and only it, as
    `mlflow.entities` does; `import mlrelay.tracking` works as well."""
    code = (
        "import sys, mlrelay; m = mlrelay.entities.Metric('k', 1.0, 0, 0); "
        "import mlrelay.tracking; "
        f"print(sorted(n for n in {NAMESPACES!r} if n in sys.modules), m.key, "
        "mlrelay.tracking.MlflowClient is mlrelay.MlflowClient)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("['mlrelay.entities', 'mlrelay.tracking'] k True"), out.stdout


def test_every_public_name_has_a_docstring() -> None:
    """Public classes and their public methods are documented."""
    for name in mlrelay.__all__:
        obj = getattr(mlrelay, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member):
                    assert member.__doc__, f"{name}.{attr}"


def test_every_lazy_name_is_exported_and_every_export_resolves() -> None:
    """The TYPE_CHECKING imports (where each lazy name lives) and __all__ name the same set,
    and an unknown name is an AttributeError, not a silent None."""
    import pytest

    from mlrelay import _lazy_table

    eager = {"__version__"} | {n for n in mlrelay.__all__ if n.endswith("Error")}
    assert set(_lazy_table()) == set(mlrelay.__all__) - eager
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = mlrelay.no_such_name  # type: ignore[attr-defined]
