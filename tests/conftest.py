"""Shared fixtures: a temporary home for the run, a clean environment for every test, and
real MLflow servers.

The whole run, collection included, has HOME, the XDG base directories and MLRELAY_HOME in
a temporary directory, and fails if anything was written under the real home (the plugin
tests/_home_guard.py, which also provides the ``session_home`` fixture).
The real servers are started once per session on 127.0.0.1 with a free port, a
temporary sqlite database and a temporary artifacts directory, and stopped by their
process group at the end. The production-shaped ones (``mlflow_prod``,
``mlflow_prod_direct``) keep their runs in PostgreSQL and their artifacts in S3 (moto), both
on loopback and started once per session too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests._s3 import S3Store, moto_server
from tests._servers import PostgresServer, RunningServer, mlflow_server, postgres_server
from tests._timing import deadline

# The temporary home is the plugin tests._home_guard: it must start before collection.
pytest_plugins = ["pytester", "tests._home_guard"]

# The property tests draw the same examples on every run of `make test` (derandomized: a
# red CI must mean a change broke something, not that this run drew a new example), and no
# example database is written into the checkout. `make fuzz` explores: new examples on each
# run, many runs (MLRELAY_HYPOTHESIS_PROFILE=explore).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False, database=None)
hypothesis_settings.load_profile(os.environ.get("MLRELAY_HYPOTHESIS_PROFILE", "repeatable"))

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


S3_BUCKET = "mlrelay-test"
PROD_WORKERS = 4


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[S3Store]:
    """One S3-compatible store (moto's server on 127.0.0.1) for the session, with the bucket
    ``S3_BUCKET`` made; everything in it is gone when the session ends."""
    with moto_server(tmp_path_factory.mktemp("moto-s3"), buckets=(S3_BUCKET,)) as store:
        yield store


@pytest.fixture(scope="session")
def postgres(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path
) -> Iterator[PostgresServer]:
    """One PostgreSQL server (pgserver's build, TCP on 127.0.0.1) for the session; every MLflow
    server on it gets a database of its own."""
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@dataclass(frozen=True)
class ProdServer:
    """A production-shaped MLflow server: runs in PostgreSQL, several workers, artifacts in an
    S3 bucket under ``prefix``, moved by the server (``proxied``) or by the clients."""

    server: RunningServer
    postgres: PostgresServer
    database: str
    s3: S3Store
    bucket: str
    prefix: str
    proxied: bool

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.server.url

    @property
    def database_uri(self) -> str:
        """The server's ``--backend-store-uri``."""
        return self.postgres.uri(self.database)

    @property
    def artifact_root(self) -> str:
        """Where the artifacts go: ``s3://<bucket>/<prefix>``."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def s3_env(self) -> dict[str, str]:
        """The environment an S3 client needs for the bucket (endpoint and test credentials)."""
        return self.s3.env

    def s3_client(self) -> Any:
        """A boto3 S3 client for the bucket."""
        import boto3

        env = self.s3_env
        return boto3.client(
            "s3",
            endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def object_keys(self) -> list[str]:
        """The keys stored under ``prefix`` in the bucket right now, sorted."""
        pages = (
            self.s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read_object(self, key: str) -> bytes:
        """The bytes stored under ``key`` in the bucket."""
        body: bytes = self.s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@contextlib.contextmanager
def _prod_server(
    workdir: Path, postgres: PostgresServer, s3: S3Store, prefix: str, *, proxied: bool
) -> Iterator[ProdServer]:
    database = f"mlflow_{prefix}"
    with mlflow_server(
        workdir,
        backend_store_uri=postgres.create_database(database),
        workers=PROD_WORKERS,
        artifacts=f"s3://{S3_BUCKET}/{prefix}",
        serve_artifacts=proxied,
        env=s3.env,
    ) as server:
        yield ProdServer(server, postgres, database, s3, S3_BUCKET, prefix, proxied)


@pytest.fixture(scope="session")
def mlflow_prod(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, moto_s3: S3Store
) -> Iterator[ProdServer]:
    """A real ``mlflow server`` shaped for production, for the whole session: its own
    PostgreSQL database, ``--workers 4``, artifacts proxied by the server to
    ``s3://mlrelay-test/proxied`` (runs get ``mlflow-artifacts:/`` URIs)."""
    workdir = tmp_path_factory.mktemp("mlflow-prod")
    with _prod_server(workdir, postgres, moto_s3, "proxied", proxied=True) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_prod_direct(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, moto_s3: S3Store
) -> Iterator[ProdServer]:
    """Like ``mlflow_prod`` (same PostgreSQL server, another database) but with
    ``--no-serve-artifacts``: runs get ``s3://mlrelay-test/direct/...`` artifact URIs and
    clients write to the bucket themselves (with ``s3_env``)."""
    workdir = tmp_path_factory.mktemp("mlflow-prod-direct")
    with _prod_server(workdir, postgres, moto_s3, "direct", proxied=False) as server:
        yield server
