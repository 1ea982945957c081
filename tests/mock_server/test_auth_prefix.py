"""Posing as a hosted backend: a path prefix and Basic/Bearer auth with 401 and 403."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mlrelay_mock import AuthConfig, MockServer

PREFIX = "/alice/repo.mlflow"
AUTH = AuthConfig(
    basic={"alice": "tok-alice", "bob": "tok-bob", "eve": "tok-eve"},
    bearer=["bearer-token"],
    readers=["bob"],
    denied=["eve"],
)


@pytest.fixture
def hosted(mock_server_factory: Callable[..., MockServer]) -> MockServer:
    """A mock under a DagsHub-style prefix that requires credentials."""
    return mock_server_factory(prefix=PREFIX, auth=AUTH)


def test_prefix_is_part_of_the_url(hosted: MockServer) -> None:
    """The tracking URI carries the prefix; the API outside it is a 404."""
    assert hosted.url.endswith(PREFIX)
    with httpx.Client(auth=("alice", "tok-alice")) as client:
        inside = client.get(f"{hosted.url}/api/2.0/mlflow/experiments/get?experiment_id=0")
        outside = client.get(f"{hosted.base_url}/api/2.0/mlflow/experiments/get?experiment_id=0")
    assert inside.status_code == 200
    assert outside.status_code == 404


def test_credentials(hosted: MockServer) -> None:
    """No or wrong credentials get 401 with a Basic challenge; Basic and Bearer both work."""
    url = f"{hosted.url}/api/2.0/mlflow/experiments/get"
    params = {"experiment_id": "0"}
    assert httpx.get(url, params=params).status_code == 401
    wrong = httpx.get(url, params=params, auth=("alice", "nope"))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
    assert httpx.get(url, params=params, auth=("mallory", "tok-alice")).status_code == 401
    assert httpx.get(url, params=params, auth=("alice", "tok-alice")).status_code == 200
    bearer = {"Authorization": "Bearer bearer-token"}
    assert httpx.get(url, params=params, headers=bearer).status_code == 200
    bad_bearer = {"Authorization": "Bearer other"}
    assert httpx.get(url, params=params, headers=bad_bearer).status_code == 401
    assert httpx.get(f"{hosted.url}/health").text == "OK"


def test_permissions(hosted: MockServer) -> None:
    """A reader may read and search but gets 403 on writes; a denied user gets 403 on all."""
    api = f"{hosted.url}/api/2.0/mlflow/"
    with httpx.Client(auth=("bob", "tok-bob")) as bob:
        assert bob.get(api + "experiments/get", params={"experiment_id": "0"}).status_code == 200
        search = bob.post(api + "runs/search", json={"experiment_ids": ["0"]})
        assert search.status_code == 200
        write = bob.post(api + "experiments/create", json={"name": "x"})
        assert (write.status_code, write.text) == (403, "Permission denied")
    with httpx.Client(auth=("eve", "tok-eve")) as eve:
        assert eve.get(api + "experiments/get", params={"experiment_id": "0"}).status_code == 403


def test_mlflow_client_under_prefix_and_auth(
    hosted: MockServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MLflow's client logs runs and artifacts through the prefix with Basic credentials."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "tok-alice")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(tracking_uri=hosted.url)
    experiment_id = client.create_experiment("hosted")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    artifact = tmp_path / "a.txt"
    artifact.write_text("prefixed")
    client.log_artifact(run.info.run_id, str(artifact))
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.5]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["a.txt"]
    uploads = hosted.requests.matching(method="PUT")
    assert [u.path.startswith(PREFIX + "/api/2.0/mlflow-artifacts/") for u in uploads] == [True]
    assert all(e.auth_user == "alice" for e in hosted.requests)
