"""Reproducibility records for a run (opt-in): installed packages, the entry script, git state.

``start_run(log_environment=True)`` or ``MLRELAY_LOG_ENVIRONMENT=true`` logs, as artifacts of
the run: ``environment/requirements.txt`` (every installed distribution, pinned),
``code/<script>`` (the entry script, when it is a file of at most 1 MB) and, when the git
work tree has uncommitted changes, ``code/git.diff`` (at most 5 MB, from ``git diff HEAD``
with a 5 s limit); and the tags ``mlflow.source.git.commit`` / ``.branch`` / ``.repoURL``
(credentials removed from the URL) and ``mlflow.source.git.dirty``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .gitinfo import git_info

__all__ = ["Reproducibility", "collect"]

MAX_SCRIPT_BYTES = 1 << 20
MAX_DIFF_BYTES = 5 << 20
GIT_TIMEOUT_S = 5.0


@dataclass
class Reproducibility:
    """What to log: tags, and files as ``{artifact path: bytes}``; ``notes`` says what was
    left out because of a size cap."""

    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _requirements() -> bytes:
    pins = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in metadata.distributions()
            if d.metadata["Name"]
        },
        key=str.lower,
    )
    return ("\n".join(pins) + "\n").encode()


def _git_diff(cwd: Path) -> bytes | None:
    """``git diff HEAD`` of a dirty tree, read up to one byte past :data:`MAX_DIFF_BYTES`
    (so a huge diff is never held whole) within :data:`GIT_TIMEOUT_S`; ``b""`` for a clean
    tree; None outside a work tree or without git."""
    import threading

    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=True,
        )  # fmt: skip
        if not status.stdout.strip():
            return b""
        proc = subprocess.Popen(
            ["git", "diff", "HEAD"], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(GIT_TIMEOUT_S, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        diff = proc.stdout.read(MAX_DIFF_BYTES + 1)
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if timed_out.is_set():
        raise TimeoutError(f"git diff took over GIT_TIMEOUT_S ({GIT_TIMEOUT_S:g} s)")
    return diff


def collect(script: Path | None = None) -> Reproducibility:
    """Gather the records for the running program (bounded in size and time)."""
    out = Reproducibility()
    out.files["environment/requirements.txt"] = _requirements()
    if script is None and sys.argv and sys.argv[0]:
        script = Path(sys.argv[0])
    if script is not None and script.is_file():
        size = script.stat().st_size
        if size <= MAX_SCRIPT_BYTES:
            out.files[f"code/{script.name}"] = script.read_bytes()
        else:
            out.notes.append(
                f"entry script {script.name} not logged: {size} bytes > MAX_SCRIPT_BYTES (1 MB)"
            )
    cwd = script.resolve().parent if script is not None and script.is_file() else Path.cwd()
    info = git_info(cwd)
    if info is not None:
        out.tags.update(info.tags())
    try:
        diff = _git_diff(cwd)
    except TimeoutError as exc:
        out.tags["mlflow.source.git.dirty"] = "true"
        out.notes.append(f"git diff not logged: {exc}")
        diff = None
    if diff is not None:  # None: no git work tree (or no git), nothing to say
        out.tags["mlflow.source.git.dirty"] = "true" if diff else "false"
        if len(diff) > MAX_DIFF_BYTES:
            out.notes.append("git diff not logged: more than MAX_DIFF_BYTES (5 MB)")
        elif diff:
            out.files["code/git.diff"] = diff
    return out
