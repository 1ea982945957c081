"""``plan_sync`` and ``run_sync`` on their own: a journal on a real file holding runs no
live process sends, real Clients, and the mock server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.sync import PlannedRun, RunResult, plan_sync, run_sync
from mlrelay._protocol.batches import KIND_METRIC, KIND_PARAM, KIND_TAG
from tests.unit.test_journal import T0, add_run, journal_in_dead_process, metrics


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh mock tracking server on a free loopback port."""
    with MockServer() as s:
        yield s


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Where the journal database lives."""
    return tmp_path / "home" / "journal.db"


@pytest.fixture
def reader(server: MockServer) -> Iterator[mlrelay.Client]:
    """A separate client to read back what reached the server."""
    with mlrelay.Client(tracking_uri=server.url) as c:
        yield c


def client_for(uri: str) -> mlrelay.Client:
    """What run_sync builds a Client with (run_sync closes it)."""
    return mlrelay.Client(tracking_uri=uri, max_retries=1, retry_budget=2.0)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_run(local_id: str, uri: str, rows: list[Any], **extra: Any) -> dict[str, Any]:
    """A run recorded by a process that then exited (see journal_in_dead_process)."""
    return {"local_id": local_id, "tracking_uri": uri, "start_time": T0, "rows": rows, **extra}


def points(run: str, n: int, *, key: str = "m") -> list[list[Any]]:
    return [[run, KIND_METRIC, key, i * 0.25, T0 + i, i] for i in range(n)]


def by_id(planned: list[PlannedRun]) -> dict[str, PlannedRun]:
    return {p.run.local_id: p for p in planned}


def metrics_sent(server: MockServer) -> dict[str, int]:
    """Metric points per server run in the log-batch requests it accepted."""
    sent: dict[str, int] = {}
    for request in list(server.requests):
        if request.path.endswith("/runs/log-batch"):
            assert request.wait(10)
            if request.status == 200:
                body = request.json
                sent[body["run_id"]] = sent.get(body["run_id"], 0) + len(body["metrics"])
    return sent


# --------------------------------------------------------------------------- plan_sync


@pytest.fixture
def mixed_journal(journal_path: Path) -> Iterator[Journal]:
    """Runs of every kind a sync meets:

    - dead-a: a dead process's run for http://127.0.0.1:5001/ with 3 entries;
    - dead-b: a dead process's run for another server, http://127.0.0.1:5002, 1 entry;
    - no-uri: a dead process's run logged without a tracking URI, 2 entries;
    - released: ended FINISHED and released by this process (offline), 4 entries;
    - live: this process's, not released, 1 entry;
    - synced: delivered and released by this process (final status sent).
    """
    journal_in_dead_process(
        journal_path,
        [
            dead_run("dead-a", "http://127.0.0.1:5001/", points("dead-a", 3)),
            dead_run("dead-b", "http://127.0.0.1:5002", points("dead-b", 1), server_run_id="s-b"),
            dead_run("no-uri", "", points("no-uri", 2)),
        ],
    )
    journal = Journal(journal_path)
    add_run(journal, "released", tracking_uri="http://127.0.0.1:5001", offline=True)
    journal.append(metrics("released", range(4)))
    journal.end_run("released", "FINISHED", T0 + 3)
    journal.release("released")
    add_run(journal, "live", tracking_uri="http://127.0.0.1:5001")
    journal.append(metrics("live", [1.0]))
    add_run(journal, "synced", tracking_uri="http://127.0.0.1:5001", offline=True)
    journal.append(metrics("synced", [1.0]))
    journal.ack("synced", journal.pending("synced", 0, 10)[-1].seq)
    journal.end_run("synced", "FINISHED", T0)
    journal.mark_final_sent("synced", "FINISHED")
    journal.release("synced")
    yield journal
    journal.close()


def test_plan_lists_runs_no_live_process_sends_with_destination_and_counts(
    mixed_journal: Journal,
) -> None:
    """plan_sync lists every undelivered run with where it goes and how many entries are
    pending; dead and released runs are to send, a live process's run and a run without
    a destination are listed with the reason they are skipped, delivered runs not at all."""
    planned = plan_sync(mixed_journal)
    runs = by_id(planned)
    assert set(runs) == {"dead-a", "dead-b", "no-uri", "released", "live"}
    got = {k: (p.destination, p.pending, p.rejected, p.live) for k, p in runs.items()}
    assert got == {
        "dead-a": ("http://127.0.0.1:5001", 3, 0, False),
        "dead-b": ("http://127.0.0.1:5002", 1, 0, False),
        "no-uri": (None, 2, 0, False),
        "released": ("http://127.0.0.1:5001", 4, 0, False),
        "live": ("http://127.0.0.1:5001", 1, 0, True),
    }
    for ready in ("dead-a", "dead-b", "released"):
        assert runs[ready].skip_reason is None
    assert "without a tracking URI" in (runs["no-uri"].skip_reason or "")
    assert f"pid {os.getpid()}" in (runs["live"].skip_reason or "")
    assert "running" in (runs["live"].skip_reason or "")


def test_plan_honours_the_uri_and_run_filters(mixed_journal: Journal) -> None:
    """tracking_uri keeps runs recorded for that server (trailing slash or not) and sends
    runs without one there; default_uri only fills in a missing destination; run_ids
    selects runs by local or server id."""
    only = by_id(plan_sync(mixed_journal, tracking_uri="http://127.0.0.1:5001/"))
    assert set(only) == {"dead-a", "no-uri", "released", "live"}
    assert only["no-uri"].destination == "http://127.0.0.1:5001"
    assert only["no-uri"].skip_reason is None

    fallback = by_id(plan_sync(mixed_journal, default_uri="http://127.0.0.1:5009"))
    assert len(fallback) == 5
    assert fallback["no-uri"].destination == "http://127.0.0.1:5009"
    assert fallback["dead-b"].destination == "http://127.0.0.1:5002"

    assert set(by_id(plan_sync(mixed_journal, run_ids=["dead-a"]))) == {"dead-a"}
    assert set(by_id(plan_sync(mixed_journal, run_ids=["s-b", "released"]))) == {
        "dead-b",
        "released",
    }
    assert plan_sync(mixed_journal, run_ids=["no-such-run"]) == []


def test_plan_offers_delivered_runs_with_rejections_only_for_a_retry(
    journal_path: Path,
) -> None:
    """A run delivered except for set-aside entries is not planned, unless retry_rejected."""
    journal = Journal(journal_path)
    try:
        add_run(journal, "r", offline=True)
        journal.append(metrics("r", range(5)))
        seqs = [e.seq for e in journal.pending("r", 0, 10)]
        journal.ack("r", seqs[2])
        journal.reject("r", seqs[3], seqs[4], "refused")
        journal.end_run("r", "FINISHED", T0)
        journal.mark_final_sent("r", "FINISHED")
        journal.release("r")
        assert plan_sync(journal) == []
        (retry,) = plan_sync(journal, retry_rejected=True)
        assert (retry.run.local_id, retry.pending, retry.rejected) == ("r", 0, 1)
    finally:
        journal.close()


# --------------------------------------------------------------------------- run_sync


@pytest.fixture
def offline_runs(journal_path: Path, server: MockServer) -> Iterator[Journal]:
    """Two runs for the mock server that no live process sends:

    - crashed: a dead process's run, never ended: a param, a tag, 1,500 points;
    - finished: ended FINISHED at T0+50 and released by this process, 5 points.
    """
    journal_in_dead_process(
        journal_path,
        [
            dead_run(
                "crashed",
                server.url,
                [
                    ["crashed", KIND_PARAM, "lr", "0.1", None, None],
                    *points("crashed", 1500),
                    ["crashed", KIND_TAG, "phase", "train", None, None],
                ],
            )
        ],
    )
    journal = Journal(journal_path)
    add_run(journal, "finished", tracking_uri=server.url, offline=True, start_time=T0)
    journal.append([tuple(p) for p in points("finished", 5, key="f")])
    journal.end_run("finished", "FINISHED", T0 + 50)
    journal.release("finished")
    yield journal
    journal.close()


def _server_runs(reader: mlrelay.Client) -> dict[str, Any]:
    """The server's runs in the default experiment, by the client key they were made with."""
    runs = reader.search_runs(["0"], run_view_type="ALL")
    return {r.data.tags_dict["mlflow.mlrelay.clientKey"]: r for r in runs}


def test_run_sync_delivers_every_entry_once_and_ends_an_unended_run_killed(
    offline_runs: Journal, server: MockServer, reader: mlrelay.Client
) -> None:
    """run_sync creates each run once, sends every entry in one accepted request each,
    ends the unended run KILLED at its last logged moment, keeps an ended run's status,
    reports each run done and leaves nothing pending."""
    progress: list[int] = []
    seen: list[RunResult] = []
    planned = plan_sync(offline_runs)
    results = run_sync(
        offline_runs,
        planned,
        client_for,
        progress=lambda entries, _size: progress.append(entries),
        on_run=seen.append,
    )
    assert seen == results
    got = {r.local_id: (r.sent, r.left, r.rejected, r.final_sent, r.reason) for r in results}
    assert got == {
        "crashed": (1502, 0, 0, True, None),
        "finished": (5, 0, 0, True, None),
    }
    assert all(r.done for r in results)
    assert sum(progress) == 1507

    on_server = _server_runs(reader)
    assert set(on_server) == {"crashed", "finished"}
    crashed, finished = on_server["crashed"], on_server["finished"]
    assert (crashed.info.status, crashed.info.end_time) == ("KILLED", T0 + 1499)
    assert (finished.info.status, finished.info.end_time) == ("FINISHED", T0 + 50)
    history = reader.get_metric_history(crashed.info.run_id, "m")
    assert sorted((p.step, p.value, p.timestamp) for p in history) == [
        (i, i * 0.25, T0 + i) for i in range(1500)
    ]
    assert crashed.data.params_dict == {"lr": "0.1"}
    assert crashed.data.tags_dict["phase"] == "train"
    assert len(reader.get_metric_history(finished.info.run_id, "f")) == 5
    assert metrics_sent(server) == {crashed.info.run_id: 1500, finished.info.run_id: 5}
    creates = [r for r in server.requests if r.path.endswith("/runs/create")]
    assert len(creates) == 2

    assert offline_runs.count_pending() == 0
    for local_id in ("crashed", "finished"):
        record = offline_runs.run(local_id)
        assert record is not None
        assert record.final_sent is True
        assert record.pid == 0  # released: no process holds it


def test_run_sync_is_idempotent(
    offline_runs: Journal, server: MockServer, reader: mlrelay.Client
) -> None:
    """After a sync, a new plan is empty, and running the old plan again sends nothing
    (the stale claims fail): the server still holds each point once."""
    planned = plan_sync(offline_runs)
    assert all(r.done for r in run_sync(offline_runs, planned, client_for))
    requests_after_first = len(server.requests)

    assert plan_sync(offline_runs) == []
    assert run_sync(offline_runs, plan_sync(offline_runs), client_for) == []
    again = run_sync(offline_runs, planned, client_for)
    assert [(r.local_id, r.sent, r.left) for r in again] == [
        (p.run.local_id, 0, 0) for p in planned
    ]
    assert all(r.live and "claimed it first" in (r.reason or "") for r in again)
    assert len(server.requests) == requests_after_first
    on_server = _server_runs(reader)
    assert len(reader.get_metric_history(on_server["crashed"].info.run_id, "m")) == 1500
    assert len(reader.get_metric_history(on_server["finished"].info.run_id, "f")) == 5


def test_a_lost_response_is_resent_and_the_server_keeps_each_point_once(
    offline_runs: Journal, server: MockServer, reader: mlrelay.Client
) -> None:
    """The server stores a batch but its answer is lost: run_sync sends that batch again
    and completes; the server holds each point once."""
    rule = server.faults.add("lose_response", method="POST", path="*/runs/log-batch", times=1)
    results = run_sync(offline_runs, plan_sync(offline_runs), client_for)
    assert next(r.hits for r in server.faults.rules if r.id == rule.id) == 1
    assert all(r.done for r in results)
    crashed = _server_runs(reader)["crashed"]
    history = reader.get_metric_history(crashed.info.run_id, "m")
    assert sorted(p.step for p in history) == list(range(1500))


def test_an_unreachable_server_is_a_reason_not_an_exception(
    journal_path: Path, server: MockServer, reader: mlrelay.Client
) -> None:
    """Runs for a server nobody listens for (a closed port on 127.0.0.1) are reported with
    "unreachable" as their reason, promptly and without raising; their entries stay pending
    and they can be planned again; a run for a reachable server in the same sync lands."""
    down = f"http://127.0.0.1:{closed_port()}"
    journal_in_dead_process(
        journal_path,
        [
            dead_run("down-1", down, points("down-1", 3)),
            dead_run("down-2", down, points("down-2", 2)),
            dead_run("up", server.url, points("up", 4)),
        ],
    )
    journal = Journal(journal_path)
    try:
        started = time.monotonic()
        results = run_sync(journal, plan_sync(journal), client_for)
        assert time.monotonic() - started < 20
        got = {r.local_id: r for r in results}
        for local_id, pending in (("down-1", 3), ("down-2", 2)):
            result = got[local_id]
            assert "unreachable" in (result.reason or ""), result
            assert (result.sent, result.left, result.final_sent) == (0, pending, False)
            assert result.done is False
            assert journal.count_pending([local_id]) == pending
        assert got["up"].done
        assert len(reader.get_metric_history(_server_runs(reader)["up"].info.run_id, "m")) == 4
        replanned = by_id(plan_sync(journal))
        assert set(replanned) == {"down-1", "down-2"}
        assert all(p.skip_reason is None for p in replanned.values())
    finally:
        journal.close()


def test_a_destination_with_credentials_is_not_written_to_the_journal(
    journal_path: Path, server: MockServer, reader: mlrelay.Client
) -> None:
    """Syncing a run logged without a tracking URI to a URI with user:password@ delivers it
    and leaves the password in none of the journal's files."""
    secret = "s3cret-Pa55word"
    journal_in_dead_process(journal_path, [dead_run("no-uri", "", points("no-uri", 2))])
    with_credentials = server.url.replace("http://", f"http://alice:{secret}@")
    journal = Journal(journal_path)
    try:
        results = run_sync(journal, plan_sync(journal, tracking_uri=with_credentials), client_for)
        assert [r.done for r in results] == [True]
        assert set(_server_runs(reader)) == {"no-uri"}
    finally:
        journal.close()
    stored = b"".join(p.read_bytes() for p in journal_path.parent.iterdir() if p.is_file())
    assert secret.encode() not in stored
