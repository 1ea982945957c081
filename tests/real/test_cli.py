"""The ``mlrelay`` command: doctor against real servers, login/logout through the keyring."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from mlrelay import cli
from mlrelay._credentials import keyring_lookup
from tests._env import child_env
from tests._imports import imports_of
from tests._servers import RunningServer, free_port
from tests._timing import deadline
from tests.conftest import AuthServer
from tests.unit.test_credentials import MemoryKeyring, installed_keyring


def _doctor_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlrelay.cli", "doctor"],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=deadline(60),
        check=False,
    )


def _timed_out(result: subprocess.CompletedProcess[str]) -> bool:
    # A request that timed out: the search (reported as such) or the /version probe (its
    # failure only shows as an unknown version).
    return "timed out (" in result.stdout + result.stderr or "MLflow unknown version" in (
        result.stdout
    )


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `mlrelay doctor`, again while one of its requests timed out, up to a deadline.

    The doctor gives a request at most 10 s, by design and whatever the settings say; a
    loaded machine can take longer than that to answer through a basic-auth MLflow server.
    A timeout says nothing about what these tests check, so it is tried again; any other
    outcome, or the last one at the deadline, is returned to be asserted on.
    """
    stop = time.monotonic() + deadline(120)
    while True:
        result = _doctor_once(env)
        if not _timed_out(result) or time.monotonic() >= stop:
            return result


@pytest.mark.real
def test_doctor_reports_rejected_credentials_without_the_secret(mlflow_auth: AuthServer) -> None:
    """Against basic-auth MLflow with a wrong password: exit 1, 'rejected', no secret."""
    secret = "Wr0ng-Passw0rd-do-not-print"
    result = _doctor(
        {
            "MLFLOW_TRACKING_URI": mlflow_auth.url,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": secret,
        }
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "FAIL credentials rejected (HTTP 401)" in output
    assert "OK   server reachable" in output
    assert "environment (MLFLOW_TRACKING_PASSWORD)" in output
    assert secret not in output


@pytest.mark.real
def test_doctor_accepts_good_credentials(mlflow_auth: AuthServer) -> None:
    """With the right password doctor says so, names the scheme and the server version."""
    user, password = mlflow_auth.admin
    result = _doctor(
        {
            "MLFLOW_TRACKING_URI": mlflow_auth.url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK   credentials accepted (basic)" in result.stdout
    assert "MLflow 3." in result.stdout
    assert password not in result.stdout


@pytest.mark.real
def test_doctor_on_an_open_server(mlflow_real: RunningServer) -> None:
    """An unauthenticated server passes both checks."""
    result = _doctor({"MLFLOW_TRACKING_URI": mlflow_real.url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no authentication needed" in result.stdout


def test_doctor_on_an_unreachable_server() -> None:
    """A closed port is reported as unreachable within the doctor's short budget."""
    result = _doctor({"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert "FAIL server unreachable" in result.stdout


def test_doctor_without_a_uri_and_bad_config() -> None:
    """No URI is a clear failure; a bad variable is a configuration error (exit 2) naming it."""
    assert "no tracking URI configured" in _doctor({}).stdout
    bad = _doctor({"MLFLOW_TRACKING_URI": "http://x", "MLFLOW_HTTP_REQUEST_TIMEOUT": "abc"})
    assert bad.returncode == 2
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" in bad.stderr


def test_login_then_logout_round_trip_through_the_keyring() -> None:
    """login stores a piped token for the host; resolution finds it; logout removes it."""
    with installed_keyring(MemoryKeyring()):
        out = io.StringIO()
        code = cli.main(
            ["login", "--tracking-uri", "https://dagshub.com/o/r.mlflow", "--username", "ann"],
            out=out,
            stdin=io.StringIO("tok-123\n"),
        )
        assert code == 0
        assert "tok-123" not in out.getvalue()
        found = keyring_lookup("dagshub.com")
        assert found is not None
        assert found[0] == "ann"
        assert found[1].get_secret_value() == "tok-123"
        assert (
            cli.main(["logout", "--tracking-uri", "https://dagshub.com/x/y.mlflow"], out=out) == 0
        )
        assert keyring_lookup("dagshub.com") is None


def test_login_without_a_keyring_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """With only the null backend, login exits 2 and explains; nothing hangs."""
    code = cli.main(
        ["login", "--tracking-uri", "https://h.example"],
        out=io.StringIO(),
        stdin=io.StringIO("t\n"),
    )
    assert code == 2
    assert "keyring" in capsys.readouterr().err.lower()


def test_help_explains_the_commands() -> None:
    """--help lists login, logout and doctor and the resolution order."""
    result = subprocess.run(
        [sys.executable, "-m", "mlrelay.cli", "--help"], capture_output=True, text=True, check=True
    )
    for word in ("login", "logout", "doctor", ".env", "keyring"):
        assert word in result.stdout


def test_cli_uses_the_client_api_only() -> None:
    """cli.py imports no httpx and never reaches into a client's transport."""
    import inspect

    assert not [name for name in imports_of("mlrelay.cli") if name.startswith("httpx")]
    assert "_transport" not in inspect.getsource(cli)
