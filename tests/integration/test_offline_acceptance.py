"""Offline mode, `mlrelay status` and the sync's progress output, over real sockets."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import cli, fluent
from mlrelay._pipeline.runs import session
from tests._env import child_env
from tests._timing import deadline

OFFLINE_SCRIPT = textwrap.dedent(
    """
    import mlrelay
    mlrelay.set_experiment("no-network")
    with mlrelay.start_run(run_name="outer") as outer:
        mlrelay.log_params({"lr": 0.1})
        mlrelay.set_tag("where", "train")
        for i in range(500):
            mlrelay.log_metric("loss", 1 / (i + 1), step=i)
        with mlrelay.start_run(run_name="inner", nested=True):
            mlrelay.log_metric("auc", 0.9)
    assert mlrelay.flush()  # offline: waits for the journal commit
    print("LOCAL", outer.run_id)
    """
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket on 127.0.0.1 that listens but never accepts: connections would queue on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def _env(home: Path, uri: str | None, **extra: str) -> dict[str, str]:
    env = child_env()
    env.update({"MLRELAY_HOME": str(home), **extra})
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _connection_attempts(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_offline_mode_makes_no_connection_at_all(
    listener: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole offline script (experiment, nested runs, params, metrics, exit) pointed at a
    listening socket makes zero connection attempts; then `mlrelay sync` delivers it."""
    port = listener.getsockname()[1]
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        env=_env(home, f"http://127.0.0.1:{port}", MLRELAY_MODE="offline"),
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert proc.returncode == 0, proc.stderr
    assert _connection_attempts(listener) == 0
    assert "logged offline are kept in" in proc.stderr  # the exit line names the journal
    assert "mlrelay sync" in proc.stderr

    monkeypatch.setenv("MLRELAY_HOME", str(home))
    out = io.StringIO()
    assert cli.main(["status", "--json"], out=out) == 0
    report = json.loads(out.getvalue())
    assert {r["run_name"] for r in report["runs"]} == {"outer", "inner"}
    assert all(r["offline"] and not r["synced"] for r in report["runs"])
    assert sum(r["pending_entries"] for r in report["runs"]) == 500 + 1 + 1 + 1
    assert _connection_attempts(listener) == 0  # status reads the journal only


def test_offline_client_calls_raise_instead_of_connecting(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In offline mode, calls that need the server raise ConfigurationError naming offline
    mode; logging calls work; nothing connects."""
    port = listener.getsockname()[1]
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    fluent.set_tracking_uri(f"http://127.0.0.1:{port}")
    assert fluent.set_experiment("x").experiment_id == ""  # not known offline
    with fluent.start_run() as run:
        fluent.log_metric("m", 1.0)
        with pytest.raises(mlrelay.ConfigurationError, match="offline"):
            fluent.get_run(run.run_id)
        with pytest.raises(mlrelay.ConfigurationError, match="offline"):
            fluent.search_runs()
    assert fluent.flush(deadline(5))
    assert _connection_attempts(listener) == 0


def test_sync_maps_nested_offline_runs_and_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline nested runs land with the parent link mapped to the parent's server id, the
    original steps and timestamps, FINISHED; a non-terminal gets plain progress lines."""
    home = tmp_path / "home"
    with MockServer() as server:
        proc = subprocess.run(
            [sys.executable, "-c", OFFLINE_SCRIPT],
            env=_env(home, server.url, MLRELAY_MODE="offline"),
            capture_output=True,
            text=True,
            timeout=deadline(120),
        )
        assert proc.returncode == 0, proc.stderr
        local_id = proc.stdout.split()[-1]
        monkeypatch.setenv("MLRELAY_HOME", str(home))
        monkeypatch.setattr(cli._SyncProgress, "__init__", _eager_progress_init)
        out = io.StringIO()
        assert cli.main(["sync"], out=out) == 0, out.getvalue()
        text = out.getvalue()
        assert "sync: 503/503 entries (100%), runs" in text
        assert "entries/s, ETA" in text
        assert f"run {local_id} -> " in text
        with mlrelay.Client(tracking_uri=server.url) as client:
            exp = client.get_experiment_by_name("no-network")
            assert exp is not None
            runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
            assert set(runs) == {"outer", "inner"}
            outer, inner = runs["outer"], runs["inner"]
            assert inner.data.tags_dict["mlflow.parentRunId"] == outer.info.run_id
            assert outer.info.status == inner.info.status == "FINISHED"
            history = client.get_metric_history(outer.info.run_id, "loss")
            assert [p.step for p in history] == list(range(500))
            assert all(p.timestamp >= outer.info.start_time for p in history)


_original_init = cli._SyncProgress.__init__


def _eager_progress_init(self: cli._SyncProgress, *args: object, **kwargs: object) -> None:
    # Report on every acknowledged request instead of every 5 s.
    kwargs["every"] = 0.0
    _original_init(self, *args, **kwargs)  # type: ignore[arg-type]


def test_progress_bar_on_a_terminal() -> None:
    """On a terminal the progress is a tqdm bar with entries, rate, runs and size."""
    out = io.StringIO()
    progress = cli._SyncProgress(out, runs=2, entries=2000, tty=True)
    progress.advance(1000, 48_000)
    progress.run_done()
    progress.advance(1000, 48_000)
    progress.run_done()
    progress.close()
    text = out.getvalue()
    assert "2.00k/2.00k" in text
    assert "runs 2/2" in text
    assert "93.8 KB" in text


def test_status_json_shows_crashed_runs_and_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status --json`: a run whose process was killed shows as crashed with its pending
    entries and the oldest pending time; a rejected batch shows with the server's message."""
    import signal

    home = tmp_path / "home"
    script = textwrap.dedent(
        """
        import os, signal, mlrelay
        with mlrelay.start_run(run_name="doomed"):
            for i in range(100):
                mlrelay.log_metric("m", i, step=i)
            assert mlrelay.flush()  # offline: waits for the journal commit
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(home, None, MLRELAY_MODE="offline"),  # no server known while logging
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    out = io.StringIO()
    assert cli.main(["status", "--json"], out=out) == 0
    report = json.loads(out.getvalue())
    [run] = report["runs"]
    assert run["crashed"] is True
    assert run["owner_alive"] is False
    assert run["pending_entries"] == 100
    assert run["oldest_pending"] is not None
    assert run["status"] is None
    assert report["size_bytes"] > 0
    text = io.StringIO()
    assert cli.main(["status"], out=text) == 0
    assert "crashed" in text.getvalue()
    assert "100 pending" in text.getvalue()
    no_uri = io.StringIO()
    assert cli.main(["sync"], out=no_uri) == 1
    assert "pass --tracking-uri" in no_uri.getvalue()

    with MockServer() as server:
        # Refused throughout (both halves too): set aside as one piece.
        rule = server.faults.add(
            action="status", method="POST", path="*/runs/log-batch", status=400, times=3
        )
        sync_out = io.StringIO()
        assert cli.main(["sync", "--tracking-uri", server.url], out=sync_out) == 1
        assert "rejected by the server" in sync_out.getvalue()
        server.faults.remove(rule.id)
        status = io.StringIO()
        assert cli.main(["status", "--json"], out=status) == 0
        [after] = json.loads(status.getvalue())["runs"]
        assert after["status"] == "KILLED"
        assert len(after["rejected"]) == 1
        assert after["rejected"][0]["message"]
        retry = io.StringIO()
        assert cli.main(["sync", "--retry-rejected"], out=retry) == 0, retry.getvalue()
        final = io.StringIO()
        assert cli.main(["status", "--json"], out=final) == 0
        [done] = json.loads(final.getvalue())["runs"]
        assert done["synced"] is True, json.dumps(done)
        assert done["rejected"] == []
        with mlrelay.Client(tracking_uri=server.url) as client:
            [landed] = client.search_runs(["0"])
            assert landed.info.status == "KILLED"
            assert len(client.get_metric_history(landed.info.run_id, "m")) == 100


MANY_RUNS = textwrap.dedent(
    """
    import sys
    import mlrelay
    mlrelay.set_experiment("concurrent")
    for r in range(6):
        with mlrelay.start_run(run_name=f"run-{r}"):
            mlrelay.log_param("r", r)
            for i in range(3000):
                mlrelay.log_metric("m", i, step=i)
    """
)


def test_two_syncs_at_once_send_every_entry_exactly_once(tmp_path: Path) -> None:
    """Two `mlrelay sync` processes started together on one journal: each run is claimed by
    one of them, created once, and no metric is sent twice (counted in the requests the
    server received, not in what it stored)."""
    home = tmp_path / "home"
    with MockServer() as server:
        made = subprocess.run(
            [sys.executable, "-c", MANY_RUNS],
            env=_env(home, server.url, MLRELAY_MODE="offline"),
            capture_output=True,
            text=True,
            timeout=deadline(120),
        )
        assert made.returncode == 0, made.stderr
        syncs = [
            subprocess.Popen(
                [sys.executable, "-m", "mlrelay.cli", "sync"],
                env=_env(home, server.url),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=deadline(120)) for p in syncs]
        assert [p.returncode for p in syncs] == [0, 0], outputs
        lines = [line for out, _ in outputs for line in out.splitlines()]
        done = [line.split()[1] for line in lines if ": done (" in line]
        # Each run is sent by exactly one sync; the other stands back (or, when it looked
        # after the first had finished, does not list it at all).
        assert len(done) == len(set(done)) == 6, outputs
        sent: dict[str, int] = {}
        for request in server.requests:
            if request.path.endswith("/runs/log-batch") and request.status == 200:
                body = request.json
                sent[body["run_id"]] = sent.get(body["run_id"], 0) + len(body["metrics"])
        assert sorted(sent.values()) == [3000] * 6
        creates = [r for r in server.requests if r.path.endswith("/runs/create")]
        assert len(creates) == 6


def test_disk_budget_refuses_and_counts_new_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past MLRELAY_MAX_JOURNAL_BYTES (nothing delivered to reclaim, offline), new entries
    are refused without blocking the loop, counted per run and warned about once; the
    journaled ones are the first logged."""
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    monkeypatch.setenv("MLRELAY_MAX_JOURNAL_BYTES", "256K")
    fluent.set_tracking_uri("http://127.0.0.1:9")
    with caplog.at_level("WARNING", logger="mlrelay.pipeline"), fluent.start_run() as run:
        for i in range(60_000):
            fluent.log_metric("m", i, step=i)
            if i % 5000 == 0:
                assert fluent.flush(deadline(5))  # commit in several groups so the budget bites
    assert fluent.flush(deadline(5))
    warnings = [r for r in caplog.records if "reached its budget" in r.getMessage()]
    assert len(warnings) == 1
    pipeline = session.pipeline
    assert pipeline is not None
    journal = pipeline.journal
    assert journal.used_bytes() < 2 * 256 * 1024
    kept = journal.pending(run.local_id, 0, 100_000)
    assert [e.step for e in kept] == list(range(len(kept)))  # a prefix
    [status] = [s for s in journal.status() if s.run.local_id == run.local_id]
    assert status.refused == 60_000 - len(kept)
    assert 0 < len(kept) < 60_000


def test_disabled_mode_is_a_validated_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    """MLRELAY_MODE=disabled: runs, metrics and params go nowhere (no journal file, no
    connection), but a bad key still raises at the call site."""
    home = tmp_path / "disabled-home"
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    monkeypatch.setenv("MLRELAY_MODE", "disabled")
    fluent.set_tracking_uri(f"http://127.0.0.1:{listener.getsockname()[1]}")
    with fluent.start_run() as run:
        fluent.log_metric("m", 1.0)
        fluent.log_param("p", 1)
        with pytest.raises(mlrelay.ValidationError, match="metric key"):
            fluent.log_metric("bad key!", 1.0)
    assert run.run_id
    assert fluent.flush(deadline(1))
    assert not (home / "journal.db").exists()
    assert _connection_attempts(listener) == 0


def test_purge_keeps_undelivered_runs_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`purge` needs a flag; --synced removes delivered runs only; --force also removes
    undelivered runs of processes that are gone; the journal shrinks."""
    home = tmp_path / "home"
    with MockServer() as server:
        for _ in range(2):
            made = subprocess.run(
                [sys.executable, "-c", OFFLINE_SCRIPT],
                env=_env(home, server.url, MLRELAY_MODE="offline"),
                capture_output=True,
                text=True,
                timeout=deadline(120),
            )
            assert made.returncode == 0, made.stderr
        monkeypatch.setenv("MLRELAY_HOME", str(home))
        first = made.stdout.split()[-1]  # the second script's outer run
        assert cli.main(["purge"], out=io.StringIO()) == 2
        assert cli.main(["sync", "--run", first], out=io.StringIO()) == 0

        def runs() -> list[dict[str, object]]:
            out = io.StringIO()
            cli.main(["status", "--json"], out=out)
            return json.loads(out.getvalue())["runs"]  # type: ignore[no-any-return]

        assert len(runs()) == 4
        out = io.StringIO()
        assert cli.main(["purge", "--synced"], out=out) == 0
        assert "undelivered data is kept" in out.getvalue()
        left = runs()
        assert len(left) == 3
        assert all(not r["synced"] for r in left)
        assert first not in {r["local_id"] for r in left}
        assert cli.main(["purge", "--synced", "--force"], out=io.StringIO()) == 0
        assert runs() == []
