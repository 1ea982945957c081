"""Credentials: the auth rule, the ``httpx.Auth`` that applies it, and the OS keyring store.

Which scheme is sent follows MLflow's client exactly:

* ``username`` **and** ``password`` set → HTTP Basic (even when a token is set too);
* otherwise ``token`` set → ``Authorization: Bearer <token>``;
* otherwise nothing (a username alone sends no header).

The keyring is an optional, guarded source, because on headless Linux and in CI it is
the usual cause of hangs and tracebacks (research/hosted-backends.md §5):

* ``keyring`` is imported lazily, inside the call, never at import time;
* every call runs in a daemon thread and is abandoned after :data:`KEYRING_TIMEOUT`
  seconds, so a locked Secret Service that waits for an unlock prompt cannot hang a
  training job; while an abandoned call is still stuck, later calls are skipped rather
  than piling up threads;
* any exception (``NoKeyringError``, ``KeyringLocked``, ``InitError``, D-Bus errors ...)
  means "not found"; it is logged at debug level by type only, never with a value;
* the ``null`` and ``fail`` backends count as "no keyring".

Whether the keyring is consulted at all is decided by the caller: it passes
:func:`keyring_lookup` to :func:`mlrelay._config.resolve` (which does no keyring I/O of
its own), and ``resolve`` calls it only when the ``keyring`` setting (``MLRELAY_KEYRING``)
is true.

Storage format: service ``mlrelay:<host>`` (``host`` is the tracking URI's netloc,
lower-case, without user-info, e.g. ``dagshub.com`` or ``127.0.0.1:5000``), account
:data:`KEYRING_ACCOUNT`, and as the password a small JSON object
``{"username": <str or null>, "token": <str>}``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import SecretStr

from ._config import KEYRING_SERVICE_PREFIX, Settings, StoredCredentials, host_of
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "KEYRING_ACCOUNT",
    "KEYRING_SERVICE_PREFIX",
    "KEYRING_TIMEOUT",
    "BearerAuth",
    "auth_scheme",
    "build_auth",
    "host_of",
    "keyring_backend_name",
    "keyring_delete",
    "keyring_lookup",
    "keyring_store",
]

_log = logging.getLogger("mlrelay.credentials")

KEYRING_ACCOUNT = "mlrelay-credentials"
"""The fixed keyring account (the "username" field) under which credentials are stored."""

KEYRING_TIMEOUT = 3.0
"""Seconds one keyring call may take before it is abandoned and treated as "not found"."""

_THREAD_NAME = "mlrelay-keyring"

# Backends that store nothing; keyrings.alt's plaintext file is usable but worth a warning.
_NO_KEYRING_BACKENDS = frozenset({"keyring.backends.null.Keyring", "keyring.backends.fail.Keyring"})
_PLAINTEXT_BACKENDS = frozenset({"keyrings.alt.file.PlaintextKeyring"})


# --------------------------------------------------------------------------- auth


def auth_scheme(settings: Settings) -> Literal["basic", "bearer"] | None:
    """Return which scheme ``settings`` authenticate with, by MLflow's rule.

    ``"basic"`` when both ``username`` and ``password`` are set, else ``"bearer"`` when
    ``token`` is set, else ``None`` (a username alone sends nothing).
    """
    if settings.username and settings.password is not None:
        return "basic"
    if settings.token is not None:
        return "bearer"
    return None


def build_auth(settings: Settings) -> httpx.Auth | None:
    """Build the ``httpx.Auth`` for ``settings``, or ``None`` when there are no credentials.

    Basic beats Bearer, as in MLflow's client (see :func:`auth_scheme`).

    >>> from mlrelay._config import resolve
    >>> build_auth(resolve({"token": "t"}, environ={}))
    BearerAuth(token=SecretStr('**********'))
    """
    scheme = auth_scheme(settings)
    if scheme == "basic":
        assert settings.username is not None
        assert settings.password is not None
        return httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    if scheme == "bearer":
        assert settings.token is not None
        return BearerAuth(settings.token)
    return None


class BearerAuth(httpx.Auth):
    """Send ``Authorization: Bearer <token>`` on every request; the repr masks the token.

    Args:
        token: the bearer token, as a plain string or a ``SecretStr``.
    """

    def __init__(self, token: str | SecretStr) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the ``Authorization`` header and send the request once."""
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth(token={self._token!r})"


# --------------------------------------------------------------------------- keyring plumbing


@dataclass(frozen=True)
class _Outcome:
    """What a time-boxed keyring call came back with."""

    status: Literal["ok", "no-backend", "error", "timeout"]
    value: Any = None
    backend: str | None = None


_stuck_lock = threading.Lock()
_stuck: threading.Thread | None = None  # the last abandoned call, while it is still running


def _backend_path(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _run_keyring(what: str, call: Callable[[KeyringBackend], object]) -> _Outcome:
    """Run ``call(backend)`` against the current keyring backend, time-boxed and guarded.

    ``what`` names the operation in debug logs; no value is ever logged.
    """
    global _stuck
    with _stuck_lock:
        if _stuck is not None and _stuck.is_alive():
            _log.debug("keyring %s skipped: an earlier keyring call is still stuck", what)
            return _Outcome("timeout")
        _stuck = None

    box: list[_Outcome] = []

    def work() -> None:
        try:
            import keyring

            backend = keyring.get_keyring()
            name = _backend_path(backend)
            if name in _NO_KEYRING_BACKENDS:
                box.append(_Outcome("no-backend", backend=name))
                return
            box.append(_Outcome("ok", call(backend), backend=name))
        except Exception as exc:  # any keyring failure means "not found"
            box.append(_Outcome("error", type(exc).__name__))

    thread = threading.Thread(target=work, name=_THREAD_NAME, daemon=True)
    thread.start()
    thread.join(KEYRING_TIMEOUT)
    if thread.is_alive():
        with _stuck_lock:
            _stuck = thread
        _log.debug("keyring %s gave up after %.1f s", what, KEYRING_TIMEOUT)
        return _Outcome("timeout")
    outcome = box[0]
    if outcome.status == "error":
        _log.debug("keyring %s failed with %s; treated as not found", what, outcome.value)
    elif outcome.status == "no-backend":
        _log.debug("keyring %s skipped: backend %s stores nothing", what, outcome.backend)
    return outcome


def _service(host: str) -> str:
    return KEYRING_SERVICE_PREFIX + host_of(host)


# --------------------------------------------------------------------------- keyring API


def keyring_lookup(host: str) -> StoredCredentials | None:
    """Return the ``(username, token)`` stored for ``host``, or ``None`` when there is none.

    Never raises for keyring trouble and never blocks longer than :data:`KEYRING_TIMEOUT`:
    a missing, locked, failing or slow keyring all mean ``None``. The caller decides
    whether the keyring may be consulted at all (the ``keyring`` setting).

    Args:
        host: a host (``dagshub.com``) or a URI whose host is used.
    """
    service = _service(host)
    outcome = _run_keyring("lookup", lambda kr: kr.get_password(service, KEYRING_ACCOUNT))
    if outcome.status != "ok" or outcome.value is None:
        return None
    try:
        data = json.loads(outcome.value)
        token, username = data["token"], data.get("username")
    except (ValueError, TypeError, KeyError, AttributeError):
        _log.debug("keyring entry for %s is not mlrelay's JSON; ignored", service)
        return None
    if not isinstance(token, str) or not token or not isinstance(username, (str, type(None))):
        _log.debug("keyring entry for %s has no usable token; ignored", service)
        return None
    return (username or None), SecretStr(token)


def keyring_store(host: str, token: str | SecretStr, username: str | None = None) -> None:
    """Store a token (and optionally the username to send it with) for ``host``.

    With a username the token is later sent as HTTP Basic ``username:token`` (DagsHub's
    scheme); without one, as a Bearer token.

    Raises:
        ConfigurationError: there is no usable keyring backend, or it refused, failed or
            did not answer in time. The message never contains the token.
    """
    service = _service(host)
    secret = token.get_secret_value() if isinstance(token, SecretStr) else token
    payload = json.dumps({"username": username, "token": secret})
    outcome = _run_keyring("store", lambda kr: kr.set_password(service, KEYRING_ACCOUNT, payload))
    if outcome.status == "ok":
        if outcome.backend in _PLAINTEXT_BACKENDS:
            _log.warning(
                "the keyring backend %s stores credentials unencrypted on disk", outcome.backend
            )
        return
    hint = (
        "set MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) "
        "instead, or configure a keyring backend (PYTHON_KEYRING_BACKEND)"
    )
    if outcome.status == "no-backend":
        reason = f"no usable keyring backend ({outcome.backend} stores nothing)"
    elif outcome.status == "timeout":
        reason = f"the keyring did not answer within {KEYRING_TIMEOUT:g} s (is it locked?)"
    else:
        reason = f"the keyring failed with {outcome.value}"
    raise ConfigurationError(f"cannot store credentials for {host_of(host)}: {reason}; {hint}")


def keyring_delete(host: str) -> bool:
    """Delete the credentials stored for ``host``; ``True`` if something was deleted.

    Never raises: a missing entry or an unusable keyring both give ``False``.
    """
    service = _service(host)

    def delete(kr: KeyringBackend) -> bool:
        if kr.get_password(service, KEYRING_ACCOUNT) is None:
            return False
        kr.delete_password(service, KEYRING_ACCOUNT)
        return True

    outcome = _run_keyring("delete", delete)
    return outcome.status == "ok" and bool(outcome.value)


def keyring_backend_name() -> str | None:
    """Return the dotted class name of the usable keyring backend, or ``None`` if there is none.

    ``None`` covers: keyring not installed, the ``null`` or ``fail`` backend, a backend that
    fails to initialise, and one that does not answer within :data:`KEYRING_TIMEOUT`.
    """
    outcome = _run_keyring("backend check", lambda _kr: None)
    return outcome.backend if outcome.status == "ok" else None
