"""The public surface: one front door, a pinned list, nothing heavy at import."""

from __future__ import annotations

import subprocess
import sys

import mlrelay

EXPECTED = [
    "APIConnectionError", "APIError", "APIStatusError", "APITimeoutError", "ActiveRun",
    "ArtifactsNotProxiedError", "AuthenticationError", "BadRequestError", "Client",
    "ConfigurationError", "ConflictError", "Dataset", "DatasetInput", "Experiment", "FileInfo",
    "InputTag", "Metric", "MlrelayError", "ModelInfo", "ModelRegistrationError", "ModelVersion",
    "NotFoundError", "Param", "PermissionDeniedError", "RateLimitError", "RegisteredModel",
    "RegistryNotSupportedError", "ResourceAlreadyExistsError", "RetryPolicy", "Run", "RunData",
    "RunInfo", "RunInputs", "RunTag", "ServerError", "UnexpectedResponseError",
    "ValidationError", "__version__", "active_run", "create_experiment", "delete_tag",
    "end_run", "flush", "get_run", "get_tracking_uri", "init", "last_active_run",
    "log_artifact", "log_artifacts", "log_dict", "log_figure", "log_image", "log_input",
    "log_metric", "log_metrics", "log_model", "log_param", "log_params", "log_text",
    "register_model", "search_model_versions", "search_registered_models", "search_runs",
    "set_experiment", "set_tag", "set_tags", "set_tracking_uri", "start_run"
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


def test_import_loads_nothing_heavy() -> None:
    """`import mlrelay` loads neither httpx, pydantic, tenacity, keyring, dotenv nor the CLI."""
    code = (
        "import sys, mlrelay; heavy = ['httpx', 'pydantic', 'tenacity', 'keyring', 'dotenv', "
        "'mlrelay.client', 'mlrelay.cli', 'mlrelay.fluent', 'sqlite3']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
