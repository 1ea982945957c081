"""The on-disk journal on its own, on real SQLite files: order, watermark, rejections,
ownership and claims, reclaiming space, blobs, file modes, non-finite values."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from mlrelay import JournalDamagedError
from mlrelay._pipeline import probe
from mlrelay._pipeline.journal import Journal, owner_identity, process_start
from mlrelay._protocol.batches import (
    KIND_ARTIFACT,
    KIND_DELETE_TAG,
    KIND_LINKED_METRIC,
    KIND_METRIC,
    KIND_PARAM,
    KIND_TAG,
    Entry,
)

Row = tuple[str, int, str, Any, "int | None", "int | None"]
T0 = 1_700_000_000_000


def now_ms() -> int:
    return int(time.time() * 1000)


def add_run(
    journal: Journal,
    local_id: str,
    *,
    tracking_uri: str = "http://127.0.0.1:5000",
    offline: bool = False,
    server_run_id: str | None = None,
    start_time: int | None = None,
) -> None:
    """Record a run owned by this process."""
    journal.add_run(
        local_id=local_id,
        tracking_uri=tracking_uri,
        experiment_id="0",
        experiment_name=None,
        run_name=f"name-{local_id}",
        start_time=now_ms() - 60_000 if start_time is None else start_time,
        create_tags={"origin": "unit-test"},
        server_run_id=server_run_id,
        offline=offline,
    )


def metrics(run: str, values: Sequence[float], *, key: str = "m", first_step: int = 0) -> list[Row]:
    """Metric rows with distinct timestamps and steps."""
    return [
        (run, KIND_METRIC, key, float(v), T0 + first_step + i, first_step + i)
        for i, v in enumerate(values)
    ]


_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mlrelay._pipeline.journal import Journal

    spec = json.loads(sys.argv[1])
    journal = Journal(Path(spec["path"]))
    for run in spec["runs"]:
        journal.add_run(
            local_id=run["local_id"],
            tracking_uri=run["tracking_uri"],
            experiment_id=run.get("experiment_id", "0"),
            experiment_name=None,
            run_name=run["local_id"],
            start_time=run["start_time"],
            create_tags={},
            server_run_id=run.get("server_run_id"),
            offline=run.get("offline", True),
        )
        if run["rows"]:
            journal.append([tuple(r) for r in run["rows"]])
        if run.get("status"):
            journal.end_run(run["local_id"], run["status"], run["end_time"])
    journal.close()
    print(__import__("os").getpid())
    """
)


def journal_in_dead_process(path: Path, runs: list[dict[str, Any]]) -> int:
    """Record runs (and their rows) from a child process that then exits: their owner is a
    dead process, as after a crash. Returns the child's pid.

    Each run is a dict with local_id, tracking_uri, start_time, rows and optionally offline
    (default True), server_run_id, status and end_time.
    """
    spec = json.dumps({"path": str(path), "runs": runs})
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, spec], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Where the journal database lives (its directory does not exist yet)."""
    return tmp_path / "home" / "journal.db"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[Journal]:
    """A fresh journal on a real file."""
    j = Journal(journal_path)
    yield j
    j.close()


def _same(a: float | str | None, b: float | str | None) -> bool:
    """Equality in which NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


# --------------------------------------------------------------------------- order and watermark


def test_pending_is_in_append_order_and_after_the_watermark_only(journal: Journal) -> None:
    """Entries come back in log order with rising seq, each kind with its value; ack moves
    the watermark (never backwards) and pending() returns only what lies after it."""
    add_run(journal, "a")
    add_run(journal, "b")
    journal.append(metrics("a", [1.0, 2.0]))
    journal.append(metrics("b", [9.0]))  # another run's entries interleave in seq
    journal.append(
        [
            ("a", KIND_PARAM, "lr", "0.1", None, None),
            ("a", KIND_TAG, "team", "vision", None, None),
            ("a", KIND_DELETE_TAG, "team", "", None, None),
            *metrics("a", [3.0], first_step=2),
        ]
    )
    got = journal.pending("a", 0, 100)
    assert [(e.kind, e.key, e.value) for e in got] == [
        (KIND_METRIC, "m", 1.0),
        (KIND_METRIC, "m", 2.0),
        (KIND_PARAM, "lr", "0.1"),
        (KIND_TAG, "team", "vision"),
        (KIND_DELETE_TAG, "team", ""),
        (KIND_METRIC, "m", 3.0),
    ]
    assert [(e.timestamp, e.step) for e in got[:2]] == [(T0, 0), (T0 + 1, 1)]
    assert got[2].timestamp is None
    assert got[2].step is None
    seqs = [e.seq for e in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    (b_entry,) = journal.pending("b", 0, 100)
    assert seqs[1] < b_entry.seq < seqs[2]

    assert journal.pending("a", 0, 2) == got[:2]  # the limit
    assert journal.pending("a", 0, 100, last=seqs[3]) == got[:4]  # the upper bound
    assert journal.run("a").acked_seq == 0  # type: ignore[union-attr]
    journal.ack("a", seqs[2])
    assert journal.run("a").acked_seq == seqs[2]  # type: ignore[union-attr]
    assert journal.pending("a", journal.run("a").acked_seq, 100) == got[3:]  # type: ignore[union-attr]
    assert journal.count_pending(["a"]) == 3
    journal.ack("a", seqs[0])  # an older acknowledgement does not move it back
    assert journal.run("a").acked_seq == seqs[2]  # type: ignore[union-attr]
    assert journal.count_pending(["a"]) == 3
    assert journal.count_pending(["b"]) == 1


@pytest.mark.parametrize("kept_in_memory", [False, True], ids=["from the table", "recent"])
def test_a_new_runs_first_read_does_not_scan_the_delivered_entries_before_it(
    journal: Journal, kept_in_memory: bool
) -> None:
    """The journal keeps delivered entries (until ``mlrelay purge``), and the checks behind
    a read scan the table from the run's watermark. A new run's watermark starts at the
    journal's last seq, so its first read costs what its own entries cost, however many
    entries came before it (it used to start at 0: each new run's first send scanned the
    whole journal, 5-10 ms of CPU with 100,000 entries kept)."""
    if kept_in_memory:
        journal.keep_recent()
    add_run(journal, "old")
    for start in range(0, 40_000, 1000):
        journal.append(metrics("old", [1.0] * 1000, first_step=start))
    journal.ack("old", 40_000)  # all delivered (seqs start at 1)
    add_run(journal, "new")
    rows = metrics("new", [2.0] * 10)
    journal.append(rows)
    new = journal.run("new")
    assert new is not None
    assert new.acked_seq == 40_000  # the last seq when it was added: none of its own

    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    journal._db.set_progress_handler(count, 100)  # (every 100 SQLite VM instructions)
    try:
        got = journal.pending("new", new.acked_seq, 100)
    finally:
        journal._db.set_progress_handler(None, 100)
    assert [(e.key, e.value, e.step) for e in got] == [(r[2], r[3], r[5]) for r in rows]
    assert journal.count_pending(["new"]) == 10
    # Its 10 entries take a few hundred instructions; a scan of the 40,000 before them
    # takes hundreds of thousands.
    assert steps[0] < 50, f"{steps[0] * 100} SQLite instructions for 10 entries"


def test_a_group_commit_is_one_statement_and_its_guards_keep_the_gil(
    journal: Journal, journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement and syscall of a commit that lets go of the GIL costs a training
    loop holding the GIL one wait: up to 1,000 entries commit as one INSERT (its own
    transaction, no BEGIN and COMMIT), and the damage guards read the -shm and -wal files
    through ``probe`` (which keeps the GIL), with no ``os`` call; what was committed reads
    back in order."""
    add_run(journal, "a")
    journal.append(metrics("a", [0.0]))  # the guards are armed once the files exist
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    os_calls: list[str] = []
    for name in ("stat", "fstat", "pread", "open"):
        real = getattr(os, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            os_calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    probed: list[tuple[str, object]] = []
    for name in ("size", "size_at", "head"):
        real = getattr(probe, name)

        def recording(*args: Any, _real: Any = real, _name: str = name) -> Any:
            probed.append((_name, args[0]))
            return _real(*args)

        monkeypatch.setattr(probe, name, recording)
    journal.append(metrics("a", [float(i) for i in range(1000)], first_step=1))
    monkeypatch.undo()
    journal._db.set_trace_callback(None)

    assert len(statements) == 1, statements
    assert statements[0].startswith("INSERT INTO entries")
    assert probe.AVAILABLE
    assert os_calls == []
    assert [name for name, _ in probed] == ["size", "head", "size_at"]
    assert probed[2][1] == os.fsencode(journal_path.with_name("journal.db-wal"))
    got = journal.pending("a", 0, 2000)
    assert [e.step for e in got] == list(range(1001))
    assert [e.value for e in got[1:]] == [float(i) for i in range(1000)]


def test_the_probe_reads_what_os_reads(tmp_path: Path) -> None:
    """``probe.size``, ``size_at`` and ``head`` give the size and first bytes ``os``
    gives; a missing file has size -1 and a file too short for the bytes asked, None."""
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 40)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert probe.size(fd) == os.fstat(fd).st_size == 10240
        assert probe.head(fd, 48) == os.pread(fd, 48, 0) == bytes(range(48))
        assert probe.head(fd, 20000) is None
    finally:
        os.close(fd)
    assert probe.size_at(os.fsencode(path)) == 10240
    assert probe.size_at(os.fsencode(tmp_path / "missing")) == -1


def test_a_write_ahead_log_cut_under_an_open_journal_is_found_before_the_next_statement(
    journal: Journal, journal_path: Path
) -> None:
    """The guards' quick look (``probe``) finds the -wal shorter than its index says and
    leaves the decision to the look by path: the journal is damaged, nothing more is
    written to it, and the error names the file and the cut."""
    add_run(journal, "a")
    for chunk in range(3):
        journal.append(metrics("a", [float(i) for i in range(300)], first_step=chunk * 300))
    wal = journal_path.with_name("journal.db-wal")
    size = wal.stat().st_size
    assert size > 100_000
    os.truncate(wal, size // 2)
    with pytest.raises(JournalDamagedError, match=r"write-ahead log .*was cut to"):
        journal.append(metrics("a", [1.0], first_step=900))
    assert journal.damage is not None
    assert str(wal) in journal.damage


def test_count_pending_counts_unacknowledged_entries_per_run_and_overall(journal: Journal) -> None:
    """count_pending sums entries after each run's own watermark, for all runs or the given
    ones; an empty selection is 0, an unknown run adds nothing."""
    add_run(journal, "a")
    add_run(journal, "b")
    journal.append(metrics("a", range(5)))
    journal.append(metrics("b", range(3)))
    assert journal.count_pending() == 8
    assert journal.count_pending(["a"]) == 5
    assert journal.count_pending(["a", "b", "nope"]) == 8
    assert journal.count_pending([]) == 0
    last_a = journal.pending("a", 0, 100)[-2].seq
    journal.ack("a", last_a)
    assert journal.count_pending(["a"]) == 1
    assert journal.count_pending() == 4


def test_reject_sets_a_range_aside_and_moves_past_it(journal: Journal) -> None:
    """reject() records the range with the server's message, counts its entries as
    rejected, moves the watermark past it; drop_rejection forgets it."""
    add_run(journal, "a")
    journal.append(metrics("a", range(10)))
    seqs = [e.seq for e in journal.pending("a", 0, 100)]
    journal.ack("a", seqs[3])
    journal.reject("a", seqs[4], seqs[6], "INVALID_PARAMETER_VALUE: no")
    assert journal.rejections("a") == [("a", seqs[4], seqs[6], "INVALID_PARAMETER_VALUE: no")]
    assert journal.count_rejected("a") == 3
    assert journal.run("a").acked_seq == seqs[6]  # type: ignore[union-attr]
    assert journal.count_pending(["a"]) == 3
    assert [e.seq for e in journal.entries_between("a", seqs[4], seqs[6])] == seqs[4:7]
    (status,) = journal.status()
    assert status.rejected == [(seqs[4], seqs[6], "INVALID_PARAMETER_VALUE: no")]
    assert status.pending == 3
    journal.drop_rejection("a", seqs[4])
    assert journal.rejections("a") == []
    assert journal.count_rejected("a") == 0


def test_end_run_records_the_final_status_until_it_is_sent(journal: Journal) -> None:
    """end_run stores status and end time; mark_final_sent only counts for the status that
    was recorded, and a run whose final status was sent is no longer unfinished."""
    add_run(journal, "a")
    assert journal.run("a").status is None  # type: ignore[union-attr]
    journal.end_run("a", "FINISHED", T0 + 5)
    record = journal.run("a")
    assert record is not None
    assert (record.status, record.end_time, record.final_sent) == ("FINISHED", T0 + 5, False)
    journal.mark_final_sent("a", "FAILED")  # the status changed meanwhile: not sent
    assert journal.run("a").final_sent is False  # type: ignore[union-attr]
    assert [r.local_id for r in journal.runs()] == ["a"]
    journal.mark_final_sent("a", "FINISHED")
    assert journal.run("a").final_sent is True  # type: ignore[union-attr]
    assert journal.runs() == []
    assert [r.local_id for r in journal.runs(unfinished_only=False)] == ["a"]


def test_non_finite_metric_values_round_trip(journal: Journal) -> None:
    """A NaN metric comes back as NaN, +inf as +inf and -inf as -inf, also after reopening."""
    add_run(journal, "a")
    journal.append(metrics("a", [math.nan, math.inf, -math.inf, 0.0, -1.5e308]))
    path = journal.path
    for source in (journal, Journal(path)):
        values = [e.value for e in source.pending("a", 0, 100)]
        assert math.isnan(values[0])  # type: ignore[arg-type]
        assert values[1:] == [math.inf, -math.inf, 0.0, -1.5e308]
        assert all(isinstance(v, float) for v in values)
        if source is not journal:
            source.close()


def test_a_linked_metric_point_keeps_its_link_and_is_sent_with_it(journal: Journal) -> None:
    """A point queued as KIND_LINKED_METRIC comes back as a metric point (NaN too) carrying
    its link, and its log-batch JSON has the link's fields; plain points have none."""
    from mlrelay._protocol.batches import pack_batch

    add_run(journal, "a")
    link = json.dumps({"model_id": "m-1", "dataset_name": "d", "dataset_digest": "x"})
    journal.append(
        [
            ("a", KIND_LINKED_METRIC, "acc", (0.5, link), 1, 0),
            ("a", KIND_LINKED_METRIC, "gap", (math.nan, link), 1, 0),
            ("a", KIND_METRIC, "loss", 0.25, 1, 0),
        ]
    )
    acc, gap, loss = journal.pending("a", 0, 10)
    assert (acc.kind, acc.value, acc.link) == (KIND_METRIC, 0.5, link)
    assert (gap.kind, gap.link) == (KIND_METRIC, link)
    assert math.isnan(gap.value)  # type: ignore[arg-type]
    assert (loss.value, loss.link) == (0.25, None)
    body = json.loads(pack_batch([acc, gap, loss]).body("r"))
    assert body["metrics"][0] == {
        "key": "acc", "value": 0.5, "timestamp": 1, "step": 0,
        "model_id": "m-1", "dataset_name": "d", "dataset_digest": "x",
    }  # fmt: skip
    assert body["metrics"][1]["value"] == "NaN"
    assert body["metrics"][2] == {"key": "loss", "value": 0.25, "timestamp": 1, "step": 0}


# --------------------------------------------------------------------------- ownership


def test_owner_identity_is_this_process() -> None:
    """owner_identity() is this process's pid and its start time from /proc."""
    pid, started = owner_identity()
    assert pid == os.getpid()
    assert started is not None
    assert started == process_start(os.getpid())


def test_a_run_of_this_process_is_not_orphaned(journal: Journal) -> None:
    """A run recorded by this live process is its own: not an orphan, listed as mine."""
    add_run(journal, "mine")
    record = journal.run("mine")
    assert record is not None
    assert (record.pid, record.owner_start) == owner_identity()
    assert record.orphaned is False
    assert journal.orphans() == []
    assert [r.local_id for r in journal.runs(mine=True)] == ["mine"]


def test_a_run_of_a_dead_process_is_orphaned(journal_path: Path) -> None:
    """A run recorded by a process that has exited is an orphan and not this process's."""
    child = journal_in_dead_process(
        journal_path,
        [
            {
                "local_id": "dead",
                "tracking_uri": "http://127.0.0.1:5000",
                "start_time": T0,
                "rows": [],
            }
        ],
    )
    journal = Journal(journal_path)
    try:
        record = journal.run("dead")
        assert record is not None
        assert record.pid == child != os.getpid()
        assert record.orphaned is True
        assert [r.local_id for r in journal.orphans()] == ["dead"]
        assert journal.runs(mine=True) == []
    finally:
        journal.close()


def test_a_recycled_pid_is_not_mistaken_for_the_owner(journal: Journal) -> None:
    """A record naming this pid with another process start time (the pid was reused after
    its owner died) is an orphan: the start time tells the processes apart."""
    add_run(journal, "a")
    record = journal.run("a")
    assert record is not None
    assert record.owner_start is not None
    assert record.orphaned is False
    assert dataclasses.replace(record, owner_start=record.owner_start + 1).orphaned is True


def test_release_hands_a_run_to_no_one_and_resume_takes_it_back(journal: Journal) -> None:
    """release() gives up ownership (the run becomes an orphan); resume() makes it this
    process's again and unended, ready to send a new final status."""
    add_run(journal, "a", offline=True)
    journal.end_run("a", "FINISHED", T0)
    journal.mark_final_sent("a", "FINISHED")
    journal.release("a")
    released = journal.run("a")
    assert released is not None
    assert released.pid == 0
    assert released.orphaned is True
    assert journal.runs(mine=True, unfinished_only=False) == []
    journal.resume("a")
    resumed = journal.run("a")
    assert resumed is not None
    assert (resumed.pid, resumed.owner_start) == owner_identity()
    assert (resumed.status, resumed.end_time, resumed.final_sent) == (None, None, False)
    assert resumed.orphaned is False


def test_release_by_another_owner_changes_nothing(journal_path: Path) -> None:
    """Only the owner can release a run: releasing a dead process's run from here is a no-op."""
    journal_in_dead_process(
        journal_path,
        [{"local_id": "x", "tracking_uri": "", "start_time": T0, "rows": []}],
    )
    journal = Journal(journal_path)
    try:
        before = journal.run("x")
        journal.release("x")
        assert journal.run("x") == before
    finally:
        journal.close()


def test_resume_supersedes_dead_records_of_the_same_server_run(journal_path: Path) -> None:
    """Resuming a run marks an unended record of the same server run left by a dead process
    RESUMED, so only the live record sends a final status."""
    journal_in_dead_process(
        journal_path,
        [
            {
                "local_id": "old",
                "tracking_uri": "http://127.0.0.1:5000",
                "start_time": T0,
                "server_run_id": "srv-1",
                "rows": [["old", KIND_METRIC, "m", 1.0, T0, 0]],
            }
        ],
    )
    journal = Journal(journal_path)
    try:
        add_run(journal, "new", server_run_id="srv-1")
        journal.resume("new")
        assert journal.run("old").status == "RESUMED"  # type: ignore[union-attr]
        assert journal.run("new").status is None  # type: ignore[union-attr]
        assert journal.count_pending(["old"]) == 1  # its entries are still to be sent
    finally:
        journal.close()


# --------------------------------------------------------------------------- claims


@pytest.fixture
def orphan_journal(journal_path: Path) -> Iterator[Journal]:
    """A journal holding 'orph', an unended run with three metric points, whose process died."""
    journal_in_dead_process(
        journal_path,
        [
            {
                "local_id": "orph",
                "tracking_uri": "http://127.0.0.1:5000",
                "start_time": T0,
                "rows": [["orph", KIND_METRIC, "m", float(i), T0 + 10 * i, i] for i in range(3)],
            }
        ],
    )
    j = Journal(journal_path)
    yield j
    j.close()


def test_claim_takes_an_orphan_and_ends_it_killed_at_its_last_entry(
    orphan_journal: Journal,
) -> None:
    """A claim makes the orphan this process's and ends an unended run KILLED at the time
    of its last logged entry."""
    (orphan,) = orphan_journal.orphans()
    assert orphan_journal.claim(orphan) is True
    record = orphan_journal.run("orph")
    assert record is not None
    assert (record.pid, record.owner_start) == owner_identity()
    assert (record.status, record.end_time) == ("KILLED", T0 + 20)
    assert orphan_journal.orphans() == []
    assert [r.local_id for r in orphan_journal.runs(mine=True)] == ["orph"]


def test_claim_keeps_the_status_of_a_run_that_ended(journal: Journal) -> None:
    """A claimed run that had ended keeps its own status and end time."""
    add_run(journal, "a", offline=True)
    journal.end_run("a", "FINISHED", T0 + 7)
    journal.release("a")
    assert journal.claim(journal.run("a")) is True  # type: ignore[arg-type]
    record = journal.run("a")
    assert record is not None
    assert (record.status, record.end_time) == ("FINISHED", T0 + 7)


def test_two_claims_of_one_orphan_one_wins(orphan_journal: Journal) -> None:
    """Two claimers holding the same reading of an orphan, on separate connections (as two
    processes would): exactly one claim succeeds."""
    other = Journal(orphan_journal.path)
    try:
        seen_here = orphan_journal.run("orph")
        seen_there = other.run("orph")
        assert seen_here == seen_there is not None
        results = [other.claim(seen_there), orphan_journal.claim(seen_here)]  # type: ignore[arg-type]
        assert results == [True, False]
    finally:
        other.close()


def test_racing_claims_from_threads_have_a_single_winner(orphan_journal: Journal) -> None:
    """Eight threads, each with its own connection, claim the same orphan at once: one wins."""
    reading = orphan_journal.run("orph")
    assert reading is not None
    handles = [Journal(orphan_journal.path) for _ in range(8)]
    barrier = threading.Barrier(len(handles))
    results: list[bool] = []
    lock = threading.Lock()

    def claim(handle: Journal) -> None:
        barrier.wait()
        won = handle.claim(reading)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for h in handles:
        h.close()
    assert sorted(results) == [False] * 7 + [True]


def test_a_claim_based_on_a_stale_reading_fails(orphan_journal: Journal) -> None:
    """A claim succeeds only against the owner it read: after the run was claimed and
    released, the old reading cannot claim it, and neither can a reading taken before an
    earlier release (every release is distinct, so there is no ABA)."""
    stale = orphan_journal.run("orph")
    assert stale is not None
    assert orphan_journal.claim(stale) is True
    orphan_journal.release("orph")
    assert orphan_journal.claim(stale) is False  # the dead owner it names is gone
    released_once = orphan_journal.run("orph")
    assert released_once is not None
    assert released_once.pid == 0
    assert orphan_journal.claim(released_once) is True
    orphan_journal.release("orph")
    # Released again: pid 0 as before, but a reading of the first release is stale.
    assert orphan_journal.run("orph").pid == 0  # type: ignore[union-attr]
    assert orphan_journal.claim(released_once) is False
    assert orphan_journal.claim(orphan_journal.run("orph")) is True  # type: ignore[arg-type]


# --------------------------------------------------------------------------- space


def test_delete_delivered_frees_only_acknowledged_entries(journal: Journal, tmp_path: Path) -> None:
    """delete_delivered removes acknowledged entries (and their blobs) of every run but
    keeps rejected ranges, unacknowledged entries and their blobs."""
    add_run(journal, "a")
    add_run(journal, "b")
    sent_file = tmp_path / "sent.txt"
    sent_file.write_text("sent")
    kept_file = tmp_path / "kept.txt"
    kept_file.write_text("kept")
    sent_blob = journal.add_blob("a", sent_file)
    kept_blob = journal.add_blob("a", kept_file)

    def artifact(blob: str) -> Row:
        spec = {"blob": blob, "artifact_path": None, "dir": False}
        return ("a", KIND_ARTIFACT, "", json.dumps(spec), None, None)

    journal.append([*metrics("a", range(5)), artifact(sent_blob)])  # seq a1..a6
    journal.append(metrics("a", range(2), first_step=5))  # a7, a8: to be rejected
    journal.append([*metrics("a", range(2), first_step=7), artifact(kept_blob)])  # pending
    journal.append(metrics("b", range(4)))  # another run, never acknowledged
    a = [e.seq for e in journal.pending("a", 0, 100)]
    journal.ack("a", a[5])
    journal.reject("a", a[6], a[7], "refused")
    assert journal.delete_delivered() == 6
    left = [e.seq for e in journal.pending("a", 0, 100)]
    assert left == a[6:]
    assert journal.count_rejected("a") == 2
    assert journal.count_pending(["a"]) == 3
    assert journal.count_pending(["b"]) == 4
    assert not journal.blob_path(sent_blob).exists()
    assert journal.blob_path(kept_blob).read_text() == "kept"
    assert journal.delete_delivered() == 0  # nothing more to free


def test_used_bytes_grows_with_entries_and_shrinks_when_they_are_freed(journal: Journal) -> None:
    """used_bytes counts the pages in use: it grows as entries are appended and drops once
    delivered entries are deleted (the disk budget depends on both)."""
    add_run(journal, "a")
    empty = journal.used_bytes()
    assert empty > 0
    for chunk in range(4):
        journal.append(metrics("a", range(5000), first_step=chunk * 5000))
    full = journal.used_bytes()
    assert full - empty >= 20_000 * 20  # at least 20 bytes per point (about 40 measured)
    journal.ack("a", journal.pending("a", 0, 20_000)[-1].seq)
    assert journal.delete_delivered() == 20_000
    assert journal.used_bytes() < empty + (full - empty) // 4


def test_purge_removes_synced_runs_and_only_with_force_dead_undelivered_ones(
    journal_path: Path,
) -> None:
    """purge() removes a run whose entries and final status were delivered; an undelivered
    run of a dead process only with force; a live process's run never; runs younger than
    older_than_ms stay."""
    journal_in_dead_process(
        journal_path,
        [
            {
                "local_id": "dead",
                "tracking_uri": "http://127.0.0.1:5000",
                "start_time": now_ms() - 60_000,
                "rows": [["dead", KIND_METRIC, "m", 1.0, T0, 0]],
            }
        ],
    )
    journal = Journal(journal_path)
    try:
        add_run(journal, "synced")
        journal.append(metrics("synced", range(3)))
        journal.ack("synced", journal.pending("synced", 0, 10)[-1].seq)
        journal.end_run("synced", "FINISHED", now_ms() - 30_000)
        journal.mark_final_sent("synced", "FINISHED")
        blob_source = journal_path.parent / "f.txt"
        blob_source.write_text("x")
        journal.add_blob("synced", blob_source)
        assert (journal.blob_dir / "synced").exists()
        add_run(journal, "live")
        journal.append(metrics("live", range(2)))

        # Too young to go; the delivered entries of the synced run are freed all the same.
        assert journal.purge(older_than_ms=24 * 3600 * 1000, force=True) == (0, 3)
        assert len(journal.runs(unfinished_only=False)) == 3
        assert journal.purge(older_than_ms=None, force=False) == (1, 0)
        assert {r.local_id for r in journal.runs(unfinished_only=False)} == {"dead", "live"}
        assert not (journal.blob_dir / "synced").exists()
        assert journal.purge(older_than_ms=None, force=False) == (0, 0)
        assert journal.purge(older_than_ms=None, force=True) == (1, 1)
        assert [r.local_id for r in journal.runs(unfinished_only=False)] == ["live"]
        assert journal.count_pending(["live"]) == 2
    finally:
        journal.close()


# --------------------------------------------------------------------------- files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_files_are_private(journal: Journal, journal_path: Path) -> None:
    """The database, its WAL and shared-memory files are 0600 and their directory 0700."""
    add_run(journal, "a")
    journal.append(metrics("a", [1.0]))
    assert _mode(journal_path.parent) == 0o700
    assert _mode(journal_path) == 0o600
    for suffix in ("-wal", "-shm"):
        companion = journal_path.with_name(journal_path.name + suffix)
        assert companion.exists(), suffix
        assert _mode(companion) == 0o600, suffix


def test_blobs_are_private_copies(journal: Journal, tmp_path: Path) -> None:
    """add_blob copies a file or a directory tree into the 0700 blob area as 0600 files;
    editing the original afterwards does not change what will be sent."""
    source = tmp_path / "model.txt"
    source.write_text("v1")
    os.chmod(source, 0o644)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    file_blob = journal.blob_path(journal.add_blob("a", source))
    tree_blob = journal.blob_path(journal.add_blob("a", tree))
    source.write_text("v2, edited after logging")
    assert file_blob.read_text() == "v1"
    assert file_blob.name == "model.txt"
    assert _mode(journal.blob_dir) == 0o700
    assert _mode(file_blob) == 0o600
    assert _mode(file_blob.parent) == 0o700
    copied = sorted(p.relative_to(tree_blob).as_posix() for p in tree_blob.rglob("*"))
    assert copied == ["a.txt", "sub", "sub/b.txt"]
    assert (tree_blob / "sub" / "b.txt").read_text() == "b"
    assert all(_mode(p) == 0o600 for p in tree_blob.rglob("*") if p.is_file())


def _journal_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def test_journal_files_hold_the_run_data_in_clear(journal: Journal, journal_path: Path) -> None:
    """Sanity check for the credentials test below: what add_run records is findable in
    the files by a byte search (so an absent secret is really absent)."""
    add_run(journal, "a", tracking_uri="http://127.0.0.1:5000/findable-marker")
    assert b"findable-marker" in _journal_bytes(journal_path.parent)


def test_credentials_in_a_tracking_uri_never_reach_the_file(
    journal: Journal, journal_path: Path
) -> None:
    """A tracking URI with user:password@ is recorded without its user-info: the password
    appears in none of the journal's files."""
    secret = "s3cret-Pa55word"
    add_run(journal, "a", tracking_uri=f"http://alice:{secret}@127.0.0.1:5000")
    add_run(journal, "b", tracking_uri="")
    journal.set_tracking_uri("b", f"http://alice:{secret}@127.0.0.1:5000")
    assert secret.encode() not in _journal_bytes(journal_path.parent)
    assert "@" not in journal.run("a").tracking_uri  # type: ignore[union-attr]


# --------------------------------------------------------------------------- crash recovery

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_./-0123456789", min_size=1, max_size=12)
_rows = st.one_of(
    st.tuples(
        st.just(KIND_METRIC),
        _keys,
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, 2**53),
        st.integers(-(2**31), 2**31 - 1),
    ),
    st.tuples(
        st.sampled_from([KIND_PARAM, KIND_TAG]), _keys, st.text(max_size=200), st.none(), st.none()
    ),
)
_groups = st.lists(st.lists(_rows, min_size=1, max_size=40), min_size=2, max_size=5)


def _matches(entries: list[Entry], expected: list[tuple[int, tuple[Any, ...]]]) -> bool:
    """Whether entries are exactly the expected (seq, (kind, key, value, ts, step)), in order."""
    if len(entries) != len(expected):
        return False
    return all(
        e.seq == seq
        and (e.kind, e.key, e.timestamp, e.step) == (kind, key, ts, step)
        and _same(e.value, value)
        for e, (seq, (kind, key, value, ts, step)) in zip(entries, expected, strict=True)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=_groups, data=st.data())
def test_a_torn_wal_tail_loses_at_most_the_torn_group(
    groups: list[list[tuple[Any, ...]]], data: st.DataObject
) -> None:
    """After a crash that tears the WAL inside the last group's frames (cut short, or a span
    overwritten with garbage), the journal opens, holds every earlier group exactly, holds
    the torn group entirely or not at all, and takes new appends."""
    *committed, torn = groups
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        path = home / "journal.db"
        wal = path.with_name("journal.db-wal")
        journal = Journal(path)
        add_run(journal, "r")
        # Checkpoints are held off by a second connection with an open read transaction:
        # a checkpoint never copies WAL frames newer than a live reader's snapshot into the
        # database, and the WAL is not restarted under it. So every group committed below
        # is appended to the -wal file as new frames (asserted through the file sizes).
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM runs").fetchone()
            db_size = path.stat().st_size
            for group in committed:
                journal.append([("r", *row) for row in group])
            rows = [row for group in committed for row in group]
            before_torn = journal.pending("r", 0, 10**6)
            assert len(before_torn) == len(rows)
            expected = [(e.seq, row) for e, row in zip(before_torn, rows, strict=True)]
            wal_k = wal.stat().st_size
            journal.append([("r", *row) for row in torn])
            wal_k1 = wal.stat().st_size
            after_torn = journal.pending("r", 0, 10**6)
            assert wal_k1 > wal_k
            assert path.stat().st_size == db_size  # nothing was checkpointed
            assert len(after_torn) == len(expected) + len(torn)
            expected_all = expected + [
                (e.seq, row) for e, row in zip(after_torn[len(expected) :], torn, strict=True)
            ]

            # The crash: the files as the dead process left them, torn inside the last group.
            crash = Path(tmp) / "crash"
            crash.mkdir(mode=0o700)
            copied = crash / "journal.db"
            shutil.copyfile(path, copied)
            shutil.copyfile(wal, crash / "journal.db-wal")
            if data.draw(st.booleans(), label="shm left behind"):
                shm = path.with_name("journal.db-shm")
                shutil.copyfile(shm, crash / "journal.db-shm")
        finally:
            reader.close()
            journal.close()

        start = data.draw(st.integers(wal_k, wal_k1 - 1), label="tear offset")
        with open(crash / "journal.db-wal", "r+b") as f:
            if data.draw(st.sampled_from(["truncate", "garbage"]), label="tear") == "truncate":
                f.truncate(start)
            else:
                length = data.draw(st.integers(1, wal_k1 - start), label="garbage length")
                fill = data.draw(st.sampled_from(["zeros", "ones", "random"]), label="garbage")
                seed = data.draw(st.integers(0, 2**32), label="seed")
                f.seek(start)
                f.write(
                    bytes(length)
                    if fill == "zeros"
                    else b"\xff" * length
                    if fill == "ones"
                    else random.Random(seed).randbytes(length)
                )

        recovered = Journal(copied)
        try:
            entries = recovered.pending("r", 0, 10**6)
            kept_torn = _matches(entries, expected_all)
            note(f"{len(expected)} committed entries, torn group of {len(torn)} kept: {kept_torn}")
            assert kept_torn or _matches(entries, expected), (
                f"{len(entries)} entries survived; expected {len(expected)} "
                f"or {len(expected_all)}, in order, with the same values"
            )
            assert recovered.run("r") is not None
            recovered.append([("r", KIND_METRIC, "after", 1.0, T0, 0)])
            again = recovered.pending("r", 0, 10**6)
            assert again[:-1] == entries
            assert again[-1].key == "after"
            # (a lost group's seqs may be used again: nothing after it survived to point at them)
            assert again[-1].seq > max(e.seq for e in entries)
        finally:
            recovered.close()
        check = sqlite3.connect(copied)
        try:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            check.close()


@pytest.mark.parametrize("pages_cut", [1, 3, "half"])
def test_a_torn_main_database_fails_with_a_clear_error(
    journal: Journal, journal_path: Path, tmp_path: Path, pages_cut: int | str
) -> None:
    """After a checkpoint moved everything into the main file, tearing whole pages off its
    tail makes opening or reading the journal raise JournalDamagedError (mlrelay's, naming
    SQLite's "database disk image is malformed") promptly: no hang, no silently shortened
    journal, no raw sqlite3 error."""
    add_run(journal, "r")
    for chunk in range(10):
        journal.append(metrics("r", range(300), first_step=chunk * 300))
    journal.close()  # the last connection checkpoints the WAL into the database
    wal = journal_path.with_name("journal.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    size = journal_path.stat().st_size
    page = 4096
    assert size % page == 0
    assert size // page > 8
    cut = size // page // 2 if pages_cut == "half" else int(pages_cut)
    torn = tmp_path / "torn" / "journal.db"
    torn.parent.mkdir(mode=0o700)
    shutil.copyfile(journal_path, torn)
    with open(torn, "r+b") as f:
        f.truncate(size - cut * page)

    outcome: list[object] = []

    def open_and_read() -> None:
        try:
            j = Journal(torn)
            try:
                outcome.append(len(j.pending("r", 0, 10**6)))
                outcome.append(j.count_pending())
            finally:
                j.close()
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=open_and_read, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "opening a torn journal hung"
    assert time.monotonic() - started < 5
    assert outcome, "the worker recorded nothing"
    error = outcome[-1]
    assert isinstance(error, JournalDamagedError), f"read {outcome} from a torn journal"
    assert not isinstance(error, sqlite3.Error)
    assert str(torn) in str(error)
    assert "malformed" in str(error) or "not a database" in str(error)


def test_a_fork_never_leaves_the_shared_descriptor_lock_held_in_the_child() -> None:
    """A fork while a background thread holds the lock on the journals' shared -shm
    descriptors waits for it: the child can take the lock (its first journal would
    otherwise hang for ever)."""
    from mlrelay._pipeline import journal as journal_module

    lock = journal_module._SHM_FDS_LOCK
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    threading.Timer(0.2, release.set).start()  # lets go while the fork waits for it
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the lock can be taken
        os._exit(0 if lock.acquire(timeout=2) else 1)
    _, status = os.waitpid(pid, 0)
    thread.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
