"""The ``mlflow-artifacts`` proxy: upload, download, list and delete run artifacts.

Paths are relative to the artifact root, so a run's files live under
``<experiment_id>/<run_id>/artifacts/``. Like the real server's FastAPI routes, the proxy's own
400s use a ``{"detail": ...}`` body, and a missing file is MLflow's JSON 404.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlrelay_mock._api import AppState, error_response, json_response
from mlrelay_mock._artifacts import clean_path
from mlrelay_mock._downloads import attachment, flask_error_page, validate_path_is_safe
from mlrelay_mock._errors import MlflowError

__all__ = ["artifact_routes"]

BASE = "/api/2.0/mlflow-artifacts"
AJAX_BASE = "/ajax-api/2.0/mlflow-artifacts"
"""The same routes under the prefix MLflow's web UI calls."""
PARTS = "/mpu-parts"
"""Where the mock's presigned-style part URLs point (no credentials needed, as on S3)."""


def _detail(message: str, status: int = 400) -> Response:
    return json_response({"detail": message}, status)


def _v2_crash() -> Response:
    return flask_error_page(500)


def artifact_routes(state: AppState) -> list[Route]:
    """Starlette routes of the artifact proxy over ``state.artifacts``."""

    async def upload(request: Request) -> Response:
        raw = request.path_params["path"]
        try:
            path = clean_path(validate_path_is_safe(raw, v3=state.v3))
        except MlflowError as error:
            return error_response(error)
        if (raw.endswith("/") or not raw) and not state.v3:
            return _v2_crash()  # 2.7 fails writing to a directory path with Flask's HTML 500
        if raw.endswith("/") or not raw:
            return _detail("Artifact path must include a filename (cannot end with '/').")
        try:

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in request.stream():
                    if chunk:
                        yield chunk

            await state.artifacts.put(path, chunks())
        except MlflowError as error:
            return _detail(error.message, error.status)
        return Response(status_code=200) if state.v3 else json_response({})

    async def download(request: Request) -> Response:
        try:
            path = clean_path(validate_path_is_safe(request.path_params["path"], v3=state.v3))
        except MlflowError as error:
            return error_response(error)
        try:
            found = state.artifacts.get(path)
        except MlflowError as error:
            if error.status == 404 and not state.v3:
                # 2.7 reports a missing file as a failed download: a 500.
                return error_response(
                    MlflowError(
                        "INTERNAL_ERROR",
                        "The following failures occurred while downloading one or more "
                        f"artifacts: [Errno 2] No such file or directory: '{path}'",
                        500,
                    )
                )
            if error.status == 404:
                return error_response(error)
            if not state.v3:  # 2.7 fails reading a directory: Flask's HTML 500
                return _v2_crash()
            return _detail(error.message, error.status)
        response = attachment(found, path)
        if not state.v3:  # 2.7 names the file unquoted
            with contextlib.suppress(UnicodeEncodeError):
                name = path.rsplit("/", 1)[-1]
                response.headers["Content-Disposition"] = f"attachment; filename={name}"
        return response

    async def listing(request: Request) -> Response:
        try:
            raw = request.query_params.get("path", "")
            path = clean_path(validate_path_is_safe(raw, v3=state.v3))
        except MlflowError as error:
            return error_response(error)
        entries = state.artifacts.list(path)
        if not entries:
            return json_response({})
        return json_response({"files": [e.to_json() for e in entries]})

    async def delete(request: Request) -> Response:
        try:
            raw = request.path_params["path"]
            state.artifacts.delete(clean_path(validate_path_is_safe(raw, v3=state.v3)))
        except MlflowError as error:
            return error_response(error)
        return json_response({})

    async def not_implemented(_: Request) -> Response:
        return error_response(
            MlflowError(
                "NOT_IMPLEMENTED",
                "Multipart upload is not supported for the current artifact repository",
            )
        )

    routes = []
    for base in (BASE, AJAX_BASE):
        routes += [
            Route(f"{base}/artifacts", listing, methods=["GET"]),
            Route(f"{base}/artifacts/{{path:path}}", upload, methods=["PUT"]),
            Route(f"{base}/artifacts/{{path:path}}", download, methods=["GET"]),
            Route(f"{base}/artifacts/{{path:path}}", delete, methods=["DELETE"]),
        ]

    async def mpu(request: Request) -> Response:
        # create -> presigned-style part URLs on this server; complete -> assemble; abort.
        op = request.path_params["op"]
        body = await request.json()
        # As MLflow: the URL names the destination folder, the body the file (its basename).
        name = str(body.get("path", "")).replace("\\", "/").rsplit("/", 1)[-1]
        path = clean_path(f"{request.path_params['path']}/{name}")
        if op == "create":
            upload_id = uuid.uuid4().hex
            state.uploads[upload_id] = {}
            prefix = re.split(r"/(?:ajax-)?api/2\.0/", request.url.path)[0]
            base = f"{request.url.scheme}://{request.url.netloc}{prefix}{PARTS}"
            credentials = [
                {"part_number": n, "url": f"{base}/{upload_id}/{n}", "headers": {}}
                for n in range(1, int(body["num_parts"]) + 1)
            ]
            return json_response({"upload_id": upload_id, "credentials": credentials})
        parts = state.uploads.pop(body.get("upload_id", ""), None)
        if parts is None:
            return error_response(MlflowError("RESOURCE_DOES_NOT_EXIST", "unknown upload"))
        if op == "complete":
            order = [int(p["part_number"]) for p in body.get("parts", [])]
            if sorted(order) != sorted(parts):
                return error_response(MlflowError("INVALID_PARAMETER_VALUE", "parts missing"))

            async def chunks() -> AsyncIterator[bytes]:
                for number in sorted(order):
                    yield parts[number]

            await state.artifacts.put(path, chunks())
        return json_response({})

    async def put_part(request: Request) -> Response:
        parts = state.uploads.get(request.path_params["upload_id"])
        if parts is None:
            return error_response(MlflowError("RESOURCE_DOES_NOT_EXIST", "unknown upload"))
        data = await request.body()
        parts[int(request.path_params["part"])] = data
        return Response(status_code=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    if state.multipart:
        routes.append(Route(f"{PARTS}/{{upload_id}}/{{part}}", put_part, methods=["PUT"]))
    for base in (BASE, AJAX_BASE):
        if state.multipart:
            routes.append(Route(f"{base}/mpu/{{op}}/{{path:path}}", mpu, methods=["POST"]))
        elif state.v3:  # 2.7 has no multipart or presigned routes (404)
            routes += [
                Route(f"{base}/mpu/{{op}}/{{path:path}}", not_implemented, methods=["POST"]),
                Route(f"{base}/presigned/{{path:path}}", not_implemented, methods=["GET"]),
            ]
    return routes
