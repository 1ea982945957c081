"""A damaged journal against a real MLflow server: `mlrelay status` says what is damaged,
`mlrelay sync` sends every entry that can be read exactly once, ends the run and exits 1
naming what was lost; no raw sqlite3 error reaches the user.

The journal is written by a real offline logging process; 16 bytes of one page of its
entries table are then overwritten, as a disk or file-system error would. What can still
be read is established independently of mlrelay, one row at a time by primary key.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlrelay import cli
from tests._servers import RunningServer
from tests._timing import deadline
from tests.real.test_offline_recovery import _env, _history, _Out, _runs

pytestmark = pytest.mark.real

POINTS = 20_000

LOG_OFFLINE = textwrap.dedent(
    """
    import sys
    import mlrelay
    mlrelay.set_experiment(sys.argv[1])
    with mlrelay.start_run(run_name="damaged"):
        mlrelay.log_param("lr", 0.01)
        for i in range(int(sys.argv[2])):
            mlrelay.log_metric("m", i / 7, step=i)
    """
)


def _log_offline(home: Path, uri: str, experiment: str) -> Path:
    """Log one ended run of 20,000 points and a param offline; the journal's path."""
    env = _env(home, uri, MLRELAY_MODE="offline")
    done = subprocess.run(
        [sys.executable, "-c", LOG_OFFLINE, experiment, str(POINTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert done.returncode == 0, done.stderr
    path = home / "journal.db"
    wal = path.with_name("journal.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed at exit
    return path


def _entries_leaves(path: Path) -> list[int]:
    """The page numbers of the entries table's leaf pages."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'entries' AND pagetype = 'leaf' ORDER BY pageno"
        ).fetchall()
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    assert page_size == 4096
    return [int(p) for (p,) in rows]


def _corrupt(path: Path, page: int, offset: int, data: bytes) -> None:
    """Overwrite bytes of one page of the database file in place."""
    with open(path, "r+b") as f:
        f.seek((page - 1) * 4096 + offset)
        f.write(data)


def _readable(path: Path) -> tuple[set[int], bool, int]:
    """What can be read, one row at a time by primary key: the metric steps, whether the
    param is readable, and the highest seq."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    steps: set[int] = set()
    param = False
    try:
        top = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()[0]
        for seq in range(1, top + 1):
            try:
                row = db.execute("SELECT key, step FROM entries WHERE seq = ?", (seq,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is None:
                continue
            if row[0] == "m":
                steps.add(int(row[1]))
            elif row[0] == "lr":
                param = True
    finally:
        db.close()
    return steps, param, int(top)


def test_a_journal_with_16_corrupted_bytes_is_reported_and_synced_as_far_as_it_can_be_read(
    mlflow_real: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """16 corrupted bytes in the middle of the entries table: `status` exits 1 naming the
    damage and the exact unreadable count; `sync` delivers every readable point once, ends
    the run FINISHED and exits 1 naming the lost entries; a second sync sends nothing more.
    (Before: status said nothing was wrong and sync died with a raw sqlite3.DatabaseError
    after 9,000 of 20,000 entries, leaving the run RUNNING.)"""
    home = tmp_path / "home"
    path = _log_offline(home, mlflow_real.url, "damaged-journal")
    leaves = _entries_leaves(path)
    _corrupt(path, leaves[len(leaves) // 2], 0, os.urandom(16))  # header and cell pointers
    steps, param, _ = _readable(path)
    lost = POINTS + 1 - len(steps) - int(param)
    assert 0 < lost < 1000, f"{lost} entries unreadable: the damage is not one page"

    monkeypatch.setenv("MLRELAY_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    status = _Out()
    assert cli.main(["status"], out=status) == 1, status.text
    assert "Integrity: DAMAGED" in status.text, status.text
    assert f"{lost:,} entries (seq " in status.text, status.text
    assert "cannot be read" in status.text

    sync = _Out()
    assert cli.main(["sync"], out=sync) == 1, sync.text
    assert re.search(rf"LOST: {lost:,} entries \(seq \d+(\.\.\d+)?\)", sync.text), sync.text
    assert "Traceback" not in capsys.readouterr().err

    [run] = _runs(mlflow_real.url, "damaged-journal")
    info = run["info"]
    assert info["status"] == "FINISHED"  # type: ignore[index]
    landed = [int(p["step"]) for p in _history(mlflow_real.url, info["run_id"], "m")]  # type: ignore[index, arg-type, call-overload]
    assert len(landed) == len(set(landed)), "a point landed twice"
    assert set(landed) == steps, "landed points differ from the readable ones"
    params = run["data"].get("params", [])  # type: ignore[union-attr, attr-defined]
    assert params == ([{"key": "lr", "value": "0.01"}] if param else [])

    again = _Out()
    assert cli.main(["sync"], out=again) == 0, again.text
    assert "Nothing to sync" in again.text
    after = _Out()
    assert cli.main(["status"], out=after) == 1
    assert f"lost: {lost:,} entries" in after.text, after.text
    assert len(_history(mlflow_real.url, info["run_id"], "m")) == len(steps)  # type: ignore[index, arg-type]


# Logs 20,000 points, commits them, then waits (touching no journal file) for the test to
# damage the journal, then logs 20,000 more: the damage meets the process between two
# statements, deterministically.
LOG_ACROSS_DAMAGE = textwrap.dedent(
    """
    import sys
    import mlrelay
    mlrelay.set_experiment(sys.argv[1])
    mlrelay.start_run(run_name="across-damage")
    mlrelay.log_param("lr", 0.01)
    for i in range(20_000):
        mlrelay.log_metric("m", i / 7, step=i)
    print("FLUSH1", mlrelay.flush(timeout=60), flush=True)
    sys.stdin.readline()
    for i in range(20_000, 40_000):
        mlrelay.log_metric("m", i / 7, step=i)
    print("FLUSH2", mlrelay.flush(timeout=60), flush=True)
    mlrelay.end_run()
    print("END", flush=True)
    """
)


def _log_across_damage(home: Path, uri: str, experiment: str, damage: str) -> tuple[int, str, str]:
    """Run the logger offline and damage its journal (``"shm"``: truncate the -shm file to
    nothing; ``"wal"``: cut the -wal file to half) while it waits; (exit code, out, err)."""
    with subprocess.Popen(
        [sys.executable, "-c", LOG_ACROSS_DAMAGE, experiment],
        env=_env(home, uri, MLRELAY_MODE="offline"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdin is not None
            first = proc.stdout.readline()
            assert first.strip() == "FLUSH1 True", first
            target = home / f"journal.db-{damage}"
            size = target.stat().st_size
            assert size > 0
            os.truncate(target, 0 if damage == "shm" else size // 2)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out, err = proc.communicate(timeout=deadline(120))
        finally:
            proc.kill()
    return proc.returncode, first + out, err


@pytest.mark.parametrize("damage", ["shm", "wal"])
def test_a_journal_damaged_under_a_logging_process_never_kills_or_wedges_it(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """The -shm file truncated (before: SIGBUS, the process killed) or the -wal cut to half
    (before: a wedged writer or a silently corrupted journal) while a process logs: it
    moves the journal aside, keeps logging into a fresh one, tells the user, flushes and
    exits 0; `mlrelay sync` then lands every point logged after the damage (with a cut
    -shm, every point) once."""
    home = tmp_path / "home"
    code, out, err = _log_across_damage(home, mlflow_real.url, f"across-{damage}", damage)
    assert code == 0, err
    assert "FLUSH2 True" in out
    assert "END" in out
    assert "is damaged" in err, err
    assert "logging continues in a fresh journal" in err
    assert "Traceback" not in err, err
    [aside] = home.glob("journal.damaged-*.db")
    assert str(aside) in err

    monkeypatch.setenv("MLRELAY_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    sync = _Out()
    assert cli.main(["sync"], out=sync) == 0, sync.text
    assert f"Damaged journal set aside: {aside}" in sync.text
    [run] = _runs(mlflow_real.url, f"across-{damage}")
    assert run["info"]["status"] == "FINISHED"  # type: ignore[index]
    landed = [int(p["step"]) for p in _history(mlflow_real.url, run["info"]["run_id"], "m")]  # type: ignore[index, arg-type, call-overload]
    assert len(landed) == len(set(landed)), "a point landed twice"
    assert set(landed) <= set(range(40_000))
    assert set(range(20_000, 40_000)) <= set(landed), "a point logged after the damage is lost"
    if damage == "shm":  # the write-ahead log was intact: nothing is lost
        assert sorted(landed) == list(range(40_000))
    else:
        assert "could not be read from the damaged journal" in err
