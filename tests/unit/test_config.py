"""Settings resolution: precedence, .env handling, validation messages and secret masking."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from mlrelay._config import (
    NOT_GIVEN,
    REGISTRY,
    Settings,
    registry_env_names,
    resolve,
)
from mlrelay._credentials import keyring_lookup, keyring_store
from mlrelay._errors import ConfigurationError
from tests._imports import imports_of
from tests.unit.test_credentials import MemoryKeyring, installed_keyring

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
LAYERS = ("argument", "environment", ".env", "keyring")


def _write_env(directory: Path, **values: str) -> Path:
    path = directory / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


# --------------------------------------------------------------------------- precedence


def test_defaults_when_nothing_is_set() -> None:
    """With no source at all, every setting is its registry default and its source is 'default'."""
    s = resolve(environ={})
    for setting in REGISTRY:
        assert getattr(s, setting.name) == setting.default, setting.name
    assert set(s.sources.values()) == {"default"}
    assert s.verify is True
    assert s.cert is None


def test_settings_fields_are_exactly_the_registry() -> None:
    """Settings has one attribute per registry entry (plus sources) and sources cover them all."""
    assert list(Settings.model_fields) == [s.name for s in REGISTRY] + ["sources"]
    assert list(resolve(environ={}).sources) == [s.name for s in REGISTRY]


def test_argument_beats_environment_beats_dotenv(tmp_path: Path) -> None:
    """An argument beats the environment, which beats .env, which beats the default."""
    dotenv = _write_env(
        tmp_path,
        MLFLOW_HTTP_REQUEST_TIMEOUT="3",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="3",
        MLRELAY_RETRY_BUDGET="3",
    )
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    s = resolve({"timeout": 1}, environ=env, cwd=tmp_path)
    assert (s.timeout, s.max_retries, s.retry_budget, s.retry_max_wait) == (1.0, 2, 3.0, 30.0)
    assert s.sources["timeout"] == "argument"
    assert s.sources["max_retries"] == "environment (MLFLOW_HTTP_REQUEST_MAX_RETRIES)"
    assert s.sources["retry_budget"] == f".env ({dotenv}: MLRELAY_RETRY_BUDGET)"
    assert s.sources["retry_max_wait"] == "default"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(present=st.sets(st.sampled_from(LAYERS[:3])))
def test_precedence_property_for_a_plain_setting(present: set[str]) -> None:
    """For any subset of layers defining a setting, the highest one present wins (else default)."""
    value = {"argument": 1.5, "environment": 2.5, ".env": 3.5}
    explicit = {"timeout": value["argument"]} if "argument" in present else {}
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "2.5"} if "environment" in present else {}
    with tempfile.TemporaryDirectory() as tmp:
        if ".env" in present:
            _write_env(Path(tmp), MLFLOW_HTTP_REQUEST_TIMEOUT="3.5")
        s = resolve(explicit, environ=environ, cwd=Path(tmp))
    winner = next((layer for layer in LAYERS if layer in present), None)
    assert s.timeout == (value[winner] if winner else 30.0)
    assert s.sources["timeout"].startswith(winner or "default")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(present=st.sets(st.sampled_from(LAYERS)))
def test_precedence_property_for_credentials(present: set[str]) -> None:
    """For any subset of layers (keyring included) holding a token, the highest one wins."""
    uri = "https://tracking.example.com"
    explicit: dict[str, object] = {"tracking_uri": uri}
    if "argument" in present:
        explicit["token"] = "tok-argument"
    environ = {"MLFLOW_TRACKING_TOKEN": "tok-environment"} if "environment" in present else {}
    with tempfile.TemporaryDirectory() as tmp, installed_keyring(MemoryKeyring()):
        if ".env" in present:
            _write_env(Path(tmp), MLFLOW_TRACKING_TOKEN="tok-.env")
        if "keyring" in present:
            keyring_store(uri, "tok-keyring")
        s = resolve(explicit, environ=environ, cwd=Path(tmp), keyring_lookup=keyring_lookup)
    winner = next((layer for layer in LAYERS if layer in present), None)
    expected = SecretStr(f"tok-{winner}") if winner else None
    assert s.token == expected
    assert s.sources["token"].startswith(winner or "default")


def test_not_given_none_and_blank_mean_not_given(tmp_path: Path) -> None:
    """NOT_GIVEN, None and blank strings in any layer fall through to the next layer."""
    _write_env(tmp_path, MLFLOW_TRACKING_TOKEN="from-dotenv", MLFLOW_EXPERIMENT_NAME="exp")
    s = resolve(
        {"token": NOT_GIVEN, "experiment_name": None, "mode": "  "},
        environ={"MLFLOW_TRACKING_TOKEN": "", "MLFLOW_EXPERIMENT_NAME": " "},
        cwd=tmp_path,
    )
    assert s.token == SecretStr("from-dotenv")
    assert s.experiment_name == "exp"
    assert s.mode == "online"


def test_typed_arguments_are_accepted() -> None:
    """Arguments may be typed values: ints for seconds, an int experiment id, Paths, SecretStr."""
    s = resolve(
        {
            "timeout": 5,
            "experiment_id": 3,
            "home": Path("/data/mlrelay"),
            "client_cert_path": Path("/certs/me.pem"),
            "password": SecretStr("pw"),
            "username": "u",
            "insecure_tls": True,
        },
        environ={},
    )
    assert (s.timeout, s.experiment_id, s.home, s.cert) == (
        5.0,
        "3",
        Path("/data/mlrelay"),
        "/certs/me.pem",
    )
    assert s.password == SecretStr("pw")
    assert s.verify is False


def test_unknown_argument_is_rejected() -> None:
    """A misspelt argument name is an error that lists the known names."""
    with pytest.raises(ConfigurationError, match=r"unknown setting.*timout.*known settings"):
        resolve({"timout": 3}, environ={})


# --------------------------------------------------------------------------- .env


def test_dotenv_is_read_from_cwd_without_touching_os_environ(tmp_path: Path) -> None:
    """resolve() reads ./.env from the working directory and leaves os.environ unchanged."""
    dotenv = _write_env(tmp_path, MLFLOW_TRACKING_URI="http://127.0.0.1:5000")
    before = dict(os.environ)
    s = resolve()
    assert dict(os.environ) == before
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert s.tracking_uri == "http://127.0.0.1:5000"
    assert s.sources["tracking_uri"] == f".env ({dotenv.absolute()}: MLFLOW_TRACKING_URI)"


def test_dotenv_in_a_parent_directory_is_not_read(tmp_path: Path) -> None:
    """Only the working directory's .env counts; parents are not searched."""
    _write_env(tmp_path, MLFLOW_TRACKING_URI="http://127.0.0.1:5000")
    child = tmp_path / "child"
    child.mkdir()
    assert resolve(environ={}, cwd=child).tracking_uri is None


@pytest.mark.parametrize("value", ["1", "true", "t", "yes", "y", "TRUE", " Yes "])
def test_python_dotenv_disabled_skips_dotenv(tmp_path: Path, value: str) -> None:
    """PYTHON_DOTENV_DISABLED with a truthy value in the environment turns .env off."""
    _write_env(tmp_path, MLFLOW_EXPERIMENT_NAME="from-dotenv")
    s = resolve(environ={"PYTHON_DOTENV_DISABLED": value}, cwd=tmp_path)
    assert s.experiment_name is None


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_python_dotenv_disabled_falsy_keeps_dotenv(tmp_path: Path, value: str) -> None:
    """A falsy PYTHON_DOTENV_DISABLED leaves .env on."""
    _write_env(tmp_path, MLFLOW_EXPERIMENT_NAME="from-dotenv")
    s = resolve(environ={"PYTHON_DOTENV_DISABLED": value}, cwd=tmp_path)
    assert s.experiment_name == "from-dotenv"


def test_dotenv_key_without_value_is_unset(tmp_path: Path) -> None:
    """A bare key in .env (parsed as None) does not shadow the default."""
    (tmp_path / ".env").write_text("MLFLOW_HTTP_REQUEST_TIMEOUT\n")
    assert resolve(environ={}, cwd=tmp_path).timeout == 30.0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("var", "value", "problem"),
    [
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "abc", "is not a number of seconds"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "0", "greater than 0"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "nan", "greater than 0"),
        ("MLRELAY_RETRY_BUDGET", "-5", "greater than 0"),
        ("MLRELAY_RETRY_MAX_WAIT", "inf", "greater than 0"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "-1", "whole number from 0 to 100"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "101", "whole number from 0 to 100"),
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2.5", "whole number from 0 to 100"),
        ("MLFLOW_TRACKING_INSECURE_TLS", "maybe", "is not a boolean"),
        ("MLRELAY_KEYRING", "sometimes", "is not a boolean"),
        ("MLRELAY_MODE", "fast", "is not one of online, offline, disabled"),
    ],
)
def test_bad_environment_value_names_variable_value_and_source(
    var: str, value: str, problem: str
) -> None:
    """A bad value from the environment names the variable, the value and 'the environment'."""
    with pytest.raises(ConfigurationError) as excinfo:
        resolve(environ={var: value})
    message = str(excinfo.value)
    assert message.startswith(f"{var}={value!r} from the environment is ")
    assert problem in message


@pytest.mark.parametrize(
    ("word", "expected"),
    [("true", True), ("ON", True), ("1", True), ("yes", True), ("off", False), ("No", False)],
)
def test_bool_spellings(word: str, expected: bool) -> None:
    """Booleans accept true/false, 1/0, yes/no and on/off in any case."""
    assert resolve(environ={"MLFLOW_TRACKING_INSECURE_TLS": word}).insecure_tls is expected


def test_bad_dotenv_value_names_the_file(tmp_path: Path) -> None:
    """A bad value from .env names the variable, the value and the .env path."""
    dotenv = _write_env(tmp_path, MLFLOW_HTTP_REQUEST_TIMEOUT="soon")
    with pytest.raises(ConfigurationError) as excinfo:
        resolve(environ={}, cwd=tmp_path)
    message = str(excinfo.value)
    assert message == f"MLFLOW_HTTP_REQUEST_TIMEOUT='soon' from {dotenv} is not a number of seconds"


def test_bad_argument_names_the_argument() -> None:
    """A bad argument value names the argument and says it was passed as an argument."""
    with pytest.raises(ConfigurationError, match=r"^max_retries=True passed as an argument"):
        resolve({"max_retries": True}, environ={})


def test_bad_secret_value_is_not_shown() -> None:
    """An invalid secret is reported by name and source only, never by value."""
    with pytest.raises(ConfigurationError) as excinfo:
        resolve({"password": 987654321, "username": "u"}, environ={})
    assert str(excinfo.value) == "password passed as an argument is not a string"


def test_insecure_tls_with_server_cert_is_a_conflict(tmp_path: Path) -> None:
    """INSECURE_TLS together with SERVER_CERT_PATH is an error naming both and their sources."""
    _write_env(tmp_path, MLFLOW_TRACKING_SERVER_CERT_PATH="/etc/ca.pem")
    with pytest.raises(ConfigurationError) as excinfo:
        resolve(environ={"MLFLOW_TRACKING_INSECURE_TLS": "true"}, cwd=tmp_path)
    message = str(excinfo.value)
    assert "MLFLOW_TRACKING_INSECURE_TLS (environment (MLFLOW_TRACKING_INSECURE_TLS))" in message
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH (.env (" in message
    assert "cannot both be set" in message


def test_verify_and_cert_helpers() -> None:
    """verify is the CA path if set, False if insecure, else True; cert is the client pem."""
    s = resolve(
        {"server_cert_path": "~/ca.pem", "client_cert_path": "/c.pem", "insecure_tls": False},
        environ={},
    )
    assert s.verify == str(Path("~/ca.pem").expanduser())
    assert s.cert == "/c.pem"
    assert resolve({"insecure_tls": "yes"}, environ={}).verify is False


@pytest.mark.parametrize(
    "uri",
    ["databricks", "ftp://u:hunter2pw@example.com", "https://", "databricks://profile"],
)
def test_non_http_tracking_uri_is_rejected_without_user_info(uri: str) -> None:
    """Only http(s) tracking URIs are accepted; the message names the value minus user-info."""
    with pytest.raises(ConfigurationError) as excinfo:
        resolve(environ={"MLFLOW_TRACKING_URI": uri})
    message = str(excinfo.value)
    assert message.startswith("MLFLOW_TRACKING_URI=")
    assert "only supports MLflow tracking servers over http(s)" in message
    assert "hunter2pw" not in message


@pytest.mark.parametrize(
    "uri",
    ["file:///tmp/mlruns", "file:./mlruns", "./mlruns", "mlruns", "/abs/mlruns",
     "sqlite:///mlflow.db", "postgresql://u:hunter2pw@db/mlflow"],
)  # fmt: skip
def test_a_local_store_names_the_two_ways_forward(uri: str) -> None:
    """MLflow's local stores (files, databases, bare paths) are refused with the two ways
    forward: serve the store with `mlflow server` and point at it, or log offline and sync."""
    with pytest.raises(ConfigurationError) as excinfo:
        resolve(environ={"MLFLOW_TRACKING_URI": uri})
    message = str(excinfo.value)
    assert "local stores" in message
    assert "mlflow server --backend-store-uri" in message
    assert "MLRELAY_MODE=offline" in message
    assert "mlrelay sync --tracking-uri" in message
    assert "hunter2pw" not in message


def test_bad_port_is_rejected() -> None:
    """A tracking URI with a malformed port is a configuration error."""
    with pytest.raises(ConfigurationError, match="invalid port"):
        resolve({"tracking_uri": "http://localhost:50x0"}, environ={})


# --------------------------------------------------------------------------- credentials


def test_user_info_in_uri_becomes_credentials() -> None:
    """user:token@ in the tracking URI is taken as Basic credentials and removed from the URI."""
    s = resolve({"tracking_uri": "https://al%40ice:p%3Ass@DagsHub.com/a/r.mlflow/"}, environ={})
    assert s.tracking_uri == "https://DagsHub.com/a/r.mlflow"
    assert s.username == "al@ice"
    assert s.password == SecretStr("p:ss")
    assert s.sources["username"] == s.sources["password"] == "tracking URI"


def test_layer_credentials_beat_user_info_of_the_same_layer() -> None:
    """Within one layer, the credential variables win over user-info in that layer's URI."""
    s = resolve(
        environ={
            "MLFLOW_TRACKING_URI": "https://u:p@example.com",
            "MLFLOW_TRACKING_TOKEN": "tok",
        }
    )
    assert (s.username, s.password, s.token) == (None, None, SecretStr("tok"))
    assert s.tracking_uri == "https://example.com"


def test_user_info_of_an_argument_uri_beats_environment_credentials() -> None:
    """User-info in an explicit URI belongs to the argument layer, above the environment."""
    s = resolve(
        {"tracking_uri": "https://u:p@example.com"},
        environ={"MLFLOW_TRACKING_TOKEN": "tok"},
    )
    assert (s.username, s.password, s.token) == ("u", SecretStr("p"), None)


def test_explicit_credentials_are_total(tmp_path: Path) -> None:
    """Any credential passed as an argument turns off every other credential source."""
    _write_env(tmp_path, MLFLOW_TRACKING_PASSWORD="dotenv-pw")
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        keyring_store("example.com", "kr-token", username="kr-user")
        backend.calls.clear()
        s = resolve(
            {"token": "arg-token", "tracking_uri": "https://uri-user:uri-pw@example.com"},
            environ={"MLFLOW_TRACKING_USERNAME": "env-user"},
            cwd=tmp_path,
            keyring_lookup=keyring_lookup,
        )
        assert backend.calls == []
    assert (s.username, s.password, s.token) == (None, None, SecretStr("arg-token"))
    assert s.sources["username"] == s.sources["password"] == "default"
    assert s.sources["token"] == "argument"


def test_credentials_are_not_mixed_across_layers(tmp_path: Path) -> None:
    """A username from the environment is not paired with a password from .env."""
    _write_env(tmp_path, MLFLOW_TRACKING_PASSWORD="dotenv-pw")
    s = resolve(environ={"MLFLOW_TRACKING_USERNAME": "env-user"}, cwd=tmp_path)
    assert (s.username, s.password) == ("env-user", None)


def test_keyring_username_and_token_resolve_to_basic() -> None:
    """A keyring entry with a username becomes username + password (Basic username:token)."""
    with installed_keyring(MemoryKeyring()):
        keyring_store("dagshub.com", "kr-token", username="alice")
        s = resolve(
            {"tracking_uri": "https://DagsHub.com/alice/repo.mlflow"},
            environ={},
            keyring_lookup=keyring_lookup,
        )
    assert (s.username, s.password, s.token) == ("alice", SecretStr("kr-token"), None)
    assert s.sources["password"] == "keyring (mlrelay, host dagshub.com)"


def test_keyring_needs_a_tracking_uri() -> None:
    """Without a tracking URI there is no host to look up, so the keyring is not called."""
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        assert resolve(environ={}, keyring_lookup=keyring_lookup).token is None
        assert backend.calls == []


def test_without_a_lookup_the_keyring_is_not_consulted() -> None:
    """resolve() with no keyring_lookup never calls the keyring, even with credentials stored."""
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        keyring_store("dagshub.com", "kr-token", username="alice")
        backend.calls.clear()
        s = resolve({"tracking_uri": "https://dagshub.com/alice/repo.mlflow"}, environ={})
        assert backend.calls == []
    assert (s.username, s.password, s.token) == (None, None, None)


def test_an_injected_lookup_is_asked_for_the_host_only_when_needed() -> None:
    """The lookup gets the URI's host, only when no layer holds a credential and keyring is on."""
    asked: list[str] = []

    def lookup(host: str) -> tuple[str | None, SecretStr] | None:
        asked.append(host)
        return None, SecretStr("looked-up")

    uri = {"tracking_uri": "https://u@Tracking.Example.com:8443/x"}
    assert resolve(uri, environ={}, keyring_lookup=lookup).username == "u"  # user-info wins
    assert asked == []
    s = resolve(
        {"tracking_uri": "https://Tracking.Example.com:8443/x"}, environ={}, keyring_lookup=lookup
    )
    assert (s.token, s.sources["token"]) == (
        SecretStr("looked-up"),
        "keyring (mlrelay, host tracking.example.com:8443)",
    )
    assert asked == ["tracking.example.com:8443"]
    off = {"tracking_uri": "https://h.example", "keyring": False}
    assert resolve(off, environ={}, keyring_lookup=lookup).token is None
    assert asked == ["tracking.example.com:8443"]


def test_config_does_not_import_credentials() -> None:
    """_config imports nothing from _credentials, not even inside a function: no cycle."""
    assert not [name for name in imports_of("mlrelay._config") if "_credentials" in name]


# --------------------------------------------------------------------------- secrets


def test_sources_never_contain_secret_values(tmp_path: Path) -> None:
    """Settings.sources describes where values came from, never the values of secrets."""
    _write_env(tmp_path, MLFLOW_TRACKING_TOKEN="tok-DOTENV-3456")
    for explicit, environ in [
        ({"password": "pw-ARG-1234", "username": "u"}, {}),
        ({}, {"MLFLOW_TRACKING_TOKEN": "tok-ENV-5678"}),
        ({}, {}),
        ({"tracking_uri": "https://x:uri-PW-9012@h"}, {}),
    ]:
        s = resolve(explicit, environ=environ, cwd=tmp_path)
        joined = " ".join(s.sources.values())
        assert s.password is not None or s.token is not None
        for secret in ("pw-ARG-1234", "tok-ENV-5678", "tok-DOTENV-3456", "uri-PW-9012"):
            assert secret not in joined


def test_repr_and_str_of_settings_mask_secrets() -> None:
    """repr() and str() of Settings show '**********' instead of passwords and tokens."""
    s = resolve(
        {"username": "u", "password": "pw-ARG-1234"},
        environ={"MLFLOW_TRACKING_TOKEN": "tok-ENV-5678"},
    )
    s2 = resolve({"tracking_uri": "https://x:uri-PW-9012@h"}, environ={})
    for text in (repr(s), str(s), repr(s2), str(s2), repr(s.model_dump())):
        for secret in ("pw-ARG-1234", "tok-ENV-5678", "uri-PW-9012"):
            assert secret not in text
    assert "**********" in repr(s)


def test_settings_are_frozen() -> None:
    """Settings cannot be modified after resolution."""
    s = resolve(environ={})
    with pytest.raises(ValueError, match="frozen"):
        s.timeout = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- .env.example


def _example_lines() -> tuple[list[str], list[str]]:
    active, commented = [], []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := re.match(r"^([A-Z][A-Z0-9_]*)=", line):
            active.append(m.group(1))
        elif m := re.match(r"^#\s*([A-Z][A-Z0-9_]*)=", line):
            commented.append(m.group(1))
    return active, commented


def test_env_example_lists_exactly_the_registry() -> None:
    """.env.example sets each registry variable once and notes those httpx, dotenv, keyring
    and boto3 read."""
    active, commented = _example_lines()
    assert sorted(active) == sorted(registry_env_names())
    assert len(active) == len(set(active))
    assert set(commented) == {
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "PYTHON_DOTENV_DISABLED",
        "PYTHON_KEYRING_BACKEND",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
    }


def test_env_example_is_a_valid_dotenv_with_dummy_secrets(tmp_path: Path) -> None:
    """Copied to .env, .env.example resolves without error, every value from .env, secrets dummy."""
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    s = resolve(environ={}, cwd=tmp_path)
    assert all(source.startswith(".env (") for source in s.sources.values())
    for secret in (s.password, s.token):
        assert secret is not None
        assert secret.get_secret_value().startswith("dummy-")
