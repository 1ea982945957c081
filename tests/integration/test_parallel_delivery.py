"""Parallel delivery over real sockets to the mock server: several metric batches of a run
and several runs in flight at once, acknowledged oldest first, within an adaptive limit
that a small server (a capacity fault answering 429 beyond it) pulls down."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import fluent
from tests._timing import deadline

LOG_BATCH = "*/runs/log-batch"


@pytest.fixture(autouse=True)
def _short_end_run_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """end_run waits at most 1 s for delivery while a test holds log-batch down."""
    monkeypatch.setenv("MLRELAY_EXIT_TIMEOUT", "1")


@contextlib.contextmanager
def backlog(server: MockServer, runs: int, points: int) -> Iterator[list[str]]:
    """Log ``runs`` runs of ``points`` points each (a tag set before and after the points)
    while log-batch is down, and yield the run ids; the outage ends when the block does,
    after the rules the block adds (so the sender meets them with its backlog)."""
    outage = server.faults.add("status", path=LOG_BATCH, status=503)
    fluent.set_tracking_uri(server.url)
    fluent.set_experiment("parallel")
    ids = []
    for r in range(runs):
        with fluent.start_run(run_name=f"r{r}") as run:
            fluent.set_tag("phase", "start")
            for step in range(points):
                fluent.log_metric("loss", 1.0 / (step + 1), step=step)
            fluent.set_tag("phase", "end")
        ids.append(run.info.run_id)
    yield ids
    server.faults.remove(outage.id)


def assert_each_point_once(client: mlrelay.Client, run_ids: list[str], points: int) -> None:
    """Every run holds ``points`` points of ``loss``, steps 0..points-1 once each, and the
    tag set last; the run is FINISHED."""
    for run_id in run_ids:
        steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
        assert steps == list(range(points)), run_id
        run = client.get_run(run_id)
        assert run.data.tags_dict["phase"] == "end"
        assert run.info.status == "FINISHED"


def test_batches_of_one_run_go_several_at_once_and_land_once(
    server: MockServer, client: mlrelay.Client
) -> None:
    """A backlog of 20,000 points of one run is delivered with more than one log-batch
    request in flight at a time (the mock counts them), each point once, the later tag
    winning."""
    with backlog(server, runs=1, points=20_000) as ids:
        observe = server.faults.add("capacity", path=LOG_BATCH, limit=1000)
        server.faults.add("latency", path=LOG_BATCH, delay=0.05)
    assert fluent.flush(deadline(60))
    peak = next(r.peak for r in server.faults.rules if r.id == observe.id)
    assert peak >= 2, f"at most {peak} log-batch request in flight"
    assert_each_point_once(client, ids, 20_000)


def test_max_in_flight_bounds_the_requests_of_all_runs(
    server: MockServer, client: mlrelay.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLRELAY_MAX_IN_FLIGHT=1 (for many processes sharing a small server): a backlog of
    three runs goes one log-batch request at a time (the mock counts them), and every point
    still lands once."""
    monkeypatch.setenv("MLRELAY_MAX_IN_FLIGHT", "1")
    with backlog(server, runs=3, points=6_000) as ids:
        observe = server.faults.add("capacity", path=LOG_BATCH, limit=1000)
        server.faults.add("latency", path=LOG_BATCH, delay=0.05)
    assert fluent.flush(deadline(60))
    rule = next(r for r in server.faults.rules if r.id == observe.id)
    assert rule.seen >= 18, f"only {rule.seen} log-batch requests"
    assert rule.peak == 1, f"{rule.peak} log-batch requests in flight at once"
    assert_each_point_once(client, ids, 6_000)


def test_several_runs_are_delivered_at_once(server: MockServer, client: mlrelay.Client) -> None:
    """Runs of only params and tags (requests that go alone within a run) still overlap
    on the wire: the sender delivers several runs at once."""
    with backlog(server, runs=6, points=0) as ids:
        observe = server.faults.add("capacity", path=LOG_BATCH, limit=1000)
        server.faults.add("latency", path=LOG_BATCH, delay=0.2)
    assert fluent.flush(deadline(60))
    peak = next(r.peak for r in server.faults.rules if r.id == observe.id)
    assert peak >= 2, f"at most {peak} log-batch request in flight"
    for run_id in ids:
        assert client.get_run(run_id).data.tags_dict["phase"] == "end"


def test_a_small_server_is_not_overrun(server: MockServer, client: mlrelay.Client) -> None:
    """A server that takes two requests at once and answers 429 (Retry-After) beyond
    them: the limit comes down, few requests are turned away, and every point lands once."""
    with backlog(server, runs=4, points=10_000) as ids:
        small = server.faults.add("capacity", path=LOG_BATCH, limit=2, retry_after=0.05)
        server.faults.add("latency", path=LOG_BATCH, delay=0.02)
    assert fluent.flush(deadline(120))
    assert_each_point_once(client, ids, 10_000)
    rule = next(r for r in server.faults.rules if r.id == small.id)
    served = rule.seen - rule.hits
    assert rule.peak <= 2
    assert rule.hits <= served // 4, f"{rule.hits} turned away, {served} served"


def test_lost_answers_among_parallel_requests_leave_no_gap_and_no_duplicate(
    server: MockServer, client: mlrelay.Client
) -> None:
    """The server commits two log-batch requests whose answers are lost while others are
    in flight: the watermark stays before them, they are sent again, and the server has
    each point once."""
    with backlog(server, runs=2, points=15_000) as ids:
        lost = server.faults.add("lose_response", path=LOG_BATCH, after=5, times=2)
        server.faults.add("latency", path=LOG_BATCH, delay=0.05)
    assert fluent.flush(deadline(120))
    assert next(r.hits for r in server.faults.rules if r.id == lost.id) == 2
    assert_each_point_once(client, ids, 15_000)


def test_a_slow_request_does_not_hold_up_the_ones_after_it(
    server: MockServer, client: mlrelay.Client
) -> None:
    """One log-batch request takes 3 s while the others take 50 ms: the places the others
    free are filled at once (answers come out of order), so the rest of the backlog reaches
    the server while the slow one is still on the wire; its points are acknowledged in
    order all the same, and each point lands once."""
    with backlog(server, runs=1, points=60_000) as ids:
        slow = server.faults.add("latency", path=LOG_BATCH, delay=3.0, after=20, times=1)
        server.faults.add("latency", path=LOG_BATCH, delay=0.05)
    assert fluent.flush(deadline(120))
    assert_each_point_once(client, ids, 60_000)
    assert next(r.hits for r in server.faults.rules if r.id == slow.id) == 1
    served = [r for r in server.requests if r.path.endswith("/runs/log-batch") and r.status != 503]
    stalled = served[20]  # the 21st the rule saw after the outage: the slow one
    meanwhile = [r for r in served if stalled.time < r.time < stalled.time + 3.0]
    # Waiting behind the oldest request, at most (limit - 1) others could start meanwhile.
    assert len(meanwhile) >= 20, f"{len(meanwhile)} requests while the slow one was out"
