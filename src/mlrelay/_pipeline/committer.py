"""A journal process: the writer thread's group commits, made by a child process.

A commit in the training process holds its GIL for the statement's Python side (the rows'
encoding, the parameters' binding, the damage guards' probe) and hands the GIL over around
each SQLite call and fsync: each hand-over costs a training loop running Python on the
other core one wait. Measured on Lightning's anchor (``benchmarks/writer_placement.py``),
those waits were most of what mlrelay's logger cost beyond a logger that keeps its points
in a list. Here the writer thread hands a group commit's rows to a child process instead,
in one pipe write (``marshal``), and waits for its answer with the GIL let go: the child
commits them into the same journal (its own connection, the same ``MLRELAY_FSYNC``) and
answers once they are durable. The writer's work per tick shrinks to the hand-over.

Nothing changes for what is journaled, in which order, or when it counts as committed:
the writer hands over one frame at a time and counts its rows committed only once the
child answers, so log calls' backpressure, ``flush``, run ends and the sender see the same
sequence as before. Only the common case goes to the child; the writer keeps everything
else (a held or unwritable journal, a disk budget, run ends, damage and its recovery). A
frame the child could not commit (a lock, a full disk: its transaction rolled back) is
committed by the writer itself, which then handles the failure as it always did.

Exactly once: the child records each frame's number in the journal's ``frames`` table in
the frame's own transaction. If it dies or stops answering (it is then killed), the
writer looks the number up: a frame already committed is not committed again; any other
is committed by the writer. The writer then commits in-process for the rest of the
pipeline's life. A child that cannot start (no Python executable to run, a journal it
cannot open) is given up the same way. If the training process is killed, the child still
commits every frame it received, and exits at the end of the pipe.

The child starts once the pipeline has committed :data:`START_AFTER` groups (about a second
of logging at the 100 ms interval), so short scripts never start one, and never where
``MLRELAY_JOURNAL_PROCESS`` is ``0`` or on platforms without ``fork``-style descriptor
passing. It holds no credentials: its environment has none of the tracking settings, and
its arguments are the journal's path, the fsync policy and the channel's name.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .journal import Journal, Row

__all__ = ["START_AFTER", "Committer", "enabled", "main"]

logger = logging.getLogger("mlrelay.pipeline")

START_AFTER = 10
"""Group commits with entries before the journal process is started."""
_START_TIMEOUT = 30.0
"""Seconds a starting child may take to open the journal before it is given up."""
_ANSWER_GRACE = 30.0
"""Seconds beyond the journal's busy timeout that a frame's answer may take."""
_HEADER = 4
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from mlrelay._pipeline.committer import main; main()"
)
_PRIVATE_PREFIXES = ("MLFLOW_", "MLRELAY_", "DAGSHUB_", "AWS_", "AZURE_", "GOOGLE_")

Answer = tuple[list[int], list[tuple["Row", str]]]
"""What a committed frame gives back: the first seq of each block of rows, and the
entries set aside with their reasons."""


def enabled() -> bool:
    """Whether journal processes can run here: a POSIX system, and a Python executable to
    run them with (not an embedding program's)."""
    return os.name == "posix" and "python" in os.path.basename(sys.executable or "").lower()


def _message(data: Any) -> bytes:
    body = marshal.dumps(data)
    return len(body).to_bytes(_HEADER, "little") + body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Reader:
    """Length-prefixed messages from a pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def _complete(self) -> Any:
        if len(self._buffer) < _HEADER:
            return None
        n = int.from_bytes(self._buffer[:_HEADER], "little")
        if len(self._buffer) < _HEADER + n:
            return None
        body, self._buffer = self._buffer[_HEADER : _HEADER + n], self._buffer[_HEADER + n :]
        return (marshal.loads(body),)

    def read(self, deadline: float | None) -> Any:
        """The next message; raises EOFError at the pipe's end, TimeoutError past
        ``deadline`` (monotonic; None: wait as long as it takes)."""
        while (done := self._complete()) is None:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.fd], [], [], wait)[0]:
                    raise TimeoutError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        return done[0]

    def ready(self) -> bool:
        """Whether a message can be read without waiting."""
        return self._complete() is not None or bool(select.select([self.fd], [], [], 0)[0])


def _pipe_room(fd: int) -> int:
    """Bytes the empty pipe ``fd`` takes in one write without waiting: its capacity,
    raised to 1 MiB where Linux lets it; else POSIX's guaranteed 4 KiB."""
    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, 1 << 20)
    if get_size is not None:
        with contextlib.suppress(OSError):
            return int(fcntl.fcntl(fd, get_size))
    return 4096


_LIVE: weakref.WeakSet[Committer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked process must not write into its parent's journal process (nor keep its
    # pipe open past the parent's exit): it lets go of the descriptors, not the child.
    for committer in list(_LIVE):
        committer.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Committer:
    """The training process's end of a journal process. Not thread-safe: the pipeline
    uses it under its drain lock.

    Args:
        journal: the journal the child commits into (the writer's own connection looks
            up frames when the child is lost).
        start_after: group commits :meth:`append` leaves to the caller before starting
            the child.
    """

    def __init__(self, journal: Journal, *, start_after: int = START_AFTER) -> None:
        self.journal = journal
        self.channel = f"{os.getpid()}-{time.time_ns()}-{id(self)}"
        self.frame = 0
        self.state = "waiting"  # -> starting -> ready; or given-up
        self._calls = 0
        self._start_after = start_after
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = -1
        self._answers: _Reader | None = None
        self._started_at = 0.0
        self._inode = 0
        self._room = 0  # bytes the empty frames pipe takes without a wait
        self._ending: weakref.finalize[..., Committer] | None = None  # see _end
        _LIVE.add(self)

    def append(self, rows: Sequence[Row]) -> Answer | None:
        """Commit ``rows`` through the child and wait for it: what it gives back, or None
        when the caller must commit them itself (no child ready, a frame it could not
        commit, rows that do not pass through a pipe)."""
        frame = self.send(rows)
        if frame is None:
            return None
        answer = self.receive(frame, wait=True)
        return None if answer == "pending" else answer

    def send(self, rows: Sequence[Row], *, only_if_room: bool = False) -> int | None:
        """Hand ``rows`` over as the next frame without waiting for the answer: its number,
        or None if they were not handed over (the caller keeps them). Only with no frame
        unanswered. ``only_if_room``: only a frame the empty pipe takes whole, so the
        write cannot wait for the child (a log call's hand-over)."""
        if self.state != "ready" and not self._becomes_ready():
            return None
        if self.journal.inode != self._inode:  # moved aside (recovery): the child's is gone
            self._give_up("the journal was replaced")
            return None
        frame = self.frame + 1
        try:
            data = _message((frame, list(rows)))
        except ValueError:  # a value marshal cannot carry (a subclass of float, say)
            return None
        if only_if_room and len(data) > self._room:
            return None
        self.frame = frame
        try:
            _write_all(self._out, data)
        except OSError as exc:
            self._give_up(f"its pipe broke ({exc!r})")
            return None  # (no answer can come: a frame cut short is never committed)
        return frame

    def receive(self, frame: int, *, wait: bool) -> Answer | Literal["pending"] | None:
        """The answer to ``frame`` (the last one sent): what the child gives back, None if
        the caller must commit the frame's rows itself, or ``"pending"`` if ``wait`` is
        False and the answer is not in yet. A child that died or stopped answering is
        stopped, and the frame looked up in the journal."""
        try:
            if not wait and self._answers is not None and not self._answers.ready():
                return "pending"
            if self._answers is None:
                raise EOFError
            deadline = time.monotonic() + self.journal.busy_timeout + _ANSWER_GRACE
            answered, status, firsts, aside, message = self._answers.read(deadline)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            return self._lost(frame, exc)
        if answered != frame:
            return self._lost(frame, f"it answered frame {answered} for frame {frame}")
        if status == "ok":
            return list(firsts), [(tuple(row), reason) for row, reason in aside]
        if status != "busy":  # the caller's own commit meets the same failure and handles it
            self._give_up(f"it could not commit ({message})")
        return None

    def _becomes_ready(self) -> bool:
        if self.state == "waiting":
            self._calls += 1
            if self._calls > self._start_after:
                self._start()
            return False
        if self.state != "starting":
            return False
        assert self._answers is not None
        try:
            if not self._answers.ready():
                if time.monotonic() - self._started_at > _START_TIMEOUT:
                    self._give_up("it did not start")
                return False
            hello = self._answers.read(time.monotonic() + 1.0)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            self._give_up(f"it did not start ({exc!r})")
            return False
        if hello != ("ready", self.channel):
            self._give_up(f"it could not open the journal ({hello[-1]})")
            return False
        self.state = "ready"
        return True

    def _start(self) -> None:
        frames_r, frames_w = os.pipe()
        answers_r, answers_w = os.pipe()
        root = str(Path(__file__).resolve().parents[2])  # (where mlrelay is imported from)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
        args = [sys.executable, "-c", _CHILD, root, str(self.journal.path)]
        args += [self.journal.fsync, self.channel, str(frames_r), str(answers_w)]
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(frames_r, answers_w),
                env=env,
                start_new_session=True,  # a Ctrl-C at the terminal is for the training process
            )
        except OSError as exc:
            for fd in (frames_r, frames_w, answers_r, answers_w):
                os.close(fd)
            self.state = "given-up"
            logger.debug("mlrelay: no journal process (%s); the writer commits itself", exc)
            return
        os.close(frames_r)
        os.close(answers_w)
        self._room = _pipe_room(frames_w)
        self._out, self._answers = frames_w, _Reader(answers_r)
        self._ending = weakref.finalize(self, _end, self._proc, (frames_w, answers_r))
        self._started_at = time.monotonic()
        self._inode = self.journal.inode  # (the file the child opens)
        self.state = "starting"

    def _lost(self, frame: int, why: object) -> Answer | None:
        """The child died or stopped answering with ``frame`` handed over: it is stopped,
        and the frame is taken as committed if the journal says so."""
        self._give_up(f"it stopped answering ({why!r})")
        try:
            committed = self.journal.last_frame(self.channel) >= frame
        except sqlite3.Error as exc:
            # Cannot tell: committed again by the writer (at worst points the server
            # already has, which it takes once: their timestamps are the same).
            logger.debug("mlrelay: could not look up frame %d (%s)", frame, exc)
            return None
        return ([], []) if committed else None

    def _give_up(self, why: str) -> None:
        if self.state != "given-up":
            logger.debug("mlrelay: journal process given up: %s; the writer commits itself", why)
        self.state = "given-up"
        self._stop(kill=True)

    def _stop(self, *, kill: bool) -> None:
        """Close the pipes: the child commits what it has and exits (killed at once with
        ``kill``, else past :func:`_end`'s wait)."""
        if kill and self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.kill()
        self._out, self._answers = -1, None
        if self._ending is not None:
            self._ending()

    def close(self, *, kill: bool = False) -> None:
        """Let the child finish (every frame it has is committed and answered already) and
        exit; killed if that takes longer than :func:`_end` waits, or at once with
        ``kill`` (a writer still waits for an answer that does not come: the kill ends
        that wait, and its frame is looked up as when the child dies)."""
        self.state = "given-up"
        self._stop(kill=kill)

    def forget(self) -> None:
        """In a forked process: let go of the parent's child without stopping it."""
        if self._ending is not None:
            self._ending.detach()
        for fd in (self._out, self._answers.fd if self._answers else -1):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._proc is not None:
            self._proc.returncode = -1  # (not this process's child: never waited for here)
        self._out, self._answers, self._proc = -1, None, None
        self.state = "given-up"


def _end(proc: subprocess.Popen[bytes], fds: tuple[int, ...], wait: float = 2.0) -> None:
    """Close a journal process's pipes and wait for it to exit (killed past ``wait``
    seconds): run once, by :meth:`Committer.close` or when the committer is collected."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    """The journal process: commit each frame handed over, answer, exit at the pipe's end.

    Arguments: the journal's path, the fsync policy, the channel's name, and the
    descriptors to read frames from and to write answers to.
    """
    from .journal import Journal, is_busy

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, fsync, channel, frames_fd, answers_fd = sys.argv[1:6]
    out = int(answers_fd)
    try:
        journal = Journal(Path(path), fsync=fsync)  # type: ignore[arg-type]
        journal.open_frames(channel)
    except Exception as exc:
        _write_all(out, _message(("failed", f"{type(exc).__name__}: {exc}")))
        return
    _write_all(out, _message(("ready", channel)))
    frames = _Reader(int(frames_fd))
    while True:
        try:
            frame, rows = frames.read(None)
        except EOFError:
            break
        try:
            firsts, aside = journal.append_frame(rows, channel, frame)
            answer: tuple[Any, ...] = (frame, "ok", firsts, aside, "")
        except sqlite3.OperationalError as exc:
            answer = (frame, "busy" if is_busy(exc) else "failed", [], [], str(exc))
        except Exception as exc:
            answer = (frame, "failed", [], [], f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):  # the writer is gone: the pipe's frames still count
            _write_all(out, _message(answer))
    with contextlib.suppress(Exception):
        journal.close_frames(channel)
    journal.close()
