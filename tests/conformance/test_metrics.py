"""Conformance: metrics, params and log-batch (limits, NaN/Inf, dedup, conflicts, history)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import Backend

DOUBLE_MAX = 1.7976931348623157e308


def _metrics(n: int, key: str = "m") -> list[dict[str, Any]]:
    return [{"key": key, "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(n)]


def _kv(n: int, prefix: str) -> list[dict[str, str]]:
    return [{"key": f"{prefix}{i}", "value": str(i)} for i in range(n)]


@pytest.mark.parametrize(
    ("metrics", "params", "tags", "accepted"),
    [
        (1000, 0, 0, True),
        (1001, 0, 0, False),
        (0, 100, 0, True),
        (0, 101, 0, False),
        (0, 0, 101, False),
        (900, 100, 1, False),
        (800, 100, 100, True),
    ],
)
def test_batch_limits(
    backend: Backend, metrics: int, params: int, tags: int, accepted: bool
) -> None:
    """log-batch takes at most 1000 metrics, 100 params, 100 tags and 1000 entities in all."""
    run_id = backend.run_id()
    body = {
        "run_id": run_id,
        "metrics": _metrics(metrics),
        "params": _kv(params, "p"),
        "tags": _kv(tags, "t"),
    }
    if accepted:
        backend.ok("POST", "runs/log-batch", body)
    else:
        backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-batch", body)
        assert "metrics" not in backend.get_run(run_id)["data"]


def test_batch_is_all_or_nothing(backend: Backend) -> None:
    """One bad metric key or a duplicate param key rejects the whole batch; nothing is written."""
    run_id = backend.run_id()
    bad_key = {
        "run_id": run_id,
        "metrics": [*_metrics(3), {"key": "a*b", "value": 1, "timestamp": 1}],
        "params": [{"key": "new", "value": "1"}],
    }
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-batch", bad_key)
    duplicate = {
        "run_id": run_id,
        "params": [{"key": "d", "value": "1"}, {"key": "d", "value": "2"}],
    }
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-batch", duplicate)
    data = backend.get_run(run_id)["data"]
    assert "metrics" not in data
    assert "params" not in data


def test_nan_and_infinity(backend: Backend) -> None:
    """NaN comes back as the string "NaN"; ±Infinity come back as ±1.7976931348623157e308."""
    run_id = backend.run_id()
    values = {"nan": "NaN", "pinf": "Infinity", "ninf": "-Infinity"}
    metrics = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in values.items()]
    backend.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert backend.history(run_id, "nan")[0]["value"] == "NaN"
    assert backend.history(run_id, "pinf")[0]["value"] == DOUBLE_MAX
    assert backend.history(run_id, "ninf")[0]["value"] == -DOUBLE_MAX
    backend.ok(
        "POST", "runs/log-metric", {"run_id": run_id, "key": "s", "value": "1.5", "timestamp": 1}
    )
    assert backend.history(run_id, "s")[0]["value"] == 1.5


def test_metric_points_are_deduplicated(backend: Backend) -> None:
    """Identical points (NaN included) are stored once; the same step with another value is kept.
    MLflow 2.7 refuses a batch that repeats a stored NaN point: a 400 for the whole batch."""
    run_id = backend.run_id()
    batch = {
        "run_id": run_id,
        "metrics": [
            *[{"key": "m", "value": 1.0, "timestamp": 5, "step": 1}] * 3,
            {"key": "n", "value": "NaN", "timestamp": 5, "step": 1},
        ],
    }
    backend.ok("POST", "runs/log-batch", batch)
    if backend.v2:
        backend.error(400, "BAD_REQUEST", "POST", "runs/log-batch", batch)
        new_point = {"key": "m", "value": 3.0, "timestamp": 6, "step": 2}
        resend = {"run_id": run_id, "metrics": [*batch["metrics"], new_point]}  # type: ignore[list-item]
        backend.error(400, "BAD_REQUEST", "POST", "runs/log-batch", resend)
        assert len(backend.history(run_id, "m")) == 1  # the new point was not stored either
    else:
        backend.ok("POST", "runs/log-batch", batch)
    backend.ok(
        "POST",
        "runs/log-metric",
        {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 5, "step": 1},
    )
    assert len(backend.history(run_id, "m")) == 1
    assert len(backend.history(run_id, "n")) == 1
    backend.ok(
        "POST",
        "runs/log-metric",
        {"run_id": run_id, "key": "m", "value": 2.0, "timestamp": 5, "step": 1},
    )
    assert sorted(p["value"] for p in backend.history(run_id, "m")) == [1.0, 2.0]


def test_param_conflicts(backend: Backend) -> None:
    """The same param value again is a no-op; another value is a 400, in log-batch too."""
    run_id = backend.run_id()
    backend.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    backend.ok("POST", "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    backend.ok(
        "POST", "runs/log-batch", {"run_id": run_id, "params": [{"key": "lr", "value": "0.1"}]}
    )
    error = backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/log-parameter",
        {"run_id": run_id, "key": "lr", "value": "0.2"},
    )
    assert "Changing param values is not allowed" in error["message"]
    batch = {
        "run_id": run_id,
        "params": [{"key": "other", "value": "1"}, {"key": "lr", "value": "0.3"}],
    }
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-batch", batch)
    params = backend.get_run(run_id)["data"]["params"]
    assert params == [{"key": "lr", "value": "0.1"}]


def test_log_metric_validation(backend: Backend) -> None:
    """log-metric needs a timestamp ≥ 0 and a value; steps may be negative and default to 0."""
    run_id = backend.run_id()
    base = {"run_id": run_id, "key": "m", "value": 1}
    backend.error(400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-metric", base)
    backend.error(
        400, "INVALID_PARAMETER_VALUE", "POST", "runs/log-metric", {**base, "timestamp": -1}
    )
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "POST",
        "runs/log-metric",
        {"run_id": run_id, "key": "m", "timestamp": 1},
    )
    backend.ok("POST", "runs/log-metric", {**base, "timestamp": 1})
    backend.ok("POST", "runs/log-metric", {**base, "timestamp": 2, "step": -3})
    assert [p["step"] for p in backend.history(run_id, "m")] == [0, -3]


def test_latest_metric_is_highest_step(backend: Backend) -> None:
    """run.data.metrics shows, per key, the max by (step, timestamp, value), not the last sent."""
    run_id = backend.run_id()
    for step, ts, value in ((5, 10, 1.0), (2, 99, 2.0), (5, 10, 0.5)):
        backend.ok(
            "POST",
            "runs/log-metric",
            {"run_id": run_id, "key": "m", "value": value, "timestamp": ts, "step": step},
        )
    latest = backend.get_run(run_id)["data"]["metrics"]
    assert latest == [{"key": "m", "value": 1.0, "timestamp": 10, "step": 5}]


def test_history_pagination(backend: Backend) -> None:
    """get-history pages with max_results and tokens, ordered by (timestamp, step). MLflow 2.7
    ignores max_results there: one answer with every point, no token."""
    run_id = backend.run_id()
    points = [{"key": "m", "value": float(i), "timestamp": 100 - i, "step": i} for i in range(7)]
    backend.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": points})
    full = backend.history(run_id, "m")
    assert [p["timestamp"] for p in full] == sorted(p["timestamp"] for p in points)
    if backend.v2:
        page = backend.ok(
            "GET", "metrics/get-history", run_id=run_id, metric_key="m", max_results=3
        )
        assert page == {"metrics": full}
        return
    pages: list[list[dict[str, Any]]] = []
    token = None
    for _ in range(5):
        params: dict[str, Any] = {"run_id": run_id, "metric_key": "m", "max_results": 3}
        if token:
            params["page_token"] = token
        page = backend.ok("GET", "metrics/get-history", **params)
        pages.append(page["metrics"])
        token = page.get("next_page_token")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [p for page in pages for p in page] == full
    backend.error(
        400,
        "INVALID_PARAMETER_VALUE",
        "GET",
        "metrics/get-history",
        run_id=run_id,
        metric_key="m",
        max_results=0,
    )


def test_history_of_unknown_run_is_empty(backend: Backend) -> None:
    """get-history for an unknown run or key is a 200 with {} (not a 404), MLflow's oddity."""
    assert backend.ok("GET", "metrics/get-history", run_id="0" * 32, metric_key="m") == {}
    assert backend.ok("GET", "metrics/get-history", run_id=backend.run_id(), metric_key="m") == {}
