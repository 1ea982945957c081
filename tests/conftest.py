"""Shared fixtures: a temporary home for the run, a clean environment for every test, and
real MLflow servers.

The whole run has HOME, the XDG base directories and MLRELAY_HOME in a temporary
directory, and fails if anything was written under the real home (tests/_home_guard.py).
The real servers are started once per session on 127.0.0.1 with a free port, a
temporary sqlite database and a temporary artifacts directory, and stopped by their
process group at the end.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._home_guard import IGNORE_ENV, ignored_trees, isolated_home, real_homes
from tests._servers import RunningServer, mlflow_server
from tests._timing import deadline

pytest_plugins = ["pytester"]

AUTH_ADMIN = "admin"
AUTH_ADMIN_PASSWORD = "Adm1n-for-tests-only"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scale pytest-timeout's per-test backstop (``timeout`` in pyproject.toml, or
    --timeout) like every other limit of the suite; a test's own timeout marker stays."""
    if not config.pluginmanager.hasplugin("timeout"):
        return
    import pytest_timeout

    base = pytest_timeout.get_env_settings(config).timeout
    if not base:  # 0 or unset: no backstop, as asked
        return
    backstop = pytest.mark.timeout(deadline(base))
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(backstop)


@pytest.fixture(scope="session", autouse=True)
def session_home(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Path]:
    """HOME, XDG_{DATA,CONFIG,CACHE,STATE}_HOME and MLRELAY_HOME in a temporary directory for
    the whole run (child processes inherit them); the run fails if anything under the real
    home was created, modified or removed meanwhile."""
    session_dir = tmp_path_factory.mktemp("session-home")
    # Trees that may lie under the real home and are written by the run by design: the
    # checkout (bytecode and tool caches) and pytest's temporary root (the redirected home).
    # Plus those the person running the suite names in MLRELAY_TEST_HOME_IGNORE (read
    # here, before any test's fixture clears MLRELAY_*): other programs' trees.
    skip = [
        pytestconfig.rootpath,
        tmp_path_factory.getbasetemp().parent,
        *ignored_trees(os.environ.get(IGNORE_ENV)),
    ]
    with isolated_home(session_dir, real_homes(), skip) as home:
        yield home


def reset_fluent_state() -> None:
    """Forget the fluent API's state (pipeline, client, active runs) if a test used it.

    Only when ``mlrelay.fluent`` is already imported: a test that never touched the fluent
    API does not import it (nor register its at-exit and at-fork hooks).
    """
    fluent = sys.modules.get("mlrelay.fluent")
    if fluent is not None:
        fluent._reset()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Clear MLFLOW_*, MLRELAY_* and DAGSHUB_* variables, keep keyring and .env out of reach;
    afterwards forget the fluent state, so the next test starts clean."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_")):
            monkeypatch.delenv(name)
    # A test never reads the developer's real keyring or a stray .env in the checkout.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("MLRELAY_HOME", str(tmp_path / "mlrelay-home"))
    monkeypatch.chdir(tmp_path)
    yield
    for name in list(os.environ):  # set during the test: MLflow's set_tracking_uri exports
        if name.startswith(("MLFLOW_", "MLRELAY_", "DAGSHUB_")):  # MLFLOW_TRACKING_URI
            del os.environ[name]  # (monkeypatch then restores what it removed)
    reset_fluent_state()


@pytest.fixture(scope="session")
def mlflow_real(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Iterator[RunningServer]:
    """A real ``mlflow server`` (sqlite backend, proxied artifacts) for the whole session."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-real")) as server:
        yield server


MLFLOW27_VENV = Path(__file__).resolve().parents[1] / ".venv-mlflow27"


@pytest.fixture(scope="session")
def mlflow27(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Iterator[RunningServer]:
    """A real MLflow 2.7.1 server (DagsHub's version) from its own venv, for the session.

    The venv is built by ``make test`` (tests/mlflow27-requirements.txt); 2.7 serves
    through gunicorn, which it looks up on PATH, so the venv's bin goes first on PATH.
    """
    bin_dir = MLFLOW27_VENV / "bin"
    if not (bin_dir / "mlflow").exists():
        pytest.fail(
            f"no MLflow 2.7.1 venv at {MLFLOW27_VENV}: run `make test` (or "
            "`make .venv-mlflow27/.done`) to build it"
        )
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    workdir = tmp_path_factory.mktemp("mlflow27")
    with mlflow_server(workdir, command=[str(bin_dir / "mlflow")], env=env) as server:
        yield server


@dataclass(frozen=True)
class AuthServer:
    """A real ``mlflow server --app-name basic-auth`` and the accounts on it."""

    server: RunningServer
    admin: tuple[str, str]
    reader: tuple[str, str]

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.server.url


@pytest.fixture(scope="session")
def mlflow_auth(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Iterator[AuthServer]:
    """A real basic-auth MLflow server with an admin and a read-only user."""
    import httpx

    workdir = tmp_path_factory.mktemp("mlflow-auth")
    ini = workdir / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'auth.db'}\n"
        f"admin_username = {AUTH_ADMIN}\n"
        f"admin_password = {AUTH_ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": AUTH_ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "tests-only-secret-key",
    }
    with mlflow_server(workdir, extra_args=("--app-name", "basic-auth"), env=env) as server:
        reader = ("reader", "Reader-pass-1234")
        r = httpx.post(
            f"{server.url}/api/2.0/mlflow/users/create",
            json={"username": reader[0], "password": reader[1]},
            auth=(AUTH_ADMIN, AUTH_ADMIN_PASSWORD),
            timeout=deadline(30),
        )
        r.raise_for_status()
        yield AuthServer(server=server, admin=(AUTH_ADMIN, AUTH_ADMIN_PASSWORD), reader=reader)
