"""The suite's own guard rails: the temporary home and the check that the real one is untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._home_guard import changes, ignored_trees, listing
from tests._timing import SCALE_ENV, _read_scale, deadline, scale

XDG = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


def _fake_home(root: Path) -> Path:
    home = root / "fake-home"
    (home / ".config" / "tool").mkdir(parents=True)
    (home / ".config" / "tool" / "settings.ini").write_text("a = 1\n")
    (home / "notes.txt").write_text("keep\n")
    (home / "project" / "src").mkdir(parents=True)
    return home


def test_listing_reports_created_modified_and_removed_entries(tmp_path: Path) -> None:
    """changes() names a new file, a grown file, a chmod, a removal and a new directory."""
    home = _fake_home(tmp_path)
    before = listing(home)
    (home / ".cache" / "app").mkdir(parents=True)
    (home / ".cache" / "app" / "blob").write_bytes(b"x")
    with (home / ".config" / "tool" / "settings.ini").open("a") as f:
        f.write("b = 2\n")
    (home / "notes.txt").chmod(0o600)
    (home / "project" / "src").rmdir()
    found = changes(before, listing(home))
    text = "\n".join(found)
    assert f"created  {home / '.cache'} " in text
    assert f"created  {home / '.cache' / 'app' / 'blob'} " in text
    assert f"modified {home / '.config' / 'tool' / 'settings.ini'} " in text
    assert f"modified {home / 'notes.txt'} " in text
    assert f"removed  {home / 'project' / 'src'}" in text
    assert changes(before, before) == []


def test_listing_leaves_out_the_skipped_trees(tmp_path: Path) -> None:
    """Writes inside a skipped tree (the checkout, the temporary root) are not reported."""
    home = _fake_home(tmp_path)
    checkout = home / "project"
    before = listing(home, skip=[checkout])
    (checkout / "src" / "__pycache__").mkdir()
    (checkout / "src" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    assert changes(before, listing(home, skip=[checkout])) == []
    (home / "stray.txt").write_text("x")
    assert [line.split()[:2] for line in changes(before, listing(home, skip=[checkout]))] == [
        ["created", str(home / "stray.txt")]
    ]


def test_nothing_is_ignored_unless_the_variable_names_it() -> None:
    """MLRELAY_TEST_HOME_IGNORE is the only source of extra skipped trees; ~ is expanded."""
    assert ignored_trees(None) == []
    assert ignored_trees("") == []
    assert ignored_trees(f"~/.mozilla{os.pathsep}{os.pathsep}/opt/ide") == [
        Path.home() / ".mozilla",
        Path("/opt/ide"),
    ]


INNER_CONFTEST = textwrap.dedent(
    """
    import os
    from pathlib import Path

    import pytest

    from tests._home_guard import (
        pytest_sessionfinish,
        pytest_terminal_summary,
        pytest_unconfigure,
        session_home,
        start,
    )


    @pytest.hookimpl(trylast=True)
    def pytest_configure(config):
        start(config, [Path(os.environ["FAKE_REAL_HOME"])])
    """
)


@pytest.fixture
def inner(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pytester project guarded by tests._home_guard's hooks, watching a fake 'real home'
    that is also HOME when the inner run starts; that home."""
    home = _fake_home(tmp_path)
    monkeypatch.setenv("FAKE_REAL_HOME", str(home))
    monkeypatch.setenv("HOME", str(home))
    pytester.makeconftest(INNER_CONFTEST)
    return home


def test_the_guard_fails_a_run_that_writes_under_the_real_home(
    pytester: pytest.Pytester, inner: Path
) -> None:
    """A test writing into the watched home by absolute path makes the whole run fail."""
    pytester.makepyfile(
        """
        import os
        from pathlib import Path

        def test_leaves_a_file_behind():
            target = Path(os.environ["FAKE_REAL_HOME"], ".local", "share", "app", "journal.db")
            target.parent.mkdir(parents=True)
            target.write_bytes(b"rows")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*written under the real home*",
            "*the test run wrote under the real home*",
            f"*created  {inner / '.local' / 'share' / 'app' / 'journal.db'}*",
        ]
    )


def test_the_guard_sees_a_write_made_while_collecting(
    pytester: pytest.Pytester, inner: Path
) -> None:
    """A test module that writes into the real home when it is imported (at collection,
    before any fixture runs) fails the run too: the listing is taken before collection."""
    pytester.makepyfile(
        """
        import os
        from pathlib import Path

        Path(os.environ["FAKE_REAL_HOME"], ".imported-at-collection").write_text("x")

        def test_nothing_wrong_here():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*created  {inner / '.imported-at-collection'}*"])


def test_a_library_imported_at_collection_writes_into_the_temporary_home(
    pytester: pytest.Pytester, inner: Path
) -> None:
    """A module-level import that writes its config through ``~`` and the XDG dirs (Keras's
    ~/.keras/keras.json, matplotlib's config directory) lands in the run's temporary home:
    the redirect is in place before collection. The real home is untouched."""
    pytester.makepyfile(
        """
        import os
        from pathlib import Path

        KERAS = Path(os.path.expanduser("~"), ".keras", "keras.json")
        KERAS.parent.mkdir()
        KERAS.write_text("{}")
        Path(os.environ["XDG_CONFIG_HOME"], "matplotlib").mkdir(parents=True)

        def test_the_config_went_to_the_temporary_home(session_home):
            assert KERAS == session_home / ".keras" / "keras.json"
            assert KERAS.exists()
            assert (session_home / ".config" / "matplotlib").is_dir()
        """
    )
    before = listing(inner)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert changes(before, listing(inner)) == []


def test_the_guard_passes_a_run_that_keeps_to_the_temporary_home(
    pytester: pytest.Pytester, inner: Path
) -> None:
    """Writes through ~ and the XDG dirs, in-process and from a child, land in the session dir."""
    pytester.makepyfile(
        f"""
        import os
        import subprocess
        import sys
        from pathlib import Path

        CHILD = (
            "import os, pathlib;"
            "pathlib.Path(os.path.expanduser('~/child.txt')).write_text('c');"
            "pathlib.Path(os.environ['XDG_CACHE_HOME'], 'child-cache').write_text('c')"
        )

        def test_writes_through_home_and_xdg(session_home):
            Path(os.path.expanduser("~"), "in-process.txt").write_text("p")
            Path(os.environ["XDG_CONFIG_HOME"], "tool.ini").write_text("p")
            subprocess.run([sys.executable, "-c", CHILD], check=True, timeout={deadline(60)})
            for name in ("in-process.txt", "child.txt"):
                assert (session_home / name).exists()
            assert (session_home / ".cache" / "child-cache").exists()
            assert (session_home / ".config" / "tool.ini").exists()
            mlrelay_home = session_home / ".local" / "share" / "mlrelay"
            assert os.environ["MLRELAY_HOME"] == str(mlrelay_home)
        """
    )
    watched = ("HOME", *XDG, "MLRELAY_HOME")
    before, environment = listing(inner), {k: os.environ.get(k) for k in watched}
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert changes(before, listing(inner)) == []
    assert {k: os.environ.get(k) for k in watched} == environment  # the guard put them back


def test_this_run_has_a_temporary_home(session_home: Path) -> None:
    """In this very run HOME and the XDG dirs point into the session's temporary directory,
    and a child process sees the same."""
    assert Path.home() == session_home
    for name in XDG:
        assert Path(os.environ[name]).is_relative_to(session_home), name
    assert _child_prints("import os; print(os.path.expanduser('~'))") == str(session_home)


def test_this_run_keeps_temporary_files_in_its_own_temporary_directory(
    session_home: Path,
) -> None:
    """TMPDIR and tempfile's default point into the session's temporary directory, for a
    child process too: what code under test leaves there (a model ``load_model``
    downloaded stays on disk, as MLflow's does) never piles up in the system's."""
    session_dir = session_home.parent
    here = Path(tempfile.mkdtemp(prefix="mlrelay-hygiene-"))
    here.rmdir()
    assert here.parent == session_dir / "tmp"
    assert os.environ["TMPDIR"] == str(session_dir / "tmp")
    seen = _child_prints("import tempfile; print(tempfile.gettempdir())")
    assert seen == str(session_dir / "tmp")


def _child_prints(code: str) -> str:
    """What a child Python process running ``code`` prints (this run's environment)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=deadline(60),
    ).stdout.strip()


def _leave_an_active_offline_run() -> object:
    from mlrelay import fluent

    fluent.set_tracking_uri("http://127.0.0.1:9", mode="offline")  # never contacted
    run = fluent.start_run(run_name="left-behind")
    assert fluent.active_run() is run
    assert fluent.get_tracking_uri() == "http://127.0.0.1:9"
    return run


def test_reset_forgets_the_fluent_state() -> None:
    """reset_fluent_state() drops the active run, the tracking URI and the pipeline."""
    from mlrelay import fluent
    from tests.conftest import reset_fluent_state

    _leave_an_active_offline_run()
    reset_fluent_state()
    assert fluent.active_run() is None
    assert fluent.get_tracking_uri().startswith("file:")  # none set: where the journal is


def test_reset_does_not_import_the_fluent_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that never touched mlrelay.fluent does not get it imported by the reset."""
    from tests.conftest import reset_fluent_state

    monkeypatch.delitem(sys.modules, "mlrelay.fluent", raising=False)
    reset_fluent_state()
    assert "mlrelay.fluent" not in sys.modules


@pytest.fixture(scope="class")
def clean_afterwards() -> Iterator[None]:
    """After its class's test and that test's fixtures' teardown: no fluent state is left.

    A class-scoped teardown comes after the autouse function-scoped fixture's, so it sees
    the state the next test would start with.
    """
    yield
    from mlrelay import fluent

    assert fluent.active_run() is None, "the autouse fixture left the active run behind"
    assert fluent.get_tracking_uri().startswith("file:"), (
        "the autouse fixture left the tracking URI"
    )


class TestTheAutouseFixtureResets:
    """The shared autouse fixture, not the test, cleans up after the test."""

    @pytest.mark.usefixtures("clean_afterwards")
    def test_a_run_left_active_is_gone_before_the_next_test(self) -> None:
        """A run (and tracking URI) this test leaves behind is forgotten by the shared reset."""
        _leave_an_active_offline_run()


def test_time_scale_is_a_positive_finite_number() -> None:
    """MLRELAY_TEST_TIME_SCALE defaults to 2, takes a positive number, refuses anything else."""
    assert _read_scale(None) == _read_scale("") == 2.0
    assert _read_scale("3.5") == 3.5
    for bad in ("abc", "0", "-1", "inf", "nan"):
        with pytest.raises(ValueError, match=SCALE_ENV):
            _read_scale(bad)


def test_the_timeout_backstop_is_scaled(request: pytest.FixtureRequest) -> None:
    """pytest-timeout's per-test limit from the config is multiplied by the time scale."""
    import pytest_timeout

    base = pytest_timeout.get_env_settings(request.config).timeout
    if not base:
        pytest.skip("pytest-timeout is off in this run (--timeout 0)")
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None
    assert marker.args == (deadline(base),)
    assert deadline(base) == base * scale()


def test_property_tests_draw_the_same_examples_on_every_run() -> None:
    """Under `make test` Hypothesis is derandomized and keeps no example database in the
    checkout: CI fails only when a change breaks something, never because a run drew a
    new example (`make fuzz` explores)."""
    from hypothesis import settings

    if os.environ.get("MLRELAY_HYPOTHESIS_PROFILE", "repeatable") != "repeatable":
        pytest.skip("run with another Hypothesis profile (`make fuzz`)")
    assert settings.default.derandomize
    assert settings.default.database is None


def test_make_fuzz_runs_every_property_test_file() -> None:
    """The Makefile's FUZZ_TESTS names exactly the test files that use Hypothesis's
    ``@given``, so a new property test is explored by `make fuzz` too."""
    root = Path(__file__).resolve().parents[2]
    makefile = (root / "Makefile").read_text()
    start = makefile.index("FUZZ_TESTS :=") + len("FUZZ_TESTS :=")
    listed = makefile[start : makefile.index("\nfuzz:", start)].replace("\\", " ").split()
    using = sorted(
        str(path.relative_to(root))
        for path in (root / "tests").rglob("test_*.py")
        if re.search(r"^@given\(", path.read_text(), re.MULTILINE)
    )
    assert sorted(listed) == using
