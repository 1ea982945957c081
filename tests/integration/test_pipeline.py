"""The journal-first pipeline behind the fluent API, over real sockets to the mock server."""

from __future__ import annotations

import logging
import math
import os
import stat
import time
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import fluent
from mlrelay._pipeline import runs
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.runs import session
from tests._env import child_env
from tests._timing import deadline, slack


def test_tutorial_flow_lands_with_system_tags(server: MockServer, client: mlrelay.Client) -> None:
    """set_experiment, start_run, params, metrics over steps, tags: all land, run FINISHED."""
    fluent.set_tracking_uri(server.url)
    exp_id = fluent.set_experiment("tutorial").experiment_id
    with fluent.start_run(run_name="grid-1", description="first try") as run:
        fluent.log_params({"lr": 0.1, "depth": 3})
        for step in range(50):
            fluent.log_metrics({"loss": 1 / (step + 1), "acc": step / 50}, step=step)
        fluent.set_tags({"team": "vision"})
    assert fluent.flush(deadline(20))
    got = client.get_run(run.run_id)
    assert got.info.experiment_id == exp_id
    assert got.info.status == "FINISHED"
    assert got.data.params_dict == {"lr": "0.1", "depth": "3"}
    tags = got.data.tags_dict
    assert tags["team"] == "vision"
    assert tags["mlflow.runName"] == "grid-1"
    assert tags["mlflow.note.content"] == "first try"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.user" in tags
    assert len(client.get_metric_history(run.run_id, "loss")) == 50


def test_source_name_is_the_script_path_as_invoked(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow.source.name is sys.argv[0] as given (``python examples/x/train.py``), as MLflow
    records it, not its basename."""
    monkeypatch.setattr("sys.argv", ["examples/wine/train.py", "0.5"])
    fluent.set_tracking_uri(server.url)
    with fluent.start_run() as run:
        fluent.log_param("alpha", 0.5)
    assert fluent.flush(deadline(20))
    tags = client.get_run(run.run_id).data.tags_dict
    assert tags["mlflow.source.name"] == "examples/wine/train.py"


def test_nested_run_records_its_parent(server: MockServer, client: mlrelay.Client) -> None:
    """A nested run carries mlflow.parentRunId; a second top-level run without nested raises."""
    fluent.set_tracking_uri(server.url)
    with fluent.start_run() as parent:
        with pytest.raises(mlrelay.ValidationError, match="already active"):
            fluent.start_run()
        with fluent.start_run(nested=True) as child:
            fluent.log_metric("x", 1.0)
    assert fluent.flush(deadline(20))
    assert client.get_run(child.run_id).data.tags_dict["mlflow.parentRunId"] == parent.run_id


def test_failing_block_ends_the_run_failed(server: MockServer, client: mlrelay.Client) -> None:
    """An exception inside `with start_run()` ends the run FAILED."""
    fluent.set_tracking_uri(server.url)
    with pytest.raises(RuntimeError), fluent.start_run() as run:
        raise RuntimeError("boom")
    assert fluent.flush(deadline(20))
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_bad_input_raises_at_the_call_site_and_queues_nothing(server: MockServer) -> None:
    """A bad key or value raises ValidationError; the good data around it is unaffected."""
    fluent.set_tracking_uri(server.url)
    with fluent.start_run() as run:
        fluent.log_metric("ok", 1.0)
        with pytest.raises(mlrelay.ValidationError, match="metric key 'a\\*b'"):
            fluent.log_metric("a*b", 1.0)
        with pytest.raises(mlrelay.ValidationError, match="limit is 6000"):
            fluent.log_param("long", "x" * 6001)
        with pytest.raises(mlrelay.ValidationError, match="timestamp"):
            fluent.log_metric("ok", 2.0, timestamp=-1)
        with pytest.raises(mlrelay.ValidationError, match="must be a number"):
            fluent.log_metrics({"fine": 1.0, "bad": "x"})  # type: ignore[dict-item]
    assert fluent.flush(deadline(20))
    with mlrelay.Client(tracking_uri=server.url) as c:
        data = c.get_run(run.run_id).data
    assert data.metrics_dict == {"ok": 1.0}
    assert data.params_dict == {}


def test_outage_keeps_entries_and_delivers_each_once(
    server: MockServer, client: mlrelay.Client
) -> None:
    """While the server is down entries wait in the journal; after it, each lands once."""
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    rule = server.faults.outage(seconds=3600)
    worst = 0.0
    for i in range(5000):
        started = time.perf_counter()
        fluent.log_metric("m", math.nan if i % 10 == 0 else i, step=i)
        worst = max(worst, time.perf_counter() - started)
    # The loop never waits on the network: its worst call is an interpreter pause.
    assert worst < slack(0.05), f"a log call took {worst * 1000:.1f} ms during the outage"
    assert fluent.flush(1.0) is False
    assert session.pipeline is not None
    assert session.pipeline.pending() > 0
    server.faults.remove(rule.id)
    fluent.end_run()
    assert fluent.flush(deadline(60))
    history = client.get_metric_history(run.run_id, "m")
    assert sorted(p.step for p in history) == list(range(5000))
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_start_run_with_server_down_creates_the_run_later_exactly_once(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_run falls back to a local id within the budget; the run is created once later."""
    monkeypatch.setenv("MLRELAY_START_TIMEOUT", "1")
    monkeypatch.setenv("MLRELAY_EXIT_TIMEOUT", "1")  # end_run gives up quickly while down
    fluent.set_tracking_uri(server.url)
    rule = server.faults.outage(seconds=3600)
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match="the tracking server failed start_run .*503"):
        run = fluent.start_run(run_name="late")
    assert time.monotonic() - started < 1 + slack(1)  # the default budget is 5 s
    for i in range(100):
        fluent.log_metric("m", i, step=i)
    fluent.end_run()
    server.faults.remove(rule.id)
    assert fluent.flush(deadline(60))
    runs = list(client.search_runs(["0"], run_view_type="ALL"))
    assert [r.data.tags_dict["mlflow.mlrelay.clientKey"] for r in runs] == [run.local_id]
    assert runs[0].info.run_name == "late"
    assert len(client.get_metric_history(runs[0].info.run_id, "m")) == 100


def test_lost_create_response_in_the_sender_yields_one_run(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender looks for its client key before re-creating after a lost response."""
    monkeypatch.setenv("MLRELAY_START_TIMEOUT", "1")
    fluent.set_tracking_uri(server.url)
    server.faults.add("lose_response", method="POST", path="*/runs/create", times=1)
    with pytest.warns(RuntimeWarning):
        run = fluent.start_run()
    fluent.log_metric("m", 1.0)
    fluent.end_run()
    assert fluent.flush(deadline(60))
    runs = list(client.search_runs(["0"], run_view_type="ALL"))
    assert len(runs) == 1
    assert runs[0].data.tags_dict["mlflow.mlrelay.clientKey"] == run.local_id


def test_rejected_batch_is_set_aside_and_reported_once(
    server: MockServer, client: mlrelay.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A 4xx batch is recorded with the server's message and warned once; later data flows."""
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    client.log_param(run.run_id, "lr", "0.5")
    with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
        fluent.log_param("lr", "0.1")  # conflicts with the value already on the server
        assert fluent.flush(deadline(20))
        fluent.log_metric("after", 1.0)
        fluent.end_run()
        assert fluent.flush(deadline(20))
    journal = session.pipeline.journal  # type: ignore[union-attr]
    [(_, _, _, message)] = journal.rejections(run.local_id)
    assert "lr" in message
    assert sum("rejected" in r.message for r in caplog.records) == 1
    assert client.get_run(run.run_id).data.metrics_dict == {"after": 1.0}


def test_offline_mode_journals_without_sending(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLRELAY_MODE=offline keeps everything in the journal and sends nothing."""
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    fluent.set_tracking_uri(server.url)
    before = len(server.requests)
    with fluent.start_run() as run:
        fluent.log_metric("m", 1.0)
    assert fluent.flush(deadline(5))
    assert len(server.requests) == before
    journal = session.pipeline.journal  # type: ignore[union-attr]
    assert journal.count_pending([run.local_id]) == 1


def test_journal_file_is_private_and_holds_no_credentials(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """journal.db is 0600 in a 0700 directory and contains no password or token."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pa55-w0rd-secret")
    fluent.set_tracking_uri(server.url)
    with fluent.start_run():
        fluent.log_metric("m", 1.0)
    assert fluent.flush(deadline(20))
    path = session.pipeline.journal.path  # type: ignore[union-attr]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for f in path.parent.iterdir():
        assert b"pa55-w0rd-secret" not in f.read_bytes()


def test_journal_round_trips_nan_and_infinities(tmp_path: Path) -> None:
    """NaN (stored as NULL) and ±Inf come back from the journal unchanged."""
    journal = Journal(tmp_path / "j.db")
    journal.add_run(
        local_id="r", tracking_uri="http://x", experiment_id="0", experiment_name=None,
        run_name=None, start_time=1, create_tags={},
    )  # fmt: skip
    journal.append(
        [("r", 0, "m", v, 1, i) for i, v in enumerate([math.nan, math.inf, -math.inf, 2.5])]
    )
    values = [e.value for e in journal.pending("r", 0, 10)]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 2.5]
    journal.ack("r", 2)
    assert [e.step for e in journal.pending("r", journal.run("r").acked_seq, 10)] == [2, 3]  # type: ignore[union-attr]


def test_end_run_is_bounded_when_the_server_goes_down(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """end_run waits for delivery only while it progresses: a dead server costs the stall limit."""
    monkeypatch.setenv("MLRELAY_EXIT_TIMEOUT", "1")
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    rule = server.faults.outage(seconds=3600)
    fluent.log_metric("m", 1.0)
    started = time.monotonic()
    fluent.end_run()
    assert time.monotonic() - started < 1 + slack(1.5)  # the default limit is 10 s
    server.faults.remove(rule.id)
    assert fluent.flush(deadline(30))
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_set_experiment_survives_a_concurrent_create(
    server: MockServer, client: mlrelay.Client
) -> None:
    """If another process creates the experiment between look-up and create, we re-read it."""
    exp_id = client.create_experiment("shared")
    fluent.set_tracking_uri(server.url)
    # The look-up misses once, as if the other process had not created it yet.
    server.faults.add(
        "status",
        path="*/experiments/get-by-name",
        status=404,
        body={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not yet"},
        times=1,
    )
    assert fluent.set_experiment("shared").experiment_id == exp_id


def test_strict_mode_raises_the_rejection_from_flush(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLRELAY_STRICT=1: a rejected batch surfaces as BadRequestError from flush()."""
    monkeypatch.setenv("MLRELAY_STRICT", "1")
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    client.log_param(run.run_id, "lr", "0.5")
    fluent.log_param("lr", "0.1")
    with pytest.raises(mlrelay.BadRequestError, match="lr"):
        fluent.flush(deadline(20))
    assert fluent.flush(deadline(20))  # raised once; the batch stays set aside in the journal


def test_rejected_credentials_stop_sending_and_keep_entries(
    server: MockServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 stops the sender with one warning; nothing is dropped from the journal."""
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    server.faults.add("status", path="*/runs/log-batch", status=401)
    with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
        for i in range(10):
            fluent.log_metric("m", i, step=i)
        assert fluent.flush(10) is False
    assert any("refused the credentials" in r.message for r in caplog.records)
    journal = session.pipeline.journal  # type: ignore[union-attr]
    assert journal.count_pending([run.local_id]) == 10


def test_a_forked_child_gets_its_own_pipeline(server: MockServer, tmp_path: Path) -> None:
    """A child started with fork logs through its own pipeline; nothing is lost on either side."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import multiprocessing as mp
        import mlrelay
        mlrelay.set_tracking_uri({server.url!r})
        run = mlrelay.start_run()
        mlrelay.log_metric("parent", 1.0)

        def child(run_id):
            with mlrelay.start_run(run_id=run_id):
                for i in range(100):
                    mlrelay.log_metric("child", i, step=i)

        p = mp.get_context("fork").Process(target=child, args=(run.run_id,))
        p.start(); p.join({deadline(60)})
        assert p.exitcode == 0, p.exitcode
        mlrelay.end_run()
        print(run.run_id)
        """
    )
    env = child_env()
    env["MLRELAY_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[-1]
    with mlrelay.Client(tracking_uri=server.url) as c:
        assert len(c.get_metric_history(run_id, "child")) == 100
        assert len(c.get_metric_history(run_id, "parent")) == 1


def test_resuming_a_run_sets_it_running_and_keeps_its_experiment(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_run(run_id=...) and MLFLOW_RUN_ID resume; a deleted run is refused."""
    exp_id = client.create_experiment("resume")
    run_id = client.create_run(exp_id).info.run_id
    client.set_terminated(run_id)
    fluent.set_tracking_uri(server.url)
    with fluent.start_run(run_id=run_id) as run:
        assert run.experiment_id == exp_id
        assert client.get_run(run_id).info.status == "RUNNING"
        fluent.log_metric("more", 1.0)
    assert client.get_run(run_id).info.status == "FINISHED"
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    with fluent.start_run() as again:
        assert again.run_id == run_id
    client.delete_run(run_id)
    with pytest.raises(mlrelay.ValidationError, match="deleted"):
        fluent.start_run(run_id=run_id)


def test_ctrl_c_ends_the_run_killed(server: MockServer, client: mlrelay.Client) -> None:
    """KeyboardInterrupt inside `with start_run()` ends the run KILLED and propagates."""
    fluent.set_tracking_uri(server.url)
    with pytest.raises(KeyboardInterrupt), fluent.start_run() as run:
        raise KeyboardInterrupt
    assert fluent.flush(deadline(20))
    assert client.get_run(run.run_id).info.status == "KILLED"


def test_sync_sends_what_an_exited_process_left(
    server: MockServer, client: mlrelay.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries left at exit during an outage reach the server once via `mlrelay sync`."""
    import io
    import subprocess
    import sys

    from mlrelay import cli

    rule = server.faults.outage(seconds=3600)
    home = tmp_path / "home"
    env = child_env()
    env.update(
        {"MLRELAY_HOME": str(home), "MLRELAY_START_TIMEOUT": "1", "MLRELAY_EXIT_TIMEOUT": "1"}
    )
    script = (
        "import mlrelay\n"
        f"mlrelay.set_tracking_uri({server.url!r})\n"
        "mlrelay.set_experiment('left-behind')\n"
        "with mlrelay.start_run(run_name='orphan'):\n"
        "    mlrelay.log_param('lr', 0.1)\n"
        "    for i in range(3000):\n"
        "        mlrelay.log_metric('m', i, step=i)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert proc.returncode == 0, proc.stderr
    assert "mlrelay sync" in proc.stderr
    server.faults.remove(rule.id)

    monkeypatch.setenv("MLRELAY_HOME", str(home))
    out = io.StringIO()
    assert cli.main(["sync"], out=out) == 0, out.getvalue()
    assert "Synced 1 of 1 run(s); 3,001 entries sent" in out.getvalue()
    again = io.StringIO()
    assert cli.main(["sync"], out=again) == 0  # nothing left, nothing resent
    assert "Nothing to sync" in again.getvalue()

    exp = client.get_experiment_by_name("left-behind")
    assert exp is not None
    [run] = list(client.search_runs([exp.experiment_id], run_view_type="ALL"))
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "orphan"
    assert run.data.params_dict == {"lr": "0.1"}
    assert sorted(p.step for p in client.get_metric_history(run.info.run_id, "m")) == list(
        range(3000)
    )


def test_entries_being_committed_still_count_as_pending(tmp_path: Path) -> None:
    """While the writer commits rows it took off the queue, pending() and flush() see them."""
    import threading

    from mlrelay._pipeline.pipeline import Pipeline

    entered, release = threading.Event(), threading.Event()

    class SlowJournal(Journal):
        def append(self, rows):  # type: ignore[no-untyped-def]
            entered.set()
            release.wait(deadline(10))
            super().append(rows)

    journal = SlowJournal(tmp_path / "j.db")
    journal.add_run(
        local_id="r", tracking_uri="http://x", experiment_id="0", experiment_name=None,
        run_name=None, start_time=1, create_tags={},
    )  # fmt: skip
    pipeline = Pipeline(journal, None)
    try:
        pipeline.log(("r", 0, "m", 1.0, 1, 0))
        pipeline._wake_writer.set()
        assert entered.wait(deadline(5))
        assert pipeline.pending() == 1
        assert pipeline.flush(0.2) is False
        release.set()
        assert pipeline.flush(deadline(5)) is True
        assert journal.count_pending(["r"]) == 1
    finally:
        release.set()
        pipeline.close(1.0)
        journal.close()


def _requests_while_logging(server: MockServer, pace: float) -> tuple[int, int]:
    """Log a point every ``pace`` seconds for 2 s into the active run; (log-batch requests
    the server got meanwhile, points logged)."""

    def batches() -> int:
        return sum(1 for r in server.requests if r.path.endswith("/runs/log-batch"))

    before = batches()
    started, step = time.monotonic(), 0
    while time.monotonic() - started < 2.0:
        fluent.log_metric("m", step, step=step)
        step += 1
        time.sleep(pace)  # (the pace of a training loop, not a synchronisation)
    return batches() - before, step


@pytest.mark.parametrize(
    ("pace", "latency"), [(0.01, 0.0), (0.005, 0.15)], ids=["slow logger", "slow server"]
)
def test_a_loggers_points_go_out_about_once_a_second_and_flush_sends_at_once(
    server: MockServer, client: mlrelay.Client, pace: float, latency: float
) -> None:
    """A loop logging a point every ``pace`` s for 2 s makes a few log-batch requests (at
    most one a second: each request costs the training process CPU), not one per 100 ms
    group commit (about 20 for a point every 10 ms), nor, against a server slower than the
    commit (150 ms a request), one per answer (each answer used to find a newer commit and
    send it at once: 7 to 9 in 2 s). Entries logged after a round began wait for the next
    round unless they fill a request or a flush is under way; ``flush`` then sends the
    rest at once, and every point lands once."""
    fluent.set_tracking_uri(server.url)
    run = fluent.start_run()
    assert fluent.flush(deadline(30))  # the run is on the server; the sender just went round
    if latency:
        server.faults.add("latency", path="*/runs/log-batch", delay=latency)
    during, steps = _requests_while_logging(server, pace)
    assert 1 <= during <= 4, f"{during} log-batch requests for 2 s (pace {pace}, {latency} s)"
    assert fluent.flush(deadline(10))
    assert sorted(p.step for p in client.get_metric_history(run.run_id, "m")) == list(range(steps))


def test_a_run_started_without_asking_the_server_is_created_without_a_search_first(
    server: MockServer, client: mlrelay.Client
) -> None:
    """A framework logger's run (``ask_server=False``) was never sent anywhere, so the
    sender creates it with one runs/create and no search for an earlier create (which
    costs two runs/search per run); a run whose start the server answered too late is
    still looked for first, and each lands once."""
    fluent.set_tracking_uri(server.url)
    with runs.start(ask_server=False).active_run() as quiet:
        fluent.log_metric("m", 1.0)
    assert fluent.flush(deadline(30))
    assert len(server.requests.matching("POST", "/runs/search")) == 0
    assert len(server.requests.matching("POST", "/runs/create")) == 1
    server.faults.add("lose_response", method="POST", path="*/runs/create", times=1)
    with pytest.warns(RuntimeWarning):
        late = fluent.start_run()
    fluent.end_run()
    assert fluent.flush(deadline(30))
    assert len(server.requests.matching("POST", "/runs/search")) >= 1
    keys = sorted(
        r.data.tags_dict["mlflow.mlrelay.clientKey"]
        for r in client.search_runs(["0"], run_view_type="ALL")
    )
    assert keys == sorted([quiet.local_id, late.local_id])
