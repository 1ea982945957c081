"""The journal's schema version: old journals are migrated once, under SQLite's write lock,
however many processes open them at once; a journal from a newer mlrelay is refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlrelay import JournalError, JournalVersionError
from mlrelay._pipeline.journal import SCHEMA_VERSION, Journal
from mlrelay._protocol.batches import KIND_METRIC, KIND_PARAM
from tests._timing import deadline

# The layout mlrelay 0.1 wrote (no schema version; runs without owner_start and offline;
# no servers or refused tables), as its journal module created it.
SCHEMA_0_1 = """
CREATE TABLE IF NOT EXISTS runs (
    local_id        TEXT PRIMARY KEY,
    tracking_uri    TEXT NOT NULL,
    experiment_id   TEXT,
    experiment_name TEXT,
    server_run_id   TEXT,
    run_name        TEXT,
    start_time      INTEGER NOT NULL,
    create_tags     TEXT NOT NULL DEFAULT '{}',
    status          TEXT,
    end_time        INTEGER,
    acked_seq       INTEGER NOT NULL DEFAULT 0,
    final_sent      INTEGER NOT NULL DEFAULT 0,
    pid             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    run   TEXT NOT NULL,
    kind  INTEGER NOT NULL,
    key   TEXT NOT NULL,
    num   REAL,
    text  TEXT,
    ts    INTEGER,
    step  INTEGER
);
CREATE INDEX IF NOT EXISTS entries_by_run ON entries(run, seq);
CREATE TABLE IF NOT EXISTS rejected (
    run      TEXT NOT NULL,
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL,
    message  TEXT NOT NULL,
    at       INTEGER NOT NULL
);
"""

T0 = 1_700_000_000_000
POINTS = 50


def old_journal(path: Path) -> None:
    """Write a journal as mlrelay 0.1 left it: one ended run of a dead process, 50 points
    and a param, none delivered."""
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA_0_1)
        db.execute(
            "INSERT INTO runs (local_id, tracking_uri, experiment_id, run_name, start_time, "
            "status, end_time, pid, created_at) VALUES ('old', 'http://127.0.0.1:1', '0', "
            "'legacy', ?, 'FINISHED', ?, 999999999, ?)",
            (T0, T0 + POINTS, T0),
        )
        db.executemany(
            "INSERT INTO entries (run, kind, key, num, text, ts, step) VALUES (?,?,?,?,?,?,?)",
            [("old", KIND_METRIC, "m", float(i), None, T0 + i, i) for i in range(POINTS)]
            + [("old", KIND_PARAM, "lr", None, "0.1", T0, None)],
        )
        assert db.execute("PRAGMA user_version").fetchone() == (0,)
    finally:
        db.close()


# Each child imports mlrelay, says READY, waits for GO on stdin, then opens the journal,
# reads the old run and appends to a run of its own: all four open within microseconds.
_OPENER_START = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlrelay._pipeline.journal import Journal
    from mlrelay._protocol.batches import KIND_METRIC

    print("READY", flush=True)
    sys.stdin.readline()
    journal = Journal(Path(sys.argv[1]))
    """
)
_OPENER_END = textwrap.dedent(
    """
    me = "child-" + sys.argv[2]
    journal.add_run(local_id=me, tracking_uri="", experiment_id="0", experiment_name=None,
                    run_name=me, start_time=1, create_tags={})
    journal.append([(me, KIND_METRIC, "m", 1.0, 1, 0)])
    journal.close()
    print("OK", flush=True)
    """
)
_OPENER = (
    _OPENER_START
    + textwrap.dedent(
        """
    run = journal.run("old")
    assert run is not None and run.status == "FINISHED", run
    assert len(journal.pending("old", 0, 1000)) == 51
    """
    )
    + _OPENER_END
)

# The same, for a journal that does not exist yet: every child creates or opens it.
_NEW_OPENER = _OPENER_START + _OPENER_END


def _open_at_once(path: Path, processes: int, code: str = _OPENER) -> list[tuple[int, str]]:
    """Start ``processes`` children running ``code``, release them together; their (exit
    code, stderr)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "READY"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("GO\n")
            child.stdin.flush()
        results = []
        for child in children:
            _, err = child.communicate(timeout=deadline(60))
            results.append((child.returncode, err))
        return results
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_four_processes_opening_an_old_journal_at_once_all_succeed(tmp_path: Path) -> None:
    """20 trials of 4 processes opening one mlrelay 0.1 journal at the same moment: every
    process opens it, reads the old run and writes; the journal ends at the current version
    with every old and new entry (before the fix: `duplicate column name` in 3 of 10)."""
    for trial in range(20):
        path = tmp_path / f"trial{trial}" / "journal.db"
        old_journal(path)
        results = _open_at_once(path, 4)
        failures = [err for code, err in results if code != 0]
        assert not failures, f"trial {trial}: {len(failures)} of 4 failed:\n{failures[0]}"
        journal = Journal(path)
        try:
            runs = {r.local_id: r for r in journal.runs(unfinished_only=False)}
            assert set(runs) == {"old"} | {f"child-{i}" for i in range(4)}
            assert runs["old"].owner_start is None
            assert not runs["old"].offline
            assert len(journal.pending("old", 0, 1000)) == POINTS + 1
            assert journal.count_pending() == POINTS + 1 + 4
        finally:
            journal.close()
        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        finally:
            check.close()


def test_sixteen_processes_creating_a_new_journal_at_once_all_succeed(tmp_path: Path) -> None:
    """5 trials of 16 processes opening a journal that does not exist yet at the same moment
    (the ranks of one job starting on a fresh home): every process opens it and writes,
    and the journal holds every run and entry. (Before the fix, SQLite's immediate "database
    is locked" to one of them converting the file to WAL failed 1 of 64 ranks in a
    benchmark run.)"""
    for trial in range(5):
        path = tmp_path / f"trial{trial}" / "journal.db"
        results = _open_at_once(path, 16, _NEW_OPENER)
        failures = [err for code, err in results if code != 0]
        assert not failures, f"trial {trial}: {len(failures)} of 16 failed:\n{failures[0]}"
        journal = Journal(path)
        try:
            runs = {r.local_id for r in journal.runs(unfinished_only=False)}
            assert runs == {f"child-{i}" for i in range(16)}
            assert journal.count_pending() == 16
        finally:
            journal.close()


def test_an_unversioned_journal_of_the_current_layout_opens_at_once_from_four_processes(
    tmp_path: Path,
) -> None:
    """A journal written just before versions existed (every column, user_version 0) is
    stamped with the current version by exactly one of four processes opening it at once;
    none fails and its data is kept."""
    for trial in range(5):
        path = tmp_path / f"trial{trial}" / "journal.db"
        old_journal(path)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("ALTER TABLE runs ADD COLUMN owner_start INTEGER")
        db.execute("ALTER TABLE runs ADD COLUMN offline INTEGER NOT NULL DEFAULT 0")
        db.close()
        results = _open_at_once(path, 4)
        assert all(code == 0 for code, _ in results), [err for _, err in results]
        check = sqlite3.connect(path)
        try:
            assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert check.execute("SELECT COUNT(*) FROM entries").fetchone() == (POINTS + 1 + 4,)
        finally:
            check.close()


def test_a_new_journal_is_created_at_the_current_version(tmp_path: Path) -> None:
    """A journal created from nothing carries the current schema version."""
    path = tmp_path / "home" / "journal.db"
    Journal(path).close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        check.close()


def test_a_journal_from_a_newer_mlrelay_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """A journal whose version is above this mlrelay's is refused with JournalVersionError
    naming the file and both versions; nothing in it is read, migrated or written."""
    path = tmp_path / "home" / "journal.db"
    old_journal(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    started = time.monotonic()
    with pytest.raises(JournalVersionError) as caught:
        Journal(path)
    assert time.monotonic() - started < deadline(5)
    error = caught.value
    assert isinstance(error, JournalError)
    assert not isinstance(error, sqlite3.Error)
    assert (error.version, error.supported, error.path) == (
        SCHEMA_VERSION + 1,
        SCHEMA_VERSION,
        str(path),
    )
    assert "newer mlrelay" in str(error)
    assert str(path) in str(error)
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
        columns = {row[1] for row in check.execute("PRAGMA table_info(runs)")}
        assert "owner_start" not in columns  # not migrated
    finally:
        check.close()
    assert path.read_bytes() == before


def test_an_unreadable_journal_file_is_a_journal_error(tmp_path: Path) -> None:
    """A journal path that is not a database is refused with mlrelay's JournalError naming
    the file, not a raw sqlite3 error."""
    path = tmp_path / "home" / "journal.db"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"this is not a database, it is a text file" * 200)
    with pytest.raises(JournalError) as caught:
        Journal(path)
    assert not isinstance(caught.value, sqlite3.Error)
    assert str(path) in str(caught.value)
