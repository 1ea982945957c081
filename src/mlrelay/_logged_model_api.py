"""Reading and tagging MLflow 3's logged models, as methods of :class:`mlrelay.Client`, and
the last model this thread logged (what ``mlrelay.last_logged_model()`` returns).

``log_model`` (in :mod:`mlrelay._logged_models`) calls :func:`remember_logged_model` with
the id of each logged model it creates; as in MLflow, the record is per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import ValidationError
from ._protocol import logged_models as lm
from ._protocol.entities import ModelVersionTag

if TYPE_CHECKING:
    from ._protocol.entities import FileInfo
    from ._protocol.logged_models import LoggedModel
    from ._protocol.messages import Endpoint, Request

__all__ = ["LoggedModelReads", "last_logged_model_id", "remember_logged_model"]

_FEATURE = "logged models"
_last = threading.local()


def remember_logged_model(model_id: str | None) -> None:
    """Record ``model_id`` as this thread's last logged model (None: forget it)."""
    _last.model_id = model_id


def last_logged_model_id() -> str | None:
    """The id of the last model this thread logged, or None."""
    found: str | None = getattr(_last, "model_id", None)
    return found


def _status(status: Any) -> lm.LoggedModelStatus:
    """``"READY"``/``"FAILED"`` or a status -> the status (MLflow's ``finalize`` argument)."""
    try:
        value = lm.LoggedModelStatus(str(status))
    except ValueError:
        value = lm.LoggedModelStatus.UNSPECIFIED
    if not lm.LoggedModelStatus.is_finalized(value):
        raise ValidationError(
            f"a logged model is finalized as READY or FAILED, not {status!r}", field="status"
        )
    return value


class LoggedModelReads:
    """MLflow 3's logged-model calls other than ``log_model``; mixed into
    :class:`mlrelay.Client`. On a server without logged models (MLflow 2) each raises
    ``RegistryNotSupportedError`` naming the feature."""

    if TYPE_CHECKING:

        def _call(
            self, endpoint: Endpoint[Any, Any], request: Request, feature: str = ...
        ) -> Any: ...

        def list_artifacts_at(
            self, artifact_uri: str, path: str | None = None
        ) -> list[FileInfo]: ...

        def download_artifacts_at(
            self, artifact_uri: str, path: str = "", dst_path: str | None = None
        ) -> str: ...

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A logged model by id, with its tags, params and linked metrics.

        Raises:
            NotFoundError: there is no such model.
        """
        body: lm.LoggedModelBody = self._call(lm.get_endpoint(model_id), lm.NoBody(), _FEATURE)
        return lm.LoggedModel.from_json(body.model)

    def search_logged_models_page(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[LoggedModel], str | None]:
        """One page of the logged models of ``experiment_ids`` matching ``filter_string``
        (MLflow's syntax, such as ``"name = 'm' AND metrics.acc > 0.9"``), and the next
        page's token (None after the last).

        ``datasets`` (``{"dataset_name", "dataset_digest"}``) restrict metric filters to
        those datasets; ``order_by`` is a list of ``{"field_name", "ascending",
        "dataset_name", "dataset_digest"}``, as in MLflow.
        """
        request = lm.SearchLoggedModelsQuery.model_validate(
            {
                "experiment_ids": [str(e) for e in experiment_ids],
                "filter": filter_string,
                "datasets": [dict(d) for d in datasets] if datasets else None,
                "max_results": max_results,
                "order_by": [{"ascending": True, **o} for o in order_by] if order_by else None,
                "page_token": page_token,
            }
        )
        page: lm.LoggedModelsPage = self._call(lm.search_endpoint(), request, _FEATURE)
        return [lm.LoggedModel.from_json(m) for m in page.models], page.next_page_token or None

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[LoggedModel]:
        """Every logged model matching (all pages), at most ``max_results``; see
        :meth:`search_logged_models_page`."""
        found: list[LoggedModel] = []
        token = None
        while max_results is None or len(found) < max_results:
            page, token = self.search_logged_models_page(
                experiment_ids, filter_string=filter_string, datasets=datasets,
                max_results=max_results, order_by=order_by, page_token=token,
            )  # fmt: skip
            found += page
            if not token:
                break
        return found if max_results is None else found[:max_results]

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a logged model (values are sent as strings, as MLflow does).

        Raises:
            NotFoundError: there is no such model.
        """
        pairs = [ModelVersionTag(key=str(k), value=str(v)) for k, v in tags.items()]
        self._call(lm.set_tags_endpoint(model_id), lm.SetLoggedModelTags(tags=pairs), _FEATURE)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag from a logged model.

        Raises:
            NotFoundError: there is no such model, or it has no tag ``key``.
            ValidationError: ``key`` contains ``/``, which MLflow's route for this call
                cannot address (remove such a tag with MLflow's UI).
        """
        if "/" in key:
            raise ValidationError(
                f"cannot delete logged-model tag {key!r}: MLflow's REST route "
                "(DELETE logged-models/<id>/tags/<key>) cannot address a key with '/'",
                field="key",
            )
        self._call(lm.delete_tag_endpoint(model_id, key), lm.NoBody(), _FEATURE)

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        """Set a logged model's final status, ``"READY"`` or ``"FAILED"`` (or a
        :class:`LoggedModelStatus`); returns the model.

        Raises:
            ValidationError: another status.
        """
        from ._protocol.registry import FinalizeLoggedModel

        wire: Any = _status(status).to_wire()
        request = FinalizeLoggedModel(model_id=model_id, status=wire)
        body: lm.LoggedModelBody = self._call(lm.finalize_endpoint(model_id), request, _FEATURE)
        return lm.LoggedModel.from_json(body.model)

    def delete_logged_model(self, model_id: str) -> None:
        """Delete a logged model."""
        self._call(lm.delete_endpoint(model_id), lm.NoBody(), _FEATURE)

    def list_logged_model_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below ``path`` in a logged model's files
        (paths relative to the model's root, as MLflow lists them).

        Raises:
            ArtifactsNotProxiedError: the model's files are neither served by the tracking
                server nor in ``s3://``.
        """
        location = self.get_logged_model(model_id).artifact_location
        return self.list_artifacts_at(location, path)

    def download_logged_model_artifacts(
        self, model_id: str, path: str = "", dst_path: str | None = None
    ) -> str:
        """Download ``path`` (``""``: every file) of a logged model to ``<dst_path>/<path>``;
        returns that local path."""
        location = self.get_logged_model(model_id).artifact_location
        return self.download_artifacts_at(location, path, dst_path)
