"""The artifact routes MLflow's server has outside its REST API, for its UI and clients.

* ``GET /get-artifact?run_id=..&path=..`` (``run_uuid`` also works): a run's file;
* ``GET /model-versions/get-artifact?name=..&version=..&path=..``: a file under a model
  version's download URI;
* ``POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=..&path=..``: the raw body becomes the
  run's file (at most 10 MB);
* ``GET /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=..``
  (MLflow 3 only): a logged model's file.

Only these exact paths exist, as on MLflow (no ``/api`` twin, no ``/ajax-api`` one for the
``get-artifact`` routes). Downloads carry MLflow's attachment headers
(:mod:`mlrelay_mock._downloads`). Where MLflow's Flask handler fails with an HTML page
(a missing ``path`` parameter; on 2.7 also a missing file), the mock answers the same page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlrelay_mock._api import AppState, artifact_root_path, error_response
from mlrelay_mock._artifacts import clean_path, join
from mlrelay_mock._downloads import attachment, flask_error_page, validate_path_is_safe
from mlrelay_mock._errors import MlflowError, bad_request, invalid, not_found

__all__ = ["artifact_view_routes"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""``upload-artifact`` refuses larger bodies, as MLflow's does."""


class _FlaskCrash(Exception):
    """Where MLflow's Flask handler fails outside its error handling: an HTML page."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _arg(request: Request, name: str) -> str | None:
    """The first value of a query parameter (Flask's ``request.args.get``)."""
    values = request.query_params.getlist(name)
    return values[0] if values else None


def _required_path(request: Request, state: AppState, name: str = "path") -> str:
    path = _arg(request, name)
    if path is None:  # MLflow indexes request.args[...]: a 400 page (2.7: a 500 page)
        raise _FlaskCrash(400 if state.v3 else 500)
    return validate_path_is_safe(path, v3=state.v3)


def _send(state: AppState, root_uri: str, rel: str) -> Response:
    """The file ``rel`` under the artifact location ``root_uri``, as an attachment."""
    root = artifact_root_path(root_uri)
    if root is None:
        raise MlflowError(
            "NOT_IMPLEMENTED",
            f"The mock serves artifacts from mlflow-artifacts: locations only, not {root_uri!r}",
        )
    storage_path = clean_path(join(root, rel))
    try:
        found = state.artifacts.get(storage_path)
    except MlflowError:
        if not state.v3:  # 2.7's download of a missing file or a directory crashes
            raise _FlaskCrash(500) from None
        raise
    return attachment(found, rel)


def _view(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def view(request: Request) -> Response:
        try:
            return await handler(request)
        except _FlaskCrash as crash:
            return flask_error_page(crash.status)
        except MlflowError as error:
            return error_response(error)

    return view


def artifact_view_routes(state: AppState) -> list[Route]:
    """Starlette routes for ``/get-artifact`` and its siblings over ``state``."""

    async def get_artifact(request: Request) -> Response:
        run_id = _arg(request, "run_id") or _arg(request, "run_uuid")
        path = _required_path(request, state)
        run = state.store.run(run_id or "None")
        return _send(state, run.artifact_uri, path)

    async def model_version_artifact(request: Request) -> Response:
        name, version = _arg(request, "name"), _arg(request, "version")
        path = _required_path(request, state)
        if version is None:
            raise MlflowError(
                "INTERNAL_ERROR",
                "int() argument must be a string, a bytes-like object or a real number, "
                "not 'NoneType'",
            )
        try:
            found = state.store.model_version(name or "None", version)
        except MlflowError as error:
            if error.status != 404:
                raise
            raise not_found(f"Model Version (name={name}, version={version}) not found") from None
        return _send(state, found.download_uri, path)

    async def upload_artifact(request: Request) -> Response:
        run_uuid = _arg(request, "run_uuid")
        if not run_uuid:
            raise invalid("Request must specify run_uuid.")
        raw = _arg(request, "path")
        if not raw:
            raise invalid("Request must specify path.")
        path = validate_path_is_safe(raw, v3=state.v3)
        too_large = invalid("Artifact size is too large. Max size is 10MB.")
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD_BYTES:
            raise too_large
        data = await request.body()
        if not data:
            raise invalid("Request must specify data.")
        if len(data) > MAX_UPLOAD_BYTES:
            raise too_large
        run = state.store.run(run_uuid)
        root = artifact_root_path(run.artifact_uri)
        if root is None or path.endswith("/"):
            raise _FlaskCrash(500)  # MLflow cannot write a file named like a directory

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        await state.artifacts.put(clean_path(join(root, path)), chunks())
        return Response(status_code=200, media_type="application/json")

    async def logged_model_artifact(request: Request) -> Response:
        path = _arg(request, "artifact_file_path")
        if not path:
            raise bad_request('Request must include the "artifact_file_path" query parameter.')
        path = validate_path_is_safe(path, v3=state.v3)
        model = state.store.logged_model(request.path_params["model_id"])
        return _send(state, model.artifact_uri, path)

    routes = [
        Route("/get-artifact", _view(get_artifact), methods=["GET"]),
        Route("/model-versions/get-artifact", _view(model_version_artifact), methods=["GET"]),
        Route("/ajax-api/2.0/mlflow/upload-artifact", _view(upload_artifact), methods=["POST"]),
    ]
    if state.v3:
        routes.append(
            Route(
                "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
                _view(logged_model_artifact),
                methods=["GET"],
            )
        )
    return routes
