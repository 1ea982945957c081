"""State across restarts: kept with a data directory, fresh without one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mlrelay_mock import MockServer

API = "/api/2.0/mlflow/"


def _seed(client: httpx.Client) -> tuple[str, str]:
    eid = client.post(API + "experiments/create", json={"name": "kept"}).json()["experiment_id"]
    run = client.post(API + "runs/create", json={"experiment_id": eid, "start_time": 1}).json()
    run_id = run["run"]["info"]["run_id"]
    metric = {"key": "m", "value": 1.0, "timestamp": 5, "step": 0}
    client.post(API + "runs/log-batch", json={"run_id": run_id, "metrics": [metric]})
    client.post(API + "runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"})
    client.put(f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run_id}/artifacts/f.txt", content=b"hi")
    client.post(API + "registered-models/create", json={"name": "kept-model"})
    return eid, run_id


def test_data_dir_survives_restart(
    mock_server_factory: Callable[..., MockServer], tmp_path: Path
) -> None:
    """With a data dir, runs, metrics, dedup, params, artifacts and models survive a restart."""
    server = mock_server_factory(data_dir=tmp_path / "data")
    port = server.port
    with httpx.Client(base_url=server.url) as client:
        eid, run_id = _seed(client)
    server.restart()
    assert server.port == port
    with httpx.Client(base_url=server.url) as client:
        run = client.get(API + "runs/get", params={"run_id": run_id}).json()["run"]
        assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
        replay = {"key": "m", "value": 1.0, "timestamp": 5, "step": 0}
        client.post(API + "runs/log-batch", json={"run_id": run_id, "metrics": [replay]})
        history = client.get(
            API + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"}
        )
        assert len(history.json()["metrics"]) == 1
        conflict = client.post(
            API + "runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}
        )
        assert conflict.status_code == 400
        art = client.get(f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run_id}/artifacts/f.txt")
        assert art.content == b"hi"
        assert client.get(API + "registered-models/get", params={"name": "kept-model"}).is_success
        new = client.post(API + "experiments/create", json={"name": "next"}).json()
        assert int(new["experiment_id"]) == int(eid) + 1


def test_torn_last_line_is_ignored(
    mock_server_factory: Callable[..., MockServer], tmp_path: Path
) -> None:
    """A half-written last operation (a killed server) is dropped; everything before it loads."""
    data = tmp_path / "data"
    server = mock_server_factory(data_dir=data)
    with httpx.Client(base_url=server.url) as client:
        client.post(API + "experiments/create", json={"name": "before-crash"})
    server.stop()
    with (data / "ops.jsonl").open("a") as f:
        f.write('["create_experiment", {"name": "torn"')
    server.start()
    with httpx.Client(base_url=server.url) as client:
        found = client.get(
            API + "experiments/get-by-name", params={"experiment_name": "before-crash"}
        )
        torn = client.get(API + "experiments/get-by-name", params={"experiment_name": "torn"})
    assert (found.status_code, torn.status_code) == (200, 404)


def test_memory_state_is_fresh_after_restart(mock_server: MockServer) -> None:
    """Without a data directory a restart starts from an empty server."""
    with httpx.Client(base_url=mock_server.url) as client:
        client.post(API + "experiments/create", json={"name": "forgotten"})
    mock_server.restart()
    with httpx.Client(base_url=mock_server.url) as client:
        r = client.get(API + "experiments/get-by-name", params={"experiment_name": "forgotten"})
    assert r.status_code == 404


def test_stopped_server_refuses_connections(mock_server: MockServer) -> None:
    """Between stop and start nothing listens: clients get a connection error."""
    mock_server.stop()
    with httpx.Client(base_url=mock_server.url) as client, pytest.raises(httpx.ConnectError):
        client.get("/health")
    mock_server.start()
    assert httpx.get(f"{mock_server.url}/health").text == "OK"
