"""Where mlrelay installs its SIGTERM handler: from the main thread only, never over an
ignored SIGTERM, and only once (a handler the user installs later is left alone)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests._env import child_env
from tests._timing import deadline

PRELUDE = textwrap.dedent(
    """
    import signal, threading
    import mlrelay
    from mlrelay._pipeline import runs
    mlrelay.set_tracking_uri("http://127.0.0.1:9", mode="offline")
    def name(h):
        if isinstance(h, signal.Handlers):
            return h.name
        return getattr(h, "__name__", str(h))
    """
)


def _run(code: str, home: Path) -> str:
    env = child_env()
    env["MLRELAY_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PRELUDE + textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(60),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_not_installed_from_another_thread(tmp_path: Path) -> None:
    """A pipeline first built in a worker thread leaves SIGTERM's handler as it was."""
    out = _run(
        """
        t = threading.Thread(target=lambda: mlrelay.log_metric("m", 1.0))
        t.start(); t.join()
        print(name(signal.getsignal(signal.SIGTERM)))
        """,
        tmp_path,
    )
    assert out == "SIG_DFL"


def test_installed_from_the_main_thread_and_chains(tmp_path: Path) -> None:
    """From the main thread it is installed, remembering the user's handler to chain to."""
    out = _run(
        """
        def mine(signum, frame):
            pass
        signal.signal(signal.SIGTERM, mine)
        mlrelay.log_metric("m", 1.0)
        print(name(signal.getsignal(signal.SIGTERM)), name(runs._sigterm.previous))
        """,
        tmp_path,
    )
    assert out == "_on_sigterm mine"


def test_an_ignored_sigterm_stays_ignored(tmp_path: Path) -> None:
    """SIG_IGN set before mlrelay starts is kept: the process still ignores SIGTERM."""
    out = _run(
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mlrelay.log_metric("m", 1.0)
        print(name(signal.getsignal(signal.SIGTERM)))
        """,
        tmp_path,
    )
    assert out == "SIG_IGN"


def test_a_handler_installed_later_is_not_replaced(tmp_path: Path) -> None:
    """After the user replaces mlrelay's handler, a new pipeline does not take it back."""
    out = _run(
        """
        mlrelay.log_metric("m", 1.0)
        def later(signum, frame):
            pass
        signal.signal(signal.SIGTERM, later)
        mlrelay.end_run()
        mlrelay.set_tracking_uri("http://127.0.0.1:9", mode="offline")  # a new pipeline
        mlrelay.log_metric("m", 2.0)
        print(name(signal.getsignal(signal.SIGTERM)))
        """,
        tmp_path,
    )
    assert out == "later"
