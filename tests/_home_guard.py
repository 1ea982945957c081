"""Keep the test suite off the user's machine, and prove it did stay off.

:func:`begin` points ``HOME``, the XDG base directories and ``MLRELAY_HOME`` at a
temporary directory until :func:`end` (child processes inherit that), which compares a
listing of the real home taken before with one taken after: anything created, modified or
removed under the real home in between is reported. As a pytest plugin (the hooks at the
bottom) the guard spans the whole run, collection included.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "GUARD",
    "IGNORE_ENV",
    "Guard",
    "Listing",
    "begin",
    "changes",
    "end",
    "ignored_trees",
    "listing",
    "real_homes",
    "report",
    "session_home",
    "start",
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


@dataclass
class Guard:
    """One run's redirected home, and what it must undo and compare at the end."""

    home: Path
    homes: list[Path]
    skip: list[Path]
    before: dict[Path, Listing]
    patch: pytest.MonkeyPatch
    problems: list[str] = field(default_factory=list)
    ended: bool = False


def begin(session_dir: Path, homes: Sequence[Path], skip: Sequence[Path] = ()) -> Guard:
    """List ``homes``, then redirect HOME, XDG_*, MLRELAY_HOME and TMPDIR into
    ``session_dir`` until :func:`end`.

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
    patch = pytest.MonkeyPatch()
    for name, path in redirected.items():
        patch.setenv(name, os.fspath(path))
    patch.setattr(tempfile, "tempdir", os.fspath(redirected["TMPDIR"]))  # (cached there)
    return Guard(home, list(homes), skip, before, patch)


def end(guard: Guard) -> list[str]:
    """Put the environment back and list what changed under the real homes since
    :func:`begin` (only the first call compares; later ones return the same lines)."""
    if not guard.ended:
        guard.ended = True
        guard.patch.undo()
        guard.problems = [
            line for h in guard.homes for line in changes(guard.before[h], listing(h, guard.skip))
        ]
    return guard.problems


def report(guard: Guard) -> str:
    """The failure message for a run that wrote under the real home."""
    shown = "\n  ".join(guard.problems[:50])
    more = f"\n  ... and {len(guard.problems) - 50} more" if len(guard.problems) > 50 else ""
    return (
        f"the test run wrote under the real home ({', '.join(map(str, guard.homes))}); "
        f"tests must keep to their temporary HOME/XDG dirs/MLRELAY_HOME:\n  {shown}{more}\n"
        "(A listing cannot tell who wrote a file. If another program wrote these while "
        f"the suite ran, list its trees in {IGNORE_ENV}.)"
    )


# --- as a pytest plugin (``pytest_plugins = ["tests._home_guard"]``) -----------------------
#
# The redirect starts in pytest_configure, before collection: a test module that imports a
# library at module level (Keras writes ~/.keras/keras.json on import, matplotlib its
# config directory) runs with the temporary home already in place, and the "before" listing
# is taken before any of it. The comparison comes in pytest_sessionfinish, after the
# session-scoped fixtures (the servers) are torn down.

GUARD = pytest.StashKey[Guard]()


def start(config: pytest.Config, homes: Sequence[Path]) -> None:
    """Begin guarding ``homes`` for this run, the session directory in pytest's temporary
    root (call from a ``trylast`` pytest_configure: pytest's tmpdir plugin makes the factory
    in its own)."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    # Trees that may lie under the real home and are written by the run by design: the
    # checkout (bytecode and tool caches) and pytest's temporary root (the redirected home).
    # Plus those the person running the suite names in MLRELAY_TEST_HOME_IGNORE (read
    # here, before any test's fixture clears MLRELAY_*): other programs' trees.
    skip = [
        config.rootpath,
        factory.getbasetemp().parent,
        *ignored_trees(os.environ.get(IGNORE_ENV)),
    ]
    config.stash[GUARD] = begin(factory.mktemp("session-home"), homes, skip)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Guard the user's real home(s) from before collection to the end of the session."""
    start(config, real_homes())


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Compare the real homes with their listing from the start; a change fails the run."""
    guard = session.config.stash.get(GUARD, None)
    ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if guard is not None and end(guard) and session.exitstatus in ok:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the run wrote under the real home, if anything."""
    guard = terminalreporter.config.stash.get(GUARD, None)
    if guard is not None and guard.problems:
        terminalreporter.write_sep("=", "written under the real home", red=True)
        terminalreporter.write_line(report(guard))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the environment back even if the session never ran (a usage error)."""
    guard = config.stash.get(GUARD, None)
    if guard is not None:
        end(guard)


@pytest.fixture(scope="session")
def session_home(pytestconfig: pytest.Config) -> Path:
    """This run's temporary HOME (XDG_* and MLRELAY_HOME are inside it, TMPDIR beside it)."""
    return pytestconfig.stash[GUARD].home
