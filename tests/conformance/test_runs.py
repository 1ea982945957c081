"""Conformance: runs (create, get, update, delete/restore, tags) and their odd corners."""

from __future__ import annotations

import re

from tests.conformance.conftest import Backend


def test_create_run_shape(backend: Backend) -> None:
    """A new run is RUNNING, has a 32-hex id, a proxied artifact_uri and a generated name tag."""
    eid = backend.experiment()
    run = backend.run(eid, user_id="alice", tags=[{"key": "t", "value": "v"}])
    info = run["info"]
    assert re.fullmatch(r"[0-9a-f]{32}", info["run_id"])
    assert info["run_uuid"] == info["run_id"]
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert info["user_id"] == "alice"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{info['run_id']}/artifacts"
    assert "end_time" not in info
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {"t": "v", "mlflow.runName": info["run_name"]}
    assert info["run_name"]
    assert "metrics" not in run["data"]


def test_run_name_and_tag_must_agree(backend: Backend) -> None:
    """run_name fills the mlflow.runName tag; a different mlflow.runName tag is a 400."""
    eid = backend.experiment()
    run = backend.run(eid, run_name="named")
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.runName"] == "named"
    by_tag = backend.run(eid, tags=[{"key": "mlflow.runName", "value": "by-tag"}])
    assert by_tag["info"]["run_name"] == "by-tag"
    body = {
        "experiment_id": eid,
        "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}],
    }
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/create", body)


def test_create_run_needs_an_existing_experiment(backend: Backend) -> None:
    """No experiment_id is a 400 BAD_REQUEST (not experiment 0); an unknown one is a 404."""
    backend.error(400, "BAD_REQUEST", "POST", "runs/create", {"start_time": 1})
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "POST", "runs/create", {"experiment_id": "987654"}
    )


def test_start_time_is_not_defaulted(backend: Backend) -> None:
    """Without start_time the server stores 0; a numeric string is accepted for an int64."""
    eid = backend.experiment()
    assert (
        backend.ok("POST", "runs/create", {"experiment_id": eid})["run"]["info"]["start_time"] == 0
    )
    run = backend.ok("POST", "runs/create", {"experiment_id": eid, "start_time": "1700000000000"})
    assert run["run"]["info"]["start_time"] == 1700000000000


def test_update_run(backend: Backend) -> None:
    """Only given fields change, unknown statuses are ignored, and run_name rewrites the tag."""
    run_id = backend.run_id()
    info = backend.ok(
        "POST", "runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5}
    )["run_info"]
    assert (info["status"], info["end_time"]) == ("FINISHED", 5)
    info = backend.ok("POST", "runs/update", {"run_id": run_id, "status": "BOGUS"})["run_info"]
    assert info["status"] == "FINISHED"
    info = backend.ok("POST", "runs/update", {"run_id": run_id, "status": "RUNNING"})["run_info"]
    assert (info["status"], info["end_time"]) == ("RUNNING", 5)
    backend.ok("POST", "runs/update", {"run_id": run_id, "run_name": "renamed"})
    run = backend.get_run(run_id)
    assert run["info"]["run_name"] == "renamed"
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.runName"] == "renamed"
    backend.ok(
        "POST", "runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "by-tag"}
    )
    assert backend.get_run(run_id)["info"]["run_name"] == "by-tag"


def test_delete_and_restore_are_idempotent(backend: Backend) -> None:
    """Run delete/restore twice are 200s; a deleted run is readable but refuses writes."""
    run_id = backend.run_id()
    for _ in range(2):
        backend.ok("POST", "runs/delete", {"run_id": run_id})
    assert backend.get_run(run_id)["info"]["lifecycle_stage"] == "deleted"
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1}
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-metric", metric)
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/update",
        {"run_id": run_id, "status": "FAILED"},
    )
    for _ in range(2):
        backend.ok("POST", "runs/restore", {"run_id": run_id})
    backend.ok("POST", "runs/log-metric", metric)


def test_unknown_run(backend: Backend) -> None:
    """An unknown run id is a 404 on get, writes and delete."""
    missing = "0" * 32
    backend.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "runs/get", run_id=missing)
    backend.error(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "POST",
        "runs/set-tag",
        {"run_id": missing, "key": "k", "value": "v"},
    )
    backend.error(404, "RESOURCE_DOES_NOT_EXIST", "POST", "runs/delete", {"run_id": missing})


def test_legacy_run_uuid_is_accepted(backend: Backend) -> None:
    """run_uuid alone works on get and log-metric, as the MLflow client sends both."""
    run_id = backend.run_id()
    backend.ok(
        "POST", "runs/log-metric", {"run_uuid": run_id, "key": "m", "value": 1, "timestamp": 1}
    )
    assert backend.ok("GET", "runs/get", run_uuid=run_id)["run"]["data"]["metrics"][0]["key"] == "m"


def test_tags_overwrite_and_delete_twice_is_404(backend: Backend) -> None:
    """set-tag overwrites (last write wins); deleting a tag twice is a 404."""
    run_id = backend.run_id()
    for value in ("1", "2"):
        backend.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "k", "value": value})
    tags = {t["key"]: t["value"] for t in backend.get_run(run_id)["data"]["tags"]}
    assert tags["k"] == "2"
    backend.ok("POST", "runs/delete-tag", {"run_id": run_id, "key": "k"})
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "POST", "runs/delete-tag", {"run_id": run_id, "key": "k"}
    )


def test_long_values_are_truncated_silently(backend: Backend) -> None:
    """Params over 6000 and run tags over 8000 characters are cut to the limit with a 200.
    MLflow 2.7 refuses params over 500 and run tags over 5000 characters instead."""
    run_id = backend.run_id()
    if backend.v2:
        for endpoint, key, limit in (("log-parameter", "p", 500), ("set-tag", "t", 5000)):
            body = {"run_id": run_id, "key": key, "value": "x" * (limit + 1)}
            error = backend.error(400, "INVALID_PARAMETER_VALUE", "POST", f"runs/{endpoint}", body)
            assert f"exceeded length limit of {limit}" in error["message"]
            backend.ok("POST", f"runs/{endpoint}", {**body, "value": "x" * limit})
        return
    backend.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "x" * 6001})
    backend.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "t", "value": "y" * 8001})
    data = backend.get_run(run_id)["data"]
    assert len({p["key"]: p["value"] for p in data["params"]}["p"]) == 6000
    assert len({t["key"]: t["value"] for t in data["tags"]}["t"]) == 8000


def test_key_rules(backend: Backend) -> None:
    """Keys allow word characters, space, . - _ / : and must not look like odd paths (2.7: no
    colon)."""
    run_id = backend.run_id()
    colon = ["a.b-c_d:e"]
    for key in ("a b", "a/b", "é", "日本", *([] if backend.v2 else colon)):
        backend.ok("POST", "runs/set-tag", {"run_id": run_id, "key": key, "value": "v"})
    for key in (
        *(colon if backend.v2 else []),
        "a*b",
        "a@b",
        "../x",
        "/abs",
        "a//b",
        "a/./b",
        "a/",
        ".",
        "k" * 251,
    ):
        backend.error(
            400,
            "INVALID_PARAMETER_VALUE",
            "POST",
            "runs/set-tag",
            {"run_id": run_id, "key": key, "value": "v"},
        )
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/set-tag",
        {"run_id": run_id, "key": "", "value": "v"},
    )


def test_log_inputs_dedups_datasets(backend: Backend) -> None:
    """The same dataset logged twice is stored once, and a new context tag is ignored."""
    run_id = backend.run_id()

    def dataset(context: str) -> dict[str, object]:
        return {
            "tags": [{"key": "mlflow.data.context", "value": context}],
            "dataset": {
                "name": "train",
                "digest": "abc123",
                "source_type": "local",
                "source": "{}",
            },
        }

    backend.ok("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [dataset("training")]})
    backend.ok("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [dataset("eval")]})
    inputs = backend.get_run(run_id)["inputs"]["dataset_inputs"]
    assert len(inputs) == 1
    assert inputs[0]["dataset"]["name"] == "train"
    assert inputs[0]["tags"] == [{"key": "mlflow.data.context", "value": "training"}]
