"""Where the mock's page tokens and artifact locations deliberately answer better than MLflow's
500s (the MLflow-identical cases are pinned in tests/conformance/test_validation.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mlrelay_mock import MockServer

from tests._timing import deadline

API = "/api/2.0/mlflow/"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A client of a fresh mock."""
    with (
        MockServer() as server,
        httpx.Client(base_url=server.url, timeout=deadline(30)) as client,
    ):
        yield client


def _token(data: Any) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "Invalid page token, parsed value=[1, 2]"),
        ({"offset": [3]}, "Invalid page token, not stringable [3]"),
        ({"offset": 1e400}, "Invalid page token, not stringable inf"),
    ],
)
def test_tokens_mlflow_fails_on_are_400s(http: httpx.Client, data: Any, message: str) -> None:
    """A JSON token that is not an object, or an offset int() cannot take: MLflow answers a
    500 (AttributeError, TypeError, OverflowError); the mock a 400 in MLflow's words."""
    body = {"max_results": 5, "page_token": _token(data)}
    r = http.post(API + "experiments/search", json=body)
    assert r.status_code == 400, r.text
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def test_negative_offset_counts_from_the_start(http: httpx.Client) -> None:
    """SQL reads a negative OFFSET as none; the mock's slice does the same."""
    body = {"max_results": 5, "page_token": _token({"offset": -4})}
    r = http.post(API + "experiments/search", json=body)
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["experiments"]] == ["Default"]


def test_unparsable_artifact_location_is_kept(http: httpx.Client) -> None:
    """A location urllib cannot split (MLflow: a 500) is stored as given."""
    r = http.post(API + "experiments/create", json={"name": "e", "artifact_location": "file://[x"})
    assert r.status_code == 200, r.text
    got = http.get(API + "experiments/get", params={"experiment_id": r.json()["experiment_id"]})
    assert got.json()["experiment"]["artifact_location"] == "file://[x"
