"""The journal process (``committer.py``): a real child process commits the writer's groups
into a journal on a real file; it is killed with -9, stopped with SIGSTOP and forked away
from, and every entry is journaled exactly once, in log order, whatever happens to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlrelay._pipeline import committer as committer_module
from mlrelay._pipeline.committer import Committer
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.pipeline import Pipeline, PipelineOptions
from mlrelay._protocol.batches import KIND_METRIC
from tests._env import child_env
from tests._timing import deadline

T0 = 1_700_000_000_000

pytestmark = pytest.mark.skipif(not committer_module.enabled(), reason="POSIX only")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A fresh journal on a real file."""
    j = Journal(tmp_path / "home" / "journal.db")
    yield j
    j.close()


@pytest.fixture
def make_pipeline(journal: Journal) -> Iterator[Callable[..., Pipeline]]:
    """Offline pipelines on the journal (closed afterwards), whose writer starts a journal
    process after ``after`` group commits (0: at the first)."""
    made: list[Pipeline] = []

    def make(after: int = 0) -> Pipeline:
        made.append(Pipeline(journal, None, PipelineOptions(journal_process_after=after)))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close(0)


def new_run(journal: Journal) -> str:
    """Record a run of this process; its local id."""
    local_id = uuid.uuid4().hex
    journal.add_run(
        local_id=local_id,
        tracking_uri="http://127.0.0.1:9",
        experiment_id="0",
        experiment_name=None,
        run_name=None,
        start_time=T0,
        create_tags={},
    )
    return local_id


def commit_points(pipeline: Pipeline, run: str, first: int, n: int) -> None:
    """Log ``n`` points (steps ``first``...) and wait until they are committed."""
    for i in range(first, first + n):
        pipeline.log((run, KIND_METRIC, "m", i * 0.5, T0 + i, i))
    assert pipeline.write_now(deadline(20))


def the_committer(pipeline: Pipeline) -> Committer:
    """The pipeline's journal process handle."""
    committer = pipeline._committer
    assert committer is not None
    return committer


def run_until_ready(pipeline: Pipeline, run: str) -> int:
    """Commit groups of 10 points until the journal process answers; the points logged."""
    committer, logged = the_committer(pipeline), 0
    limit = time.monotonic() + deadline(30)
    while committer.state != "ready":
        assert committer.state in ("waiting", "starting"), committer.state
        assert time.monotonic() < limit, "the journal process did not start"
        commit_points(pipeline, run, logged, 10)
        logged += 10
    return logged


def steps_journaled(journal: Journal, run: str) -> list[int]:
    """The steps of the run's journaled points, in seq order."""
    return [e.step for e in journal.pending(run, 0, 1_000_000) if e.step is not None]


def test_group_commits_go_through_the_journal_process_in_log_order(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """Once it answers, each group commit is the journal process's: the frames table holds
    its last frame for the channel, and every point is journaled once, in log order."""
    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    before = committer.frame
    for _ in range(3):
        commit_points(pipeline, run, logged, 200)
        logged += 200
    assert committer.frame == before + 3
    assert journal.last_frame(committer.channel) == committer.frame
    assert steps_journaled(journal, run) == list(range(logged))


def test_the_journal_process_starts_only_after_the_set_number_of_group_commits(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """With ``journal_process_after=3`` the writer commits the first three groups itself
    and starts the child at the fourth; a pipeline with None never makes one."""
    pipeline = make_pipeline(after=3)
    run = new_run(journal)
    committer = the_committer(pipeline)
    for i in range(3):
        commit_points(pipeline, run, i, 1)
        assert committer.state == "waiting"
    commit_points(pipeline, run, 3, 1)
    assert committer.state in ("starting", "ready")
    never = Pipeline(journal, None, PipelineOptions(journal_process_after=None))
    try:
        assert never._committer is None
    finally:
        never.close(0)


def test_a_journal_process_killed_with_9_loses_and_repeats_nothing(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """kill -9 of the child between frames: the next group is committed by the writer
    itself, and so is every later one; nothing is lost or journaled twice."""
    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    proc = committer._proc
    assert proc is not None
    proc.kill()
    proc.wait(deadline(10))
    for _ in range(3):
        commit_points(pipeline, run, logged, 100)
        logged += 100
    assert committer.state == "given-up"
    assert steps_journaled(journal, run) == list(range(logged))


def test_a_frame_committed_whose_answer_is_lost_is_not_committed_again(
    journal: Journal, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child commits a frame and its answer never arrives (the pipe ends): the writer
    finds the frame in the journal's frames table and does not commit it a second time."""
    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    reader = committer._answers
    assert reader is not None
    looked_up: list[int] = []

    def answer_lost(deadline_at: float | None) -> object:
        limit = time.monotonic() + deadline(20)
        while journal.last_frame(committer.channel) < committer.frame:  # committed first
            assert time.monotonic() < limit
            time.sleep(0.01)
        looked_up.append(committer.frame)
        raise EOFError

    monkeypatch.setattr(reader, "read", answer_lost)
    commit_points(pipeline, run, logged, 100)
    logged += 100
    assert looked_up
    assert committer.state == "given-up"
    commit_points(pipeline, run, logged, 100)
    logged += 100
    assert steps_journaled(journal, run) == list(range(logged))


def test_a_stopped_journal_process_is_killed_and_its_frame_committed_by_the_writer(
    journal: Journal, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child that stops answering (SIGSTOP) is killed once its answer is overdue; the
    frame it never committed is committed by the writer, once."""
    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    monkeypatch.setattr(committer_module, "_ANSWER_GRACE", 0.5)
    monkeypatch.setattr(journal, "busy_timeout", 0.5)
    proc = committer._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)
    commit_points(pipeline, run, logged, 100)
    logged += 100
    assert committer.state == "given-up"
    assert proc.wait(deadline(10)) == -signal.SIGKILL
    assert journal.last_frame(committer.channel) < committer.frame
    assert steps_journaled(journal, run) == list(range(logged))


def test_values_a_pipe_cannot_carry_are_committed_by_the_writer(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """A group holding a value ``marshal`` cannot carry (a float subclass) is committed by
    the writer itself; the journal process stays for the next groups."""

    class Loss(float):
        """A float subclass, as numpy's float64 is."""

    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    frame = committer.frame
    pipeline.log((run, KIND_METRIC, "m", Loss(1.5), T0 + logged, logged))
    assert pipeline.write_now(deadline(20))
    logged += 1
    assert committer.frame == frame
    assert committer.state == "ready"
    commit_points(pipeline, run, logged, 10)
    logged += 10
    assert committer.frame == frame + 1
    assert steps_journaled(journal, run) == list(range(logged))


def test_the_journal_process_has_no_credentials_and_ends_with_the_pipeline(
    journal: Journal, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's environment and arguments hold no tracking credentials, and it has
    exited once the pipeline is closed."""
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secret)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"https://user:{secret}@127.0.0.1:9")
    pipeline = make_pipeline()
    run = new_run(journal)
    run_until_ready(pipeline, run)
    proc = the_committer(pipeline)._proc
    assert proc is not None
    proc_dir = Path("/proc") / str(proc.pid)
    if proc_dir.exists():  # (Linux: the child's own view of its environment)
        assert secret.encode() not in (proc_dir / "environ").read_bytes()
        assert secret.encode() not in (proc_dir / "cmdline").read_bytes()
    assert not any(secret in arg for arg in proc.args)  # type: ignore[union-attr]
    pipeline.close(deadline(10))
    assert proc.poll() is not None


def test_a_forked_process_lets_go_of_its_parents_journal_process(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """In a forked child the parent's journal process is given up (its pipes closed, the
    child not stopped); the parent goes on committing through it."""
    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    pid = os.fork()
    if pid == 0:  # the forked child: exit 0 only if it let go
        os._exit(0 if committer.state == "given-up" and committer._out == -1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    frame = committer.frame
    commit_points(pipeline, run, logged, 10)
    assert committer.state == "ready"
    assert committer.frame == frame + 1


def test_after_a_recovery_the_writer_commits_into_the_fresh_journal_itself(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """A damaged journal moved aside (``recovery.recover``): the journal process, whose
    connection stays with the old file, is given up, and later groups land in the fresh
    journal with the carried entries, each once."""
    from mlrelay._pipeline.recovery import recover

    pipeline = make_pipeline()
    run = new_run(journal)
    logged = run_until_ready(pipeline, run)
    committer = the_committer(pipeline)
    assert recover(journal, "a test moved it aside")
    commit_points(pipeline, run, logged, 100)
    logged += 100
    assert committer.state == "given-up"
    assert steps_journaled(journal, run) == list(range(logged))


def hand_over_by_a_log_call(pipeline: Pipeline, run: str, first: int) -> int:
    """Log a point every few milliseconds until a log call hands the queue over to the
    journal process on this thread (the points' age reaches ``flush_interval``); the
    steps logged, from ``first``."""
    committer, step = the_committer(pipeline), first
    sent_by: list[str] = []
    send = committer.send

    def recording_send(*args: object, **kwargs: object) -> int | None:
        frame = send(*args, **kwargs)  # type: ignore[arg-type]
        if frame is not None:
            sent_by.append(threading.current_thread().name)
        return frame

    committer.send = recording_send  # type: ignore[method-assign]
    limit = time.monotonic() + deadline(30)
    try:
        while threading.current_thread().name not in sent_by:
            assert time.monotonic() < limit, "no log call handed the queue over"
            pipeline.log((run, KIND_METRIC, "m", step * 0.5, T0 + step, step))
            step += 1
            time.sleep(0.005)  # (a training loop's step)
    finally:
        del committer.send
    return step


def test_a_loop_that_keeps_logging_hands_its_entries_over_itself(
    journal: Journal, make_pipeline: Callable[..., Pipeline]
) -> None:
    """Once the journal process answers, the log call that finds the oldest queued entry
    ``flush_interval`` old hands the queue over on its own thread (the writer is only the
    fallback); every point is journaled once, in log order."""
    pipeline = Pipeline(journal, None, PipelineOptions(journal_process_after=0, flush_interval=0.5))
    try:
        run = new_run(journal)
        logged = run_until_ready(pipeline, run)
        logged = hand_over_by_a_log_call(pipeline, run, logged)
        logged = hand_over_by_a_log_call(pipeline, run, logged)
        assert pipeline.write_now(deadline(20))
        assert steps_journaled(journal, run) == list(range(logged))
        assert journal.last_frame(the_committer(pipeline).channel) == the_committer(pipeline).frame
    finally:
        pipeline.close(0)


def test_a_frame_handed_over_that_the_child_never_commits_is_committed_by_the_writer(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log call hands a frame over to a child that is stopped (SIGSTOP) before it reads
    it: when flushed, the writer waits out the answer, kills the child, finds the frame
    not committed and commits it itself, once and in order with what followed."""
    pipeline = Pipeline(journal, None, PipelineOptions(journal_process_after=0, flush_interval=0.5))
    try:
        run = new_run(journal)
        logged = run_until_ready(pipeline, run)
        committer = the_committer(pipeline)
        monkeypatch.setattr(committer_module, "_ANSWER_GRACE", 0.5)
        monkeypatch.setattr(journal, "busy_timeout", 0.5)
        proc = committer._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        logged = hand_over_by_a_log_call(pipeline, run, logged)
        for step in range(logged, logged + 50):  # behind the frame in the queue
            pipeline.log((run, KIND_METRIC, "m", step * 0.5, T0 + step, step))
        logged += 50
        assert pipeline.write_now(deadline(20))
        assert committer.state == "given-up"
        assert proc.wait(deadline(10)) == -signal.SIGKILL
        assert steps_journaled(journal, run) == list(range(logged))
    finally:
        pipeline.close(0)


CRASHING_LOGGER = """
import os, signal, sys, time
from pathlib import Path
from mlrelay._pipeline.journal import Journal
from mlrelay._pipeline.pipeline import Pipeline, PipelineOptions
journal = Journal(Path(sys.argv[1]))
run = journal.add_run(local_id="crash", tracking_uri="http://127.0.0.1:9", experiment_id="0",
                      experiment_name=None, run_name=None, start_time=0, create_tags={})
pipeline = Pipeline(journal, None, PipelineOptions(journal_process_after=0, flush_interval=0.3))
committer = pipeline._committer
step, limit = 0, time.monotonic() + 60
while committer.state != "ready" or pipeline._hand_every > 1:  # (until log calls hand over)
    pipeline.log(("crash", 0, "m", 0.5, step, step)); step += 1
    pipeline.write_now(10)
    assert time.monotonic() < limit
frame = committer.frame
while committer.frame == frame:  # a log call hands the queue over: then kill -9 at once
    pipeline.log(("crash", 0, "m", 0.5, step, step)); step += 1
    time.sleep(0.002)
    assert time.monotonic() < limit
print(step, committer._proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_entries_handed_over_survive_a_kill_9_of_the_training_process(tmp_path: Path) -> None:
    """The training process is killed with -9 right after a log call handed its queue over,
    before any answer: the journal process still commits the frame (every point logged
    is journaled, once), and then exits at the end of its pipe."""
    path = tmp_path / "home" / "journal.db"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_LOGGER, str(path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=deadline(90),
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    logged, child = map(int, done.stdout.split())
    reader = Journal(path)
    try:
        limit = time.monotonic() + deadline(20)
        while len(steps_journaled(reader, "crash")) < logged:
            assert time.monotonic() < limit, "the handed-over frame was not committed"
            time.sleep(0.01)
        assert steps_journaled(reader, "crash") == list(range(logged))
    finally:
        reader.close()
    limit = time.monotonic() + deadline(20)
    while Path(f"/proc/{child}").exists() and b"committer" in _cmdline(child):
        assert time.monotonic() < limit, "the journal process outlived its training process"
        time.sleep(0.01)


def _cmdline(pid: int) -> bytes:
    """The command line of process ``pid`` (empty once it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""
