"""Conformance: the model registry (models, versions, tags, aliases, stages, search)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.conformance.conftest import Backend


def _model(backend: Backend, name: str | None = None, **extra: Any) -> str:
    name = name or f"model-{uuid.uuid4().hex}"
    created = backend.ok("POST", "registered-models/create", {"name": name, **extra})[
        "registered_model"
    ]
    assert created["name"] == name
    return name


def _version(backend: Backend, name: str, run_id: str) -> str:
    body = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
    version = backend.ok("POST", "model-versions/create", body)["model_version"]
    assert version["status"] == "READY"
    assert version["current_stage"] == "None"
    return str(version["version"])


def test_create_get_duplicate(backend: Backend) -> None:
    """Create, get, a duplicate name is RESOURCE_ALREADY_EXISTS (400), a bad name a 400."""
    name = _model(backend, description="d", tags=[{"key": "k", "value": "v"}])
    model = backend.ok("GET", "registered-models/get", name=name)["registered_model"]
    assert (model["description"], model["tags"]) == ("d", [{"key": "k", "value": "v"}])
    backend.error(
        400, "RESOURCE_ALREADY_EXISTS", "POST", "registered-models/create", {"name": name}
    )
    if backend.v2:  # 2.7 takes '/' in model names
        backend.ok("POST", "registered-models/create", {"name": f"a/{uuid.uuid4().hex}"})
    else:
        backend.error(
            400, "INVALID_PARAMETER_VALUE", "POST", "registered-models/create", {"name": "a/b"}
        )
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "GET", "registered-models/get", name=name + "-missing"
    )


def test_versions_aliases_and_stages(backend: Backend) -> None:
    """Versions count up; aliases move (an unset alias is a 400, sic); stages archive others."""
    name = _model(backend)
    run_id = backend.run_id()
    v1, v2 = _version(backend, name, run_id), _version(backend, name, run_id)
    assert (v1, v2) == ("1", "2")
    backend.ok(
        "POST", "registered-models/alias", {"name": name, "alias": "champion", "version": v1}
    )
    backend.ok(
        "POST", "registered-models/alias", {"name": name, "alias": "champion", "version": v2}
    )
    by_alias = backend.ok("GET", "registered-models/alias", name=name, alias="champion")[
        "model_version"
    ]
    assert (by_alias["version"], by_alias["aliases"]) == ("2", ["champion"])
    model = backend.ok("GET", "registered-models/get", name=name)["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    for reserved in ("latest", "v1", "V12"):
        backend.error(
            400,
            "INVALID_PARAMETER_VALUE",
            "POST",
            "registered-models/alias",
            {"name": name, "alias": reserved, "version": v1},
        )
    for _ in range(2):
        backend.ok("DELETE", "registered-models/alias", {"name": name, "alias": "champion"})
    # MLflow answers a 400 (not a 404) for an alias that is not set; the mock copies it.
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "GET",
        "registered-models/alias",
        name=name,
        alias="champion",
    )

    for version in (v1, v2):
        body = {"name": name, "version": version, "stage": "staging"}
        moved = backend.ok(
            "POST", "model-versions/transition-stage", {**body, "archive_existing_versions": True}
        )["model_version"]
        assert moved["current_stage"] == "Staging"
    first = backend.ok("GET", "model-versions/get", name=name, version=v1)["model_version"]
    assert first["current_stage"] == "Archived"
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "POST", "model-versions/transition-stage",
        {"name": name, "version": v1, "stage": "Bogus", "archive_existing_versions": False},
    )  # fmt: skip
    latest = backend.ok(
        "POST", "registered-models/get-latest-versions", {"name": name, "stages": ["Staging"]}
    )
    assert [v["version"] for v in latest["model_versions"]] == [v2]


def test_version_errors_and_delete(backend: Backend) -> None:
    """runs:/ sources need run_id; bad versions are 400, missing ones 404; delete twice is 404."""
    name = _model(backend)
    run_id = backend.run_id()
    if not backend.v2:  # 2.7 does not check that a runs:/ source names the run_id
        backend.error(
            400,
            "INVALID_PARAMETER_VALUE",
            "POST",
            "model-versions/create",
            {"name": name, "source": f"runs:/{run_id}/model"},
        )
    backend.error(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "POST",
        "model-versions/create",
        {"name": name + "-x", "source": "s3://b/m"},
    )
    version = _version(backend, name, run_id)
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "GET", "model-versions/get", name=name, version="abc"
    )
    backend.error(
        404, "RESOURCE_DOES_NOT_EXIST", "GET", "model-versions/get", name=name, version="99"
    )
    backend.ok("DELETE", "model-versions/delete", {"name": name, "version": version})
    backend.error(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "DELETE",
        "model-versions/delete",
        {"name": name, "version": version},
    )


def test_update_rename_tags_delete(backend: Backend) -> None:
    """update is PATCH (POST is a 405); rename keeps versions; tags set and delete; delete works."""
    name = _model(backend)
    version = _version(backend, name, backend.run_id())
    updated = backend.ok("PATCH", "registered-models/update", {"name": name, "description": "new"})
    assert updated["registered_model"]["description"] == "new"
    assert (
        backend.call(
            "POST", "registered-models/update", {"name": name, "description": "x"}
        ).status_code
        == 405
    )
    backend.ok(
        "PATCH", "model-versions/update", {"name": name, "version": version, "description": "vd"}
    )
    backend.ok("POST", "registered-models/set-tag", {"name": name, "key": "k", "value": "v"})
    backend.ok(
        "POST",
        "model-versions/set-tag",
        {"name": name, "version": version, "key": "mk", "value": "mv"},
    )
    new_name = name + "-renamed"
    renamed = backend.ok("POST", "registered-models/rename", {"name": name, "new_name": new_name})
    assert renamed["registered_model"]["name"] == new_name
    got = backend.ok("GET", "model-versions/get", name=new_name, version=version)["model_version"]
    assert (got["description"], got["tags"]) == ("vd", [{"key": "mk", "value": "mv"}])
    backend.ok("DELETE", "registered-models/delete-tag", {"name": new_name, "key": "k"})
    backend.ok(
        "DELETE", "model-versions/delete-tag", {"name": new_name, "version": version, "key": "mk"}
    )
    backend.ok("DELETE", "registered-models/delete", {"name": new_name})
    backend.error(404, "RESOURCE_DOES_NOT_EXIST", "GET", "registered-models/get", name=new_name)


def test_search_and_download_uri(backend: Backend) -> None:
    """Registry searches filter by name and page; get-download-uri returns a runs:/ source as is."""
    stem = f"srch-{uuid.uuid4().hex[:10]}"
    names = [
        backend.ok("POST", "registered-models/create", {"name": f"{stem}-{i}"})["registered_model"][
            "name"
        ]
        for i in range(3)
    ]
    found = backend.ok(
        "GET", "registered-models/search", filter=f"name LIKE '{stem}%'", max_results=2
    )
    assert [m["name"] for m in found["registered_models"]] == names[:2]
    rest = backend.ok(
        "GET",
        "registered-models/search",
        filter=f"name LIKE '{stem}%'",
        max_results=2,
        page_token=found["next_page_token"],
    )
    assert [m["name"] for m in rest["registered_models"]] == names[2:]
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "GET", "registered-models/search", max_results=1001
    )
    run = backend.run()
    _version(backend, names[0], run["info"]["run_id"])
    versions = backend.ok("GET", "model-versions/search", filter=f"name = '{names[0]}'")[
        "model_versions"
    ]
    assert [v["version"] for v in versions] == ["1"]
    uri = backend.ok("GET", "model-versions/get-download-uri", name=names[0], version="1")[
        "artifact_uri"
    ]
    # MLflow returns a runs:/ source verbatim: only models:/ sources are resolved.
    assert uri == f"runs:/{run['info']['run_id']}/model"


PROMPT_FILTER = "tags.`mlflow.prompt.is_prompt` != 'true'"
"""The filter MLflow 3's ``MlflowClient.search_registered_models`` always adds."""


def test_registry_searches_leave_prompts_out_as_mlflow_3_clients_expect(backend: Backend) -> None:
    """MLflow 3's client filter ``tags.`mlflow.prompt.is_prompt` != 'true'`` finds models
    without that tag and leaves prompts out (MLflow 2.7 has no prompts: the clause is an
    ordinary tag comparison there, which a model without the tag does not match)."""
    stem = f"prm-{uuid.uuid4().hex[:10]}"
    model = _model(backend, name=f"{stem}-model", tags=[{"key": "team", "value": "a"}])
    prompt_tag = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    prompt = _model(backend, name=f"{stem}-prompt", tags=prompt_tag)
    mine = f"name LIKE '{stem}%'"

    def models(filter_: str) -> list[str]:
        found = backend.ok("GET", "registered-models/search", filter=filter_)
        return [m["name"] for m in found.get("registered_models", [])]

    def versions(filter_: str) -> list[str]:
        found = backend.ok("GET", "model-versions/search", filter=filter_)
        return [v["name"] for v in found.get("model_versions", [])]

    if backend.v2:
        assert models(f"{mine} AND {PROMPT_FILTER}") == []
        assert models(mine) == [model, prompt]
        return
    run_id = backend.run_id()
    _version(backend, model, run_id)
    # MLflow 3 takes a prompt version only with its placeholder source.
    body = {"name": prompt, "source": "dummy-source", "run_id": run_id, "tags": prompt_tag}
    backend.ok("POST", "model-versions/create", body)
    assert models(f"{mine} AND {PROMPT_FILTER}") == [model]
    assert models(mine) == [model]  # prompts are left out unless asked for
    assert models(f"{mine} AND tags.team = 'a' AND {PROMPT_FILTER}") == [model]
    assert models(f"{mine} AND tags.`mlflow.prompt.is_prompt` = 'true'") == [prompt]
    assert models(f"{mine} AND tags.`mlflow.prompt.is_prompt` != 'false'") == [prompt]
    assert versions(f"{mine} AND {PROMPT_FILTER}") == [model]
    assert versions(f"{mine} AND tags.`mlflow.prompt.is_prompt` = 'true'") == [prompt]


def test_version_search_lists_the_last_updated_first(backend: Backend) -> None:
    """By default, model-version search orders by last update (newest first), then by
    name and version; an explicit order_by comes first, name and version still break ties."""
    stem = f"ord-{uuid.uuid4().hex[:10]}"
    a = _model(backend, name=f"{stem}-a")
    b = _model(backend, name=f"{stem}-b")
    run_id = backend.run_id()
    for name in (a, b, a):
        _version(backend, name, run_id)
        time.sleep(0.002)  # distinct timestamps, as MLflow's own test does
    body = {"name": a, "version": "1", "description": "touched"}
    backend.ok("PATCH", "model-versions/update", body)

    def order(**params: Any) -> list[tuple[str, str]]:
        found = backend.ok("GET", "model-versions/search", filter=f"name LIKE '{stem}%'", **params)
        return [(v["name"][-1], v["version"]) for v in found["model_versions"]]

    assert order() == [("a", "1"), ("a", "2"), ("b", "1")]
    assert order(order_by=["creation_timestamp ASC"]) == [("a", "1"), ("b", "1"), ("a", "2")]
    assert order(order_by=["name DESC"]) == [("b", "1"), ("a", "2"), ("a", "1")]


def test_a_local_path_source_needs_a_run_with_local_artifacts(backend: Backend) -> None:
    """On a server whose artifacts are proxied, a local path (or ``file:`` URI) is never a
    valid model-version source, with or without its run; a ``file:`` URI naming another
    host is a server error, as MLflow answers."""
    name = _model(backend)
    run = backend.run()
    local = "To use a local path as a model version source"
    for source, extra in (
        ("/tmp/model", {}),
        ("/tmp/model", {"run_id": run["info"]["run_id"]}),
        ("file:///tmp/model", {"run_id": run["info"]["run_id"]}),
        ("relative/model", {}),
    ):
        body = {"name": name, "source": source, **extra}
        error = backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "model-versions/create", body)
        assert local in error["message"], (source, error)
    body = {"name": name, "source": "file://123.456.789.123/path/to/source"}
    response = backend.call("POST", "model-versions/create", body)
    if backend.v2:
        assert response.status_code == 400, response.text
        assert "doesn't allow using a file URI" in response.json()["message"]
    else:
        assert response.status_code == 500, response.text
        assert "is not a valid remote uri" in response.json()["message"]


def test_registry_page_sizes(backend: Backend) -> None:
    """registered-models/search takes 0 (an empty page) and refuses over 1000 (3.x in a
    type error's words, 2.7 in its store's); model-versions/search refuses 0 in its store's."""
    name = _model(backend)
    found = backend.ok("GET", "registered-models/search", filter=f"name = '{name}'", max_results=0)
    assert "registered_models" not in found
    over = backend.error(
        400, "INVALID_PARAMETER_VALUE", "GET", "registered-models/search", max_results=1001
    )
    if backend.v2:  # 2.7's store says it
        assert over["message"] == (
            "Invalid value for request parameter max_results. It must be at most 1000, "
            "but got value 1001"
        )
    else:  # 3.x fails the handler's schema check, worded as a type error
        assert "for parameter 'max_results' supplied:" in over["message"]
    zero = backend.error(
        400, "INVALID_PARAMETER_VALUE", "GET", "model-versions/search", max_results=0
    )
    assert zero["message"] == (
        "Invalid value for max_results. It must be a positive integer, but got 0"
    )
