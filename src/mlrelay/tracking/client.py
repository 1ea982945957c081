"""``MlflowClient``: MLflow's client class, with MLflow's method names, argument order and
return types, over :class:`mlrelay.Client`.

Like MLflow's, every call goes to the tracking server when it is made and returns what the
server answered, whatever ``MLRELAY_MODE`` says (it is a server client, as ``mlrelay.Client``;
the fluent API is the journal-first, never-waiting path that also logs offline). Run ids this
process's fluent API handed out before the server knew the run (local ids) are mapped to
the server's ids once known.

Differences from MLflow, each deliberate:

- ``synchronous=`` is accepted and has no effect: every call is synchronous already.
- ``log_metric``'s ``dataset_name`` / ``dataset_digest`` / ``model_id`` (MLflow 3's links of
  a metric to a dataset or a logged model) are not sent; a warning says so once.
- ``log_image`` takes ``artifact_file``; its ``key``/``step`` image series is not supported.
- Registry searches fetch all pages up to ``max_results``: their ``token`` is always None.
- ``log_inputs(models=...)`` (MLflow 3's logged-model inputs) is not supported.
"""

from __future__ import annotations

import posixpath
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mlrelay._errors import UnsupportedFeatureError, ValidationError
from mlrelay._pipeline import runs
from mlrelay.client import Client
from mlrelay.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelVersion,
    PagedList,
    Param,
    RegisteredModel,
    Run,
    RunTag,
    ViewType,
)

__all__ = ["MlflowClient"]

_STAGES = ["None", "Staging", "Production", "Archived"]
_warned: set[str] = set()


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(f"mlrelay: {message}", RuntimeWarning, stacklevel=3)


class MlflowClient:
    """MLflow's ``MlflowClient`` over :class:`mlrelay.Client`: ``MlflowClient(tracking_uri)``
    then ``client.create_run(experiment_id)``, ``client.log_metric(run_id, key, value)``...

    Args:
        tracking_uri: the server; default: the fluent API's (``set_tracking_uri``, then
            ``MLFLOW_TRACKING_URI`` and the other settings sources).
        registry_uri: a separate server for the model registry; default: the tracking
            server.
        workspace_store_uri: accepted for MLflow's signature; must be None.

    Raises:
        ConfigurationError: no tracking URI is configured, or it is not an http(s) server.

    Example::

        client = MlflowClient("http://127.0.0.1:5000")
        run = client.create_run(client.create_experiment("demo"))
        client.log_metric(run.info.run_id, "loss", 0.25, step=1)
        client.set_terminated(run.info.run_id)
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        workspace_store_uri: str | None = None,
    ) -> None:
        if workspace_store_uri is not None:
            raise UnsupportedFeatureError(
                "MlflowClient(workspace_store_uri=...): mlrelay has no workspaces; leave it None"
            )
        session = runs.session
        uri = tracking_uri or session.tracking_uri
        same = tracking_uri is None or tracking_uri == session.tracking_uri
        kwargs: dict[str, Any] = dict(session.client_kwargs) if same else {}
        if uri:
            kwargs["tracking_uri"] = uri
        self._client = Client(**kwargs)
        self._registry = (
            Client(tracking_uri=registry_uri)
            if registry_uri and registry_uri.rstrip("/") != self._client.tracking_uri
            else self._client
        )

    @property
    def tracking_uri(self) -> str:
        """The tracking server's URI."""
        return self._client.tracking_uri

    @property
    def client(self) -> Client:
        """The :class:`mlrelay.Client` underneath (mlrelay's typed methods)."""
        return self._client

    def close(self) -> None:
        """Close the connections (also done on leaving a ``with`` block)."""
        if self._registry is not self._client:
            self._registry.close()
        self._client.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MlflowClient(tracking_uri={self.tracking_uri!r})"

    @staticmethod
    def _rid(run_id: str) -> str:
        return runs.server_id(run_id)

    # --- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Create an experiment; returns its id (``ResourceAlreadyExistsError`` if taken)."""
        return self._client.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        """An experiment by id (``NotFoundError`` if there is none)."""
        return self._client.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """An experiment by name, or None."""
        return self._client.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int | str = ViewType.ACTIVE_ONLY,
        max_results: int | None = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """One page of experiments (all of them when ``max_results`` is None); ``.token``
        gives the next page."""
        view = ViewType.wire_name(view_type)
        if max_results is None:
            found = self._client.search_experiments(
                filter_string, view_type=view, order_by=order_by
            )
            return PagedList(list(found), None)
        items, token = self._client.search_experiments_page(
            filter_string,
            view_type=view,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )
        return PagedList(items, token)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment."""
        self._client.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a soft-deleted experiment."""
        self._client.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename an experiment."""
        self._client.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        """Set a tag on an experiment."""
        self._client.set_experiment_tag(experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Delete a tag from an experiment."""
        self._client.delete_experiment_tag(experiment_id, key)

    # --- runs -------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Create a run (exactly once even when a response is lost); as MLflow's client,
        ``user_id`` comes from an ``mlflow.user`` tag, else ``"unknown"``."""
        user = str((tags or {}).get("mlflow.user", "unknown"))
        return self._client.create_run(
            experiment_id, start_time=start_time, tags=tags, run_name=run_name, user_id=user
        )

    def get_run(self, run_id: str) -> Run:
        """A run with its latest metrics, params and tags (``NotFoundError`` if none)."""
        return self._client.get_run(self._rid(run_id))

    def get_parent_run(self, run_id: str) -> Run | None:
        """The run this one is nested in (its ``mlflow.parentRunId`` tag), or None."""
        parent = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return self.get_run(parent) if parent else None

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str = "",
        run_view_type: int | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """One page of runs matching a filter; ``.token`` gives the next page."""
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        items, token = self._client.search_runs_page(
            ids,
            filter_string,
            run_view_type=ViewType.wire_name(run_view_type),
            max_results=max_results,
            order_by=order_by,
            page_token=page_token,
        )
        return PagedList(items, token)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> None:
        """Log one metric point now (``timestamp`` default now, ``step`` default 0)."""
        del synchronous  # every call is synchronous
        if dataset_name is not None or dataset_digest is not None or model_id is not None:
            _warn_once(
                "metric-links",
                "MlflowClient.log_metric does not send dataset_name, dataset_digest or "
                "model_id; the metric is logged to the run only",
            )
        self._client.log_metric(self._rid(run_id), key, value, timestamp, step)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """Log a param; returns ``value``."""
        del synchronous  # every call is synchronous
        self._client.log_param(self._rid(run_id), key, value)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        """Set a run tag."""
        del synchronous  # every call is synchronous
        self._client.set_tag(self._rid(run_id), key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Delete a run tag."""
        self._client.delete_tag(self._rid(run_id), key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Log metrics, params and tags in as few requests as MLflow's limits allow."""
        del synchronous  # every call is synchronous
        self._client.log_batch(self._rid(run_id), metrics, params, tags)

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[Any] | None = None,
    ) -> None:
        """Record the datasets a run used."""
        if models:
            raise UnsupportedFeatureError(
                "MlflowClient.log_inputs(models=...): mlrelay does not record logged models as "
                "run inputs; pass datasets only"
            )
        self._client.log_inputs(self._rid(run_id), list(datasets or []))

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a run: ``status`` FINISHED (default), FAILED or KILLED; ``end_time`` now."""
        self._client.set_terminated(self._rid(run_id), status or "FINISHED", end_time)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Change a run's status or name."""
        self._client.update_run(self._rid(run_id), status=status, name=name)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._client.delete_run(self._rid(run_id))

    def restore_run(self, run_id: str) -> None:
        """Restore a soft-deleted run."""
        self._client.restore_run(self._rid(run_id))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric."""
        return self._client.get_metric_history(self._rid(run_id), key)

    # --- artifacts ----------------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file to the run's artifacts (under ``artifact_path``)."""
        self._client.log_artifact(self._rid(run_id), str(local_path), artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload a directory's files to the run's artifacts, keeping the tree."""
        self._client.log_artifacts(self._rid(run_id), str(local_dir), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Upload a string as a text artifact."""
        self._client.log_text(self._rid(run_id), text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Upload a dictionary as JSON or YAML (by the file's extension)."""
        self._client.log_dict(self._rid(run_id), dictionary, artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Upload a matplotlib or plotly figure (``save_kwargs`` go to matplotlib's
        ``savefig``)."""
        if not save_kwargs:
            self._client.log_figure(self._rid(run_id), figure, artifact_file)
            return
        if not type(figure).__module__.startswith("matplotlib"):
            raise ValidationError(
                "log_figure(save_kwargs=...) is supported for matplotlib figures only",
                field="save_kwargs",
            )
        self._upload_rendered(
            run_id, artifact_file, lambda target: figure.savefig(target, **save_kwargs)
        )

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Upload a numpy array or PIL image as ``artifact_file``."""
        del step, timestamp, synchronous  # they belong to the key= image series
        if artifact_file is None or key is not None:
            raise UnsupportedFeatureError(
                "log_image(key=..., step=...) image series are not supported by mlrelay; "
                "pass artifact_file='images/name.png' (one file per image)"
            )
        self._client.log_image(self._rid(run_id), image, artifact_file)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Log a table (a DataFrame or a dict of columns) as MLflow does: appended to the
        table already at ``artifact_file``, written as split JSON (or parquet), and listed
        in the run's ``mlflow.loggedArtifacts`` tag, where MLflow's UI finds it."""
        import pandas as pd

        from ._tables import LOGGED_ARTIFACTS_TAG, read_table, table_frame, with_table, write_table

        frame = table_frame(data, artifact_file)
        rid = self._rid(run_id)
        folder = posixpath.dirname(posixpath.normpath(artifact_file)) or None
        if artifact_file in {f.path for f in self._client.list_artifacts(rid, folder)}:
            with tempfile.TemporaryDirectory(prefix="mlrelay-table-") as tmp:
                existing = read_table(self._client.download_artifacts(rid, artifact_file, tmp))
            frame = pd.concat([existing, frame], ignore_index=True)
        self._upload_rendered(rid, artifact_file, lambda target: write_table(frame, target))
        current = self._client.get_run(rid).data.tags.get(LOGGED_ARTIFACTS_TAG)
        tag = with_table(current, artifact_file)
        if tag is not None:
            self._client.set_tag(rid, LOGGED_ARTIFACTS_TAG, tag)

    def _upload_rendered(self, run_id: str, artifact_file: str, render: Any) -> None:
        from mlrelay._artifacts import rendered

        rid = self._rid(run_id)
        rendered(
            artifact_file,
            render,
            lambda path, folder: self._client.log_artifact(rid, str(path), folder),
        )

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in the run's artifacts."""
        return self._client.list_artifacts(self._rid(run_id), path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Download an artifact file or directory; returns its local path."""
        if dst_path is not None:
            Path(dst_path).mkdir(parents=True, exist_ok=True)
        return self._client.download_artifacts(self._rid(run_id), path, dst_path)

    # --- MLflow 3's logged models ---------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a logged model with no files yet (status PENDING), exactly once."""
        return self._client.create_logged_model(
            experiment_id, name, None if source_run_id is None else self._rid(source_run_id),
            tags, params, model_type,
        )  # fmt: skip

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A logged model by id, with its tags, params and linked metrics."""
        return self._client.get_logged_model(model_id)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """One page of logged models matching a filter; ``.token`` gives the next page."""
        items, token = self._client.search_logged_models_page(
            experiment_ids, filter_string=filter_string, datasets=datasets,
            max_results=max_results, order_by=order_by, page_token=page_token,
        )  # fmt: skip
        return PagedList(items, token)

    def list_logged_model_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in a logged model's files."""
        return self._client.list_logged_model_artifacts(model_id, path)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        """Set tags on a logged model."""
        self._client.set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model."""
        self._client.delete_logged_model_tag(model_id, key)

    def finalize_logged_model(
        self, model_id: str, status: Literal["READY", "FAILED"] | LoggedModelStatus
    ) -> LoggedModel:
        """Set a logged model's final status, READY or FAILED; returns the model."""
        return self._client.finalize_logged_model(model_id, status)

    def delete_logged_model(self, model_id: str) -> None:
        """Delete a logged model."""
        self._client.delete_logged_model(model_id)

    # --- the model registry -------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        description: str | None = None,
        deployment_job_id: str | None = None,
    ) -> RegisteredModel:
        """Create a registered model (``ResourceAlreadyExistsError`` if taken)."""
        del deployment_job_id  # Databricks' deployment jobs
        return self._registry.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model by name."""
        return self._registry.get_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Registered models matching a filter, up to ``max_results`` (``token`` is None)."""
        _no_registry_token(page_token)
        found = self._registry.search_registered_models(filter_string, max_results, order_by)
        return PagedList(found, None)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        return self._registry.rename_registered_model(name, new_name)

    def update_registered_model(
        self, name: str, description: str | None = None, deployment_job_id: str | None = None
    ) -> RegisteredModel:
        """Change a registered model's description (None: unchanged)."""
        del deployment_job_id  # Databricks' deployment jobs
        if description is None:
            return self._registry.get_registered_model(name)
        return self._registry.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model and its versions."""
        self._registry.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        self._registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self._registry.delete_registered_model_tag(name, key)

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Create a version of a registered model and wait up to ``await_creation_for``
        seconds until it is no longer pending (as MLflow's client)."""
        version = self._registry.create_model_version(
            name,
            source,
            run_id=self._rid(run_id) if run_id else None,
            tags=tags,
            run_link=run_link,
            description=description,
            model_id=model_id,
        )
        deadline = time.monotonic() + await_creation_for
        while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(0.5)
            version = self._registry.get_model_version(name, version.version)
        return version

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        """One version of a registered model."""
        return self._registry.get_model_version(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Model versions matching a filter, up to ``max_results`` (``token`` is None)."""
        _no_registry_token(page_token)
        found = self._registry.search_model_versions(filter_string, max_results, order_by)
        return PagedList(found, None)

    def update_model_version(
        self, name: str, version: str, description: str | None = None
    ) -> ModelVersion:
        """Change a version's description (None: unchanged)."""
        if description is None:
            return self._registry.get_model_version(name, version)
        return self._registry.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: str) -> None:
        """Delete one version."""
        self._registry.delete_model_version(name, version)

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where a version's files are."""
        return self._registry.get_model_version_download_uri(name, version)

    def get_model_version_stages(self, name: str, version: str) -> list[str]:
        """The stages a version can be in: None, Staging, Production, Archived."""
        del name, version  # the same four for every version, as in MLflow
        return list(_STAGES)

    def _version_in(self, name: str, version: str | None, stage: str | None) -> str:
        """The version named, or the latest in ``stage`` (MLflow's ``stage=`` form)."""
        if (version is None) == (stage is None):
            raise ValidationError("pass exactly one of version and stage", field="version")
        if version is not None:
            return str(version)
        latest = self._registry.get_latest_versions(name, [str(stage)])
        if not latest:
            raise ValidationError(f"model {name!r} has no version in {stage}", field="stage")
        return latest[0].version

    def set_model_version_tag(
        self,
        name: str,
        version: str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a version (or on the latest version in ``stage``)."""
        if key is None:
            raise ValidationError("set_model_version_tag needs a key", field="key")
        self._registry.set_model_version_tag(
            name, self._version_in(name, version, stage), key, value
        )

    def delete_model_version_tag(
        self,
        name: str,
        version: str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        """Remove a tag from a version (or from the latest version in ``stage``)."""
        if key is None:
            raise ValidationError("delete_model_version_tag needs a key", field="key")
        self._registry.delete_model_version_tag(name, self._version_in(name, version, stage), key)

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to Staging, Production, Archived or None."""
        return self._registry.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The latest version in each stage (or in the given stages)."""
        return self._registry.get_latest_versions(name, stages)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        """Point an alias at a version."""
        self._registry.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._registry.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return self._registry.get_model_version_by_alias(name, alias)


def _no_registry_token(page_token: str | None) -> None:
    if page_token is not None:
        raise ValidationError(
            "mlrelay's registry searches return every result up to max_results in one list; "
            "there is no next page to ask for",
            field="page_token",
        )
