"""The fluent API's models and registry: ``mlrelay.log_model``, ``mlrelay.register_model``,
the registry searches, and what MLflow's flavor modules (``mlrelay.sklearn``,
``mlrelay.pyfunc``, ...) share: logging a model into the active run and finding a model's
files from its URI.

Online, a model is uploaded when ``log_model`` is called (after what was logged before it has
been delivered), so the returned :class:`ModelInfo` names where it is. Offline, the model
directory is written now and journaled like any artifacts (``mlrelay sync`` uploads it);
registration needs the server and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import fluent
from ._errors import ConfigurationError, RegistryNotSupportedError, ValidationError
from ._pipeline import runs
from ._pipeline.runs import ActiveRun, session
from ._registry import ModelInfo

if TYPE_CHECKING:
    from ._formats.models import ModelSpec
    from ._formats.schema import ModelSignature
    from ._protocol.entities import ModelVersion, RegisteredModel
    from .client import Client

__all__ = [
    "flavor_spec",
    "load_flavor",
    "local_artifacts",
    "local_model",
    "log_model",
    "log_spec",
    "model_name",
    "register_model",
    "save_spec",
    "search_model_versions",
    "search_registered_models",
    "server_id_of",
    "server_run_id",
    "unsupported",
]

_log = logging.getLogger("mlrelay")


def _active() -> ActiveRun:
    run = fluent.active_run()
    if run is None:
        raise ConfigurationError("no active run: call mlrelay.start_run() before log_model")
    return run


def server_run_id(run: ActiveRun) -> str:
    """The server's id of the run, waiting (bounded) for the run to be created there.

    Raises:
        ConfigurationError: the run is not on the server within the exit timeout (5 s at
            least).
    """
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
    signature: ModelSignature | Mapping[str, str | None] | None = None,
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
    run = _active()
    mode = session.settings().mode
    if mode == "disabled":
        return None
    if mode == "offline":
        _refuse_offline_registration(registered_model_name)
        fields = _journaled_fields(None, None, None, 0, "step")
        _journal_model(model, name, signature, input_example, pip_requirements, fields, flavor)
        return None
    server_id = server_run_id(run)
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


def _refuse_offline_registration(registered_model_name: str | None) -> None:
    if registered_model_name:
        raise ConfigurationError(
            "log_model(registered_model_name=...) needs the tracking server; offline, log "
            "the model, run `mlrelay sync`, then call register_model"
        )


def _journaled_fields(
    params: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
    model_type: str | None,
    step: int,
    link: str,
) -> dict[str, Any]:
    """A model's logged-model fields as the journal keeps them (JSON: strings for values)."""
    return {
        "params": {str(k): str(v) for k, v in (params or {}).items()},
        "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        "model_type": model_type,
        "step": step,
        "link": link,
    }


def _refuse_offline_model_id(model_id: str | None) -> None:
    if model_id:
        raise ConfigurationError(
            f"log_model(model_id={model_id!r}) logs into a logged model on the tracking "
            "server, which offline mode does not reach; leave model_id out (the model is "
            "synced into the run) or log with a tracking URI"
        )


def _journal_model(
    model: Any,
    name: str,
    signature: ModelSignature | Mapping[str, str | None] | None,
    input_example: Any,
    pip_requirements: Sequence[str] | None,
    fields: dict[str, Any],
    flavor: str | None = None,
) -> dict[str, Any]:
    """Offline: write the model directory now and journal it, with its logged-model
    ``fields``; the sync stores it as :meth:`Client.log_saved_model` does."""
    from ._formats.models import save_model

    with tempfile.TemporaryDirectory(prefix="mlrelay-model-") as tmp:
        mlmodel = save_model(
            model, Path(tmp), input_example=input_example, signature=signature,
            pip_requirements=pip_requirements, artifact_path=name, flavor=flavor,
        )  # fmt: skip
        runs.journal_artifact(runs.current(), Path(tmp), name, is_dir=True, model=fields)
    return mlmodel


# --- what the flavor modules share -----------------------------------------------------


def model_name(name: str | None, artifact_path: str | None) -> str:
    """The model's name from MLflow's ``name`` and its deprecated alias ``artifact_path``.

    Raises:
        ValidationError: both are given.
    """
    if name is not None and artifact_path is not None:
        raise ValidationError(
            "both `artifact_path` (deprecated) and `name` were given; give only `name`",
            field="name",
        )
    if artifact_path is not None:
        _log.warning("`artifact_path` is deprecated. Please use `name` instead.")
    return name or artifact_path or "model"


def unsupported(function: str, **given: Any) -> None:
    """Refuse MLflow arguments mlrelay does not implement when they are set (None, 0 and
    False are "not set").

    Raises:
        ValidationError: naming the first argument that is set.
    """
    for key, value in given.items():
        if value is not None and value is not False and value != 0:
            raise ValidationError(
                f"{function}({key}=...) is not supported by mlrelay (resources, prompts, "
                "auth policies and uv projects are out of its scope); leave it out",
                field=key,
            )


def _signature_dict(
    signature: ModelSignature | Mapping[str, Any] | bool | None,
) -> dict[str, str | None] | None:
    if signature is None or isinstance(signature, bool):
        return None
    if hasattr(signature, "to_dict"):
        found: dict[str, str | None] = signature.to_dict()
        return found
    return {k: signature.get(k) for k in ("inputs", "outputs", "params")}


def flavor_spec(
    flavor: str,
    model: Any,
    options: Mapping[str, Any] | None = None,
    *,
    code_paths: Sequence[str] | None = None,
    conda_env: Any = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra_files: Sequence[str] | None = None,
) -> ModelSpec:
    """A :class:`ModelSpec` from the arguments every flavor's ``log_model`` shares."""
    from ._formats.models import ModelSpec

    return ModelSpec(
        flavor, model, dict(options or {}), code_paths=code_paths, extra_files=extra_files,
        metadata=metadata, conda_env=conda_env, extra_pip_requirements=extra_pip_requirements,
    )  # fmt: skip


def load_flavor(model_uri: str, dst_path: str | None, flavor: str) -> Any:
    """The native model object of one flavor, from a model URI (see :func:`local_model`)."""
    from ._formats.flavors import load_native

    return load_native(local_model(model_uri, dst_path), flavor)


def _without_inference(spec: ModelSpec, signature: Any) -> ModelSpec:
    """``signature=False`` means "write none, infer none", as in MLflow."""
    return dataclasses.replace(spec, infer_signature=False) if signature is False else spec


def save_spec(
    spec: ModelSpec,
    path: str | Path,
    *,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
) -> None:
    """Write a model of any flavor into the new folder ``path`` (MLflow's ``save_model``).

    Raises:
        ValidationError: ``path`` exists and is not empty, or the model cannot be saved.
    """
    from ._formats.models import save_model

    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError(f"path {str(target)!r} already exists and is not empty", field="path")
    save_model(
        _without_inference(spec, signature), target, input_example=input_example,
        signature=_signature_dict(signature), pip_requirements=pip_requirements,
    )  # fmt: skip


def log_spec(
    spec: ModelSpec,
    name: str,
    *,
    signature: ModelSignature | Mapping[str, Any] | bool | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    registered_model_name: str | None = None,
    await_registration_for: float | None = 300,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    link: Literal["step", "all", "none"] = "step",
    model_id: str | None = None,
) -> ModelInfo:
    """Log a model of any flavor into the active run, starting a run when none is active
    (as MLflow 2 does), and return its :class:`ModelInfo` (also offline, where
    ``model_uri`` names the run by its local id until it is synced).

    ``params``, ``tags``, ``model_type``, ``step``, ``link`` and ``model_id``: see
    :meth:`Client.log_model` (``tags`` also tag the registered version). Offline the model
    is journaled with them and the sync stores it as a logged model, as online (linked to
    the run's points synced before it); on MLflow 2 servers, with no logged model, they
    are not recorded (a warning says so).

    Raises:
        ConfigurationError: ``registered_model_name`` or ``model_id`` offline; the run
            cannot reach the server in time.
        RegistryNotSupportedError: no registry (checked before anything is uploaded).
        ValidationError: the model cannot be saved.
    """
    run = fluent.active_run() or fluent.start_run()
    spec, sig = _without_inference(spec, signature), _signature_dict(signature)
    mode = session.settings().mode
    if mode == "disabled":
        return ModelInfo.of({"flavors": {}}, run.local_id, name)
    if mode == "offline":
        _refuse_offline_registration(registered_model_name)
        _refuse_offline_model_id(model_id)
        fields = _journaled_fields(params, tags, model_type, step, link)
        mlmodel = _journal_model(spec, name, sig, input_example, pip_requirements, fields)
        return ModelInfo.of(mlmodel, run.local_id, name)
    server_id = server_run_id(run)
    fluent.flush()  # the model lands after what was logged before it
    client = session.client("log_model")
    _check_server(client, registered_model_name, params, tags, model_type)
    info = client.log_model(
        server_id, spec, name, signature=sig, input_example=input_example,
        pip_requirements=pip_requirements, params=params, tags=tags, model_type=model_type,
        step=step, link=link, model_id=model_id,
    )  # fmt: skip
    if info.model_id and link != "none":  # the run's later points at this step link to it
        session.model_outputs.setdefault(run.local_id, {}).setdefault(step, info.model_id)
    if not registered_model_name:
        return info
    return _registered(client, info, registered_model_name, await_registration_for, tags)


def _registered(
    client: Client, info: ModelInfo, name: str, wait: float | None, tags: Any
) -> ModelInfo:
    """``info`` once its model is registered as a new version of ``name``."""
    version = client.register_model(
        info.model_uri, name, await_registration_for=wait or 0, tags=tags
    )
    return dataclasses.replace(
        info, registered_model_version=int(version.version), model_version=version
    )


def _check_server(
    client: Client, registered_model_name: str | None, params: Any, tags: Any, model_type: Any
) -> None:
    """Refuse registration where there is no registry (before anything is uploaded); warn
    that MLflow 3's logged-model fields are not recorded on an MLflow 2 server."""
    if registered_model_name and not client.capabilities().registry:
        raise RegistryNotSupportedError(
            f"the tracking server at {client.tracking_uri} has no model registry, so "
            f"registered_model_name={registered_model_name!r} cannot be honoured; nothing "
            "was uploaded"
        )
    if not client.capabilities().logged_models:
        _not_recorded(params, tags, model_type, f"on {client.tracking_uri} (MLflow 2)")


def _not_recorded(params: Any, tags: Any, model_type: Any, where: str) -> None:
    """Warn that MLflow 3's logged-model fields were given where there is no logged model."""
    given = [k for k, v in (("params", params), ("tags", tags), ("model_type", model_type)) if v]
    if given:
        _log.warning(
            "log_model(%s=...) is not recorded %s: there is no MLflow 3 logged model there",
            "=..., ".join(given),
            where,
        )


def server_id_of(run_id: str) -> str:
    """The server's id of a run named by its local id (one logged offline and synced since,
    maybe by another process), read from the journal; any other id as it is."""
    if not session.disabled:
        session.ensure_pipeline()  # the journal holds the local -> server mapping
    return runs.server_id(run_id)


def _local_path(model_uri: str) -> Path | None:
    """The local folder a URI names (a path or ``file:``), or None for a remote URI."""
    if model_uri.startswith("file://"):
        return Path(model_uri[len("file://") :])
    if model_uri.startswith("file:"):
        return Path(model_uri[len("file:") :])
    if ":/" in model_uri:
        return None
    return Path(model_uri)


def _registry_uri(client: Client, model_uri: str) -> str:
    """``models:/<name>/latest`` and ``models:/<name>/<stage>`` as ``models:/<name>/<n>``."""
    rest = model_uri[len("models:/") :].strip("/")
    name, slash, ref = rest.rpartition("/")
    if not slash or not name or ref.isdigit() or "@" in rest:
        return model_uri
    stages = [] if ref.lower() == "latest" else [ref]
    versions = client.get_latest_versions(name, stages)
    if not versions:
        raise ValidationError(f"{model_uri}: the model has no version there", field="model_uri")
    return f"models:/{name}/{max(int(v.version) for v in versions)}"


def local_model(model_uri: str, dst_path: str | None = None) -> Path:
    """The local folder of a model: a local path as it is; ``runs:/<run_id>/<path>`` (a
    local run id is read as the server's), ``models:/<name>/<version>``,
    ``models:/<name>/latest``, ``models:/<name>/<stage>``, ``models:/<name>@<alias>`` and
    ``models:/<model_id>`` downloaded into ``dst_path`` (a new temporary folder if None).

    Raises:
        ValidationError: no model at a local path, or another kind of URI.
        NotFoundError: no such model, version, alias or run on the server.
    """
    local = _local_path(model_uri)
    if local is not None:
        if not local.exists():
            raise ValidationError(f"no model at {str(local)!r}", field="model_uri")
        return local
    client = session.client("loading a model")
    if model_uri.startswith("runs:/"):
        run_id, _, rest = model_uri[len("runs:/") :].partition("/")
        model_uri = f"runs:/{server_id_of(run_id)}/{rest}"
    elif model_uri.startswith("models:/"):
        model_uri = _registry_uri(client, model_uri)
    return Path(client.download_model(model_uri, dst_path))


@contextlib.contextmanager
def local_artifacts(
    artifacts: Mapping[str, str] | None,
) -> Iterator[dict[str, tuple[str, str, str]]]:
    """Each artifact of a pyfunc model (a local path, ``file:``, ``runs:/`` or ``models:/``
    URI) as ``(local path, given URI, root)``, ``root`` being where MLflow puts it under the
    model's ``artifacts/``: a path's own name, a run artifact's path, and nothing (the folder
    itself) for a ``models:/`` model. Remote ones are downloaded once per URI into a temporary
    folder that lives as long as the block.

    Raises:
        ValidationError: a local path that does not exist, or another kind of URI.
    """
    with tempfile.TemporaryDirectory(prefix="mlrelay-artifacts-") as tmp:
        found: dict[str, tuple[str, str, str]] = {}
        by_uri: dict[str, tuple[str, str, str]] = {}
        for name, given in (artifacts or {}).items():
            uri = str(given)
            if uri not in by_uri:
                by_uri[uri] = _local_artifact(name, uri, Path(tmp) / str(len(by_uri)))
            found[str(name)] = by_uri[uri]
        yield found


def _local_artifact(name: str, uri: str, staging: Path) -> tuple[str, str, str]:
    local = _local_path(uri)
    if local is None:
        local = _download_artifact(uri, staging)
        root = local.relative_to(staging).as_posix()
        return str(local), uri, "" if root == "." else root
    if not local.exists():
        raise ValidationError(
            f"artifact {name!r}: no file or folder at {str(local)!r}", field="artifacts"
        )
    return str(local), uri, local.resolve().name


def _download_artifact(uri: str, dst: Path) -> Path:
    dst.mkdir(parents=True)
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].partition("/")
        client = session.client("downloading an artifact")
        return Path(client.download_artifacts(server_id_of(run_id), path, str(dst)))
    if uri.startswith("models:/"):
        return local_model(uri, str(dst))
    raise ValidationError(
        f"artifact URI {uri!r}: mlrelay takes local paths, file:, runs:/ and models:/ URIs",
        field="artifacts",
    )


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
