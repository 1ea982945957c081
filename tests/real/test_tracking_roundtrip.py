"""The Client against a real ``mlflow server``: round trips, limits, lost responses, auth."""

from __future__ import annotations

import math
import time
import uuid

import httpx
import pytest

import mlrelay
from mlrelay import Metric, Param, RunTag
from tests._proxy import lossy_proxy
from tests._servers import RunningServer
from tests._timing import slack
from tests.conftest import AuthServer

pytestmark = pytest.mark.real


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(mlflow_real: RunningServer) -> mlrelay.Client:
    """A client for the session's real server."""
    with mlrelay.Client(tracking_uri=mlflow_real.url) as c:
        yield c


def test_log_batch_5000_points_round_trip(client: mlrelay.Client) -> None:
    """5,000 metrics with NaN, ±Inf and negative steps, plus params and tags, land once each."""
    exp_id = client.create_experiment(_name("roundtrip"))
    run = client.create_run(exp_id, run_name="big")
    ts = int(time.time() * 1000)

    def value(i: int) -> float:
        return [math.nan, math.inf, -math.inf][i % 3] if i % 7 == 0 else i / 3

    metrics = [
        Metric(key="loss", value=value(i), timestamp=ts + i, step=i - 2500) for i in range(5000)
    ]
    params = [Param(key=f"p{i}", value=str(i)) for i in range(150)]
    tags = [RunTag(key=f"t{i}", value=f"v{i}") for i in range(130)]
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)

    history = client.get_metric_history(run.info.run_id, "loss", page_size=1200)
    assert len(history) == 5000
    by_step = {p.step: p for p in history}
    assert len(by_step) == 5000, "every point present exactly once"
    for i in range(5000):
        got, want = by_step[i - 2500].value, value(i)
        if math.isnan(want):
            assert math.isnan(got), f"step {i - 2500}: NaN must stay NaN"
        elif math.isinf(want):
            # MLflow stores ±Inf as ±DBL_MAX and returns that finite number.
            assert got == math.copysign(1.7976931348623157e308, want)
        else:
            assert got == want
        assert by_step[i - 2500].timestamp == ts + i
    data = client.get_run(run.info.run_id).data
    assert data.params_dict == {f"p{i}": str(i) for i in range(150)}
    assert {f"t{i}": f"v{i}" for i in range(130)}.items() <= data.tags_dict.items()


def test_resending_a_batch_is_deduplicated_by_the_server(client: mlrelay.Client) -> None:
    """Timestamps fixed at log time make a replayed batch harmless on the real server."""
    exp_id = client.create_experiment(_name("dedup"))
    run_id = client.create_run(exp_id).info.run_id
    metrics = [Metric(key="m", value=i / 2, timestamp=1_700_000_000_000, step=i) for i in range(50)]
    metrics.append(Metric(key="m", value=math.nan, timestamp=1_700_000_000_000, step=99))
    client.log_batch(run_id, metrics=metrics, params=[Param(key="lr", value="0.1")])
    client.log_batch(run_id, metrics=metrics, params=[Param(key="lr", value="0.1")])
    assert len(client.get_metric_history(run_id, "m")) == 51


def test_changing_a_param_is_a_bad_request(client: mlrelay.Client) -> None:
    """A param logged again with another value maps to BadRequestError with MLflow's message."""
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "lr", 0.1)
    with pytest.raises(mlrelay.BadRequestError) as info:
        client.log_param(run_id, "lr", 0.2)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "lr" in info.value.server_message


def test_experiment_lifecycle_and_search_pagination(client: mlrelay.Client) -> None:
    """Create, get, rename, tag, delete, restore; search pages through every match."""
    prefix = _name("pages")
    ids = [client.create_experiment(f"{prefix}-{i}") for i in range(7)]
    found = list(client.search_experiments(f"name LIKE '{prefix}%'", page_size=2))
    assert sorted(e.experiment_id for e in found) == sorted(ids)
    assert len(list(client.search_experiments(f"name LIKE '{prefix}%'", max_results=3))) == 3

    exp_id = ids[0]
    client.rename_experiment(exp_id, f"{prefix}-renamed")
    client.set_experiment_tag(exp_id, "team", "vision")
    exp = client.get_experiment(exp_id)
    assert exp.name == f"{prefix}-renamed"
    assert exp.tags_dict["team"] == "vision"
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    with pytest.raises(mlrelay.ResourceAlreadyExistsError):
        client.create_experiment(f"{prefix}-renamed")
    client.restore_experiment(exp_id)
    assert client.get_experiment_by_name(f"{prefix}-renamed") is not None
    assert client.get_experiment_by_name(_name("absent")) is None


def test_run_lifecycle_search_and_tags(client: mlrelay.Client) -> None:
    """Runs: create, tag, search with filter and order, terminate, delete, restore."""
    exp_id = client.create_experiment(_name("runs"))
    run_ids = []
    for i in range(5):
        run = client.create_run(exp_id, run_name=f"r{i}", tags={"group": "a" if i < 3 else "b"})
        client.log_metric(run.info.run_id, "acc", i / 10, step=1)
        run_ids.append(run.info.run_id)
    client.set_tag(run_ids[0], "note", "x")
    client.delete_tag(run_ids[0], "note")
    assert "note" not in client.get_run(run_ids[0]).data.tags_dict

    found = list(
        client.search_runs(
            [exp_id],
            "tags.group = 'a' AND metrics.acc >= 0.1",
            order_by=["metrics.acc DESC"],
            page_size=1,
        )
    )
    assert [r.info.run_id for r in found] == [run_ids[2], run_ids[1]]

    client.set_terminated(run_ids[4], "KILLED")
    assert client.get_run(run_ids[4]).info.status == "KILLED"
    client.delete_run(run_ids[3])
    assert len(list(client.search_runs([exp_id]))) == 4
    client.restore_run(run_ids[3])
    assert len(list(client.search_runs([exp_id]))) == 5


def test_log_inputs_records_a_dataset(client: mlrelay.Client) -> None:
    """A dataset logged with log_inputs shows up in the run's inputs."""
    run_id = client.create_run("0").info.run_id
    dataset = mlrelay.Dataset(
        name="train", digest="abc123", source_type="local", source='{"uri": "/data/train.csv"}'
    )
    tag = mlrelay.InputTag(key="mlflow.data.context", value="training")
    client.log_inputs(run_id, [mlrelay.DatasetInput(dataset=dataset, tags=[tag])])
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("train", "abc123")]


def test_lost_create_run_response_yields_exactly_one_run(mlflow_real: RunningServer) -> None:
    """A runs/create whose response is lost after the server committed it leaves one run."""
    with lossy_proxy(mlflow_real.url) as proxy:
        policy = mlrelay.RetryPolicy(max_retries=3, sleep=lambda _s: None)
        with mlrelay.Client(tracking_uri=proxy.url, retry_policy=policy) as c:
            exp_id = c.create_experiment(_name("lost-create"))
            proxy.lose_response("POST", "/runs/create", times=1)
            run = c.create_run(exp_id, run_name="once")
        assert proxy.dropped("/runs/create") == 1
    with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
        runs = list(direct.search_runs([exp_id], run_view_type="ALL"))
    assert [r.info.run_id for r in runs] == [run.info.run_id]


def test_lost_create_experiment_response_returns_the_experiment(
    mlflow_real: RunningServer,
) -> None:
    """A lost experiments/create response is recovered by name, not reported as a conflict."""
    name = _name("lost-exp")
    with lossy_proxy(mlflow_real.url) as proxy:
        policy = mlrelay.RetryPolicy(max_retries=3, sleep=lambda _s: None)
        with mlrelay.Client(tracking_uri=proxy.url, retry_policy=policy) as c:
            proxy.lose_response("POST", "/experiments/create", times=1)
            exp_id = c.create_experiment(name)
        assert proxy.dropped("/experiments/create") == 1
    with mlrelay.Client(tracking_uri=mlflow_real.url) as direct:
        assert direct.get_experiment(exp_id).name == name


def test_non_json_errors_from_the_real_server_map_cleanly(mlflow_real: RunningServer) -> None:
    """An HTML 404 (unknown route) and 405 (wrong method) become typed errors, not crashes."""
    with mlrelay.Client(tracking_uri=mlflow_real.url) as c:
        transport = c._transport
        with pytest.raises(mlrelay.NotFoundError) as nf:
            transport.send("GET", "/api/2.0/mlflow/no-such-endpoint", idempotent=True)
        assert nf.value.error_code == "ENDPOINT_NOT_FOUND"
        with pytest.raises(mlrelay.APIStatusError) as na:
            transport.send(
                "POST",
                "/api/2.0/mlflow/registered-models/update",
                content=b"{}",
                headers={"Content-Type": "application/json"},
                idempotent=True,
            )
        assert na.value.status_code == 405


def test_a_web_page_instead_of_a_server_is_reported(mlflow_real: RunningServer) -> None:
    """A 200 that is not MLflow JSON (here the UI's HTML) raises UnexpectedResponseError."""
    with mlrelay.Client(tracking_uri=mlflow_real.url) as c:
        request = mlrelay.client.m.GetRun(run_id="x")
        endpoint = mlrelay.client.m.Endpoint(
            "GET", "../../../", type(request), mlrelay.client.m.RunResponse, True
        )
        with pytest.raises(mlrelay.UnexpectedResponseError, match="Is the tracking URI"):
            c._transport.call(endpoint, request)


def test_unreachable_server_raises_a_connection_error_within_the_budget() -> None:
    """A closed port gives APIConnectionError after bounded retries; no httpx error leaks."""
    from tests._servers import free_port

    policy = mlrelay.RetryPolicy(max_retries=2, initial_wait=0.01, max_wait=0.05)
    with mlrelay.Client(tracking_uri=f"http://127.0.0.1:{free_port()}", retry_policy=policy) as c:
        started = time.monotonic()
        with pytest.raises(mlrelay.APIConnectionError) as info:
            c.get_experiment("0")
        assert time.monotonic() - started < slack(2.5)
    assert not isinstance(info.value, httpx.HTTPError)
    assert info.value.request_sent is False


class TestBasicAuth:
    """Basic auth against ``mlflow server --app-name basic-auth``."""

    def test_valid_credentials_work(self, mlflow_auth: AuthServer) -> None:
        """The admin's Basic credentials are accepted for reads and writes."""
        user, password = mlflow_auth.admin
        with mlrelay.Client(tracking_uri=mlflow_auth.url, username=user, password=password) as c:
            exp_id = c.create_experiment(_name("auth"))
            assert c.get_experiment(exp_id).experiment_id == exp_id

    def test_wrong_password_is_an_authentication_error(self, mlflow_auth: AuthServer) -> None:
        """A wrong password maps to AuthenticationError (401) and the message has no secret."""
        with (
            mlrelay.Client(
                tracking_uri=mlflow_auth.url, username="admin", password="wrong-pass-xyz"
            ) as c,
            pytest.raises(mlrelay.AuthenticationError) as info,
        ):
            c.get_experiment("0")
        assert info.value.status_code == 401
        assert "wrong-pass-xyz" not in str(info.value)

    def test_env_credentials_are_used(
        self, mlflow_auth: AuthServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """MLFLOW_TRACKING_USERNAME/PASSWORD from the environment authenticate the client."""
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_auth.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_auth.admin[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_auth.admin[1])
        with mlrelay.Client() as c:
            assert c.get_experiment("0").name == "Default"

    def test_read_only_user_gets_permission_denied_on_write(self, mlflow_auth: AuthServer) -> None:
        """A user with READ permission may read but a write maps to PermissionDeniedError (403)."""
        user, password = mlflow_auth.reader
        with mlrelay.Client(tracking_uri=mlflow_auth.url, username=user, password=password) as c:
            assert c.get_experiment("0").name == "Default"
            with pytest.raises(mlrelay.PermissionDeniedError) as info:
                c.create_run("0")
        assert info.value.status_code == 403
