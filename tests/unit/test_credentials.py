"""Credentials: Basic beats Bearer, masked reprs, and the guarded, time-boxed keyring store.

The keyring tests install real ``keyring.backend.KeyringBackend`` subclasses with
``keyring.set_keyring`` (see :func:`installed_keyring`); test_config imports them too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from pydantic import SecretStr

from mlrelay._config import resolve
from mlrelay._credentials import (
    KEYRING_ACCOUNT,
    KEYRING_TIMEOUT,
    BearerAuth,
    auth_scheme,
    build_auth,
    host_of,
    keyring_backend_name,
    keyring_delete,
    keyring_lookup,
    keyring_store,
)
from mlrelay._errors import ConfigurationError
from tests._timing import deadline, slack

SECRET = "s3cret-token-value"


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend that records every call."""

    # Negative: never picked by keyring's own auto-detection, only by set_keyring.
    priority = -2

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}
        self.calls: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append("get")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append("set")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls.append("delete")
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(service) from None


class RaisingKeyring(MemoryKeyring):
    """A backend whose every operation fails, with a secret in the error message."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked(f"locked; {SECRET}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"refused {password}")


class BlockingKeyring(MemoryKeyring):
    """A backend whose get_password blocks until ``release`` is set (a locked Secret Service)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(60)
        return None


@contextmanager
def installed_keyring(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    """Make ``backend`` the process-wide keyring for the block, then restore the previous one."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def _join_keyring_threads() -> None:
    for thread in threading.enumerate():
        if thread.name == "mlrelay-keyring":
            thread.join(deadline(5))


def _authorization(auth: httpx.Auth | None) -> str | None:
    """Send one request through a real httpx client and return the Authorization it carried."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
        client.get("https://tracking.example.com/api/2.0/mlflow/experiments/search")
    return seen[0]


# --------------------------------------------------------------------------- the auth rule


def test_basic_beats_bearer() -> None:
    """With username, password and token all set, HTTP Basic is sent and the token ignored."""
    settings = resolve({"username": "u", "password": "p", "token": SECRET}, environ={})
    assert auth_scheme(settings) == "basic"
    assert _authorization(build_auth(settings)) == "Basic dTpw"  # base64("u:p")


def test_token_alone_gives_bearer() -> None:
    """A token without a username/password pair is sent as a Bearer header."""
    settings = resolve({"token": SECRET}, environ={})
    assert _authorization(build_auth(settings)) == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"username": "u"}, None),
        ({"password": "p"}, None),
        ({"username": "u", "token": "t"}, "Bearer t"),
        ({"password": "p", "token": "t"}, "Bearer t"),
    ],
)
def test_incomplete_basic_pair_is_not_basic(given: dict[str, str], expected: str | None) -> None:
    """A username or password alone sends no Basic auth; a token then decides (MLflow's rule)."""
    settings = resolve(given, environ={})
    auth = build_auth(settings)
    assert (auth is None) == (expected is None)
    assert _authorization(auth) == expected


def test_bearer_auth_repr_masks_the_token() -> None:
    """BearerAuth's repr and str never show the token."""
    auth = BearerAuth(SECRET)
    assert SECRET not in repr(auth)
    assert SECRET not in str(auth)
    assert "**********" in repr(auth)
    assert _authorization(BearerAuth(SecretStr(SECRET))) == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("https://DagsHub.com/alice/repo.mlflow", "dagshub.com"),
        ("https://alice:tok@dagshub.com/alice/repo.mlflow", "dagshub.com"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("dagshub.com", "dagshub.com"),
        ("  tracking.example.com:8443/path ", "tracking.example.com:8443"),
    ],
)
def test_host_of(uri: str, host: str) -> None:
    """host_of keeps the lower-case netloc with port, drops user-info, and accepts a bare host."""
    assert host_of(uri) == host


def test_host_of_without_host_is_a_configuration_error() -> None:
    """A URI without a host cannot key credentials."""
    with pytest.raises(ConfigurationError, match="cannot find a host"):
        host_of("https:///path")


# --------------------------------------------------------------------------- keyring


def test_keyring_round_trip() -> None:
    """store, lookup, backend name and delete work against a real KeyringBackend subclass."""
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        assert keyring_lookup("dagshub.com") is None
        keyring_store("https://DagsHub.com/alice/repo.mlflow", SECRET, username="alice")
        stored = backend.entries[("mlrelay:dagshub.com", KEYRING_ACCOUNT)]
        assert json.loads(stored) == {"username": "alice", "token": SECRET}
        found = keyring_lookup("dagshub.com")
        assert found is not None
        assert found[0] == "alice"
        assert found[1].get_secret_value() == SECRET
        assert keyring_backend_name() == f"{__name__}.MemoryKeyring"
        assert keyring_delete("dagshub.com") is True
        assert keyring_delete("dagshub.com") is False
        assert keyring_lookup("dagshub.com") is None


def test_keyring_token_without_username() -> None:
    """A token stored without a username comes back with username None."""
    with installed_keyring(MemoryKeyring()):
        keyring_store("127.0.0.1:5000", SecretStr(SECRET))
        assert keyring_lookup("http://127.0.0.1:5000") == (None, SecretStr(SECRET))


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", '{"username": "a"}', '{"token": ""}'])
def test_keyring_entry_not_ours_is_not_found(stored: str) -> None:
    """An entry that is not mlrelay's JSON with a token is treated as not found."""
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        backend.entries[("mlrelay:example.com", KEYRING_ACCOUNT)] = stored
        assert keyring_lookup("example.com") is None


def test_keyring_errors_mean_not_found_and_are_not_logged_with_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A backend that raises gives None/False, logs at debug level by type, never the message."""
    caplog.set_level(logging.DEBUG, logger="mlrelay")
    with installed_keyring(RaisingKeyring()):
        assert keyring_lookup("example.com") is None
        assert keyring_delete("example.com") is False
        with pytest.raises(ConfigurationError, match="PasswordSetError") as excinfo:
            keyring_store("example.com", SECRET)
    assert SECRET not in str(excinfo.value)
    assert "KeyringLocked" in caplog.text
    assert SECRET not in caplog.text


def test_blocking_keyring_is_abandoned_after_the_timeout() -> None:
    """A keyring call that never returns is given up after ~3 s, and later calls do not pile up."""
    backend = BlockingKeyring()
    try:
        with installed_keyring(backend):
            started = time.monotonic()
            assert keyring_lookup("example.com") is None
            elapsed = time.monotonic() - started
            assert KEYRING_TIMEOUT - 0.1 <= elapsed < KEYRING_TIMEOUT + slack(0.5)
            # While that call is still stuck, another one is skipped at once.
            started = time.monotonic()
            assert keyring_lookup("example.com") is None
            assert time.monotonic() - started < slack(0.5)  # not KEYRING_TIMEOUT again
    finally:
        backend.release.set()
        _join_keyring_threads()


def test_keyring_setting_off_means_no_keyring_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """With MLRELAY_KEYRING=0, resolve() never touches the keyring backend."""
    with installed_keyring(MemoryKeyring()) as backend:
        assert isinstance(backend, MemoryKeyring)
        keyring_store("example.com", SECRET)
        backend.calls.clear()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://example.com")
        monkeypatch.setenv("MLRELAY_KEYRING", "0")
        settings = resolve(keyring_lookup=keyring_lookup)
        assert backend.calls == []
        assert settings.token is None
        monkeypatch.setenv("MLRELAY_KEYRING", "1")  # control: the same setup does call it
        assert resolve(keyring_lookup=keyring_lookup).token == SecretStr(SECRET)
        assert backend.calls == ["get"]


@pytest.mark.parametrize("backend", [null.Keyring, fail.Keyring], ids=["null", "fail"])
def test_store_without_usable_backend_is_a_configuration_error(
    backend: type[KeyringBackend],
) -> None:
    """keyring_store with the null or fail backend raises, instead of dropping the token."""
    with installed_keyring(backend()):
        assert keyring_backend_name() is None
        assert keyring_lookup("example.com") is None
        with pytest.raises(ConfigurationError, match="no usable keyring backend") as excinfo:
            keyring_store("example.com", SECRET)
    assert SECRET not in str(excinfo.value)
    assert "MLFLOW_TRACKING_TOKEN" in str(excinfo.value)


def test_default_test_backend_is_null() -> None:
    """Under the suite's environment (PYTHON_KEYRING_BACKEND=null) there is no usable keyring."""
    assert keyring_backend_name() is None


def test_a_client_uses_what_mlrelay_login_stored() -> None:
    """``Client()`` with no credentials anywhere else takes them from the keyring, where
    ``mlrelay login`` puts them (the keyring lookup is passed into resolve by the client)."""
    import mlrelay

    with installed_keyring(MemoryKeyring()):
        keyring_store("http://127.0.0.1:5000", SECRET, username="alice")
        with mlrelay.Client(tracking_uri="http://127.0.0.1:5000") as client:
            assert client.settings.username == "alice"
            assert client.settings.password is not None
            assert client.settings.password.get_secret_value() == SECRET
