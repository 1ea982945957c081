"""Conformance: the mlflow-artifacts proxy, the tracking artifacts/list endpoint and the UI's
artifact routes (get-artifact, model-versions/get-artifact, upload-artifact, logged-model files)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx

from tests.conformance.conftest import Backend

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _run_root(backend: Backend) -> tuple[str, str]:
    run = backend.run()
    uri = run["info"]["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/")
    return run["info"]["run_id"], uri[len("mlflow-artifacts:/") :]


def test_upload_download_overwrite(backend: Backend) -> None:
    """PUT stores the raw body (200, empty answer; 2.7: ``{}``), GET returns it, a second PUT
    overwrites."""
    _, root = _run_root(backend)
    r = backend.http.put(
        f"{PROXY}/{root}/dir/hello.txt", content=b"hello\n", headers={"Content-Type": "text/plain"}
    )
    assert (r.status_code, r.content) == (200, b"{}" if backend.v2 else b"")
    got = backend.http.get(f"{PROXY}/{root}/dir/hello.txt")
    assert (got.status_code, got.content) == (200, b"hello\n")
    backend.http.put(f"{PROXY}/{root}/dir/hello.txt", content=b"again")
    assert backend.http.get(f"{PROXY}/{root}/dir/hello.txt").content == b"again"


def test_listing(backend: Backend) -> None:
    """The proxy lists basenames of one directory; file_size is absent for dirs and empty files."""
    run_id, root = _run_root(backend)
    backend.http.put(f"{PROXY}/{root}/a.bin", content=b"12345")
    backend.http.put(f"{PROXY}/{root}/empty.txt", content=b"")
    backend.http.put(f"{PROXY}/{root}/sub/deep/x.txt", content=b"x")
    files = backend.http.get(PROXY, params={"path": root}).json()["files"]
    assert sorted(files, key=lambda f: f["path"]) == [
        {"path": "a.bin", "is_dir": False, "file_size": 5},
        {"path": "empty.txt", "is_dir": False},
        {"path": "sub", "is_dir": True},
    ]
    assert backend.http.get(PROXY, params={"path": f"{root}/sub"}).json() == {
        "files": [{"path": "deep", "is_dir": True}]
    }
    assert backend.http.get(PROXY, params={"path": f"{root}/a.bin"}).json() == {}
    assert backend.http.get(PROXY, params={"path": f"{root}/missing"}).json() == {}
    tracking = backend.ok("GET", "artifacts/list", run_id=run_id, path="sub/deep")
    assert tracking["root_uri"] == f"mlflow-artifacts:/{root}"
    assert tracking["files"] == [{"path": "sub/deep/x.txt", "is_dir": False, "file_size": 1}]


def _missing_status(backend: Backend) -> int:
    """What a download of a missing file answers: a 404, but a 500 from MLflow 2.7 and from a
    proxy to S3 (MLflow passes S3's refusal on as an INTERNAL_ERROR)."""
    return 500 if backend.v2 or backend.s3 else 404


def test_missing_and_directory_paths(backend: Backend) -> None:
    """A missing file is a 404 RESOURCE_DOES_NOT_EXIST; a PUT to a directory path is a 400.
    MLflow 2.7 answers both with a 500 (INTERNAL_ERROR JSON, and Flask's HTML page); a proxy to
    S3 answers the missing file with a 500 INTERNAL_ERROR quoting S3's 404."""
    _, root = _run_root(backend)
    missing = backend.http.get(f"{PROXY}/{root}/nope.txt")
    assert missing.status_code == _missing_status(backend)
    code = "RESOURCE_DOES_NOT_EXIST" if _missing_status(backend) == 404 else "INTERNAL_ERROR"
    assert missing.json()["error_code"] == code
    if backend.s3:
        assert "(404) when calling the HeadObject operation" in missing.json()["message"]
    put_dir = backend.http.put(f"{PROXY}/{root}/dir/", content=b"x")
    assert put_dir.status_code == (500 if backend.v2 else 400)


def test_delete(backend: Backend) -> None:
    """DELETE removes a file or a whole directory, and deleting again is still a 200."""
    _, root = _run_root(backend)
    backend.http.put(f"{PROXY}/{root}/d/a.txt", content=b"a")
    backend.http.put(f"{PROXY}/{root}/d/b.txt", content=b"b")
    for _ in range(2):
        r = backend.http.delete(f"{PROXY}/{root}/d")
        assert (r.status_code, r.json()) == (200, {})
    gone = backend.http.get(f"{PROXY}/{root}/d/a.txt").status_code
    assert gone == _missing_status(backend)


def test_multipart_upload(backend: Backend) -> None:
    """On local storage multipart upload is a 501 NOT_IMPLEMENTED (clients fall back to one PUT);
    MLflow 2.7 has no multipart route at all (404). A proxy to S3 offers it: ``create`` answers
    an upload id and one presigned S3 URL per part (the client sends the parts to the bucket
    itself, not through the server), ``complete`` with the parts' ETags makes the file,
    ``abort`` drops an upload ({} both)."""
    _, root = _run_root(backend)
    mpu = "/api/2.0/mlflow-artifacts/mpu"
    created = backend.http.post(f"{mpu}/create/{root}/mp", json={"path": "big.bin", "num_parts": 2})
    if backend.v2:
        assert created.status_code == 404
        return
    if not backend.s3:
        assert created.status_code == 501
        assert created.json()["error_code"] == "NOT_IMPLEMENTED"
        return
    assert created.status_code == 200, created.text
    upload_id = created.json()["upload_id"]
    credentials = created.json()["credentials"]
    assert [c["part_number"] for c in credentials] == [1, 2]
    assert all(not c["url"].startswith(backend.url) for c in credentials)  # the bucket's address
    assert all(f"uploadId={upload_id}" in c["url"] for c in credentials)
    # S3 wants at least 5 MiB in every part but the last.
    contents = [b"a" * (5 << 20), b"tail"]
    parts = []
    for credential, content in zip(credentials, contents, strict=True):
        put = httpx.put(credential["url"], content=content, timeout=backend.http.timeout)
        assert put.status_code == 200, put.text
        parts.append({**credential, "etag": put.headers["ETag"]})
    body = {"path": "big.bin", "upload_id": upload_id, "parts": parts}
    done = backend.http.post(f"{mpu}/complete/{root}/mp", json=body)
    assert (done.status_code, done.json()) == (200, {})
    assert backend.http.get(f"{PROXY}/{root}/mp/big.bin").content == b"".join(contents)
    other = backend.http.post(f"{mpu}/create/{root}", json={"path": "gone.bin", "num_parts": 1})
    body = {"path": "gone.bin", "upload_id": other.json()["upload_id"]}
    aborted = backend.http.post(f"{mpu}/abort/{root}", json=body)
    assert (aborted.status_code, aborted.json()) == (200, {})
    assert backend.http.get(f"{PROXY}/{root}/gone.bin").status_code == _missing_status(backend)


TYPES = {
    "a.txt": "text/plain",
    "MLmodel": "text/plain",
    "mlproject": "text/plain",
    "conf.yaml": "text/plain",
    "b.pkl": "application/octet-stream",
    "c.png": "image/png",
    "d.pdf": "application/pdf",
    "page.html": "text/html",
}


def _attachment_of(r: httpx.Response) -> tuple[str, str, str]:
    assert r.status_code == 200, r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    return r.headers["Content-Type"], r.headers["Content-Disposition"], r.text


def test_download_headers(backend: Backend) -> None:
    """Downloads are attachments with ``nosniff`` and a type guessed from the name alone:
    ``text/plain`` without a charset for text files, ``MLmodel`` and ``mlproject``; what the
    client asks for (``Accept: text/html``) is not honoured. MLflow 3 quotes a name that is not
    a bare token and adds ``filename*`` for non-ASCII; 2.7's proxy writes the name as is."""
    _, root = _run_root(backend)
    for name, media_type in TYPES.items():
        backend.http.put(f"{PROXY}/{root}/{name}", content=b"1")
        r = backend.http.get(f"{PROXY}/{root}/{name}", headers={"Accept": "text/html"})
        assert _attachment_of(r) == (media_type, f"attachment; filename={name}", "1")
    expected = {
        "x y.csv": ('attachment; filename="x y.csv"', "attachment; filename=x y.csv"),
        'q"uote.bin': ('attachment; filename="q\\"uote.bin"', 'attachment; filename=q"uote.bin'),
        # 2.7: the name as is, in latin-1 (the encoding of HTTP header values)
        "é.txt": (
            "attachment; filename=e.txt; filename*=UTF-8''%C3%A9.txt",
            "attachment; filename=é.txt",
        ),
    }
    for name, (v3, v2) in expected.items():
        url = f"{PROXY}/{root}/{quote(name)}"
        backend.http.put(url, content=b"2")
        disposition = _attachment_of(backend.http.get(url))[1]
        assert disposition == (v2 if backend.v2 else v3)
    ajax = backend.http.get(f"/ajax-api/2.0/mlflow-artifacts/artifacts/{root}/a.txt")
    assert _attachment_of(ajax)[2] == "1"


def _invalid_path(backend: Backend, r: httpx.Response, path: str) -> None:
    """MLflow 3 says ``Invalid path``; 2.7 names the path."""
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert r.json()["message"] == (f"Invalid path: {path}" if backend.v2 else "Invalid path")


def test_get_artifact(backend: Backend) -> None:
    """``/get-artifact`` (the UI's route) sends a run's file by ``run_id`` or ``run_uuid`` with the
    download headers; ``..`` and absolute paths are refused; a missing file is a 404 (2.7 and
    S3: a 500); a leading ``//`` is one slash; there is no ``/ajax-api`` twin."""
    run_id, root = _run_root(backend)
    backend.http.put(f"{PROXY}/{root}/dir/x y.csv", content=b"a,b")
    for key in ("run_id", "run_uuid"):
        r = backend.http.get("/get-artifact", params={key: run_id, "path": "dir/x y.csv"})
        assert _attachment_of(r) == ("text/plain", 'attachment; filename="x y.csv"', "a,b")
    for path in ("../x", "/etc/passwd", "dir/../../x"):
        r = backend.http.get("/get-artifact", params={"run_id": run_id, "path": path})
        _invalid_path(backend, r, path)
    r = backend.http.get(f"{backend.url}//get-artifact", params={"run_id": run_id, "path": "../x"})
    _invalid_path(backend, r, "../x")
    missing = backend.http.get("/get-artifact", params={"run_id": run_id, "path": "nope.txt"})
    assert missing.status_code == _missing_status(backend)
    if not backend.v2:
        code = "RESOURCE_DOES_NOT_EXIST" if _missing_status(backend) == 404 else "INTERNAL_ERROR"
        assert missing.json()["error_code"] == code
    no_run = backend.http.get("/get-artifact", params={"run_id": "0" * 32, "path": "a"})
    assert (no_run.status_code, no_run.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    no_path = backend.http.get("/get-artifact", params={"run_id": run_id})
    assert no_path.status_code == (500 if backend.v2 else 400)
    ajax = "/ajax-api/2.0/mlflow/get-artifact"
    assert backend.http.get(ajax, params={"run_id": run_id, "path": "a"}).status_code == 404


def test_model_version_get_artifact(backend: Backend) -> None:
    """``/model-versions/get-artifact`` reads under the version's download URI; the path is
    checked before the version is looked up; an unknown version is a 404 naming it."""
    run = backend.run()
    run_id, uri = run["info"]["run_id"], run["info"]["artifact_uri"]
    backend.http.put(f"{PROXY}/{uri[len('mlflow-artifacts:/') :]}/model/MLmodel", content=b"m")
    name = f"m-{uuid.uuid4().hex}"
    backend.ok("POST", "registered-models/create", {"name": name})
    body = {"name": name, "source": f"{uri}/model", "run_id": run_id}
    backend.ok("POST", "model-versions/create", body)
    route = "/model-versions/get-artifact"
    r = backend.http.get(route, params={"name": name, "version": "1", "path": "MLmodel"})
    assert _attachment_of(r) == ("text/plain", "attachment; filename=MLmodel", "m")
    r = backend.http.get(route, params={"name": "no-such", "version": "1", "path": "../x"})
    _invalid_path(backend, r, "../x")
    r = backend.http.get(route, params={"name": "no-such", "version": "1", "path": "MLmodel"})
    assert r.status_code == 404
    assert r.json()["message"] == "Model Version (name=no-such, version=1) not found"


def test_upload_artifact(backend: Backend) -> None:
    """The UI's ``POST /ajax-api/2.0/mlflow/upload-artifact`` stores the raw body as a run's file
    (an empty 200); its checks come in MLflow's order, all INVALID_PARAMETER_VALUE 400s; it has
    no ``/api`` twin."""
    run_id, _ = _run_root(backend)
    route = "/ajax-api/2.0/mlflow/upload-artifact"
    r = backend.http.post(route, params={"run_uuid": run_id, "path": "up/new.txt"}, content=b"hi")
    assert (r.status_code, r.content) == (200, b"")
    got = backend.http.get("/get-artifact", params={"run_id": run_id, "path": "up/new.txt"})
    assert _attachment_of(got)[2] == "hi"
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "Request must specify run_uuid."),
        ({"run_id": run_id, "path": "a.txt"}, "Request must specify run_uuid."),
        ({"run_uuid": run_id}, "Request must specify path."),
        ({"run_uuid": run_id, "path": ""}, "Request must specify path."),
        ({"run_uuid": run_id, "path": "a.txt"}, "Request must specify data."),
        ({"run_uuid": "0" * 32, "path": "a.txt"}, "Request must specify data."),
    ]
    for params, message in cases:
        r = backend.http.post(route, params=params)
        assert (r.status_code, r.json()["message"]) == (400, message), params
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = backend.http.post(route, params={"run_uuid": run_id, "path": "../a"}, content=b"x")
    _invalid_path(backend, r, "../a")
    r = backend.http.post(route, params={"run_uuid": "0" * 32, "path": "a"}, content=b"x")
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    api = "/api/2.0/mlflow/upload-artifact"
    r = backend.http.post(api, params={"run_uuid": run_id, "path": "a"}, content=b"x")
    assert r.status_code == 404


def test_logged_model_artifact_files(backend: Backend) -> None:
    """MLflow 3's ``/ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files`` sends a logged
    model's file; without ``artifact_file_path`` it is a BAD_REQUEST; a missing file is a 404
    (S3: a 500). 2.7 has no such route."""
    experiment_id = backend.experiment()
    if backend.v2:
        r = backend.http.get("/ajax-api/2.0/mlflow/logged-models/m-1/artifacts/files")
        assert r.status_code == 404
        return
    model = backend.ok("POST", "logged-models", {"experiment_id": experiment_id})["model"]
    model_id, uri = model["info"]["model_id"], model["info"]["artifact_uri"]
    backend.http.put(f"{PROXY}/{uri[len('mlflow-artifacts:/') :]}/MLmodel", content=b"id")
    route = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    r = backend.http.get(route, params={"artifact_file_path": "MLmodel"})
    assert _attachment_of(r) == ("text/plain", "attachment; filename=MLmodel", "id")
    r = backend.http.get(route)
    assert (r.status_code, r.json()["error_code"]) == (400, "BAD_REQUEST")
    assert r.json()["message"] == 'Request must include the "artifact_file_path" query parameter.'
    _invalid_path(backend, backend.http.get(route, params={"artifact_file_path": "../x"}), "../x")
    missing = backend.http.get(route, params={"artifact_file_path": "nope"})
    assert missing.status_code == _missing_status(backend)
    api = f"/api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    assert backend.http.get(api, params={"artifact_file_path": "MLmodel"}).status_code == 404
