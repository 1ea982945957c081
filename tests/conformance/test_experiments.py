"""Conformance: experiments (create, get, get-by-name, search, rename, delete/restore, tags)."""

from __future__ import annotations

import time
import uuid

from tests.conformance.conftest import Backend


def test_default_experiment_exists(backend: Backend) -> None:
    """Experiment "0" is always there and is called Default."""
    experiment = backend.ok("GET", "experiments/get", experiment_id="0")["experiment"]
    assert experiment["name"] == "Default"
    assert experiment["lifecycle_stage"] == "active"


def test_create_get_and_get_by_name(backend: Backend) -> None:
    """A new experiment has a proxied artifact location and can be read by id and by name."""
    name = f"exp-{uuid.uuid4().hex}"
    eid = backend.ok(
        "POST", "experiments/create", {"name": name, "tags": [{"key": "k", "value": "v"}]}
    )["experiment_id"]
    assert isinstance(eid, str)
    assert eid.isdigit()
    by_id = backend.ok("GET", "experiments/get", experiment_id=eid)["experiment"]
    assert by_id["name"] == name
    assert by_id["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert by_id["lifecycle_stage"] == "active"
    assert by_id["tags"] == [{"key": "k", "value": "v"}]
    assert isinstance(by_id["creation_time"], int)
    assert backend.ok("GET", "experiments/get-by-name", experiment_name=name)["experiment"] == by_id


def test_duplicate_name_is_400_even_after_delete(backend: Backend) -> None:
    """RESOURCE_ALREADY_EXISTS is a 400, and a soft-deleted experiment keeps its name taken."""
    name = f"exp-{uuid.uuid4().hex}"
    eid = backend.ok("POST", "experiments/create", {"name": name})["experiment_id"]
    backend.error(400, "RESOURCE_ALREADY_EXISTS", "POST", "experiments/create", {"name": name})
    backend.ok("POST", "experiments/delete", {"experiment_id": eid})
    backend.error(400, "RESOURCE_ALREADY_EXISTS", "POST", "experiments/create", {"name": name})
    deleted = backend.ok("GET", "experiments/get-by-name", experiment_name=name)["experiment"]
    assert deleted["lifecycle_stage"] == "deleted"


def test_name_rules(backend: Backend) -> None:
    """Names must be non-empty and at most 500 characters (2.7: no length limit). The
    database column holds 256: sqlite does not enforce that, PostgreSQL does, so there a name
    of 257 to 500 characters is a 400 BAD_REQUEST carrying the database's error."""
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "experiments/create", {"name": ""})
    long_name = uuid.uuid4().hex + "x" * 469
    if backend.v2:
        backend.ok("POST", "experiments/create", {"name": long_name})
    else:
        backend.error(
            400, "INVALID_PARAMETER_VALUE", "POST", "experiments/create", {"name": long_name}
        )
    if backend.postgres:
        too_long = {"name": uuid.uuid4().hex + "x" * 225}  # 257 characters
        error = backend.error(400, "BAD_REQUEST", "POST", "experiments/create", too_long)
        assert "value too long for type character varying(256)" in error["message"]
        backend.ok("POST", "experiments/create", {"name": uuid.uuid4().hex + "x" * 224})
        return
    backend.ok("POST", "experiments/create", {"name": uuid.uuid4().hex + "x" * 468})


def test_missing_and_malformed_ids(backend: Backend) -> None:
    """An unknown id is a 404, a non-integer id a 400, and a JSON integer id a 400. MLflow 2.7
    looks a non-integer id up (404) and takes a JSON integer as its text."""
    backend.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "experiments/get", experiment_id="987654")
    if backend.v2:
        backend.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "experiments/get", experiment_id="abc")
        eid = backend.experiment()
        backend.ok("POST", "experiments/delete", {"experiment_id": int(eid)})
        return
    backend.error(400, "INVALID_PARAMETER_VALUE", "GET", "experiments/get", experiment_id="abc")
    backend.error(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "GET",
        "experiments/get-by-name",
        experiment_name="nope-" + uuid.uuid4().hex,
    )
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "POST", "experiments/delete", {"experiment_id": 0}
    )


def test_delete_and_restore_are_not_idempotent(backend: Backend) -> None:
    """Deleting twice is a 404, restoring an active experiment is a 404 (MLflow's quirk)."""
    eid = backend.experiment()
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "POST", "experiments/restore", {"experiment_id": eid}
    )
    backend.ok("POST", "experiments/delete", {"experiment_id": eid})
    assert (
        backend.ok("GET", "experiments/get", experiment_id=eid)["experiment"]["lifecycle_stage"]
        == "deleted"
    )
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "POST", "experiments/delete", {"experiment_id": eid}
    )
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/create",
        {"experiment_id": eid, "start_time": 1},
    )
    backend.ok("POST", "experiments/restore", {"experiment_id": eid})
    assert (
        backend.ok("GET", "experiments/get", experiment_id=eid)["experiment"]["lifecycle_stage"]
        == "active"
    )


def test_rename(backend: Backend) -> None:
    """Rename works, renaming to itself is fine, and taking another's name is a 400 BAD_REQUEST."""
    eid, other = backend.experiment(), backend.experiment()
    new_name = f"renamed-{uuid.uuid4().hex}"
    backend.ok("POST", "experiments/update", {"experiment_id": eid, "new_name": new_name})
    backend.ok("POST", "experiments/update", {"experiment_id": eid, "new_name": new_name})
    assert backend.ok("GET", "experiments/get", experiment_id=eid)["experiment"]["name"] == new_name
    other_name = backend.ok("GET", "experiments/get", experiment_id=other)["experiment"]["name"]
    backend.error(
        400,
        "BAD_REQUEST",
        "POST",
        "experiments/update",
        {"experiment_id": eid, "new_name": other_name},
    )


def test_experiment_tags(backend: Backend) -> None:
    """Tags overwrite; values over 20000 chars (2.7: 5000) are refused, not cut; a missing tag
    is a 404."""
    eid = backend.experiment()
    limit = 5000 if backend.v2 else 20000
    backend.ok(
        "POST", "experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "1"}
    )
    backend.ok(
        "POST", "experiments/set-experiment-tag", {"experiment_id": eid, "key": "k", "value": "2"}
    )
    backend.ok(
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": eid, "key": "big", "value": "x" * limit},
    )
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "POST", "experiments/set-experiment-tag",
        {"experiment_id": eid, "key": "k", "value": "x" * (limit + 1)},
    )  # fmt: skip
    tags = backend.ok("GET", "experiments/get", experiment_id=eid)["experiment"]["tags"]
    assert {t["key"]: t["value"] for t in tags}["k"] == "2"
    if backend.v2:  # 2.7 has no delete-experiment-tag endpoint
        body = {"experiment_id": eid, "key": "k"}
        assert backend.call("POST", "experiments/delete-experiment-tag", body).status_code == 404
        return
    backend.ok("POST", "experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"})
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "POST", "experiments/delete-experiment-tag",
        {"experiment_id": eid, "key": "k"},
    )  # fmt: skip


def test_search_needs_max_results_and_pages(backend: Backend) -> None:
    """Search without max_results is a 400; with it, pages carry tokens until the last one."""
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "experiments/search", {})
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "POST", "experiments/search", {"max_results": 50001}
    )
    stem = f"srch-{uuid.uuid4().hex[:12]}"
    ids = []
    for i in range(3):
        ids.append(
            backend.ok("POST", "experiments/create", {"name": f"{stem}-{i}"})["experiment_id"]
        )
        _next_millisecond()  # creation times must differ for "newest first" to be one order
    seen: list[str] = []
    token = None
    for _ in range(5):
        body = {"max_results": 2, "filter": f"name LIKE '{stem}%'"}
        if token:
            body["page_token"] = token
        page = backend.ok("POST", "experiments/search", body)
        seen += [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert seen == sorted(ids, key=int, reverse=True)  # newest first


def test_search_filters_on_tags_and_view_type(backend: Backend) -> None:
    """tags.<k> filters match; deleted experiments show only with DELETED_ONLY or ALL."""
    value = uuid.uuid4().hex
    keep, gone = backend.experiment(), backend.experiment()
    for eid in (keep, gone):
        backend.ok(
            "POST",
            "experiments/set-experiment-tag",
            {"experiment_id": eid, "key": "team", "value": value},
        )
    backend.ok("POST", "experiments/delete", {"experiment_id": gone})

    def ids(view_type: str) -> list[str]:
        body = {"max_results": 100, "filter": f"tags.team = '{value}'", "view_type": view_type}
        return sorted(
            e["experiment_id"]
            for e in backend.ok("POST", "experiments/search", body).get("experiments", [])
        )

    assert ids("ACTIVE_ONLY") == [keep]
    assert ids("DELETED_ONLY") == [gone]
    assert ids("ALL") == sorted([keep, gone])


def _next_millisecond() -> None:
    """Return once the wall clock (the servers run on this machine) is past this millisecond."""
    now = time.time_ns() // 1_000_000
    deadline = time.monotonic() + 1.0
    while time.time_ns() // 1_000_000 == now and time.monotonic() < deadline:
        pass
