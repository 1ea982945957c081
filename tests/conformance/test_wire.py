"""Conformance: wire conventions (content type, field spellings, utility endpoints, routes)."""

from __future__ import annotations

import uuid

from tests.conformance.conftest import API, Backend


def test_health_and_version(backend: Backend) -> None:
    """/health answers OK and /version the MLflow version, both as text."""
    assert backend.http.get("/health").text == "OK"
    assert backend.http.get("/version").text == backend.version


def test_server_info(backend: Backend) -> None:
    """/api/3.0/mlflow/server-info reports multipart support when artifacts are proxied to S3,
    none on local storage (2.7: 404)."""
    response = backend.http.get("/api/3.0/mlflow/server-info")
    if backend.v2:
        assert response.status_code == 404
        return
    info = response.json()
    assert info["multipart_uploads_enabled"] is backend.s3
    assert info["multipart_downloads_enabled"] is backend.s3


def test_content_type_is_required_on_post(backend: Backend) -> None:
    """A POST without, or with another, Content-Type is a 400 INVALID_PARAMETER_VALUE (2.7 reads
    the body whatever the Content-Type)."""
    for headers in ({}, {"Content-Type": "text/plain"}):
        body = f'{{"name": "{uuid.uuid4().hex}"}}'.encode()
        r = backend.http.post(API + "experiments/create", content=body, headers=headers)
        if backend.v2:
            assert r.status_code == 200
            continue
        assert r.status_code == 400
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    ok = backend.http.post(
        API + "experiments/create",
        content=f'{{"name": "{uuid.uuid4().hex}"}}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_camel_case_names(backend: Backend) -> None:
    """camelCase JSON names are accepted, and both spellings of one field at once are a 400
    (2.7 accepts both at once)."""
    eid = backend.experiment()
    run = backend.ok("POST", "runs/create", {"experimentId": eid, "startTime": 7})["run"]
    assert run["info"]["start_time"] == 7
    if backend.v2:
        backend.ok("POST", "runs/create", {"experiment_id": eid, "experimentId": eid})
        return
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/create",
        {"experiment_id": eid, "experimentId": eid},
    )


def test_unknown_fields_are_ignored(backend: Backend) -> None:
    """Unknown JSON fields are silently ignored (typos go unnoticed, as in MLflow)."""
    eid = backend.experiment()
    backend.ok(
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": eid, "key": "k", "value": "v", "bogus": 1},
    )


def test_unknown_route_is_404(backend: Backend) -> None:
    """Unknown endpoints is a 404 (HTML on the real server, JSON ENDPOINT_NOT_FOUND on the mock)."""
    assert backend.call("GET", "no/such/endpoint").status_code == 404
    assert backend.call("POST", "no/such/endpoint", {}).status_code == 404


def test_wrong_json_type_for_string_id(backend: Backend) -> None:
    """A JSON number where a string id is expected is a 400 INVALID_PARAMETER_VALUE (2.7 takes
    the number as the id: here, one that does not exist)."""
    if backend.v2:
        body = {"experiment_id": 987654}
        backend.error(404, "RESOURCE_DOES_NOT_EXIST", "POST", "runs/create", body)
        return
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/create", {"experiment_id": 0})


def test_nosniff_on_every_answer_of_mlflow_3(backend: Backend) -> None:
    """MLflow 3 sends ``X-Content-Type-Options: nosniff`` on every answer, success or
    error; MLflow 2.7 does not on its API answers."""
    answers = [
        backend.call("GET", "experiments/search", max_results=1),
        backend.call("GET", "runs/get", run_id="0" * 32),
    ]
    assert [r.status_code for r in answers] == [200, 404]
    expected = [] if backend.v2 else ["nosniff"]
    for response in answers:
        assert response.headers.get_list("x-content-type-options") == expected
