"""Conformance: the mlflow-artifacts proxy and the tracking artifacts/list endpoint."""

from __future__ import annotations

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


def test_missing_and_directory_paths(backend: Backend) -> None:
    """A missing file is a 404 RESOURCE_DOES_NOT_EXIST; a PUT to a directory path is a 400.
    MLflow 2.7 answers both with a 500 (INTERNAL_ERROR JSON, and Flask's HTML page)."""
    _, root = _run_root(backend)
    missing = backend.http.get(f"{PROXY}/{root}/nope.txt")
    assert missing.status_code == (500 if backend.v2 else 404)
    code = "INTERNAL_ERROR" if backend.v2 else "RESOURCE_DOES_NOT_EXIST"
    assert missing.json()["error_code"] == code
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
    assert gone == (500 if backend.v2 else 404)  # 2.7: a missing file is a 500


def test_multipart_upload_is_not_implemented(backend: Backend) -> None:
    """On local storage multipart upload is a 501 NOT_IMPLEMENTED (clients fall back to one PUT);
    MLflow 2.7 has no multipart route at all (404)."""
    _, root = _run_root(backend)
    r = backend.http.post(
        f"/api/2.0/mlflow-artifacts/mpu/create/{root}", json={"path": "big.bin", "num_parts": 2}
    )
    if backend.v2:
        assert r.status_code == 404
        return
    assert r.status_code == 501
    assert r.json()["error_code"] == "NOT_IMPLEMENTED"
