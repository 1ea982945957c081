"""Run objects with MLflow's shape: ``start_run`` returns a Run with ``.info`` and ``.data``."""

from __future__ import annotations

import getpass
import warnings

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import fluent


def test_the_tutorial_idiom_reads_the_servers_run_id(server: MockServer) -> None:
    """``with start_run() as run: run.info.run_id`` and ``active_run().info`` give the server's
    run, an ActiveRun is a Run, and get_run(...).data holds dicts of latest values."""
    fluent.set_tracking_uri(server.url)
    fluent.set_experiment("shapes")
    with fluent.start_run(run_name="first", tags={"team": "a"}) as run:
        assert isinstance(run, mlrelay.Run)
        info = run.info
        assert info.run_id == run.run_id != run.local_id
        active = mlrelay.active_run()
        assert active is not None
        assert active.info.run_id == info.run_id
        assert info.run_name == "first"
        assert info.status == "RUNNING"
        assert info.user_id == getpass.getuser()
        assert info.artifact_uri
        with mlrelay.Client(tracking_uri=server.url) as reader:
            experiment = reader.get_experiment_by_name("shapes")
        assert experiment is not None
        assert info.experiment_id == experiment.experiment_id
        assert run.data.tags["team"] == "a"
        assert run.data.metrics == {}
        fluent.log_metric("loss", 0.5, step=1)
        fluent.log_metric("loss", 0.25, step=2)
        fluent.log_param("lr", 0.1)
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None
    assert mlrelay.active_run() is None
    last = mlrelay.last_active_run()
    assert last is not None
    assert last.info.run_id == info.run_id
    fetched = mlrelay.get_run(info.run_id)
    assert fetched.data.metrics == {"loss": 0.25}
    assert fetched.data.params == {"lr": "0.1"}
    assert fetched.info.user_id == getpass.getuser()


def test_a_run_started_while_the_server_is_down_gets_its_server_id_later(
    server: MockServer,
) -> None:
    """Started with no server answering, ``.info.run_id`` is the local id; once the
    pipeline created the run on the server, ``.info.run_id`` is the server's id."""
    server.stop()
    fluent.set_tracking_uri(server.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = fluent.start_run()
    assert run.info.run_id == run.local_id
    assert run.info.artifact_uri is None
    fluent.log_metric("m", 1.0)
    server.start()
    assert mlrelay.flush(30)
    assert run.info.run_id == run.local_id  # .info is refreshed on use, not behind one's back
    assert run.run_id != run.local_id  # the attribute refreshes it
    assert run.info.run_id == run.run_id
    fluent.end_run()
    assert mlrelay.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_with_no_tracking_uri_every_call_journals_and_one_notice_says_how_to_send(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No tracking URI anywhere: set_experiment and start_run both keep the run in the
    journal (neither raises), one notice names the journal and `mlrelay sync
    --tracking-uri`, and that command then delivers the run once."""
    import io

    from mlrelay import cli

    with caplog.at_level("WARNING", logger="mlrelay"):
        unknown = fluent.set_experiment("nowhere")
        assert (unknown.experiment_id, unknown.name) == ("", "nowhere")
        with fluent.start_run(run_name="kept") as run:
            fluent.log_metric("m", 2.0)
        with fluent.start_run():
            fluent.log_param("p", "v")
    notices = [r.getMessage() for r in caplog.records if "no tracking URI" in r.getMessage()]
    assert len(notices) == 1
    assert "journal.db" in notices[0]
    assert "mlrelay sync --tracking-uri" in notices[0]
    fluent._reset()
    out = io.StringIO()
    assert cli.main(["sync", "--tracking-uri", server.url], out=out) == 0, out.getvalue()
    with mlrelay.Client(tracking_uri=server.url) as reader:
        experiment = reader.get_experiment_by_name("nowhere")
        assert experiment is not None
        found = list(reader.search_runs([experiment.experiment_id]))
        assert [r.info.run_name for r in found].count("kept") == 1
        kept = next(r for r in found if r.info.run_name == "kept")
        assert kept.data.metrics == {"m": 2.0}
    assert run.info.run_id == run.local_id


def test_the_exactly_once_key_is_hidden_and_the_old_name_is_still_found(
    server: MockServer,
) -> None:
    """Runs carry the key under MLflow's system prefix (``mlflow.mlrelay.clientKey``), and a
    run created by an older mlrelay under ``mlrelay.client_key`` is still found by its key,
    so a journal written then syncs it exactly once."""
    import httpx

    fluent.set_tracking_uri(server.url)
    with fluent.start_run() as run:
        pass
    tags = mlrelay.get_run(run.info.run_id).data.tags
    assert tags["mlflow.mlrelay.clientKey"] == run.local_id
    assert "mlrelay.client_key" not in tags
    created = httpx.post(
        f"{server.url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": "0", "start_time": 1, "tags": [
            {"key": "mlrelay.client_key", "value": "old-key"}]},
        timeout=10,
    ).json()["run"]["info"]["run_id"]  # fmt: skip
    with mlrelay.Client(tracking_uri=server.url) as client:
        found = client.find_run_by_client_key("0", "old-key")
        assert found is not None
        assert found.info.run_id == created
        assert client.find_run_by_client_key("0", "no-such-key") is None
