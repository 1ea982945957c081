"""Reproducibility records for a run (opt-in): installed packages, the entry script, git state.

``start_run(log_environment=True)`` or ``MLRELAY_LOG_ENVIRONMENT=true`` logs, as artifacts of
the run: ``environment/requirements.txt`` (every installed distribution, pinned),
``code/<script>`` (the entry script, when it is a file of at most 1 MB) and, when the git
work tree has uncommitted changes, ``code/git.diff`` (at most 5 MB, from ``git diff HEAD``
with a 5 s limit); and the tag ``mlflow.source.git.dirty``. Commit, branch and remote are
logged as tags on every run already (``mlflow.source.git.*``).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

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
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=True,
        )  # fmt: skip
        if not status.stdout.strip():
            return b""
        diff = subprocess.run(
            ["git", "diff", "HEAD"], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return diff.stdout


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
            out.notes.append(f"entry script {script.name} not logged: {size} bytes > 1 MB")
    cwd = script.resolve().parent if script is not None and script.is_file() else Path.cwd()
    diff = _git_diff(cwd)
    if diff is not None:  # None: no git work tree (or no git), nothing to say
        out.tags["mlflow.source.git.dirty"] = "true" if diff else "false"
        if len(diff) > MAX_DIFF_BYTES:
            out.notes.append(f"git diff not logged: {len(diff)} bytes > 5 MB")
        elif diff:
            out.files["code/git.diff"] = diff
    return out
