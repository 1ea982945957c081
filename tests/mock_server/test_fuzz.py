"""Malformed requests get MLflow-style 4xx answers, never a 500 or a crash (hypothesis fuzz)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlrelay_mock import MockServer

from tests._timing import deadline

FIELDS = [
    "experiment_id", "experiment_ids", "name", "new_name", "run_id", "run_uuid", "key", "value",
    "timestamp", "step", "metrics", "params", "tags", "filter", "max_results", "order_by",
    "page_token", "status", "end_time", "start_time", "run_name", "version", "alias", "stage",
    "source", "datasets", "models", "model_id", "metric_key", "view_type", "run_view_type",
    "archive_existing_versions", "description", "stages", "model_json", "path", "experimentId",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "Infinity", "0", "-1", "1" * 30, "abc", "", "metrics.a > 1 OR"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
        lambda d: json.dumps(d).encode()
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"[1, 2", b'{"value": NaN}', b"null", b'"{\\"a\\": 1}"', b"\xff\xfe"]
    ),
)
queries = st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=12), max_size=4)
content_types = st.sampled_from(
    ["application/json", "text/plain", None, "application/json; charset=utf-8"]
)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[MockServer]:
    """One mock for the whole fuzz module (hypothesis runs many examples per test)."""
    with MockServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(fuzz_server: MockServer) -> Iterator[httpx.Client]:
    """One keep-alive client for the module, so examples do not pay for connections."""
    with httpx.Client(base_url=fuzz_server.url, timeout=deadline(60)) as http:
        yield http


@pytest.fixture(scope="module")
def run_id(client: httpx.Client) -> str:
    """A run in the Default experiment for the log-batch fuzzing."""
    run = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0", "start_time": 1})
    return str(run.json()["run"]["info"]["run_id"])


@pytest.fixture(scope="module")
def endpoints(fuzz_server: MockServer) -> list[str]:
    """Every route except /_mock control and multipart ones (those are a 501 by design, as in
    MLflow on local storage)."""
    paths = {getattr(r, "path", "") for r in fuzz_server.app.routes}
    return sorted(
        p
        for p in paths
        if p and not p.startswith("/_mock") and "/mpu/" not in p and "/presigned/" not in p
    )


def _fill(path: str, filler: str) -> str:
    return re.sub(r"\{[^}]+\}", filler or "x", path)


def _assert_mlflow_style(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert ("error_code" in body and "message" in body) or "detail" in body, body


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), method=methods, body=bodies, query=queries, content_type=content_types)
def test_fuzzed_requests_never_500(
    client: httpx.Client,
    endpoints: list[str],
    data: st.DataObject,
    method: str,
    body: bytes,
    query: dict[str, str],
    content_type: str | None,
) -> None:
    """Random methods, bodies, queries and content types on every route give < 500 answers."""
    path = _fill(
        data.draw(st.sampled_from(endpoints)), data.draw(st.text(alphabet="ab/.-_1", max_size=8))
    )
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.request(
        method, path, content=body if method != "GET" else None, params=query, headers=headers
    )
    _assert_mlflow_style(r)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_fuzzed_log_batch_and_search(
    client: httpx.Client, run_id: str, payload: dict[str, Any]
) -> None:
    """Deeply wrong log-batch and search bodies on a real run are 4xx at worst."""
    for endpoint in ("runs/log-batch", "runs/search", "experiments/search", "runs/log-inputs"):
        r = client.post(
            f"/api/2.0/mlflow/{endpoint}",
            json={"run_id": run_id, "experiment_ids": ["0"], **payload},
        )
        _assert_mlflow_style(r)


@pytest.mark.parametrize(
    "body",
    [
        b"x" * (30 << 20),
        b"[" * 200_000,
        b'{"run_id": "' + b"a" * (5 << 20) + b'"}',
        json.dumps(
            {"run_id": "r", "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 100_000}
        ).encode(),
    ],
    ids=["30MB-garbage", "deep-nesting", "5MB-string", "100k-metrics"],
)
def test_huge_and_deep_bodies(fuzz_server: MockServer, body: bytes) -> None:
    """Huge, deeply nested or over-limit bodies get a 4xx MLflow error, and the server lives on."""
    with httpx.Client(base_url=fuzz_server.url, timeout=deadline(60)) as client:
        r = client.post(
            "/api/2.0/mlflow/runs/log-batch",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= r.status_code < 500
        assert r.json()["error_code"] in (
            "BAD_REQUEST",
            "INVALID_PARAMETER_VALUE",
            "RESOURCE_DOES_NOT_EXIST",
        )
        assert client.get("/health").text == "OK"


def test_unknown_routes_and_methods(fuzz_server: MockServer) -> None:
    """Unknown routes are a JSON 404 ENDPOINT_NOT_FOUND; a wrong method is a JSON 405."""
    with httpx.Client(base_url=fuzz_server.url) as client:
        missing = client.get("/api/2.0/mlflow/does/not/exist")
        wrong = client.post("/api/2.0/mlflow/registered-models/update", json={"name": "x"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "BAD_REQUEST"


def test_bare_nan_token_is_refused(fuzz_server: MockServer) -> None:
    """A bare NaN token is a 400 here (the real server stores zeros instead; see _fields)."""
    with httpx.Client(base_url=fuzz_server.url) as client:
        run = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()
        run_id = run["run"]["info"]["run_id"]
        body = f'{{"run_id": "{run_id}", "key": "m", "value": NaN, "timestamp": 1}}'
        r = client.post(
            "/api/2.0/mlflow/runs/log-metric",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert (r.status_code, r.json()["error_code"]) == (400, "BAD_REQUEST")
