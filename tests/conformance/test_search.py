"""Conformance: runs/search filters, ordering and pagination."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import Backend


@pytest.fixture
def populated(backend: Backend) -> tuple[Backend, str, dict[str, str]]:
    """Three runs in one experiment: a (acc .1, lr .1, team x), b (acc .2, lr .2), c (acc .3)."""
    eid = backend.experiment()
    ids = {}
    for i, name in enumerate(("a", "b", "c"), start=1):
        run_id = backend.run_id(eid, run_name=name, start_time=1000 * i)
        ids[name] = run_id
        body: dict[str, Any] = {
            "run_id": run_id,
            "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1, "step": 0}],
        }
        if name != "c":
            body["params"] = [{"key": "lr", "value": f"0.{i}"}]
        if name == "a":
            body["tags"] = [
                {"key": "team", "value": "x"},
                {"key": "my key", "value": "y"},
                {"key": "note", "value": "p AND q"},
            ]
        backend.ok("POST", "runs/log-batch", body)
    backend.ok("POST", "runs/update", {"run_id": ids["b"], "status": "FINISHED", "end_time": 5000})
    return backend, eid, ids


def _names(backend: Backend, eid: str, **body: Any) -> list[str]:
    page = backend.ok("POST", "runs/search", {"experiment_ids": [eid], **body})
    return [r["info"]["run_name"] for r in page.get("runs", [])]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ["c", "b", "a"]),
        ("metrics.acc > 0.15", ["c", "b"]),
        ("metrics.acc <= 0.2", ["b", "a"]),
        ("metrics.acc != 0.2", ["c", "a"]),
        ("params.lr = '0.2'", ["b"]),
        ("params.lr != '0.2'", ["a"]),
        ("params.lr LIKE '0.%'", ["b", "a"]),
        ("tags.team = 'x'", ["a"]),
        ("tags.`my key` = 'y'", ["a"]),
        ("attributes.status = 'FINISHED'", ["b"]),
        ("run_name LIKE 'a%' AND metrics.acc >= 0.1", ["a"]),
        ("attributes.start_time >= 2000", ["c", "b"]),
        ("params.lr IS NULL", ["c"]),
        ("tags.team IS NOT NULL", ["a"]),
        ("run_name ILIKE 'B'", ["b"]),
        ("tags.note = 'p AND q' and params.lr = '0.1'", ["a"]),
        ("tags.`note` LIKE '%AND%'", ["a"]),
    ],
)
def test_filters(
    populated: tuple[Backend, str, dict[str, str]], filter_string: str, expected: list[str]
) -> None:
    """Filters on metrics, params, tags and attributes select the same runs as MLflow
    (MLflow 2.7 has no IS [NOT] NULL: a 400 naming the clause)."""
    backend, eid, _ = populated
    if backend.v2 and " IS " in filter_string:
        body = {"experiment_ids": [eid], "filter": filter_string}
        error = backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/search", body)
        assert "Invalid clause(s) in filter string" in error["message"]
        return
    assert _names(backend, eid, filter=filter_string) == expected


def test_filter_on_run_id_in(populated: tuple[Backend, str, dict[str, str]]) -> None:
    """attributes.run_id IN (...) selects exactly the listed runs."""
    backend, eid, ids = populated
    flt = f"attributes.run_id IN ('{ids['a']}', '{ids['c']}')"
    assert _names(backend, eid, filter=flt) == ["c", "a"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc DESC"], ["c", "b", "a"]),
        (["metrics.acc ASC"], ["a", "b", "c"]),
        (["params.lr DESC"], ["b", "a", "c"]),
        (["attributes.start_time ASC"], ["a", "b", "c"]),
        (["attributes.run_name DESC"], ["c", "b", "a"]),
    ],
)
def test_order_by(
    populated: tuple[Backend, str, dict[str, str]], order_by: list[str], expected: list[str]
) -> None:
    """order_by sorts by metrics, params and attributes; runs lacking the key come last."""
    backend, eid, _ = populated
    assert _names(backend, eid, order_by=order_by) == expected


def test_pagination(populated: tuple[Backend, str, dict[str, str]]) -> None:
    """max_results pages come with a next_page_token until the last page."""
    backend, eid, _ = populated
    first = backend.ok("POST", "runs/search", {"experiment_ids": [eid], "max_results": 2})
    assert len(first["runs"]) == 2
    second = backend.ok(
        "POST",
        "runs/search",
        {"experiment_ids": [eid], "max_results": 2, "page_token": first["next_page_token"]},
    )
    assert len(second["runs"]) == 1
    assert "next_page_token" not in second


def test_view_types(populated: tuple[Backend, str, dict[str, str]]) -> None:
    """Deleted runs are hidden by default and shown with DELETED_ONLY or ALL."""
    backend, eid, ids = populated
    backend.ok("POST", "runs/delete", {"run_id": ids["a"]})
    assert _names(backend, eid) == ["c", "b"]
    assert _names(backend, eid, run_view_type="DELETED_ONLY") == ["a"]
    assert _names(backend, eid, run_view_type="ALL") == ["c", "b", "a"]


def test_bad_searches(populated: tuple[Backend, str, dict[str, str]]) -> None:
    """OR, bad syntax and max_results over 50000 are 400s; no experiment ids gives no runs."""
    backend, eid, _ = populated
    for flt in ("metrics.acc > 0.1 OR metrics.acc < 0.1", "metrics.acc >", "foo.bar = 'x'"):
        backend.error(
            400,
            "INVALID_PARAMETER_VALUE",
            "POST",
            "runs/search",
            {"experiment_ids": [eid], "filter": flt},
        )
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/search",
        {"experiment_ids": [eid], "max_results": 50001},
    )
    assert backend.ok("POST", "runs/search", {}) == {}
    assert backend.ok("POST", "runs/search", {"experiment_ids": []}) == {}
