"""The model registry and model logging, as methods of :class:`mlrelay.Client`.

Registered models, versions, tags, aliases and stages, with MlflowClient's names and
arguments, sent as the typed messages of :mod:`mlrelay._protocol.registry`. A server
without the registry (DagsHub answers 404 on these routes) raises
:class:`RegistryNotSupportedError` instead of a raw 404.

Exactly-once creation: ``model-versions/create`` is not idempotent, so a version carries a
client-generated key as the tag ``mlflow.mlrelay.clientKey``; after an ambiguous failure the client
looks for that key among the model's versions before creating again (as ``create_run`` does
for runs). The same holds for MLflow 3's logged models.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import (
    APIError,
    ModelRegistrationError,
    NotFoundError,
    RegistryNotSupportedError,
    ResourceAlreadyExistsError,
    ValidationError,
)
from ._protocol import registry as r
from ._protocol.entities import (
    CLIENT_KEY_TAG,
    CLIENT_KEY_TAGS,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
)

if TYPE_CHECKING:
    from ._capabilities import Capabilities
    from ._formats.schema import ModelSignature
    from ._protocol.entities import FileInfo, Run
    from ._protocol.messages import Endpoint, Request, Response
    from ._transport import Transport

__all__ = ["ModelInfo", "RegistryMethods", "parse_model_uri"]

_R = r.REGISTRY_ENDPOINTS
_STAGES = ("None", "Staging", "Production", "Archived")
_POLL_S = 0.5

T = TypeVar("T")
RespT = TypeVar("RespT", bound="Response")
PageT = TypeVar("PageT", bound=r.RegistryPage)


@dataclass(frozen=True)
class ModelInfo:
    """A logged model, as MLflow's ``mlflow.models.model.ModelInfo`` (same fields, same
    order for the first ones): what ``log_model`` returns.

    Attributes:
        artifact_path: where the model's files are, as MLflow gives it: the path below the
            run's artifacts on MLflow 2, the logged model's storage URI on MLflow 3.
        flavors: the MLmodel flavors written.
        model_uri: ``models:/<model_id>`` on MLflow 3 servers (as MLflow 3 returns it),
            ``runs:/<run_id>/<artifact_path>`` otherwise; ``mlflow.pyfunc.load_model`` and
            ``mlrelay.pyfunc.load_model`` load either.
        model_uuid: the MLmodel's ``model_uuid``.
        run_id: the run the model belongs to.
        saved_input_example_info: where the input example is, if one was saved.
        signature: the model's :class:`~mlrelay.models.ModelSignature`, if any.
        utc_time_created: when the MLmodel was written (UTC).
        mlflow_version: the MLflow version the model was written for.
        metadata: the MLmodel's user metadata.
        registered_model_version: the version number created when ``registered_model_name``
            was given (an int, as MLflow).
        env_vars: environment variables the model needs (always None here).
        prompts: prompt URIs (always None here: prompts are out of scope).
        model_id: MLflow 3's logged-model id (``m-...``; None on 2.x servers).
        name: the model's name (what ``runs:/<run_id>/<name>`` names).
        model_version: mlrelay's addition: the :class:`ModelVersion` behind
            ``registered_model_version``.
    """

    artifact_path: str
    flavors: dict[str, Any]
    model_uri: str
    model_uuid: str | None
    run_id: str
    saved_input_example_info: dict[str, Any] | None
    signature: ModelSignature | None
    utc_time_created: str | None
    mlflow_version: str | None
    metadata: dict[str, Any] | None = None
    registered_model_version: int | None = None
    env_vars: list[str] | None = None
    prompts: list[str] | None = None
    model_id: str | None = None
    name: str | None = None
    model_version: ModelVersion | None = None

    @classmethod
    def of(
        cls,
        mlmodel: Mapping[str, Any],
        run_id: str,
        artifact_path: str,
        *,
        model_id: str | None = None,
        model_version: ModelVersion | None = None,
    ) -> ModelInfo:
        """The info of a model whose MLmodel content is ``mlmodel``, logged as
        ``artifact_path`` of run ``run_id`` (and as the logged model ``model_id``, whose
        storage URI the MLmodel records: MLflow 3's ``artifact_path``)."""
        from ._formats.schema import ModelSignature

        signature = mlmodel.get("signature")
        uri = f"models:/{model_id}" if model_id else f"runs:/{run_id}/{artifact_path}"
        return cls(
            artifact_path=str(mlmodel.get("artifact_path") or artifact_path)
            if model_id
            else artifact_path,
            flavors=dict(mlmodel.get("flavors") or {}),
            model_uri=uri,
            model_uuid=mlmodel.get("model_uuid"),
            run_id=run_id,
            saved_input_example_info=mlmodel.get("saved_input_example_info"),
            signature=ModelSignature.from_dict(signature) if signature else None,
            utc_time_created=mlmodel.get("utc_time_created"),
            mlflow_version=mlmodel.get("mlflow_version"),
            metadata=mlmodel.get("metadata"),
            registered_model_version=int(model_version.version) if model_version else None,
            model_id=model_id,
            name=artifact_path,
            model_version=model_version,
        )


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """Split a model URI for registration: ``(kind, run_id or model_id, path)``.

    ``kind`` is ``"runs"`` (``runs:/<run_id>/<path>``), ``"logged"`` (``models:/<model_id>``,
    an MLflow 3 logged model, ``m-...``) or ``"artifact"`` (any other URI, used as the
    version's source as is).

    Raises:
        ValidationError: a ``runs:/`` URI without a run id or a path, or a ``models:/`` URI
            naming a registered model (register the underlying run's model instead).
    """
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri[len("runs:/") :].strip("/").partition("/")
        if not run_id or not path:
            raise ValidationError(f"{model_uri!r} is not runs:/<run_id>/<path>", field="model_uri")
        return "runs", run_id, path.strip("/")
    if model_uri.startswith("models:/"):
        model_id = model_uri[len("models:/") :].strip("/")
        if not model_id.startswith("m-") or "/" in model_id or "@" in model_id:
            raise ValidationError(
                f"{model_uri!r}: register_model takes models:/<model_id> (an MLflow 3 logged "
                "model, m-...), runs:/<run_id>/<path> or an artifact URI; not a registered "
                "model's name, version or alias",
                field="model_uri",
            )
        return "logged", model_id, None
    return "artifact", None, None


def _tags(tags: Mapping[str, Any] | None) -> list[ModelVersionTag]:
    return [ModelVersionTag(key=str(k), value=str(v)) for k, v in (tags or {}).items()]


def _has_key(tags: Sequence[ModelVersionTag], key: str) -> bool:
    return any(t.key in CLIENT_KEY_TAGS and t.value == key for t in tags)


class RegistryMethods:
    """Registry and model methods; mixed into :class:`mlrelay.Client`."""

    _transport: Transport

    if TYPE_CHECKING:

        def capabilities(self) -> Capabilities: ...

        def get_run(self, run_id: str) -> Run: ...

        def _exactly_once(self, send: Callable[[], T], find: Callable[[], T | None]) -> T: ...

        def list_run_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]: ...

        def download_artifacts_at(
            self, artifact_uri: str, path: str = "", dst_path: str | None = None
        ) -> str: ...

        def run_logged_model(
            self, run_id: str, name: str, *, experiment_id: str | None = None
        ) -> r.LoggedModelInfo | None: ...

    # --- plumbing ----------------------------------------------------------------------

    def _call(
        self, endpoint: Endpoint[Any, RespT], request: Request, feature: str = "model registry"
    ) -> RespT:
        """Send one registry request; a route-level 404 becomes RegistryNotSupportedError."""
        try:
            return self._transport.call(endpoint, request)
        except NotFoundError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise
            raise RegistryNotSupportedError(
                f"the tracking server at {self._transport.base_url} has no {feature} "
                f"({endpoint.method} {endpoint.path} answered 404); use a server that runs "
                "MLflow's registry (DagsHub does not offer it)"
            ) from exc

    def _require_registry(self) -> None:
        if not self.capabilities().registry:
            raise RegistryNotSupportedError(
                f"the tracking server at {self._transport.base_url} has no model registry; "
                "register models on a server that runs MLflow's registry (DagsHub does not "
                "offer it)"
            )

    # --- registered models -------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model (exactly once, even when a response is lost).

        Raises:
            ResourceAlreadyExistsError: the name is taken.
            RegistryNotSupportedError: the server has no registry.
        """
        request = r.CreateRegisteredModel(name=name, tags=_tags(tags), description=description)

        def find() -> RegisteredModel | None:
            with contextlib.suppress(NotFoundError):
                return self.get_registered_model(name)
            return None

        return self._exactly_once(
            lambda: self._call(_R.create_registered_model, request).registered_model, find
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model by name (``NotFoundError`` if there is none)."""
        return self._call(_R.get_registered_model, r.ModelName(name=name)).registered_model

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
    ) -> list[RegisteredModel]:
        """Registered models matching a filter such as ``name LIKE 'churn%'``, all pages
        fetched up to ``max_results``."""
        pages = self._search(_R.search_registered_models, filter_string, max_results, order_by)
        return [m for page in pages for m in page.registered_models][:max_results]

    def _search(
        self,
        endpoint: Endpoint[Any, PageT],
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
    ) -> Iterator[PageT]:
        """The pages of a registry search, up to ``max_results`` items in all."""
        token = None
        left = max_results
        while left > 0:
            request = r.SearchRegistry(
                filter=filter_string,
                max_results=min(left, 1000),
                order_by=list(order_by) if order_by else None,
                page_token=token,
            )
            page = self._call(endpoint, request)
            yield page
            left -= len(page.items())
            token = page.next_page_token
            if not token:
                return

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        request = r.RenameRegisteredModel(name=name, new_name=new_name)
        return self._call(_R.rename_registered_model, request).registered_model

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        """Change a registered model's description."""
        request = r.UpdateDescription(name=name, description=description)
        return self._call(_R.update_registered_model, request).registered_model

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions."""
        self._call(_R.delete_registered_model, r.ModelName(name=name))

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        self._call(_R.set_registered_model_tag, r.SetModelTag(name=name, key=key, value=str(value)))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self._call(_R.delete_registered_model_tag, r.SetModelTag(name=name, key=key))

    # --- versions ----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Create a version of a registered model from a model's location, exactly once even
        when a response is lost (``model_id``: an MLflow 3 logged model).

        The version carries the tag ``mlflow.mlrelay.clientKey`` that makes a retry find it
        while it is being created; once the version is known the tag is deleted, since
        MLflow's UI lists every version tag in the registered model's table (if that delete
        fails, the tag stays, harmless).
        """
        key = uuid.uuid4().hex
        request = r.CreateModelVersion(
            name=name,
            source=source,
            run_id=run_id,
            tags=[*_tags(tags), ModelVersionTag(key=CLIENT_KEY_TAG, value=key)],
            run_link=run_link,
            description=description,
            model_id=model_id,
        )
        escaped = name.replace("'", "\\'")

        def find() -> ModelVersion | None:
            found = self.search_model_versions(f"name = '{escaped}'", max_results=10_000)
            return next((v for v in found if _has_key(v.tags, key)), None)

        version: ModelVersion = self._exactly_once(
            lambda: self._call(_R.create_model_version, request).model_version, find
        )
        with contextlib.suppress(APIError):
            self.delete_model_version_tag(name, version.version, CLIENT_KEY_TAG)
            kept = [t for t in version.tags if t.key not in CLIENT_KEY_TAGS]
            version = version.model_copy(update={"tags": kept})
        return version

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """One version of a registered model."""
        request = r.ModelVersionRef(name=name, version=str(version))
        return self._call(_R.get_model_version, request).model_version

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
    ) -> list[ModelVersion]:
        """Versions matching a filter such as ``name = 'churn'`` or ``run_id = '...'``, all
        pages fetched up to ``max_results``."""
        pages = self._search(_R.search_model_versions, filter_string, max_results, order_by)
        return [v for page in pages for v in page.model_versions][:max_results]

    def update_model_version(self, name: str, version: str | int, description: str) -> ModelVersion:
        """Change a version's description."""
        request = r.UpdateVersionDescription(
            name=name, version=str(version), description=description
        )
        return self._call(_R.update_model_version, request).model_version

    def delete_model_version(self, name: str, version: str | int) -> None:
        """Delete one version."""
        self._call(_R.delete_model_version, r.ModelVersionRef(name=name, version=str(version)))

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where a version's files are (e.g. ``mlflow-artifacts:/1/<run>/artifacts/model``)."""
        request = r.ModelVersionRef(name=name, version=str(version))
        return self._call(_R.get_download_uri, request).artifact_uri

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: Any) -> None:
        """Set a tag on a version."""
        request = r.SetModelVersionTag(name=name, version=str(version), key=key, value=str(value))
        self._call(_R.set_model_version_tag, request)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """Remove a tag from a version."""
        request = r.SetModelVersionTag(name=name, version=str(version), key=key)
        self._call(_R.delete_model_version_tag, request)

    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to Staging, Production, Archived or None (case-insensitive).

        With ``archive_existing_versions``, the versions now in that stage move to Archived.

        Raises:
            ValidationError: an unknown stage (names the allowed ones).
        """
        match = next((s for s in _STAGES if s.lower() == str(stage).lower()), None)
        if match is None:
            raise ValidationError(
                f"stage {stage!r} is not one of {', '.join(_STAGES)}", field="stage"
            )
        request = r.TransitionStage(
            name=name,
            version=str(version),
            stage=match,  # one of the literal stages
            archive_existing_versions=archive_existing_versions,
        )
        return self._call(_R.transition_stage, request).model_version

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The latest version in each stage (or in the given stages)."""
        request = r.GetLatestVersions(name=name, stages=list(stages or []))
        return self._call(_R.get_latest_versions, request).model_versions

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` (e.g. ``champion``) at a version; ``models:/<name>@<alias>`` loads it."""
        self._call(_R.set_alias, r.SetModelAlias(name=name, alias=alias, version=str(version)))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._call(_R.delete_alias, r.ModelAlias(name=name, alias=alias))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._call(_R.get_by_alias, r.ModelAlias(name=name, alias=alias)).model_version

    def register_model(
        self,
        model_uri: str,
        name: str,
        *,
        await_registration_for: float = 300.0,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register the model at ``model_uri`` as a new version of ``name`` (created if
        missing) and wait until the version is READY.

        Args:
            model_uri: ``runs:/<run_id>/<path>``, ``models:/<model_id>`` (an MLflow 3 logged
                model) or an artifact URI (``mlflow-artifacts:/...``).
            name: the registered model.
            await_registration_for: seconds to wait for READY (0: do not wait); a version
                still pending then is returned as it is, as MLflow does.
            tags: the new version's tags.

        Raises:
            RegistryNotSupportedError: the server has no registry.
            ValidationError: the URI has another form.
            ModelRegistrationError: the server reports FAILED_REGISTRATION.
        """
        kind, ref, path = parse_model_uri(model_uri)
        self._require_registry()
        run_id = model_id = None
        source = model_uri
        if kind == "runs":
            run_id = ref
            source, model_id = self._run_model_source(str(ref), str(path or ""))
            source = f"models:/{model_id}" if model_id else source  # as MLflow 3 records it
        elif kind == "logged":
            model_id = ref
            endpoint = r.logged_model_endpoint("GET", str(ref))
            logged = self._call(endpoint, r.NoFields(), "logged models").model.info
            run_id = logged.source_run_id
        with contextlib.suppress(ResourceAlreadyExistsError):
            self.create_registered_model(name)
        version = self.create_model_version(
            name, source, run_id=run_id, tags=tags, model_id=model_id
        )
        deadline = time.monotonic() + await_registration_for
        while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            version = self.get_model_version(name, version.version)
        if version.status == "FAILED_REGISTRATION":
            raise ModelRegistrationError(
                f"registering {model_uri} as {name!r} version {version.version} failed: "
                f"{version.status_message or 'the server gave no reason'}"
            )
        return version

    def _run_model_source(self, run_id: str, path: str) -> tuple[str, str | None]:
        """Where ``runs:/<run_id>/<path>`` is stored, and the logged model's id if it names
        one: the run's artifacts when they hold a model there (as MLflow 2 and MLflow 3's
        older models store it), else on MLflow 3 the run's logged model named by the
        path's first part (as MLflow 3 resolves it)."""
        info = self.get_run(run_id).info
        root = (info.artifact_uri or "").rstrip("/")
        name, _, rest = path.strip("/").partition("/")
        if self.capabilities().logged_models and not self._has_run_model(run_id, path):
            logged = self.run_logged_model(run_id, name, experiment_id=str(info.experiment_id))
            if logged is not None:
                location = str(logged.artifact_uri).rstrip("/")
                return "/".join(p for p in (location, rest) if p), logged.model_id
        return f"{root}/{path}", None

    def _has_run_model(self, run_id: str, path: str) -> bool:
        """Whether the run's own artifacts hold an ``MLmodel`` at ``path``."""
        files = self.list_run_artifacts(run_id, path)
        return any(f.path.rsplit("/", 1)[-1] == "MLmodel" for f in files)

    def model_location(self, model_uri: str) -> str:
        """Where a model's files are: the artifact URI behind ``models:/<name>@<alias>``,
        ``models:/<name>/<version>``, ``models:/<model_id>`` or ``runs:/<run_id>/<path>``.

        Raises:
            ValidationError: another kind of URI.
            NotFoundError: no such model, version, alias or run.
        """
        if model_uri.startswith("runs:/"):
            _, run_id, path = parse_model_uri(model_uri)
            return self._run_model_source(str(run_id), str(path or ""))[0]
        return self._registered_location(model_uri)[2]

    def _registered_location(self, model_uri: str) -> tuple[str | None, str | None, str]:
        """``(name, version, artifact URI)`` of a ``models:/`` URI, its version resolved
        (name and version None for ``models:/<model_id>``)."""
        rest = model_uri[len("models:/") :].strip("/") if model_uri.startswith("models:/") else ""
        if rest.startswith("m-") and "/" not in rest:
            endpoint = r.logged_model_endpoint("GET", rest)
            found = self._call(endpoint, r.NoFields(), "logged models").model
            return None, None, str(found.info.artifact_uri)
        name, at, alias = rest.partition("@")
        if not at:
            name, _, alias = rest.rpartition("/")
        if not name or not alias:
            raise ValidationError(
                f"{model_uri!r} is not models:/<name>@<alias>, models:/<name>/<version>, "
                "models:/<model_id> or runs:/<run_id>/<path>",
                field="model_uri",
            )
        version = self.get_model_version_by_alias(name, alias).version if at else alias
        return name, str(version), self.get_model_version_download_uri(name, version)

    def download_model(self, model_uri: str, dst_path: str | None = None) -> str:
        """Download a model's files (MLmodel, the pickled model, environment files) into
        ``dst_path`` (a new temporary directory if None); returns the local folder. For a
        ``models:/`` URI the folder also gets MLflow's ``registered_model_meta`` file (the
        registered name and version, null for a logged model id), as MLflow's download does.

        >>> folder = client.download_model("models:/churn@champion")  # doctest: +SKIP

        Raises:
            ValidationError: the URI has another form.
            NotFoundError: no such model, version, alias or run.
        """
        from ._formats.models import write_registered_model_meta

        meta: tuple[str | None, str | None] | None = None
        if model_uri.startswith("models:/"):
            name, version, location = self._registered_location(model_uri)
            meta = (name, version)
        else:
            location = self.model_location(model_uri)
        if location.startswith("models:/"):  # a version registered from a logged model
            location = self.model_location(location)
        dst = dst_path or tempfile.mkdtemp(prefix="mlrelay-model-")
        folder = self.download_artifacts_at(location, "", dst)
        if meta is not None and (Path(folder) / "MLmodel").is_file():
            write_registered_model_meta(Path(folder), *meta)
        return str(folder)
