"""Posing as MLflow 2.7.1 (what DagsHub reports): the differences of protocol notes §15."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from mlrelay_mock import MockServer

API = "/api/2.0/mlflow/"


@pytest.fixture
def old(mock_server_factory: Callable[..., MockServer]) -> Iterator[httpx.Client]:
    """A client on a mock posing as MLflow 2.7.1."""
    server = mock_server_factory(mlflow_version="2.7.1")
    with httpx.Client(base_url=server.url) as client:
        yield client


def test_mlflow3_endpoints_are_absent(old: httpx.Client) -> None:
    """logged-models, runs/outputs and /api/3.0 server-info are 404 on 2.7."""
    assert old.post(API + "logged-models", json={"experiment_id": "0"}).status_code == 404
    assert old.post(API + "runs/outputs", json={"run_id": "x", "models": []}).status_code == 404
    assert old.get("/api/3.0/mlflow/server-info").status_code == 404
    experiment = old.get(API + "experiments/get", params={"experiment_id": "0"}).json()
    assert "workspace" not in experiment["experiment"]


def test_duplicate_nan_point_rejects_the_batch(old: httpx.Client) -> None:
    """On 2.7 a resent NaN point fails the whole batch with 400, and new points are lost."""
    run = old.post(API + "runs/create", json={"experiment_id": "0", "start_time": 1}).json()
    run_id = run["run"]["info"]["run_id"]
    nan = {"key": "n", "value": "NaN", "timestamp": 1, "step": 0}
    assert old.post(API + "runs/log-batch", json={"run_id": run_id, "metrics": [nan]}).is_success
    fresh = {"key": "f", "value": 1.0, "timestamp": 1, "step": 0}
    again = old.post(API + "runs/log-batch", json={"run_id": run_id, "metrics": [nan, fresh]})
    assert (again.status_code, again.json()["error_code"]) == (400, "BAD_REQUEST")
    history = old.get(API + "metrics/get-history", params={"run_id": run_id, "metric_key": "f"})
    assert history.json() == {}
    inf = {"key": "i", "value": "Infinity", "timestamp": 1, "step": 0}
    for _ in range(2):
        assert old.post(
            API + "runs/log-batch", json={"run_id": run_id, "metrics": [inf]}
        ).is_success
