"""A tracking URI that misses its path (DagsHub without ``.mlflow``): a configuration error at
the start of a run, and runs journaled for it re-targeted by one ``mlrelay sync``, once."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import cli, fluent

PREFIX = "/alice/repo.mlflow"


@pytest.fixture
def dagshub_like() -> MockServer:
    """A mock serving MLflow under a DagsHub-style prefix (``/alice/repo.mlflow``)."""
    with MockServer(prefix=PREFIX) as server:
        yield server


def _wrong(server: MockServer) -> str:
    return server.base_url + "/alice/repo"


def _sync(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["sync", *argv], out=out)
    return code, out.getvalue()


def _log_offline(uri: str, points: int) -> str:
    """Log a run offline for ``uri``; its local id."""
    mlrelay.set_tracking_uri(uri, mode="offline")
    mlrelay.set_experiment("wrong-address")
    run = mlrelay.start_run(run_name="stranded")
    mlrelay.log_param("lr", "0.1")
    for step in range(points):
        mlrelay.log_metric("loss", 1 / (step + 1), step=step)
    mlrelay.end_run()
    local_id = run.local_id
    fluent._reset()
    return local_id


def test_start_run_at_an_address_without_mlflow_api_is_a_configuration_error(
    dagshub_like: MockServer,
) -> None:
    """ENDPOINT_NOT_FOUND at start_run raises ConfigurationError naming the `.mlflow` fix."""
    mlrelay.set_tracking_uri(_wrong(dagshub_like))
    with pytest.raises(mlrelay.ConfigurationError) as raised:
        mlrelay.start_run()
    message = str(raised.value)
    assert "ENDPOINT_NOT_FOUND" in message
    assert "no MLflow tracking API" in message
    assert "--from" in message
    assert "could not reach" not in message
    assert "in time" not in message


def test_dagshub_hint_names_the_address_with_mlflow_suffix() -> None:
    """For a DagsHub address the hint names the same address with `.mlflow` appended."""
    from mlrelay._errors import NotFoundError, wrong_address

    exc = NotFoundError(
        "404",
        method="GET",
        url="https://dagshub.com/alice/repo/api/2.0/mlflow/x",
        status_code=404,
        error_code="ENDPOINT_NOT_FOUND",
        server_message="",
    )
    message = str(wrong_address("https://dagshub.com/alice/repo", exc))
    assert "did you mean https://dagshub.com/alice/repo.mlflow?" in message


def test_a_run_journaled_for_a_wrong_address_reaches_the_right_one_once(
    dagshub_like: MockServer,
) -> None:
    """`mlrelay sync --tracking-uri RIGHT --from WRONG` moves the run once; nothing twice."""
    right, wrong = dagshub_like.url, _wrong(dagshub_like)
    _log_offline(wrong, 500)

    # Before: a sync to the right address must not claim everything is delivered.
    code, text = _sync("--tracking-uri", right)
    assert code == 0
    assert "every run in the journal is delivered" not in text
    assert f"--from {wrong}" in text

    code, text = _sync("--tracking-uri", right, "--from", wrong)
    assert code == 0, text
    assert re.search(r"Synced 1 of 1 run", text), text

    # Again, either way: nothing is sent twice.
    assert _sync("--tracking-uri", right, "--from", wrong)[1].startswith("Nothing to sync")
    assert "every run in the journal is delivered" in _sync("--tracking-uri", right)[1]
    with mlrelay.Client(tracking_uri=right) as client:
        exp = client.get_experiment_by_name("wrong-address")
        assert exp is not None
        runs = list(client.search_runs([exp.experiment_id]))
        assert len(runs) == 1
        run = runs[0]
        assert run.info.status == "FINISHED"
        assert run.data.params == {"lr": "0.1"}
        history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(p.step for p in history) == list(range(500))


def test_from_without_tracking_uri_is_a_usage_error(dagshub_like: MockServer) -> None:
    """`--from` alone exits 2 with a message saying --tracking-uri is needed."""
    _log_offline(_wrong(dagshub_like), 3)
    assert _sync("--from", _wrong(dagshub_like))[0] == 2


def test_the_sender_says_the_address_is_wrong_not_that_the_server_is_down(
    dagshub_like: MockServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run journaled for the wrong address: the sender's one warning names the address
    problem and `--from`, and the entries stay for the re-targeting sync."""
    import logging
    import uuid

    from mlrelay._pipeline.journal import Journal
    from mlrelay._pipeline.pipeline import Pipeline
    from mlrelay._protocol.batches import KIND_METRIC

    journal = Journal(tmp_path / "journal.db")
    local_id = uuid.uuid4().hex
    journal.add_run(
        local_id=local_id,
        tracking_uri=_wrong(dagshub_like),
        experiment_id=None,
        experiment_name="wrong-address",
        run_name=None,
        start_time=1_700_000_000_000,
        create_tags={},
    )
    clients: list[mlrelay.Client] = []

    def factory(uri: str) -> mlrelay.Client:
        clients.append(mlrelay.Client(tracking_uri=uri))
        return clients[-1]

    pipeline = Pipeline(journal, factory)
    try:
        with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
            for i in range(20):
                pipeline.log((local_id, KIND_METRIC, "m", float(i), 1_700_000_000_000 + i, i))
            assert not pipeline.flush(timeout=2)
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert "no MLflow tracking API" in warning
        assert f"--from {_wrong(dagshub_like)}" in warning
        assert "sent when it is back" not in warning
        assert pipeline.pending() == 20
        assert journal.count_rejected(local_id) == 0
    finally:
        pipeline.close(0)
        for c in clients:
            c.close()
        journal.close()


def test_an_interrupted_retarget_continues_at_the_new_address_once(
    dagshub_like: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `--from` sync that stops midway has already recorded the run for the new address:
    a plain sync there finishes it, and every point lands once."""
    right, wrong = dagshub_like.url, _wrong(dagshub_like)
    _log_offline(wrong, 2500)  # three log-batch requests
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dagshub_like.faults.add("status", path="*/log-batch", status=503, after=1)
    code, text = _sync("--tracking-uri", right, "--from", wrong)
    assert code == 1, text
    assert "NOT DONE" in text
    dagshub_like.faults.clear()
    assert _sync("--tracking-uri", right, "--from", wrong)[1].startswith("Nothing to sync")
    code, text = _sync("--tracking-uri", right)
    assert code == 0, text
    with mlrelay.Client(tracking_uri=right) as client:
        exp = client.get_experiment_by_name("wrong-address")
        assert exp is not None
        [run] = list(client.search_runs([exp.experiment_id]))
        steps = [p.step for p in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(steps) == list(range(2500))
