"""Conformance: MLflow's validation wording (type errors, page sizes, page tokens), the UI's
metric-history-bulk endpoints and relative artifact locations."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conformance.conftest import Backend

DOCS = " See the API docs for more information about request parameters."
AJAX = "/ajax-api/2.0/mlflow/"


def _type_error(backend: Backend, param: str, shown_v3: str, shown_v2: str, kind: str) -> str:
    """The message MLflow gives for a parameter of the wrong JSON type."""
    hint = f" Hint: Value was of type '{kind}'."
    if backend.v2:
        return f"Invalid value {shown_v2} for parameter '{param}' supplied.{hint}{DOCS}"
    return f"Invalid value {shown_v3} for parameter '{param}' supplied: {hint}{DOCS}"


def _message(backend: Backend, method: str, endpoint: str, body: Any = None, **params: Any) -> str:
    data = backend.error(400, "INVALID_PARAMETER_VALUE", method, endpoint, body, **params)
    return str(data["message"])


def test_type_errors_are_worded_as_mlflow_words_them(backend: Backend) -> None:
    """A value of the wrong JSON type: MLflow 3 shows it as JSON (``"5"``) after a colon and
    two spaces; MLflow 2.7 shows it bare, after a period."""
    body = {"name": "x", "artifact_location": "loc", "tags": "5"}
    assert _message(backend, "POST", "experiments/create", body) == _type_error(
        backend, "tags", '"5"', "5", "str"
    )
    run_id = backend.run_id()
    for field in ("metrics", "params", "tags"):
        got = _message(backend, "POST", "runs/log-batch", {"run_id": run_id, field: "foo"})
        assert got == _type_error(backend, field, '"foo"', "foo", "str")
    metric = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": "foo"}
    got = _message(backend, "POST", "runs/log-metric", metric)
    assert got == _type_error(backend, "step", '"foo"', "foo", "str")
    if not backend.v2:  # 2.7 takes a number where a string is expected, as its text
        got = _message(backend, "POST", "experiments/create", {"name": 123})
        assert got == _type_error(backend, "name", "123", "123", "int")


def _token(data: Any) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "Invalid page token, could not base64-decode"),
        ("invalid_token", 'Invalid page token, decoded value=b"\\x8a{\\xda\\x96\'m\\xa2G\\xa7"'),
        (_token({"offset": 0}), "Invalid page token, parsed value={'offset': 0}"),
        (_token({"start": 3}), "Invalid page token, parsed value={'start': 3}"),
        (_token({"offset": "x"}), "Invalid page token, not stringable x"),
    ],
)
def test_bad_page_tokens(backend: Backend, token: str, message: str) -> None:
    """Page tokens are read as MLflow's SQL store reads them: a 400 with its words for each
    way a token can be wrong (an offset of 0 included), on experiment and run searches."""
    got = _message(backend, "POST", "experiments/search", {"max_results": 5, "page_token": token})
    assert got == message
    eid = backend.experiment()
    body = {"experiment_ids": [eid], "page_token": token}
    assert _message(backend, "POST", "runs/search", body) == message


def test_history_page_token_is_checked_without_max_results(backend: Backend) -> None:
    """MLflow 3 reads get-history's page token even without max_results (a bad one is a
    400, a good one skips ahead); MLflow 2.7 ignores the token."""
    run_id = backend.run_id()
    points = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(4)]
    backend.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": points})
    query = {"run_id": run_id, "metric_key": "m"}
    if backend.v2:
        page = backend.ok("GET", "metrics/get-history", **query, page_token="invalid_token")
        assert len(page["metrics"]) == 4
        return
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "GET", "metrics/get-history", **query, page_token="x"
    )
    page = backend.ok("GET", "metrics/get-history", **query, page_token=_token({"offset": 3}))
    assert [p["step"] for p in page["metrics"]] == [3]
    assert "next_page_token" not in page


def test_search_page_sizes(backend: Backend) -> None:
    """max_results out of range on experiment and run searches, in each version's words."""
    got = _message(backend, "POST", "experiments/search", {"max_results": 0})
    got_big = _message(backend, "POST", "experiments/search", {"max_results": 50001})
    if backend.v2:
        assert got == "Invalid value for max_results. It must be a positive integer, but got 0"
        assert got_big == ("Invalid value for max_results. It must be at most 50000, but got 50001")
    else:
        assert got == (
            "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"
        )
        assert got_big == (
            "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"
        )
    eid = backend.experiment()
    body = {"experiment_ids": [eid], "max_results": 50001}
    got = _message(backend, "POST", "runs/search", body)
    assert got == _type_error(backend, "max_results", "50001", "50001", "int")


def test_run_search_sizes_zero_and_full_last_page(backend: Backend) -> None:
    """runs/search with max_results 0 is a 400 in MLflow 3; MLflow 2.7 answers an empty page
    with a token, and gives a token after every full page, the last one too."""
    eid = backend.experiment()
    for _ in range(2):
        backend.run_id(eid)
    body: dict[str, Any] = {"experiment_ids": [eid], "max_results": 2}
    full = backend.ok("POST", "runs/search", body)
    assert len(full["runs"]) == 2
    if not backend.v2:
        assert "next_page_token" not in full
        got = _message(backend, "POST", "runs/search", {**body, "max_results": 0})
        assert got == (
            "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer"
        )
        return
    after = backend.ok("POST", "runs/search", {**body, "page_token": full["next_page_token"]})
    assert after == {}
    empty = backend.ok("POST", "runs/search", {**body, "max_results": 0})
    assert "runs" not in empty
    assert empty["next_page_token"] == _token({"offset": 0})


def _bulk(backend: Backend, path: str, **params: Any) -> Any:
    return backend.http.get(AJAX + path, params=params)


def test_history_bulk(backend: Backend) -> None:
    """The UI's get-history-bulk (only under /ajax-api): points of several runs ordered by run
    id, then timestamp, step and value; max_results caps the total; always a metrics list."""
    eid = backend.experiment()
    run_a, run_b = sorted(backend.run_id(eid) for _ in range(2))
    points = [
        {"key": "m", "timestamp": 1, "step": 3, "value": 12.0},
        {"key": "m", "timestamp": 1, "step": 2, "value": 10.0},
        {"key": "m", "timestamp": 1, "step": 3, "value": 11.0},
        {"key": "m", "timestamp": 0, "step": 9, "value": 1.0},
    ]
    for run_id in (run_b, run_a):
        backend.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": points})
    ordered = [points[3], points[1], points[2], points[0]]
    r = _bulk(backend, "metrics/get-history-bulk", run_id=[run_b, run_a], metric_key="m")
    assert r.status_code == 200, r.text
    expected = [{**p, "run_id": run} for run in (run_a, run_b) for p in ordered]
    assert r.json() == {"metrics": expected}
    r = _bulk(backend, "metrics/get-history-bulk", run_id=[run_a], metric_key="m", max_results=2)
    assert r.json() == {"metrics": expected[:2]}
    r = _bulk(backend, "metrics/get-history-bulk", run_id=[run_a], metric_key="other")
    assert r.json() == {"metrics": []}
    assert backend.call("GET", "metrics/get-history-bulk", run_id=run_a).status_code == 404


def test_history_bulk_rejects(backend: Backend) -> None:
    """get-history-bulk's 400s: no run id, too many (100; 20 in MLflow 2.7), no metric key."""
    limit = 20 if backend.v2 else 100
    cases = [
        ({"metric_key": "k"}, "GetMetricHistoryBulk request must specify at least one run_id."),
        (
            {"metric_key": "k", "run_id": [f"id{i}" for i in range(limit + 1)]},
            f"GetMetricHistoryBulk request cannot specify more than {limit} run_ids. "
            f"Received {limit + 1} run_ids.",
        ),
        ({"run_id": ["1"]}, "GetMetricHistoryBulk request must specify a metric_key."),
    ]
    for params, message in cases:
        r = _bulk(backend, "metrics/get-history-bulk", **params)
        assert r.status_code == 400, r.text
        assert (r.json()["error_code"], r.json()["message"]) == ("INVALID_PARAMETER_VALUE", message)


def test_history_bulk_interval_rejects(backend: Backend) -> None:
    """get-history-bulk-interval's 400s in MLflow 3's words; MLflow 2.7 has no such endpoint."""
    path = "metrics/get-history-bulk-interval"
    if backend.v2:
        assert _bulk(backend, path, run_ids=["1"], metric_key="k").status_code == 404
        return
    base = {"run_ids": ["1"], "metric_key": "k"}
    cases = [
        ({**base, "max_results": 0}, f"max_results must be between 1 and 2500.{DOCS}"),
        ({**base, "max_results": 2501}, f"max_results must be between 1 and 2500.{DOCS}"),
        (
            {**base, "run_ids": [f"id{i}" for i in range(101)]},
            "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. "
            f"Received 101 run_ids.{DOCS}",
        ),
        (
            {**base, "start_step": 2, "end_step": 1},
            "end_step must be greater than start_step. Found start_step=2 and end_step=1.",
        ),
        (
            {**base, "start_step": 2},
            "If either start step or end step are specified, both must be specified.",
        ),
    ]
    for params, message in cases:
        r = _bulk(backend, path, **params)
        assert r.status_code == 400, r.text
        assert (r.json()["error_code"], r.json()["message"]) == ("INVALID_PARAMETER_VALUE", message)


def test_relative_artifact_location_is_made_absolute(backend: Backend) -> None:
    """A relative artifact_location is resolved against the server's working directory (a
    plain path, or a file: URI); other URIs are kept as given."""
    loc = backend.experiment(artifact_location="rel_dir/sub")
    got = backend.ok("GET", "experiments/get", experiment_id=loc)["experiment"]
    assert got["artifact_location"].startswith("/")
    assert got["artifact_location"].endswith("/rel_dir/sub")
    uri = backend.experiment(artifact_location="file:rel_uri")
    got = backend.ok("GET", "experiments/get", experiment_id=uri)["experiment"]
    assert got["artifact_location"].startswith("file:///")
    assert got["artifact_location"].endswith("/rel_uri")
    s3 = backend.experiment(artifact_location="s3://bucket/x")
    got = backend.ok("GET", "experiments/get", experiment_id=s3)["experiment"]
    assert got["artifact_location"] == "s3://bucket/x"


def test_list_artifacts_refuses_unsafe_paths(backend: Backend) -> None:
    """artifacts/list checks its path before it looks the run up: a ``..`` segment or an
    absolute path is a 400 (``Invalid path``; MLflow 2.7 names the path)."""
    run_id = backend.run_id()
    for path in ("../path", "/abs", "a/../../b"):
        for rid in (run_id, "0" * 32):
            got = _message(backend, "GET", "artifacts/list", run_id=rid, path=path)
            assert got == (f"Invalid path: {path}" if backend.v2 else "Invalid path")
    listed = backend.ok("GET", "artifacts/list", run_id=run_id, path="a/b")
    assert listed["root_uri"].endswith(f"/{run_id}/artifacts")
