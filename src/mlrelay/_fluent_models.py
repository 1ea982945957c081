"""The fluent API's models and registry: ``mlrelay.log_model``, ``mlrelay.register_model`` and
the registry searches, over the active run and the fluent API's client.

Online, a model is uploaded when ``log_model`` is called (after what was logged before it has
been delivered), so the returned :class:`ModelInfo` names where it is. Offline, the model
directory is written now and journaled like any artifacts (``mlrelay sync`` uploads it);
registration needs the server and says so.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fluent
from ._errors import ConfigurationError
from ._pipeline import runs
from ._pipeline.runs import ActiveRun, session

if TYPE_CHECKING:
    from ._protocol.entities import ModelVersion, RegisteredModel
    from ._registry import ModelInfo

__all__ = ["log_model", "register_model", "search_model_versions", "search_registered_models"]


def _active() -> ActiveRun:
    run = fluent.active_run()
    if run is None:
        raise ConfigurationError("no active run: call mlrelay.start_run() before log_model")
    return run


def _server_run_id(run: ActiveRun) -> str:
    """The server's id of the run, waiting (bounded) for the run to be created there."""
    deadline = time.monotonic() + max(session.settings().exit_timeout, 5.0)
    while True:
        server_id = runs.server_id(run.local_id)
        if server_id != run.local_id:
            return server_id
        if run.run_id != run.local_id:
            return run.run_id
        if time.monotonic() >= deadline:
            raise ConfigurationError(
                f"run {run.local_id} is not on the tracking server yet (it is unreachable); "
                "log the model once it is back, or offline (MLRELAY_MODE=offline) and sync"
            )
        fluent.flush(timeout=0.5)


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavor: str | None = None,
    signature: dict[str, str | None] | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    registered_model_name: str | None = None,
) -> ModelInfo | None:
    """Log a model of the active run in MLflow's format (see :meth:`Client.log_model`).

    Online, the model is uploaded now (once the run exists on the server and what was logged
    before has been delivered) and a :class:`ModelInfo` is returned. Offline, the model
    directory is journaled like any artifacts and ``mlrelay sync`` uploads it; None is
    returned.

    Raises:
        ConfigurationError: no active run; ``registered_model_name`` offline (registration
            needs the server: sync, then call ``register_model``); the run cannot reach
            the server in time.
        ValidationError: the model cannot be saved (see :meth:`Client.log_model`).
    """
    from ._formats.models import save_model

    run = _active()
    mode = session.settings().mode
    if mode == "disabled":
        return None
    if mode == "offline":
        if registered_model_name:
            raise ConfigurationError(
                "log_model(registered_model_name=...) needs the tracking server; offline, log "
                "the model, run `mlrelay sync`, then call register_model"
            )
        with tempfile.TemporaryDirectory(prefix="mlrelay-model-") as tmp:
            save_model(
                model, Path(tmp), input_example=input_example, signature=signature,
                pip_requirements=pip_requirements, artifact_path=name, flavor=flavor,
            )  # fmt: skip
            fluent.log_artifacts(tmp, name)  # copied into the journal now
        return None
    server_id = _server_run_id(run)
    fluent.flush()  # the model lands after what was logged before it
    info: ModelInfo = session.client("log_model").log_model(
        server_id,
        model,
        name,
        flavor=flavor,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        registered_model_name=registered_model_name,
    )
    return info


def register_model(
    model_uri: str, name: str, *, await_registration_for: float = 300.0
) -> ModelVersion:
    """Register a model as a new version of ``name`` (created if missing) and wait for READY;
    see :meth:`Client.register_model`. In ``runs:/<run_id>/<path>``, a local run id is
    replaced by the server's.

    Raises:
        ConfigurationError: offline mode (registration needs the server).
        RegistryNotSupportedError: the server has no registry.
    """
    if model_uri.startswith("runs:/"):
        run_id, _, rest = model_uri[len("runs:/") :].partition("/")
        model_uri = f"runs:/{runs.server_id(run_id)}/{rest}"
    version: ModelVersion = session.client("register_model").register_model(
        model_uri, name, await_registration_for=await_registration_for
    )
    return version


def search_registered_models(
    filter_string: str | None = None, max_results: int = 100
) -> list[RegisteredModel]:
    """Registered models matching a filter such as ``name LIKE 'churn%'``."""
    found: list[RegisteredModel] = session.client(
        "search_registered_models"
    ).search_registered_models(filter_string, max_results)
    return found


def search_model_versions(
    filter_string: str | None = None, max_results: int = 10_000
) -> list[ModelVersion]:
    """Model versions matching a filter such as ``name = 'churn'``."""
    found: list[ModelVersion] = session.client("search_model_versions").search_model_versions(
        filter_string, max_results
    )
    return found
