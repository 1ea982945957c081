"""Logging a model, as methods of :class:`mlrelay.Client`: one ``log_model`` is one model,
stored once, where the server's MLflow version keeps models.

On an MLflow 3 server a model is a *logged model* (``models:/m-...``), as MLflow 3's
client makes it:

1. the model folder is written locally first (so a model that cannot be saved leaves
   nothing behind on the server);
2. the logged model is created, exactly once, with the run's params and the run's
   context tags (user, source, git commit), and recorded as the run's output;
3. the run's metrics at the model's step are linked to it (re-logged with its
   ``model_id``), which is what the Models view shows as the model's metrics;
4. ``MLmodel`` gets the model's id and storage URI, the files are uploaded once, to the
   logged model's own location (not to the run's artifacts), and the model is marked
   ready (or failed, when the upload fails).

``runs:/<run_id>/<name>`` still names the model: :meth:`run_logged_model` finds it, and
the artifact listings and downloads of a run show its files under ``<name>/``, as MLflow
3's ``RunsArtifactRepository`` does.

On an MLflow 2 server the model is stored in the run's artifacts under its name and
recorded in the run's ``mlflow.log-model.history`` tag, as MLflow 2's client does.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._errors import ValidationError
from ._logged_model_api import remember_logged_model
from ._protocol import registry as r
from ._protocol.batches import KIND_METRIC, Entry, metrics_body
from ._protocol.entities import CLIENT_KEY_TAG, CLIENT_KEY_TAGS, ModelVersionTag
from ._registry import ModelInfo
from ._validation import MAX_METRICS_PER_BATCH

if TYPE_CHECKING:
    from ._capabilities import Capabilities
    from ._formats.schema import ModelSignature
    from ._protocol.entities import Metric, ModelVersion, Run
    from ._protocol.logged_models import LoggedModel
    from ._protocol.messages import Endpoint, Request, Response
    from ._stores import ArtifactStore
    from ._transport import Transport

__all__ = ["LoggedModelMethods"]

_R = r.REGISTRY_ENDPOINTS
Link = Literal["step", "all", "none"]
"""Which of the run's metric points a new logged model is linked to."""

_EXTERNAL = "mlflow.model.isExternal"
"""MLflow 3's tag on a logged model created without files in MLflow's format."""

_SEARCH_PAGES = 100
"""Pages of logged models looked through when searching one experiment (a bounded look)."""

T = TypeVar("T")
RespT = TypeVar("RespT", bound="Response")


class LoggedModelMethods:
    """``log_model`` and MLflow 3's logged models; mixed into :class:`mlrelay.Client`."""

    _transport: Transport

    if TYPE_CHECKING:

        def capabilities(self) -> Capabilities: ...

        def _artifact_store(self, artifact_uri: str) -> ArtifactStore: ...

        def get_run(self, run_id: str) -> Run: ...

        def get_metric_history(
            self, run_id: str, key: str, *, page_size: int = 25000
        ) -> list[Metric]: ...

        def log_artifacts(
            self, run_id: str, local_dir: str, artifact_path: str | None = None
        ) -> None: ...

        def send_log_batch(self, body: bytes) -> None: ...

        def delete_logged_model_tag(self, model_id: str, key: str) -> None: ...

        def get_logged_model(self, model_id: str) -> LoggedModel: ...

        def _exactly_once(self, send: Callable[[], T], find: Callable[[], T | None]) -> T: ...

        def _call(
            self, endpoint: Endpoint[Any, RespT], request: Request, feature: str = ...
        ) -> RespT: ...

        def _require_registry(self) -> None: ...

        def register_model(
            self,
            model_uri: str,
            name: str,
            *,
            await_registration_for: float = 300.0,
            tags: Mapping[str, Any] | None = None,
        ) -> ModelVersion: ...

    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str = "model",
        *,
        flavor: str | None = None,
        signature: ModelSignature | Mapping[str, str | None] | None = None,
        input_example: Any = None,
        pip_requirements: Sequence[str] | None = None,
        registered_model_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        step: int = 0,
        link: Link = "step",
        model_id: str | None = None,
    ) -> ModelInfo:
        """Log a model of run ``run_id`` in MLflow's format, named ``name``.

        ``model``: a scikit-learn estimator (anything with ``predict``), an object with
        ``predict(context, model_input)``, a function, an ONNX model, or a ``ModelSpec``.

        On MLflow 3 the model is a logged model linked to the run, its params and its
        metrics, and ``model_uri`` is ``models:/<model_id>``; on MLflow 2 it is stored in
        the run's artifacts and ``model_uri`` is ``runs:/<run_id>/<name>`` (see the module
        docstring). Either way it loads with ``mlflow.pyfunc.load_model`` by the returned
        ``model_uri`` and by ``runs:/<run_id>/<name>``.

        MLflow 3's fields, as its ``log_model`` records them (not on MLflow 2): the model's
        params are ``params`` under the run's; its tags the run's context tags under
        ``tags``; ``step`` is that of the run's output and of the metric points linked,
        which ``link`` picks: those at ``step``, ``"all"`` (boosting autologs) or ``"none"``;
        ``model_id`` fills that existing logged model (its name, params and tags kept, its
        ``mlflow.model.isExternal`` tag removed) instead of creating one.

        Raises:
            ValidationError: the model cannot be saved (nothing is created on the server);
                ``model_id`` on an MLflow 2 server, which has no logged models.
            NotFoundError: no logged model ``model_id``.
            RegistryNotSupportedError: ``registered_model_name`` on a server without a
                registry (nothing is created on the server).
        """
        from ._formats.models import for_mlflow_2, save_model

        if reg := registered_model_name:
            self._require_registry()  # before anything is created
        if not (logged_models := self._has_logged_models(model_id)):
            model = for_mlflow_2(model, flavor)
        with tempfile.TemporaryDirectory(prefix="mlrelay-model-") as tmp:
            folder = Path(tmp)
            mlmodel = save_model(
                model, folder, input_example=input_example, signature=signature, flavor=flavor,
                pip_requirements=pip_requirements, run_id=run_id, artifact_path=name,
            )  # fmt: skip
            fields = _Fields(dict(params or {}), dict(tags or {}), model_type, step, link, model_id)
            model_id, mlmodel = self._store(run_id, name, folder, mlmodel, fields, logged_models)
        source = f"models:/{model_id}" if model_id else f"runs:/{run_id}/{name}"  # as MLflow 3
        version = self.register_model(source, reg, tags=tags) if reg else None
        return ModelInfo.of(mlmodel, run_id, name, model_id=model_id, model_version=version)

    def _has_logged_models(self, model_id: str | None) -> bool:
        """Whether the server keeps MLflow 3 logged models.

        Raises:
            ValidationError: ``model_id`` given to an MLflow 2 server.
        """
        if not (logged := self.capabilities().logged_models) and model_id:
            raise ValidationError(
                f"model_id={model_id!r} names an MLflow 3 logged model, but the server is "
                "MLflow 2, which has none; leave model_id out",
                field="model_id",
            )
        return logged

    def log_saved_model(
        self,
        run_id: str,
        folder: str,
        name: str = "model",
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        step: int = 0,
        link: Link = "step",
        key: str | None = None,
    ) -> ModelInfo:
        """Store a model folder already written in MLflow's format (an ``MLmodel`` inside),
        as :meth:`log_model` stores one: a logged model on MLflow 3, the run's artifacts
        and history on MLflow 2. This is how a model logged offline is synced. The folder
        is not changed (a copy gets the run's id). ``key`` makes the logged model's
        creation exactly once across retries (a new one by default).

        Raises:
            ValidationError: no ``MLmodel`` in ``folder``.
        """
        import shutil

        import yaml

        source = Path(folder) / "MLmodel"
        if not source.is_file():
            raise ValidationError(f"no MLmodel in {folder!r}", field="folder")
        with tempfile.TemporaryDirectory(prefix="mlrelay-model-") as tmp:
            copy = Path(tmp) / "model"
            shutil.copytree(folder, copy)
            mlmodel = {**yaml.safe_load(source.read_text(encoding="utf-8")), "run_id": run_id}
            fields = _Fields(dict(params or {}), dict(tags or {}), model_type, step, link, key=key)
            logged = self.capabilities().logged_models
            model_id, mlmodel = self._store(run_id, name, copy, mlmodel, fields, logged)
        return ModelInfo.of(mlmodel, run_id, name, model_id=model_id)

    def _store(
        self, run_id: str, name: str, folder: Path, mlmodel: Any, fields: _Fields, logged: bool
    ) -> tuple[str | None, dict[str, Any]]:
        """Store the written model as a logged model (MLflow 3) or in the run (MLflow 2);
        returns the logged model's id (None on MLflow 2) and the MLmodel written."""
        if logged:
            return self._log_logged_model(run_id, name, folder, mlmodel, fields)
        self._log_run_model(run_id, name, folder, mlmodel)
        return None, mlmodel

    def _log_run_model(self, run_id: str, name: str, folder: Path, mlmodel: Any) -> None:
        """MLflow 2: the files in the run's artifacts, the model in the run's history tag
        (with the fields MLflow's client records there: an older server refuses others, such
        as a signature in a newer schema format)."""
        self.log_artifacts(run_id, str(folder), name)
        flavors = {
            flavor: {k: v for k, v in conf.items() if k != "config"}
            for flavor, conf in mlmodel.get("flavors", {}).items()
        }
        record = {
            **{k: mlmodel[k] for k in ("utc_time_created", "model_uuid") if k in mlmodel},
            "run_id": run_id,
            "artifact_path": name,
            "flavors": flavors,
        }
        request = r.LogModel(run_id=run_id, model_json=json.dumps(record))
        self._call(_R.log_model, request, "runs/log-model")

    def _log_logged_model(
        self, run_id: str, name: str, folder: Path, mlmodel: dict[str, Any], fields: _Fields
    ) -> tuple[str, dict[str, Any]]:
        """MLflow 3: create the logged model, link it to the run and its metrics, record it
        in ``MLmodel``, upload the folder once; returns its id and the MLmodel written."""
        from ._formats.models import stamp_logged_model

        run = self.get_run(run_id)  # once: its params, context tags and metric keys
        if fields.model_id:  # into an existing logged model, as MLflow 3 does
            endpoint = r.logged_model_endpoint("GET", fields.model_id)
            info = self._call(endpoint, r.NoFields(), "logged models").model.info
        else:
            info = self._create_logged_model(run, name, fields)
        model_id = info.model_id
        remember_logged_model(model_id)  # for mlrelay.last_logged_model(), as MLflow: once created
        output = r.LoggedModelOutput(model_id=model_id, step=fields.step)
        self._call(_R.log_outputs, r.LogOutputs(run_id=run_id, models=[output]), "logged models")
        if fields.link != "none":
            steps = None if fields.link == "all" else fields.step
            self._link_metrics(run, model_id, step=steps)
        location = str(info.artifact_uri)
        mlmodel = stamp_logged_model(folder, mlmodel, model_id=model_id, artifact_path=location)
        self._upload_logged_model(model_id, location, folder)
        if any(t.key == _EXTERNAL and t.value.lower() == "true" for t in info.tags):
            self.delete_logged_model_tag(model_id, _EXTERNAL)  # it holds a model now
        return model_id, mlmodel

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a logged model (status PENDING, no files yet), exactly once, as MLflow 3's
        ``MlflowClient.create_logged_model``; ``log_model(model_id=...)`` can fill it later.
        With no ``name`` the server picks one.

        Raises:
            ValidationError: the server is MLflow 2, which has no logged models.
            NotFoundError: no such experiment.
        """
        if not self.capabilities().logged_models:
            raise ValidationError(
                f"create_logged_model needs an MLflow 3 server; {self._transport.base_url} "
                "is MLflow 2, which has no logged models",
                field="experiment_id",
            )
        info = self._new_logged_model(
            str(experiment_id), name, source_run_id, dict(tags or {}), dict(params or {}),
            model_type,
        )  # fmt: skip
        return self.get_logged_model(info.model_id)

    def _create_logged_model(self, run: Run, name: str, fields: _Fields) -> r.LoggedModelInfo:
        """Create the logged model of a ``log_model`` with the run's params and context
        tags, as MLflow 3's client creates it."""
        context = {
            k: v
            for k, v in run.data.tags_dict.items()
            if k == "mlflow.user" or k.startswith("mlflow.source.")
        }
        return self._new_logged_model(
            str(run.info.experiment_id), name, run.info.run_id, {**context, **fields.tags},
            {**fields.params, **run.data.params_dict}, fields.model_type, key=fields.key,
        )  # fmt: skip

    def _new_logged_model(
        self,
        experiment_id: str,
        name: str | None,
        source_run_id: str | None,
        tags: dict[str, Any],
        params: dict[str, Any],
        model_type: str | None,
        *,
        key: str | None = None,
    ) -> r.LoggedModelInfo:
        """Create a logged model exactly once: a client key among its hidden tags (``key``,
        else a new one) finds it when the answer to the create was lost."""
        key = key or uuid.uuid4().hex
        request = r.CreateLoggedModel(
            experiment_id=experiment_id,
            name=name,
            model_type=model_type,
            source_run_id=source_run_id,
            tags=_pairs({**tags, CLIENT_KEY_TAG: key}),
            params=_pairs(params),
        )

        def find() -> r.LoggedModelInfo | None:
            return next(
                (m for m in self._logged_models(experiment_id, name) if _has_key(m, key)), None
            )

        return self._exactly_once(
            lambda: self._call(_R.create_logged_model, request, "logged models").model.info,
            find,
        )

    def _link_metrics(self, run: Run, model_id: str, *, step: int | None) -> None:
        """Re-log the run's metric points at ``step`` (every step: None) with the model's
        id, as MLflow 3's client does: the logged model's metrics are these points."""
        link, run_id = json.dumps({"model_id": model_id}), run.info.run_id
        points = [
            Entry(0, KIND_METRIC, m.key, m.value, m.timestamp, m.step, link)
            for key in run.data.metrics_dict
            for m in self.get_metric_history(run_id, key)
            if step in (None, m.step) and getattr(m, "model_id", None) is None
        ]
        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            self.send_log_batch(metrics_body(run_id, points[start : start + MAX_METRICS_PER_BATCH]))

    def _upload_logged_model(self, model_id: str, location: str, folder: Path) -> None:
        """Upload the folder to the logged model's location and mark it ready; a failed
        upload marks it failed (and raises)."""
        from ._stores import upload_dir

        finalize = r.logged_model_endpoint("PATCH", model_id)
        try:
            upload_dir(self._artifact_store(location), folder, None)
        except BaseException:
            with contextlib.suppress(Exception):
                failed = r.FinalizeLoggedModel(
                    model_id=model_id, status="LOGGED_MODEL_UPLOAD_FAILED"
                )
                self._call(finalize, failed, "logged models")
            raise
        ready = r.FinalizeLoggedModel(model_id=model_id, status="LOGGED_MODEL_READY")
        self._call(finalize, ready, "logged models")

    def _logged_models(self, experiment_id: str, name: str | None) -> list[r.LoggedModelInfo]:
        """The experiment's logged models named ``name`` (all: None), newest first (a
        bounded look)."""
        found: list[r.LoggedModelInfo] = []
        token = None
        quoted = (name or "").replace("'", "\\'")
        for _ in range(_SEARCH_PAGES):
            request = r.SearchLoggedModels(
                experiment_ids=[experiment_id],
                filter=f"name = '{quoted}'" if name is not None else None,
                page_token=token,
            )
            page = self._call(_R.search_logged_models, request, "logged models")
            # the name is checked here too: some servers ignore the filter
            found += [m.info for m in page.models if name is None or m.info.name == name]
            token = page.next_page_token
            if not token:
                break
        return sorted(found, key=lambda m: -int(getattr(m, "creation_timestamp_ms", 0) or 0))

    def run_logged_model(
        self, run_id: str, name: str, *, experiment_id: str | None = None
    ) -> r.LoggedModelInfo | None:
        """The newest logged model named ``name`` whose source is run ``run_id`` (what
        ``runs:/<run_id>/<name>`` names on MLflow 3), or None (also on MLflow 2 servers).
        ``experiment_id``, the run's, saves asking the server for it."""
        if not name or not self.capabilities().logged_models:
            return None
        experiment_id = experiment_id or str(self.get_run(run_id).info.experiment_id)
        return next(
            (m for m in self._logged_models(experiment_id, name) if m.source_run_id == run_id),
            None,
        )


@dataclass(frozen=True)
class _Fields:
    """MLflow 3's logged-model fields given to ``log_model``."""

    params: dict[str, Any]
    tags: dict[str, Any]
    model_type: str | None
    step: int
    link: Link = "step"
    model_id: str | None = None
    key: str | None = None
    """The exactly-once key of a new logged model (a random one when None)."""


def _pairs(values: Mapping[str, Any]) -> list[ModelVersionTag]:
    return [ModelVersionTag(key=str(k), value=str(v)) for k, v in values.items()]


def _has_key(model: r.LoggedModelInfo, key: str) -> bool:
    return any(t.key in CLIENT_KEY_TAGS and t.value == key for t in model.tags)
