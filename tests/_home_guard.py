"""Keep the test suite off the user's machine, and prove it did stay off.

:func:`isolated_home` points ``HOME``, the XDG base directories and ``MLRELAY_HOME`` at a
temporary directory for as long as it is active (child processes inherit that), and on
exit compares a listing of the real home taken before with one taken after: anything
created, modified or removed under the real home in between is reported.

The comparison is a listing, not an "mtime newer than the start" test, because a listing
does not depend on clocks: a file written within the filesystem's timestamp granularity of
the start, a file copied with its old mtime preserved (its ctime still changes), a chmod,
and a removal are all seen. The price is one walk of the home at each end (about 1.5 s for
250,000 entries).

Nothing under the real home is excluded, except two places that are not the user's state
and that the suite itself must write to when they happen to live under the home (a
checkout in ``~/src``, ``TMPDIR=~/tmp``): the project checkout (Python's ``__pycache__``,
pytest's and hypothesis' caches) and the temporary directory holding the redirected home.

Writes by other programs running at the same time (a browser, an IDE, another test run)
are reported too: a listing cannot tell who wrote a file. The report names each path and
its time for a person to judge; trees that other programs on a machine are known to write
during a run can be listed in ``MLRELAY_TEST_HOME_IGNORE`` (``os.pathsep``-separated,
``~`` allowed), which is empty unless the person running the suite sets it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = [
    "IGNORE_ENV",
    "Listing",
    "changes",
    "ignored_trees",
    "isolated_home",
    "listing",
    "real_homes",
]

IGNORE_ENV = "MLRELAY_TEST_HOME_IGNORE"

#: path -> (file type and mode, size, mtime ns, ctime ns, inode)
Listing = dict[str, tuple[int, int, int, int, int]]


def real_homes() -> list[Path]:
    """The user's home as ``~`` resolves it now, and as the password database has it.

    Both count: a child process started without ``HOME`` in its environment falls back to
    the password database's entry.
    """
    homes = [Path(os.path.expanduser("~"))]
    with contextlib.suppress(KeyError):  # a uid without an entry (containers): ~ is all
        homes.append(Path(pwd.getpwuid(os.getuid()).pw_dir))
    unique: list[Path] = []
    for home in homes:
        if home.is_dir() and all(not _same_or_inside(home, u) for u in unique):
            unique = [u for u in unique if not _same_or_inside(u, home)] + [home]
    return unique


def ignored_trees(raw: str | None) -> list[Path]:
    """The trees named in ``MLRELAY_TEST_HOME_IGNORE`` (``raw``), ``~`` expanded."""
    return [Path(os.path.expanduser(p)) for p in (raw or "").split(os.pathsep) if p.strip()]


def _same_or_inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


def listing(root: Path, skip: Iterable[Path] = ()) -> Listing:
    """Every entry under ``root`` (symlinks not followed), minus the trees in ``skip``."""
    skipped = {os.path.realpath(p) for p in skip}
    found: Listing = {}
    stack = [os.fspath(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:  # unreadable, or removed while we walk: the parent's stamps show it
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and os.path.realpath(entry.path) in skipped:
                    continue
                found[entry.path] = (
                    st.st_mode,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    st.st_ino,
                )
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
    return found


def changes(before: Listing, after: Listing) -> list[str]:
    """Human-readable lines for what was created, modified or removed between two listings."""
    lines = []
    for path in sorted(after.keys() - before.keys()):
        lines.append(f"created  {path} ({_when(after[path])})")
    for path in sorted(before.keys() & after.keys()):
        if before[path] != after[path]:
            lines.append(f"modified {path} ({_when(after[path])})")
    for path in sorted(before.keys() - after.keys()):
        lines.append(f"removed  {path}")
    return lines


def _when(entry: tuple[int, int, int, int, int]) -> str:
    latest = max(entry[2], entry[3]) / 1e9
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(latest))


@contextmanager
def isolated_home(
    session_dir: Path, homes: Sequence[Path], skip: Sequence[Path] = ()
) -> Iterator[Path]:
    """Redirect HOME, XDG_*, MLRELAY_HOME and TMPDIR into ``session_dir`` for the block; on
    exit, fail (pytest.fail) if anything under ``homes`` changed meanwhile.

    With TMPDIR there, what code under test leaves in the temporary directory on purpose
    (a model downloaded by ``load_model`` stays on disk, as MLflow's does) goes away with
    the run's temporary root instead of piling up in the system's.

    ``skip`` are trees under a home that may change (see the module docstring); the
    session directory itself is always skipped.
    """
    skip = [*skip, session_dir]
    before = {home: listing(home, skip) for home in homes}
    home = session_dir / "home"
    redirected = {
        "HOME": home,
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
        "MLRELAY_HOME": home / ".local" / "share" / "mlrelay",
        "TMPDIR": session_dir / "tmp",
    }
    for path in redirected.values():
        path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        for name, path in redirected.items():
            mp.setenv(name, os.fspath(path))
        mp.setattr(tempfile, "tempdir", os.fspath(redirected["TMPDIR"]))  # (cached there)
        yield home
    problems = [line for h in homes for line in changes(before[h], listing(h, skip))]
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        pytest.fail(
            f"the test run wrote under the real home ({', '.join(map(str, homes))}); "
            f"tests must keep to their temporary HOME/XDG dirs/MLRELAY_HOME:\n  {shown}{more}\n"
            "(A listing cannot tell who wrote a file. If another program wrote these while "
            f"the suite ran, list its trees in {IGNORE_ENV}.)",
            pytrace=False,
        )
