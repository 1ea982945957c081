"""The logging pipeline on its own: a Journal on a real file, a real Client, and the mock
server on 127.0.0.1 (with its fault injection) as the tracking server."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.pipeline import Pipeline, PipelineOptions
from mlrelay._protocol.batches import KIND_METRIC, KIND_PARAM, KIND_TAG
from tests._timing import slack

T0 = 1_700_000_000_000
DELIVERY_THREADS = ("mlrelay-writer", "mlrelay-sender")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh mock tracking server on a free loopback port."""
    with MockServer() as s:
        yield s


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal on a real file."""
    j = Journal(tmp_path / "home" / "journal.db")
    yield j
    j.close()


@pytest.fixture
def reader(server: MockServer) -> Iterator[mlrelay.Client]:
    """A separate client to read back what reached the server."""
    with mlrelay.Client(tracking_uri=server.url) as c:
        yield c


class Made:
    """A pipeline made by the fixture, with the threads that appeared when it was made."""

    def __init__(self, pipeline: Pipeline, before: set[threading.Thread], threaded: bool) -> None:
        self.pipeline = pipeline
        self.before = before
        self.threaded = threaded

    def threads(self, names: tuple[str, ...] = DELIVERY_THREADS) -> list[threading.Thread]:
        """This pipeline's live threads among ``names`` (started after it was made)."""
        return [
            t
            for t in threading.enumerate()
            if t not in self.before and t.name.startswith(names) and t.is_alive()
        ]


@pytest.fixture
def make_pipeline(journal: Journal) -> Iterator[Callable[..., Made]]:
    """Make pipelines on the journal: online through real Clients (``uri`` given) or offline
    (``uri=None``). Afterwards they are closed, their threads are waited for and the Clients
    closed, before the journal and the server go."""
    made: list[Made] = []
    clients: list[mlrelay.Client] = []

    def factory(uri: str) -> mlrelay.Client:
        client = mlrelay.Client(tracking_uri=uri, timeout=30)
        clients.append(client)
        return client

    def make(
        online: bool = True, options: PipelineOptions | None = None, *, threads: bool = True
    ) -> Made:
        before = set(threading.enumerate())
        pipeline = Pipeline(journal, factory if online else None, options, threads=threads)
        made.append(Made(pipeline, before, threads))
        return made[-1]

    yield make
    for m in made:
        if m.threaded:
            m.pipeline.close(0)
    for m in made:
        assert wait_for(lambda m=m: not m.threads(), 20), "delivery threads outlived the test"
    for c in clients:
        c.close()


def new_run(journal: Journal, uri: str, *, start_time: int = T0) -> str:
    """Record a run of this process for ``uri`` (started long ago by default); its local id."""
    local_id = uuid.uuid4().hex
    journal.add_run(
        local_id=local_id,
        tracking_uri=uri,
        experiment_id="0",
        experiment_name=None,
        run_name=None,
        start_time=start_time,
        create_tags={},
    )
    return local_id


def log_points(pipeline: Pipeline, run: str, n: int, *, key: str = "m", first: int = 0) -> None:
    for i in range(first, first + n):
        pipeline.log((run, KIND_METRIC, key, i * 0.5, T0 + i, i))


def metrics_sent(server: MockServer) -> dict[str, int]:
    """Metric points per key in the log-batch requests the server accepted (resends count)."""
    sent: dict[str, int] = {}
    for request in list(server.requests):
        if request.path.endswith("/runs/log-batch"):
            assert request.wait(10)
            if request.status == 200:
                for m in request.json["metrics"]:
                    sent[m["key"]] = sent.get(m["key"], 0) + 1
    return sent


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- delivery


def test_logged_entries_land_on_the_server_exactly_once(
    server: MockServer, journal: Journal, reader: mlrelay.Client, make_pipeline: Callable[..., Made]
) -> None:
    """log -> flush(): 2,500 points (several batches), a param and a tag are on the server,
    each point sent in exactly one accepted request, and nothing is left pending."""
    pipeline = make_pipeline().pipeline
    run = new_run(journal, server.url)
    pipeline.log((run, KIND_PARAM, "lr", "0.1", None, None))
    log_points(pipeline, run, 2500)
    pipeline.log((run, KIND_TAG, "team", "vision", None, None))
    assert pipeline.flush(30) is True
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert server_id
    history = reader.get_metric_history(server_id, "m")
    assert sorted((p.step, p.value, p.timestamp) for p in history) == [
        (i, i * 0.5, T0 + i) for i in range(2500)
    ]
    data = reader.get_run(server_id).data
    assert data.params_dict == {"lr": "0.1"}
    assert data.tags_dict["team"] == "vision"
    assert metrics_sent(server) == {"m": 2500}
    assert pipeline.pending() == 0
    assert journal.count_pending() == 0


def test_offline_write_now_commits_to_the_journal_and_sends_nothing(
    server: MockServer, journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """Without a client factory (offline), write_now commits every buffered entry to the
    database file (another connection reads them), flush returns True once they are
    journaled, no sender thread runs and the server receives nothing."""
    made = make_pipeline(online=False)
    pipeline = made.pipeline
    run = new_run(journal, server.url)
    log_points(pipeline, run, 300)
    assert pipeline.write_now(10) is True
    other = Journal(journal.path)
    try:
        got = other.pending(run, 0, 1000)
    finally:
        other.close()
    assert [(e.step, e.value) for e in got] == [(i, i * 0.5) for i in range(300)]
    log_points(pipeline, run, 5, first=300)
    assert pipeline.flush(10) is True
    assert journal.count_pending([run]) == 305
    assert [t.name for t in made.threads()] == ["mlrelay-writer"]
    assert len(server.requests) == 0


def test_a_slow_logger_costs_one_commit_per_tick(
    server: MockServer, journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """A point every millisecond for a second: the writer commits once per 100 ms tick
    (what is logged during a commit waits for the next tick), not once more for the
    stragglers each time (about twice as many, each costing the training thread the GIL
    hand-overs of a transaction); every point is journaled once."""
    pipeline = make_pipeline(online=False).pipeline
    run = new_run(journal, server.url)
    commits = 0
    append = journal.append

    def counted(rows: list[tuple[object, ...]]) -> object:
        nonlocal commits
        commits += 1
        return append(rows)  # type: ignore[arg-type]

    journal.append = counted  # type: ignore[assignment,method-assign]
    started, step = time.monotonic(), 0
    while time.monotonic() - started < 1.0:
        log_points(pipeline, run, 1, first=step)
        step += 1
        time.sleep(0.001)  # (the pace of a slow training loop, not a synchronisation)
    elapsed = time.monotonic() - started
    assert commits <= elapsed / 0.1 + 3, f"{commits} commits in {elapsed:.2f} s"
    assert pipeline.write_now(10) is True
    assert journal.count_pending([run]) == step


def test_a_run_record_is_fsynced_by_the_writer_not_by_the_thread_that_adds_it(
    server: MockServer,
    journal: Journal,
    make_pipeline: Callable[..., Made],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With the writer running (``MLRELAY_FSYNC=interval``), a run's record is committed
    with ``synchronous=NORMAL`` on the thread that adds it, so a run start in a training
    loop never waits for the disk, and the writer fsyncs the write-ahead log at its next
    tick (a power loss then costs at most the interval, as for entries). A journal without
    a writer (``mlrelay sync``'s) keeps the fsync in the record's own commit."""
    synced: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((threading.current_thread().name, os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    make_pipeline(online=False)
    assert wait_for(lambda: journal.sync_later)  # (set by the writer thread as it starts)
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    new_run(journal, server.url)
    journal._db.set_trace_callback(None)
    insert = next(i for i, s in enumerate(statements) if "INTO runs" in s)
    assert statements[insert - 1] == "PRAGMA synchronous=NORMAL", statements
    assert statements[insert + 1] == "PRAGMA synchronous=FULL", statements
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    wal = f"{journal.path}-wal"
    assert wait_for(lambda: ("mlrelay-writer", wal) in synced), synced
    assert all(name == "mlrelay-writer" for name, _ in synced), synced

    alone = Journal(tmp_path / "alone" / "journal.db")  # no pipeline, no writer thread
    try:
        alone._db.set_trace_callback(statements.append)
        statements.clear()
        new_run(alone, server.url)
        assert not [s for s in statements if s.startswith("PRAGMA synchronous")], statements
        assert alone._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        alone.close()


def test_a_queued_run_end_is_journaled_behind_its_entries_by_the_writer(
    server: MockServer, journal: Journal, reader: mlrelay.Client, make_pipeline: Callable[..., Made]
) -> None:
    """end_run() returns without a journal commit on the calling thread (a framework
    logger at the end of training); the writer records the end after the entries logged
    before it, and the server gets every point, then the run's end."""
    options = PipelineOptions(flush_interval=30.0)  # no tick during the test: only flush
    pipeline = make_pipeline(options=options).pipeline
    run = new_run(journal, server.url)
    log_points(pipeline, run, 300)
    pipeline.end_run(run, "FAILED", T0 + 1000)
    record = journal.run(run)
    assert record is not None
    assert record.status is None  # nothing was committed by the call
    assert journal.count_pending([run]) == 0
    assert pipeline.flush(30) is True
    record = journal.run(run)
    assert record is not None
    assert (record.status, record.end_time) == ("FAILED", T0 + 1000)
    assert journal.count_pending([run]) == 0
    server_id = record.server_run_id
    assert server_id
    info = reader.get_run(server_id).info
    assert (info.status, info.end_time) == ("FAILED", T0 + 1000)
    assert len(reader.get_metric_history(server_id, "m")) == 300
    paths = [r.path.rsplit("/", 1)[-1] for r in list(server.requests)]
    assert paths.index("update") > max(i for i, p in enumerate(paths) if p == "log-batch")


def test_a_queued_run_end_waits_out_a_locked_journal_and_is_not_lost(
    server: MockServer,
    journal: Journal,
    make_pipeline: Callable[..., Made],
    lock: Callable[[], Callable[[], None]],
) -> None:
    """While other processes hold the journal's lock, the writer keeps the queued entries
    and the run's end and tries again; once the lock is free, both are journaled, the end
    after the entries."""
    run = new_run(journal, server.url)
    pipeline = make_pipeline(online=False).pipeline
    release = lock()
    log_points(pipeline, run, 50)
    pipeline.end_run(run, "FINISHED", T0 + 2000)
    assert pipeline.flush(stall=0.5) is False
    assert pipeline.pending() == 51  # the entries and the end, still in memory
    release()
    assert pipeline.flush(60) is True
    record = journal.run(run)
    assert record is not None
    assert (record.status, record.end_time) == ("FINISHED", T0 + 2000)
    assert journal.count_pending([run]) == 50


@pytest.fixture
def lock(journal: Journal) -> Iterator[Callable[[], Callable[[], None]]]:
    """Take the journal's write lock from another connection (as another process would),
    with a short busy timeout for this process's new connections; the returned function
    lets go of it (and so does the fixture's end)."""
    holder = sqlite3.connect(journal.path, isolation_level=None, timeout=0)

    def release() -> None:
        if holder.in_transaction:
            holder.execute("COMMIT")

    def take() -> Callable[[], None]:
        journal.busy_timeout = 0.2  # the writer thread opens its connection after this
        holder.execute("BEGIN IMMEDIATE")
        return release

    yield take
    release()
    holder.close()


def test_flush_waits_out_a_journal_other_processes_keep_locked(
    journal: Journal,
    make_pipeline: Callable[..., Made],
    lock: Callable[[], Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When another connection holds the journal's lock for longer than the busy timeout
    (many processes sharing one journal), flush() keeps waiting within its own timeout (the
    writer keeps the rows and tries again), says so once as a warning without a traceback,
    and returns True once the lock is free, with every entry journaled."""
    run = new_run(journal, "http://127.0.0.1:9")
    pipeline = make_pipeline(online=False).pipeline
    release = lock()
    result: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="mlrelay"):
        log_points(pipeline, run, 500)
        flusher = threading.Thread(target=lambda: result.append(pipeline.flush(60)))
        flusher.start()
        assert wait_for(lambda: any("stayed locked" in r.getMessage() for r in caplog.records))
        assert flusher.is_alive()  # still waiting: not given up
        assert not result
        release()
        flusher.join(60)
    assert result == [True]
    assert journal.count_pending([run]) == 500
    assert sum("stayed locked" in r.getMessage() for r in caplog.records) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_flush_with_a_stall_limit_gives_up_on_a_journal_that_stays_locked(
    journal: Journal, make_pipeline: Callable[..., Made], lock: Callable[[], Callable[[], None]]
) -> None:
    """flush(stall=...) returns False once no commit went through for that long while the
    journal stays locked (not after a fixed 30 s); the rows stay in memory and a later
    flush, once the lock is free, journals all of them."""
    run = new_run(journal, "http://127.0.0.1:9")
    pipeline = make_pipeline(online=False).pipeline
    release = lock()
    log_points(pipeline, run, 300)
    started = time.monotonic()
    assert pipeline.flush(stall=0.5) is False
    assert time.monotonic() - started < slack(10)
    assert pipeline.pending() == 300
    release()
    assert pipeline.flush(60) is True
    assert journal.count_pending([run]) == 300


def test_pending_counts_buffered_and_unacknowledged_entries(
    journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """pending() counts entries still in memory (a thread-less pipeline keeps them
    buffered) and entries journaled but not acknowledged; acknowledged ones drop out."""
    run = new_run(journal, "http://127.0.0.1:9")
    buffered = make_pipeline(online=False, threads=False).pipeline
    log_points(buffered, run, 7)
    assert buffered.pending() == 7
    assert journal.count_pending() == 0  # nothing reached the journal yet

    pipeline = make_pipeline(online=False).pipeline
    log_points(pipeline, run, 40, first=100)
    assert pipeline.pending() >= 40  # buffered, being written or journaled: never missed
    assert pipeline.write_now(10) is True
    assert pipeline.pending() == 40
    journal.ack(run, journal.pending(run, 0, 100)[9].seq)  # the server acknowledged 10
    assert pipeline.pending() == 30


def test_a_rejected_batch_is_set_aside_and_later_batches_land(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch the server answers 400 is recorded as rejected with the server's message,
    warned about once and not retried; flush still completes and the next batches land."""
    rule = server.faults.add("status", method="POST", path="*/runs/log-batch", status=400)
    pipeline = make_pipeline().pipeline
    run = new_run(journal, server.url)
    with caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
        log_points(pipeline, run, 10, key="refused")
        assert pipeline.flush(20) is True
        refused_requests = next(r.hits for r in server.faults.rules if r.id == rule.id)
        assert refused_requests >= 1
        server.faults.remove(rule.id)
        log_points(pipeline, run, 10, key="later", first=10)
        assert pipeline.flush(20) is True
    assert journal.count_rejected(run) == 10
    rejections = journal.rejections(run)
    assert rejections
    assert all(message for *_, message in rejections)
    assert sum("rejected" in r.getMessage() for r in caplog.records) == 1
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert len(reader.get_metric_history(server_id, "later")) == 10  # type: ignore[arg-type]
    assert reader.get_metric_history(server_id, "refused") == []  # type: ignore[arg-type]
    assert metrics_sent(server) == {"later": 10}
    # Set aside, not retried: no refused point was offered again once the rule was gone.
    offered = sum(
        1
        for r in server.requests
        if r.path.endswith("/runs/log-batch")
        and any(m["key"] == "refused" for m in (r.json or {}).get("metrics", []))
    )
    assert offered == refused_requests


@pytest.mark.parametrize("down", ["outage", "closed port"])
def test_flush_with_the_server_down_returns_false_within_its_bound(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    down: str,
) -> None:
    """With the server answering 503 to everything, or nothing listening on its port,
    flush(timeout) and flush(stall=...) return False close to their bound and the entries
    stay pending; after an outage ends every point lands once."""
    uri = server.url if down == "outage" else f"http://127.0.0.1:{closed_port()}"
    rule = server.faults.outage(seconds=3600) if down == "outage" else None
    pipeline = make_pipeline().pipeline
    run = new_run(journal, uri)
    log_points(pipeline, run, 100)
    started = time.monotonic()
    assert pipeline.flush(timeout=1.0) is False
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0, elapsed
    started = time.monotonic()
    assert pipeline.flush(stall=0.5) is False
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0, elapsed
    assert pipeline.pending() == 100
    assert journal.count_pending([run]) == 100
    if rule is None:
        return
    server.faults.remove(rule.id)
    assert pipeline.flush(30) is True
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert len(reader.get_metric_history(server_id, "m")) == 100  # type: ignore[arg-type]
    assert metrics_sent(server) == {"m": 100}


# --------------------------------------------------------------------------- the disk budget


def test_the_disk_budget_refuses_and_counts_instead_of_blocking(
    journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """Past max_journal_bytes (offline: nothing delivered to reclaim) entries are refused
    and counted per run while log calls stay fast, even with a buffer small enough that
    every call would wait for the writer if the writer waited for space; the journaled
    entries are the first ones logged."""
    run = new_run(journal, "http://127.0.0.1:9")
    budget = journal.used_bytes() + 64 * 1024
    options = PipelineOptions(max_journal_bytes=budget, max_buffer=2_000, wake_at=500)
    pipeline = make_pipeline(online=False, options=options).pipeline
    total = 30_000
    worst = 0.0
    began = time.perf_counter()
    for i in range(total):
        started = time.perf_counter()
        pipeline.log((run, KIND_METRIC, "m", float(i), T0 + i, i))
        worst = max(worst, time.perf_counter() - started)
    elapsed = time.perf_counter() - began
    assert worst < 1.0, f"a log call took {worst:.3f} s"
    assert elapsed < 10.0, f"{total} log calls took {elapsed:.1f} s"
    assert pipeline.write_now(10) is True
    kept = journal.pending(run, 0, total)
    assert 0 < len(kept) < total
    assert [e.step for e in kept] == list(range(len(kept)))
    (status,) = journal.status()
    assert status.refused == total - len(kept)
    assert journal.used_bytes() <= budget + 16 * 1024


# --------------------------------------------------------------------------- closing


def test_close_delivers_returns_zero_and_stops_its_threads(
    server: MockServer, journal: Journal, reader: mlrelay.Client, make_pipeline: Callable[..., Made]
) -> None:
    """close(timeout) with the server up delivers what was logged, returns 0 and ends the
    writer and sender threads."""
    made = make_pipeline()
    assert sorted(t.name for t in made.threads()) == ["mlrelay-sender", "mlrelay-writer"]
    run = new_run(journal, server.url)
    log_points(made.pipeline, run, 50)
    assert made.pipeline.close(10) == 0
    assert not made.threads(("mlrelay-writer",))  # joined by close
    assert wait_for(lambda: not made.threads(), 5)
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert len(reader.get_metric_history(server_id, "m")) == 50  # type: ignore[arg-type]


@pytest.mark.parametrize("online", [True, False], ids=["server down", "offline"])
def test_close_returns_the_count_left_within_its_timeout(
    server: MockServer, journal: Journal, make_pipeline: Callable[..., Made], online: bool
) -> None:
    """close(timeout) with the server down, or offline, returns promptly with the number of
    entries left (all of them journaled) and the writer and sender threads end."""
    server.faults.outage(seconds=3600)
    made = make_pipeline(online=online)
    run = new_run(journal, server.url)
    log_points(made.pipeline, run, 40)
    started = time.monotonic()
    assert made.pipeline.close(0.5) == 40
    assert time.monotonic() - started < 3.0
    assert journal.count_pending([run]) == 40
    assert not made.threads(("mlrelay-writer",))
    assert wait_for(lambda: not made.threads(), 5)


def test_close_returns_only_once_the_sender_has_stopped(
    server: MockServer, journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """When close(timeout) returns, the sender thread is gone (no request of this pipeline
    can still reach the server or move the journal), even if a request was in flight."""
    server.faults.add("latency", method="POST", path="*/runs/log-batch", delay=2.0, times=1)
    made = make_pipeline()
    run = new_run(journal, server.url)
    log_points(made.pipeline, run, 10)
    assert wait_for(
        lambda: any(r.path.endswith("/runs/log-batch") for r in list(server.requests)), 10
    )
    left = made.pipeline.close(0.2)
    alive = [t.name for t in made.threads()]
    assert alive == [], f"close() returned {left} while {alive} still ran"


def test_close_leaves_no_thread_of_the_pipeline_behind(
    server: MockServer, journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """After close() and the sender's exit, no thread the pipeline started is left running."""
    made = make_pipeline()
    run = new_run(journal, server.url)
    log_points(made.pipeline, run, 10)
    assert made.pipeline.close(10) == 0
    assert wait_for(lambda: not made.threads(), 5)
    assert wait_for(lambda: not made.threads(("mlrelay-",)), 1.0), [
        t.name for t in made.threads(("mlrelay-",))
    ]


def test_close_of_a_threadless_pipeline_returns_the_count_left(
    journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """A pipeline made with threads=False closes like any other: it returns the entries left."""
    run = new_run(journal, "http://127.0.0.1:9")
    pipeline = make_pipeline(online=False, threads=False).pipeline
    log_points(pipeline, run, 3)
    assert pipeline.close(0.1) == 3


def test_a_journal_that_cannot_record_delivery_is_retried_without_a_traceback(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the journal cannot record an acknowledgement (SQLite's "database or disk is
    full"), the sender says so once, without a traceback, tries again, and every point
    lands once flush() is True."""
    import sqlite3

    real_ack, failures = journal.ack, [3]

    def ack(local_id: str, seq: int) -> None:
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        real_ack(local_id, seq)

    monkeypatch.setattr(journal, "ack", ack)
    with caplog.at_level(logging.WARNING, logger="mlrelay"):
        pipeline = make_pipeline().pipeline
        run = new_run(journal, server.url)
        log_points(pipeline, run, 500)
        assert pipeline.flush(60) is True
    assert failures == [0]  # the failure was met, three times
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert sorted(p.step for p in reader.get_metric_history(str(server_id), "m")) == list(
        range(500)
    )
    said = [r for r in caplog.records if "cannot record delivery progress" in r.getMessage()]
    assert len(said) == 1
    assert not [r for r in caplog.records if r.exc_info]  # no traceback


# --------------------------------------------------------------- a full disk, online


@pytest.fixture
def fill_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A call that makes the journal's disk full for the pipeline's writer from then on:
    SQLite's page limit on the writer's own connection, set to the size the database has
    (SQLite then fails exactly as on ENOSPC: "database or disk is full")."""
    import sqlite3

    writer_connections: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def recording(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = connect(*args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "mlrelay-writer":
            writer_connections.append(db)
        return db

    monkeypatch.setattr(sqlite3, "connect", recording)

    def fill() -> None:
        assert writer_connections, "the writer has not opened the journal yet"
        for db in writer_connections:
            db.execute("PRAGMA max_page_count = 1")  # never below the current size

    return fill


def test_entries_the_full_journal_cannot_take_are_delivered_from_memory(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    fill_disk: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Online, once the journal's disk is full mid-run, the points and a tag overwritten
    twice that it cannot take still reach the server from memory: every point once, the
    tag's last value wins, nothing is refused, and flush() is True only once they landed."""
    pipeline = make_pipeline().pipeline
    run = new_run(journal, server.url)
    log_points(pipeline, run, 100)
    pipeline.log((run, KIND_TAG, "phase", "journaled", None, None))
    assert pipeline.flush(30) is True
    fill_disk()
    with caplog.at_level(logging.WARNING, logger="mlrelay"):
        log_points(pipeline, run, 5000, first=100)
        pipeline.log((run, KIND_TAG, "phase", "held-1", None, None))
        log_points(pipeline, run, 1000, first=5100)
        pipeline.log((run, KIND_TAG, "phase", "held-2", None, None))
        assert pipeline.flush(30) is True
        assert pipeline.pending() == 0
    server_id = str(journal.run(run).server_run_id)  # type: ignore[union-attr]
    steps = [p.step for p in reader.get_metric_history(server_id, "m")]
    assert sorted(steps) == list(range(6100))
    assert metrics_sent(server) == {"m": 6100}  # each point in exactly one accepted request
    assert reader.get_run(server_id).data.tags["phase"] == "held-2"
    assert pipeline.refused == 0
    assert pipeline.delivered_from_memory > 5000  # the journal could not take them
    (status,) = [s for s in journal.status() if s.run.local_id == run]
    assert status.refused == 0
    told = [r.getMessage() for r in caplog.records if "cannot write to the journal" in r.msg]
    assert len(told) == 1
    assert "database or disk is full" in told[0]
    assert "kept in memory" in told[0]


def test_entries_held_in_memory_are_refused_and_counted_when_the_server_stays_down(
    journal: Journal,
    make_pipeline: Callable[..., Made],
    fill_disk: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Online with the server down and the journal's disk full: the entries held in memory
    count as pending until close(), which keeps its timeout, counts them as refused for
    the run and says how many; journaled plus refused account for every entry."""
    pipeline = make_pipeline().pipeline
    run = new_run(journal, f"http://127.0.0.1:{closed_port()}")
    log_points(pipeline, run, 10)
    assert pipeline.write_now(10)
    fill_disk()
    log_points(pipeline, run, 3000, first=10)
    assert pipeline.write_now(10)
    assert pipeline.pending() == 3010  # held entries are outstanding, not gone
    with caplog.at_level(logging.WARNING, logger="mlrelay"):
        started = time.monotonic()
        left = pipeline.close(1.0)
        took = time.monotonic() - started
    assert took < 1.0 + 2 * 1.0 + slack(1.0), f"close took {took:.1f} s"
    (status,) = [s for s in journal.status() if s.run.local_id == run]
    assert status.refused > 0
    assert left == status.pending
    assert status.pending + status.refused == 3010
    assert pipeline.delivered_from_memory == 0
    said = [r.getMessage() for r in caplog.records if "still in memory" in r.msg]
    assert len(said) == 1
    assert said[0].startswith(f"mlrelay: {status.refused} entries")


def test_a_held_entry_the_server_rejects_is_counted_refused_and_the_others_land(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    fill_disk: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A held entry the server refuses (a param changed: 400) cannot be set aside in the
    full journal: it is counted as refused and warned about once; the held points around
    it land once and flush() returns True."""
    pipeline = make_pipeline().pipeline
    run = new_run(journal, server.url)
    pipeline.log((run, KIND_PARAM, "lr", "0.1", None, None))
    assert pipeline.flush(30) is True
    fill_disk()
    with caplog.at_level(logging.WARNING, logger="mlrelay"):
        log_points(pipeline, run, 300)
        pipeline.log((run, KIND_PARAM, "lr", "0.2", None, None))
        log_points(pipeline, run, 300, first=300)
        assert pipeline.flush(30) is True
    server_id = str(journal.run(run).server_run_id)  # type: ignore[union-attr]
    assert sorted(p.step for p in reader.get_metric_history(server_id, "m")) == list(range(600))
    assert reader.get_run(server_id).data.params["lr"] == "0.1"
    assert pipeline.delivered_from_memory == 600
    (status,) = [s for s in journal.status() if s.run.local_id == run]
    assert status.refused == 1
    said = [r.getMessage() for r in caplog.records if "held in memory" in r.msg]
    assert len(said) == 1
    assert "rejected 1 entries" in said[0]


def test_a_flush_sends_what_a_round_left_for_the_next_one_at_once(
    server: MockServer, journal: Journal, reader: mlrelay.Client, make_pipeline: Callable[..., Made]
) -> None:
    """Entries that do not fill a request, read after a round's first request, wait for
    the next round while a loop logs; during a flush they go in the same round. With the
    next round a minute away (``send_interval``, and no early wake-up by the writer), a
    flush of 2,500 points (a round reads 1,000, then 1,000, then 500) returns once all of
    them landed, well within that minute."""
    options = PipelineOptions(send_interval=60.0, send_at=100_000)
    pipeline = make_pipeline(options=options).pipeline
    run = new_run(journal, server.url)
    log_points(pipeline, run, 1)
    assert pipeline.flush(slack(10)) is True  # the run is on the server
    log_points(pipeline, run, 2500, first=1)
    assert pipeline.flush(slack(10)) is True
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert server_id is not None
    steps = sorted(int(m.step) for m in reader.get_metric_history(server_id, "m"))
    assert steps == list(range(2501))


def test_a_run_the_server_does_not_have_yet_makes_no_request_in_its_first_interval(
    server: MockServer,
    journal: Journal,
    reader: mlrelay.Client,
    make_pipeline: Callable[..., Made],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run journaled without asking the server (a framework logger's), still open and
    with fewer entries than a request holds, makes no request for ``send_interval`` after
    its start (a training shorter than that makes none while it trains), then is created
    with its points without a flush; every point lands once. A run started a while ago
    (the other tests' runs) goes at once, as before."""
    rounds: list[float] = []
    send_round = Pipeline._send_round

    def counted(self: Pipeline) -> bool:
        try:
            return send_round(self)
        finally:
            rounds.append(time.monotonic())

    monkeypatch.setattr(Pipeline, "_send_round", counted)
    pipeline = make_pipeline(options=PipelineOptions(send_interval=2.0)).pipeline
    # The sender's first round (with its thread) is over: the one the test asks for below
    # starts after it (a wake-up during a round means "send now", by design).
    assert wait_for(lambda: bool(rounds), slack(10))
    started = time.time()
    run = new_run(journal, server.url, start_time=int(started * 1000))
    log_points(pipeline, run, 300)
    assert pipeline.write_now(slack(10))
    pipeline._wake_sender.set()  # a round now (as a timer would)
    quiet_until = started + 1.5
    while time.time() < quiet_until:  # a window in which nothing may happen, not a sync
        assert not server.requests.matching("POST", "/runs/create")
        time.sleep(0.05)
    give_up = time.monotonic() + slack(10)
    while not server.requests.matching("POST", "/runs/create"):
        assert time.monotonic() < give_up, "the run was never created without a flush"
        time.sleep(0.02)
    assert time.time() >= started + 2.0 - 0.01  # not before its first interval was over
    assert pipeline.flush(slack(10)) is True
    server_id = journal.run(run).server_run_id  # type: ignore[union-attr]
    assert server_id is not None
    steps = sorted(int(m.step) for m in reader.get_metric_history(server_id, "m"))
    assert steps == list(range(300))
    assert len(server.requests.matching("POST", "/runs/create")) == 1


def test_the_sender_wakes_when_a_run_it_left_is_due_not_a_whole_interval_later(
    journal: Journal, make_pipeline: Callable[..., Made]
) -> None:
    """After a round that left a young run, the sender's next round comes when that run
    is due (at most ``send_interval`` away), so the run's first request is not delayed by
    up to a second interval."""
    pipeline = make_pipeline(online=False, threads=False).pipeline
    interval = pipeline.options.send_interval
    assert pipeline._next_round_in() == interval
    pipeline.sender.due = time.time() + interval / 4
    assert interval / 4 - 0.05 < pipeline._next_round_in() <= interval / 4 + 0.002
    pipeline.sender.due = time.time() - 1.0  # overdue: at once
    assert pipeline._next_round_in() <= 0.002
    pipeline.sender.due = time.time() + 10 * interval  # never longer than the interval
    assert pipeline._next_round_in() == interval
