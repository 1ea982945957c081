"""The model registry on a real MLflow 3.17.2 server: the whole lifecycle through
``mlrelay.Client``, typed errors, and exactly-once version creation when a response is lost.
(Models that MLflow's own package loads from the registry: tests/real/test_models.py.)"""

from __future__ import annotations

import uuid

import pytest

import mlrelay
from tests._proxy import lossy_proxy
from tests._servers import RunningServer

pytestmark = pytest.mark.real

KEY_TAG = "mlflow.mlrelay.clientKey"


def test_registry_lifecycle(mlflow_real: RunningServer) -> None:
    """Create, search, rename, describe, tag, alias, look up and delete registered models and
    versions; every call answers what MLflow stored."""
    name = f"life-{uuid.uuid4().hex[:8]}"
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        run = client.create_run("0")
        run_id = run.info.run_id
        client.create_registered_model(name, tags={"team": "a"}, description="first")
        assert [m.name for m in client.search_registered_models(f"name = '{name}'")] == [name]
        client.set_registered_model_tag(name, "owner", "me")
        client.delete_registered_model_tag(name, "team")
        assert client.update_registered_model(name, "second").description == "second"
        source = f"{run.info.artifact_uri}/model"
        version = client.create_model_version(name, source, run_id=run_id, tags={"k": 1})
        assert (version.version, version.run_id, version.source) == ("1", run_id, source)
        assert {t.key: t.value for t in version.tags} == {"k": "1"}  # the client key deleted
        second = client.create_model_version(name, source, run_id=run_id)
        client.set_model_version_tag(name, version.version, "checked", "yes")
        client.delete_model_version_tag(name, version.version, "k")
        assert client.update_model_version(name, version.version, "v1").description == "v1"
        got = client.get_model_version(name, version.version)
        assert {t.key: t.value for t in got.tags} == {"checked": "yes"}  # the key is gone
        assert client.get_model_version_download_uri(name, version.version) == source
        found = client.search_model_versions(f"name = '{name}'")
        assert sorted(v.version for v in found) == ["1", "2"]
        assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}'")] in (
            ["1", "2"],
            ["2", "1"],
        )
        renamed = client.rename_registered_model(name, name + "-x")
        assert renamed.name == name + "-x"
        assert {t.key for t in client.get_registered_model(name + "-x").tags} == {"owner"}
        client.set_registered_model_alias(name + "-x", "a", second.version)
        assert client.get_model_version_by_alias(name + "-x", "a").version == "2"
        assert [a.alias for a in client.get_registered_model(name + "-x").aliases] == ["a"]
        client.delete_registered_model_alias(name + "-x", "a")
        # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE, not a 404.
        with pytest.raises(mlrelay.BadRequestError, match="alias a not found"):
            client.get_model_version_by_alias(name + "-x", "a")
        client.delete_model_version(name + "-x", version.version)
        assert [v.version for v in client.search_model_versions(f"name = '{name}-x'")] == ["2"]
        client.delete_registered_model(name + "-x")
        with pytest.raises(mlrelay.NotFoundError):
            client.get_registered_model(name + "-x")


def test_stages_and_latest_versions(mlflow_real: RunningServer) -> None:
    """Staging then Production with archive_existing_versions: the earlier Production version
    is Archived; get_latest_versions answers per stage; the stage is case-insensitive."""
    name = f"stages-{uuid.uuid4().hex[:8]}"
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        run = client.create_run("0")
        source = f"{run.info.artifact_uri}/model"
        client.create_registered_model(name)
        v1 = client.create_model_version(name, source, run_id=run.info.run_id).version
        v2 = client.create_model_version(name, source, run_id=run.info.run_id).version
        assert client.transition_model_version_stage(name, v1, "production").current_stage == (
            "Production"
        )
        assert client.transition_model_version_stage(name, v2, "Staging").current_stage == (
            "Staging"
        )
        promoted = client.transition_model_version_stage(
            name, v2, "Production", archive_existing_versions=True
        )
        assert promoted.current_stage == "Production"
        assert client.get_model_version(name, v1).current_stage == "Archived"
        latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
        assert latest == {"Production": v2, "Archived": v1}
        assert [v.version for v in client.get_latest_versions(name, ["Production"])] == [v2]


def test_registry_errors_are_typed(mlflow_real: RunningServer) -> None:
    """An unknown stage names the allowed ones; a missing model is a NotFoundError; a taken
    name is ResourceAlreadyExistsError; a models:/ URI of a registered name is refused."""
    name = f"err-{uuid.uuid4().hex[:8]}"
    with mlrelay.Client(tracking_uri=mlflow_real.url) as client:
        with pytest.raises(mlrelay.ValidationError, match="Staging, Production"):
            client.transition_model_version_stage("x", 1, "Prod")
        with pytest.raises(mlrelay.NotFoundError):
            client.get_registered_model(f"missing-{uuid.uuid4().hex}")
        client.create_registered_model(name)
        with pytest.raises(mlrelay.ResourceAlreadyExistsError):
            client.create_registered_model(name)
        with pytest.raises(mlrelay.ValidationError, match="models:/<model_id>"):
            client.register_model(f"models:/{name}/1", name)
        with pytest.raises(mlrelay.ValidationError, match="runs:/<run_id>/<path>"):
            client.register_model("runs:/only-an-id", name)


def test_lost_create_version_response_yields_one_version(mlflow_real: RunningServer) -> None:
    """model-versions/create is not idempotent: its response lost after the server stored the
    version, the client finds that version by its key instead of creating a second one."""
    name = f"lost-{uuid.uuid4().hex[:8]}"
    with lossy_proxy(mlflow_real.url) as proxy:
        policy = mlrelay.RetryPolicy(max_retries=3, sleep=lambda _s: None)
        with mlrelay.Client(tracking_uri=proxy.url, retry_policy=policy) as client:
            run = client.create_run("0")
            proxy.lose_response("POST", "/registered-models/create", times=1)
            proxy.lose_response("POST", "/model-versions/create", times=1)
            version = client.register_model(f"runs:/{run.info.run_id}/model", name)
        assert proxy.dropped("/model-versions/create") == 1
        assert proxy.dropped("/registered-models/create") == 1
    with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
        versions = direct.search_model_versions(f"name = '{name}'")
    assert [(v.version, v.status) for v in versions] == [(version.version, "READY")]
    assert version.source == f"{run.info.artifact_uri}/model"
