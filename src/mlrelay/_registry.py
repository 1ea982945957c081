"""The model registry and model logging, as methods of :class:`mlrelay.Client`.

Registered models, versions, tags, aliases and stages, with MlflowClient's names and
arguments. A server without the registry (DagsHub answers 404 on these routes) raises
:class:`RegistryNotSupportedError` instead of a raw 404.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import (
    NotFoundError,
    RegistryNotSupportedError,
    ResourceAlreadyExistsError,
    ValidationError,
)
from ._protocol.entities import ModelVersion, RegisteredModel
from ._transport import API_PREFIX

if TYPE_CHECKING:
    from ._capabilities import Capabilities
    from ._protocol.entities import Run
    from ._transport import Transport

__all__ = ["ModelInfo", "RegistryMethods"]

_STAGES = ("None", "Staging", "Production", "Archived")


@dataclass(frozen=True)
class ModelInfo:
    """What :meth:`Client.log_model` logged.

    Attributes:
        model_uri: ``runs:/<run_id>/<name>``, loadable with ``mlflow.pyfunc.load_model``.
        run_id: the run the model belongs to.
        artifact_path: where below the run's artifacts the model lives.
        flavors: the MLmodel flavors written.
        registered_model_version: the version created when ``registered_model_name`` was
            given.
        model_id: MLflow 3's logged-model id (``m-...``; None on 2.x servers).
    """

    model_uri: str
    run_id: str
    artifact_path: str
    flavors: dict[str, Any]
    registered_model_version: ModelVersion | None = None
    model_id: str | None = None


class RegistryMethods:
    """Registry and model methods; mixed into :class:`mlrelay.Client`."""

    _transport: Transport

    if TYPE_CHECKING:

        def capabilities(self) -> Capabilities: ...

        def get_run(self, run_id: str) -> Run: ...

        def log_artifacts(
            self, run_id: str, local_dir: str, artifact_path: str | None = None
        ) -> None: ...

    # --- plumbing ----------------------------------------------------------------------

    def _registry(self, method: str, endpoint: str, body: Any = None, **params: Any) -> Any:
        path = API_PREFIX + endpoint
        try:
            if method == "GET":
                response = self._transport.send(
                    "GET", path, params={k: v for k, v in params.items() if v is not None},
                    idempotent=True,
                )  # fmt: skip
            else:
                response = self._transport.send(
                    method,
                    path,
                    content=json.dumps(body or {}).encode(),
                    headers={"Content-Type": "application/json"},
                    idempotent=method != "POST" or endpoint.endswith(("/get", "/search")),
                )
        except NotFoundError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise
            raise RegistryNotSupportedError(
                f"the tracking server at {self._transport.base_url} has no model registry "
                f"({method} {endpoint} answered 404); register models on a server that runs "
                "MLflow's registry (DagsHub does not offer it)"
            ) from exc
        return response.json() if response.content.strip() else {}

    # --- registered models -------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model.

        Raises:
            ResourceAlreadyExistsError: the name is taken.
            RegistryNotSupportedError: the server has no registry.
        """
        body: dict[str, Any] = {"name": name, "tags": _tags(tags)}
        if description is not None:
            body["description"] = description
        data = self._registry("POST", "registered-models/create", body)
        return RegisteredModel.model_validate(data["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model by name (``NotFoundError`` if there is none)."""
        data = self._registry("GET", "registered-models/get", name=name)
        return RegisteredModel.model_validate(data["registered_model"])

    def search_registered_models(
        self, filter_string: str | None = None, max_results: int = 100
    ) -> list[RegisteredModel]:
        """Registered models matching a filter such as ``name LIKE 'churn%'``."""
        found: list[RegisteredModel] = []
        token = None
        while True:
            data = self._registry(
                "GET", "registered-models/search", filter=filter_string,
                max_results=min(max_results, 1000), page_token=token,
            )  # fmt: skip
            found += [RegisteredModel.model_validate(r) for r in data.get("registered_models", [])]
            token = data.get("next_page_token")
            if not token or len(found) >= max_results:
                return found[:max_results]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        data = self._registry(
            "POST", "registered-models/rename", {"name": name, "new_name": new_name}
        )
        return RegisteredModel.model_validate(data["registered_model"])

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        """Change a registered model's description."""
        data = self._registry(
            "PATCH", "registered-models/update", {"name": name, "description": description}
        )
        return RegisteredModel.model_validate(data["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions."""
        self._registry("DELETE", "registered-models/delete", {"name": name})

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        self._registry(
            "POST", "registered-models/set-tag", {"name": name, "key": key, "value": str(value)}
        )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self._registry("DELETE", "registered-models/delete-tag", {"name": name, "key": key})

    # --- versions ----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Create a version of a registered model from a model's location (``model_id``: an
        MLflow 3 logged model)."""
        body: dict[str, Any] = {"name": name, "source": source, "tags": _tags(tags)}
        if run_id is not None:
            body["run_id"] = run_id
        if model_id is not None:
            body["model_id"] = model_id
        if description is not None:
            body["description"] = description
        data = self._registry("POST", "model-versions/create", body)
        return ModelVersion.model_validate(data["model_version"])

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version of a registered model."""
        data = self._registry("GET", "model-versions/get", name=name, version=str(version))
        return ModelVersion.model_validate(data["model_version"])

    def update_model_version(self, name: str, version: str | int, description: str) -> ModelVersion:
        """Change a version's description."""
        body = {"name": name, "version": str(version), "description": description}
        data = self._registry("PATCH", "model-versions/update", body)
        return ModelVersion.model_validate(data["model_version"])

    def delete_model_version(self, name: str, version: str | int) -> None:
        """Delete one version."""
        self._registry("DELETE", "model-versions/delete", {"name": name, "version": str(version)})

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: Any) -> None:
        """Set a tag on a version."""
        body = {"name": name, "version": str(version), "key": key, "value": str(value)}
        self._registry("POST", "model-versions/set-tag", body)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """Remove a tag from a version."""
        body = {"name": name, "version": str(version), "key": key}
        self._registry("DELETE", "model-versions/delete-tag", body)

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to Staging, Production, Archived or None.

        Raises:
            ValidationError: an unknown stage (names the allowed ones).
        """
        match = next((s for s in _STAGES if s.lower() == stage.lower()), None)
        if match is None:
            raise ValidationError(
                f"stage {stage!r} is not one of {', '.join(_STAGES)}", field="stage"
            )
        body = {
            "name": name,
            "version": str(version),
            "stage": match,
            "archive_existing_versions": archive_existing_versions,
        }
        data = self._registry("POST", "model-versions/transition-stage", body)
        return ModelVersion.model_validate(data["model_version"])

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The latest version in each stage (or in the given stages)."""
        data = self._registry(
            "POST",
            "registered-models/get-latest-versions",
            {"name": name, "stages": list(stages or [])},
        )
        return [ModelVersion.model_validate(v) for v in data.get("model_versions", [])]

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` (e.g. ``champion``) at a version; ``models:/<name>@<alias>`` loads it."""
        body = {"name": name, "alias": alias, "version": str(version)}
        self._registry("POST", "registered-models/alias", body)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._registry("DELETE", "registered-models/alias", {"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        data = self._registry("GET", "registered-models/alias", name=name, alias=alias)
        return ModelVersion.model_validate(data["model_version"])

    def register_model(
        self, model_uri: str, name: str, *, await_registration_for: float = 300.0
    ) -> ModelVersion:
        """Register the model at ``model_uri`` as a new version of ``name`` (created if
        missing) and wait until the version is READY.

        Args:
            model_uri: ``runs:/<run_id>/<path>``, ``models:/<model_id>`` or an artifact URI
                (``mlflow-artifacts:/...``).
            await_registration_for: seconds to wait for READY (0: do not wait).

        Raises:
            RegistryNotSupportedError: the server has no registry.
            ValidationError: the URI has another form.
        """
        if not self.capabilities().registry:
            raise RegistryNotSupportedError(
                f"the tracking server at {self._transport.base_url} has no model registry; "
                "register models on a server that runs MLflow's registry (DagsHub does not "
                "offer it)"
            )
        run_id = None
        source = model_uri
        if model_uri.startswith("runs:/"):
            run_id, _, path = model_uri[len("runs:/") :].partition("/")
            if not run_id or not path:
                raise ValidationError(
                    f"{model_uri!r} is not runs:/<run_id>/<path>", field="model_uri"
                )
            artifact_uri = self.get_run(run_id).info.artifact_uri or ""
            source = f"{artifact_uri.rstrip('/')}/{path}"
        with contextlib.suppress(ResourceAlreadyExistsError):
            self.create_registered_model(name)
        model_id = None
        if model_uri.startswith("models:/m-"):  # an MLflow 3 logged model
            model_id = model_uri[len("models:/") :].split("/")[0]
            run_id = self._registry("GET", f"logged-models/{model_id}")["model"]["info"].get(
                "source_run_id"
            )
        version = self.create_model_version(name, source, run_id=run_id, model_id=model_id)
        deadline = time.monotonic() + await_registration_for
        while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(0.2)
            version = self.get_model_version(name, version.version)
        return version

    # --- models ------------------------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str = "model",
        *,
        flavor: str | None = None,
        signature: dict[str, str | None] | None = None,
        input_example: Any = None,
        pip_requirements: Sequence[str] | None = None,
        registered_model_name: str | None = None,
    ) -> ModelInfo:
        """Log a model in MLflow's format to the run's artifacts under ``name``.

        ``model`` is a scikit-learn estimator (or any picklable object with ``predict``), an
        object with ``predict(context, model_input)``, a plain function, or an ONNX model
        (bytes, a ``.onnx`` path, an ``onnx.ModelProto``; or ``flavor="onnx"``).

        The model loads with ``mlflow.pyfunc.load_model(f"runs:/{run_id}/{name}")`` on
        MLflow 2.x and 3.x. The run also gets MLflow's ``mlflow.log-model.history`` record,
        so the UI lists the model.

        Raises:
            ValidationError: the model has no predict method or cannot be pickled.
        """
        from ._models import save_model

        with tempfile.TemporaryDirectory(prefix="mlrelay-model-") as tmp:
            mlmodel = save_model(
                model,
                Path(tmp),
                input_example=input_example,
                signature=signature,
                pip_requirements=pip_requirements,
                run_id=run_id,
                artifact_path=name,
                flavor=flavor,
            )
            self.log_artifacts(run_id, tmp, name)
            model_id = None
            if self.capabilities().logged_models:  # MLflow 3: also a logged-model entity
                model_id = self._logged_model(run_id, name, Path(tmp))
        record = {**mlmodel, "run_id": run_id, "artifact_path": name}
        self._registry(
            "POST", "runs/log-model", {"run_id": run_id, "model_json": json.dumps(record)}
        )
        uri = f"runs:/{run_id}/{name}"
        version = self.register_model(uri, registered_model_name) if registered_model_name else None
        return ModelInfo(uri, run_id, name, mlmodel["flavors"], version, model_id)

    def _logged_model(self, run_id: str, name: str, folder: Path) -> str:
        """MLflow 3's logged model, so the model shows in the Models view: create it, link it
        as the run's output, upload the files to its location, mark it ready."""
        from ._artifacts import upload_dir

        run = self.get_run(run_id)
        context = {
            k: v
            for k, v in run.data.tags_dict.items()
            if k == "mlflow.user" or k.startswith("mlflow.source.")
        }
        body = {
            "experiment_id": run.info.experiment_id,
            "name": name,
            "source_run_id": run_id,
            "tags": _tags(context),
        }
        info = self._registry("POST", "logged-models", body)["model"]["info"]
        model_id = str(info["model_id"])
        self._registry(
            "POST",
            "runs/outputs",
            {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]},
        )
        upload_dir(self._transport, str(info["artifact_uri"]), folder, None)
        self._registry(
            "PATCH",
            f"logged-models/{model_id}",
            {"model_id": model_id, "status": "LOGGED_MODEL_READY"},
        )
        return model_id


def _tags(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]
