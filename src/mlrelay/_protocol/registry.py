"""Messages and endpoints of the model registry and of MLflow 3's logged models.

The same conventions as :mod:`mlrelay._protocol.messages`: strict requests, tolerant
responses, MLflow's JSON names, and an ``idempotent`` flag per endpoint
(research/mlflow-protocol.md sections 8 and 9). Logged-model routes carry the model id in
the path, so their endpoints are built per id by :func:`logged_model_endpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from .entities import Entity, ModelVersion, ModelVersionTag, RegisteredModel
from .messages import Empty, Endpoint, Request, Response

__all__ = [
    "REGISTRY_ENDPOINTS",
    "CreateLoggedModel",
    "CreateModelVersion",
    "CreateRegisteredModel",
    "FinalizeLoggedModel",
    "GetDownloadUriResponse",
    "GetLatestVersions",
    "LogModel",
    "LogOutputs",
    "LoggedModel",
    "LoggedModelInfo",
    "LoggedModelOutput",
    "LoggedModelResponse",
    "ModelAlias",
    "ModelName",
    "ModelVersionRef",
    "ModelVersionResponse",
    "ModelVersionsResponse",
    "NoFields",
    "RegisteredModelResponse",
    "RegistryPage",
    "RenameRegisteredModel",
    "SearchLoggedModels",
    "SearchLoggedModelsResponse",
    "SearchModelVersionsResponse",
    "SearchRegisteredModelsResponse",
    "SearchRegistry",
    "SetModelAlias",
    "SetModelTag",
    "SetModelVersionTag",
    "TransitionStage",
    "UpdateDescription",
    "UpdateVersionDescription",
    "logged_model_endpoint",
]


# --- registered models ---------------------------------------------------------------


class ModelName(Request):
    """A request naming one registered model (get, delete)."""

    name: str


class CreateRegisteredModel(Request):
    """``POST registered-models/create``."""

    name: str
    tags: list[ModelVersionTag] = Field(default_factory=list)
    description: str | None = None


class RenameRegisteredModel(Request):
    """``POST registered-models/rename``."""

    name: str
    new_name: str


class UpdateDescription(Request):
    """``PATCH registered-models/update``."""

    name: str
    description: str


class SearchRegistry(Request):
    """``GET registered-models/search`` and ``GET model-versions/search``."""

    filter: str | None = None
    max_results: int | None = None
    order_by: list[str] | None = None
    page_token: str | None = None


class SetModelTag(Request):
    """``POST registered-models/set-tag`` (``value`` absent: ``DELETE .../delete-tag``)."""

    name: str
    key: str
    value: str | None = None


class GetLatestVersions(Request):
    """``POST registered-models/get-latest-versions``."""

    name: str
    stages: list[str] = Field(default_factory=list)


class SetModelAlias(Request):
    """``POST registered-models/alias``."""

    name: str
    alias: str
    version: str


class ModelAlias(Request):
    """``GET`` / ``DELETE registered-models/alias``."""

    name: str
    alias: str


class RegisteredModelResponse(Response):
    """A ``{"registered_model": ...}`` body."""

    registered_model: RegisteredModel


class RegistryPage(Response):
    """One page of a registry search."""

    next_page_token: str | None = None

    def items(self) -> Sequence[Any]:
        """The page's entries."""
        raise NotImplementedError


class SearchRegisteredModelsResponse(RegistryPage):
    """One page of registered models."""

    registered_models: list[RegisteredModel] = Field(default_factory=list)

    def items(self) -> list[RegisteredModel]:
        """The registered models."""
        return self.registered_models


# --- model versions ------------------------------------------------------------------


class CreateModelVersion(Request):
    """``POST model-versions/create``."""

    name: str
    source: str
    run_id: str | None = None
    tags: list[ModelVersionTag] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class ModelVersionRef(Request):
    """A request naming one version (get, delete, get-download-uri)."""

    name: str
    version: str


class UpdateVersionDescription(Request):
    """``PATCH model-versions/update``."""

    name: str
    version: str
    description: str


class SetModelVersionTag(Request):
    """``POST model-versions/set-tag`` (``value`` absent: ``DELETE .../delete-tag``)."""

    name: str
    version: str
    key: str
    value: str | None = None


class TransitionStage(Request):
    """``POST model-versions/transition-stage``."""

    name: str
    version: str
    stage: Literal["None", "Staging", "Production", "Archived"]
    archive_existing_versions: bool = False


class ModelVersionResponse(Response):
    """A ``{"model_version": ...}`` body."""

    model_version: ModelVersion


class ModelVersionsResponse(Response):
    """A ``{"model_versions": [...]}`` body (latest versions)."""

    model_versions: list[ModelVersion] = Field(default_factory=list)


class SearchModelVersionsResponse(RegistryPage):
    """One page of model versions."""

    model_versions: list[ModelVersion] = Field(default_factory=list)

    def items(self) -> list[ModelVersion]:
        """The versions."""
        return self.model_versions


class GetDownloadUriResponse(Response):
    """Where a version's files are."""

    artifact_uri: str


# --- logged models (MLflow 3) and the run's model records -----------------------------


class LoggedModelInfo(Entity):
    """The ``info`` part of an MLflow 3 logged model."""

    model_id: str
    experiment_id: str | None = None
    name: str | None = None
    artifact_uri: str | None = None
    status: str | None = None
    source_run_id: str | None = None
    tags: list[ModelVersionTag] = Field(default_factory=list)


class LoggedModel(Entity):
    """An MLflow 3 logged model (``models:/<model_id>``)."""

    info: LoggedModelInfo


class CreateLoggedModel(Request):
    """``POST logged-models``."""

    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    tags: list[ModelVersionTag] = Field(default_factory=list)
    params: list[ModelVersionTag] = Field(default_factory=list)
    """The model's parameters (``{key, value}`` pairs, as tags are): MLflow 3's client
    copies the source run's params here, which is how the Models view links them."""


class FinalizeLoggedModel(Request):
    """``PATCH logged-models/<model_id>``: the model id is repeated in the body."""

    model_id: str
    status: Literal["LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"]


class NoFields(Request):
    """A request whose only argument is in the path."""


class SearchLoggedModels(Request):
    """``POST logged-models/search``."""

    experiment_ids: list[str]
    filter: str | None = None
    max_results: int | None = None
    page_token: str | None = None


class LoggedModelResponse(Response):
    """A ``{"model": ...}`` body."""

    model: LoggedModel


class SearchLoggedModelsResponse(Response):
    """One page of logged models."""

    models: list[LoggedModel] = Field(default_factory=list)
    next_page_token: str | None = None


class LoggedModelOutput(Entity):
    """A logged model recorded as a run's output."""

    model_id: str
    step: int = 0


class LogOutputs(Request):
    """``POST runs/outputs``."""

    run_id: str
    models: list[LoggedModelOutput]


class LogModel(Request):
    """``POST runs/log-model``: appends to the run's ``mlflow.log-model.history`` tag."""

    run_id: str
    model_json: str


def logged_model_endpoint(
    method: Literal["GET", "PATCH"], model_id: str
) -> Endpoint[NoFields, LoggedModelResponse] | Endpoint[FinalizeLoggedModel, LoggedModelResponse]:
    """``GET`` or ``PATCH logged-models/<model_id>`` (a replay of either is harmless)."""
    if method == "GET":
        return Endpoint("GET", f"logged-models/{model_id}", NoFields, LoggedModelResponse, True)
    return Endpoint(
        "PATCH", f"logged-models/{model_id}", FinalizeLoggedModel, LoggedModelResponse, True
    )


class REGISTRY_ENDPOINTS:
    """Every registry and logged-model endpoint the client uses, by operation name.

    Creations are not replayed blindly (the client looks before creating again); a second
    delete or rename answers 404, so those are not replayed either.
    """

    create_registered_model = Endpoint(
        "POST", "registered-models/create", CreateRegisteredModel, RegisteredModelResponse, False
    )
    get_registered_model = Endpoint(
        "GET", "registered-models/get", ModelName, RegisteredModelResponse, True
    )
    rename_registered_model = Endpoint(
        "POST", "registered-models/rename", RenameRegisteredModel, RegisteredModelResponse, False
    )
    update_registered_model = Endpoint(
        "PATCH", "registered-models/update", UpdateDescription, RegisteredModelResponse, True
    )
    delete_registered_model = Endpoint(
        "DELETE", "registered-models/delete", ModelName, Empty, False
    )
    search_registered_models = Endpoint(
        "GET", "registered-models/search", SearchRegistry, SearchRegisteredModelsResponse, True
    )
    set_registered_model_tag = Endpoint(
        "POST", "registered-models/set-tag", SetModelTag, Empty, True
    )
    delete_registered_model_tag = Endpoint(
        "DELETE", "registered-models/delete-tag", SetModelTag, Empty, False
    )
    get_latest_versions = Endpoint(
        "POST",
        "registered-models/get-latest-versions",
        GetLatestVersions,
        ModelVersionsResponse,
        True,
    )
    set_alias = Endpoint("POST", "registered-models/alias", SetModelAlias, Empty, True)
    delete_alias = Endpoint("DELETE", "registered-models/alias", ModelAlias, Empty, False)
    get_by_alias = Endpoint(
        "GET", "registered-models/alias", ModelAlias, ModelVersionResponse, True
    )
    create_model_version = Endpoint(
        "POST", "model-versions/create", CreateModelVersion, ModelVersionResponse, False
    )
    get_model_version = Endpoint(
        "GET", "model-versions/get", ModelVersionRef, ModelVersionResponse, True
    )
    update_model_version = Endpoint(
        "PATCH", "model-versions/update", UpdateVersionDescription, ModelVersionResponse, True
    )
    delete_model_version = Endpoint(
        "DELETE", "model-versions/delete", ModelVersionRef, Empty, False
    )
    search_model_versions = Endpoint(
        "GET", "model-versions/search", SearchRegistry, SearchModelVersionsResponse, True
    )
    set_model_version_tag = Endpoint(
        "POST", "model-versions/set-tag", SetModelVersionTag, Empty, True
    )
    delete_model_version_tag = Endpoint(
        "DELETE", "model-versions/delete-tag", SetModelVersionTag, Empty, False
    )
    # Moving a version to the stage it is in changes nothing, so a replay is harmless.
    transition_stage = Endpoint(
        "POST", "model-versions/transition-stage", TransitionStage, ModelVersionResponse, True
    )
    get_download_uri = Endpoint(
        "GET", "model-versions/get-download-uri", ModelVersionRef, GetDownloadUriResponse, True
    )
    create_logged_model = Endpoint(
        "POST", "logged-models", CreateLoggedModel, LoggedModelResponse, False
    )
    search_logged_models = Endpoint(
        "POST", "logged-models/search", SearchLoggedModels, SearchLoggedModelsResponse, True
    )
    log_outputs = Endpoint("POST", "runs/outputs", LogOutputs, Empty, True)
    # A replay adds the same record to mlflow.log-model.history once more: cosmetic.
    log_model = Endpoint("POST", "runs/log-model", LogModel, Empty, True)
