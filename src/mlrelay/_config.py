"""Settings: one registry of every supported setting, and :func:`resolve`.

Every setting mlrelay reads has exactly one entry in :data:`REGISTRY` (attribute name,
environment variables in priority order, parser, default, doc). :func:`resolve` turns
the registry into a frozen :class:`Settings`, once, when it is called; nothing is read
at import time and ``os.environ`` is never written.

Resolution order, highest first:

1. **explicit arguments** (the ``explicit`` mapping, keyed by attribute name);
   ``NOT_GIVEN``, ``None`` and blank strings all mean "not given";
2. **the process environment** (``os.environ``, or the ``environ`` mapping given);
3. **a ``.env`` file in the working directory** (``cwd`` or the current directory, not
   its parents), parsed with ``dotenv_values`` and never loaded into ``os.environ``;
   skipped when ``PYTHON_DOTENV_DISABLED`` is 1/true/t/yes/y in the environment;
4. **the OS keyring**, for credentials only, keyed by the tracking URI's host, and
   only when the caller passes a ``keyring_lookup`` (this module does no keyring I/O;
   :func:`mlrelay._credentials.keyring_lookup` is the real one) and the ``keyring``
   setting (``MLRELAY_KEYRING``) is true;
5. **defaults** from the registry.

An empty variable (``MLFLOW_TRACKING_TOKEN=``) counts as unset in every layer.

Credentials (``username``, ``password``, ``token``) are taken as one set from the first
layer that holds any of them, never mixed across layers. So passing any credential as
an argument means no credential is looked up anywhere else, and a username in the
environment is not paired with a password from ``.env``. User-info in the tracking URI
(``https://user:token@host/...``) is a credential set of the layer that supplied the
URI, consulted after that layer's own credential variables; it is always removed from
``tracking_uri``. A username stored in the keyring with a token means HTTP Basic
``username:token`` (DagsHub's scheme), so it resolves to ``username`` and ``password``.

Invalid values raise :class:`~mlrelay.ConfigurationError` naming the variable, the value
(never a secret's; URIs without user-info) and where it came from::

    MLFLOW_HTTP_REQUEST_TIMEOUT='abc' from the environment is not a number of seconds

``Settings.sources`` tells, for each attribute, which layer won, without the value.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, SecretStr

from ._errors import ConfigurationError, redact_url

__all__ = [
    "KEYRING_SERVICE_PREFIX",
    "NOT_GIVEN",
    "REGISTRY",
    "KeyringLookup",
    "NotGiven",
    "Setting",
    "Settings",
    "StoredCredentials",
    "host_of",
    "registry_env_names",
    "resolve",
]

_log = logging.getLogger("mlrelay.config")


class NotGiven:
    """The type of :data:`NOT_GIVEN`: "no value was passed, use the next source"."""

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
"""Sentinel for an argument that was not given; ``resolve`` treats ``None`` the same way."""


# --------------------------------------------------------------------------- hosts

KEYRING_SERVICE_PREFIX = "mlrelay:"
"""Keyring service names are this prefix followed by the server's host."""

StoredCredentials: TypeAlias = tuple[str | None, SecretStr]
"""What the keyring holds for a host: ``(username or None, token)``."""

KeyringLookup: TypeAlias = Callable[[str], StoredCredentials | None]
"""A function from a host to the credentials stored for it (``None`` when there are none)."""


def host_of(uri: str) -> str:
    """Return the host part used to key credentials: the netloc, lower-case, without user-info.

    A bare host (no ``scheme://``) is accepted too, so the CLI can take ``dagshub.com``.

    >>> host_of("https://Alice:tok@DagsHub.com/alice/repo.mlflow")
    'dagshub.com'
    >>> host_of("http://127.0.0.1:5000")
    '127.0.0.1:5000'

    Raises:
        ConfigurationError: the URI has no host.
    """
    text = uri.strip()
    netloc = urlsplit(text if "://" in text else f"//{text}").netloc
    host = netloc.rsplit("@", 1)[-1].lower()
    if not host:
        raise ConfigurationError(f"cannot find a host in {redact_url(text)!r}")
    return host


# --------------------------------------------------------------------------- parsers
# Each takes a raw value (a string from the environment or .env, or any object passed as
# an argument) and returns the typed value, or raises _Invalid with the end of a sentence
# that follows "<VAR>='<value>' from <source> ".


class _Invalid(ValueError):
    pass


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_DOTENV_DISABLED = frozenset({"1", "true", "t", "yes", "y"})
_MAX_RETRIES_LIMIT = 100


def _parse_text(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid("is not a string")
    return raw.strip()


def _parse_secret(raw: object) -> SecretStr:
    if isinstance(raw, SecretStr):
        return raw
    if not isinstance(raw, str):
        raise _Invalid("is not a string")
    return SecretStr(raw)


def _parse_path(raw: object) -> str:
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    return str(Path(_parse_text(raw)).expanduser())


def _parse_home(raw: object) -> Path:
    return Path(_parse_path(raw))


def _parse_experiment_id(raw: object) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return _parse_text(raw)


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Invalid("is not a boolean (use true/false, 1/0, yes/no or on/off)")


def _parse_seconds(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise _Invalid("is not a number of seconds")
    try:
        seconds = float(raw)
    except ValueError:
        raise _Invalid("is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise _Invalid("is not a number of seconds greater than 0")
    return seconds


def _parse_seconds_or_zero(raw: object) -> float:
    if raw in (0, "0") or (isinstance(raw, str) and raw.strip() in ("0", "0.0")):
        return 0.0
    return _parse_seconds(raw)


def _one_of(*choices: str) -> Callable[[object], str]:
    """A parser of one word among ``choices``, in any case."""

    def parse(raw: object) -> str:
        word = _parse_text(raw).lower()
        if word not in choices:
            raise _Invalid(f"is not one of {', '.join(choices)}")
        return word

    return parse


def _parse_retries(raw: object) -> int:
    count: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        count = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        count = int(raw.strip())
    if count is None or not 0 <= count <= _MAX_RETRIES_LIMIT:
        raise _Invalid(f"is not a whole number from 0 to {_MAX_RETRIES_LIMIT}")
    return count


_BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_bytes(raw: object) -> int:
    """A size: a whole number of bytes, or with a K, M, G or T suffix (powers of 1024)."""
    text = str(raw).strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _BYTE_UNITS else ""
    number = text[: len(text) - len(unit)].strip()
    if isinstance(raw, bool) or not number.isdigit() or int(number) <= 0:
        raise _Invalid("is not a size such as 500000000, 500M or 2G")
    return int(number) * _BYTE_UNITS[unit]


_MAX_CONCURRENCY = 64


def _parse_concurrency(raw: object) -> int:
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= _MAX_CONCURRENCY:
        raise _Invalid(f"is not a whole number from 1 to {_MAX_CONCURRENCY}")
    return int(text)


def _parse_endpoint(raw: object) -> str:
    """An object store's endpoint: an http(s) URL with a host, without a trailing /."""
    uri = _parse_text(raw)
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Invalid("is not an http:// or https:// URL such as http://127.0.0.1:9000")
    return uri.rstrip("/")


def _parse_json_object(raw: object) -> SecretStr:
    """A JSON object, kept as secret text: upload arguments can hold keys (SSECustomerKey)."""
    text = _parse_secret(raw).get_secret_value().strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise _Invalid('is not a JSON object such as {"ServerSideEncryption": "AES256"}')
    return SecretStr(text)


def _parse_uri(raw: object) -> str:
    """Validate an http(s) URL; keeps user-info (resolve splits it off), drops a trailing /."""
    uri = _parse_text(raw)
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise _Invalid("has an invalid port") from None
    scheme = parts.scheme.lower()
    if uri.lower() == "databricks":
        scheme = "databricks"
    elif scheme in _LOCAL_STORES or (not scheme and not parts.hostname):
        raise _Invalid(_LOCAL_STORE_HELP)
    if scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(
            "is not an http:// or https:// URL; mlrelay only supports MLflow tracking "
            "servers over http(s) (not databricks or other plugin URIs)"
        )
    return uri.rstrip("/")


# MLflow's local stores (a bare path is one too): mlrelay writes none of them.
_LOCAL_STORES = frozenset({"sqlite", "file", "mysql", "postgresql", "mssql"})
_LOCAL_STORE_HELP = (
    "is one of MLflow's local stores (a database or file path), which mlrelay does not "
    "write; either serve it and point at the server (`mlflow server --backend-store-uri "
    "sqlite:///mlflow.db --port 5000`, then MLFLOW_TRACKING_URI=http://127.0.0.1:5000), "
    "or log offline (MLRELAY_MODE=offline) and later `mlrelay sync --tracking-uri URL`"
)


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Setting:
    """One supported setting.

    Attributes:
        name: the :class:`Settings` attribute (and the key accepted by :func:`resolve`).
        env: environment variable names, highest priority first (also read from ``.env``).
        parse: turns a raw string (or an argument's value) into the typed value.
        default: the value when no source defines it.
        doc: one line for humans (``.env.example``, ``mlrelay doctor``).
        secret: the value is never shown in messages, sources, logs or reprs.
    """

    name: str
    env: tuple[str, ...]
    parse: Callable[[object], object]
    default: object
    doc: str
    secret: bool = False


REGISTRY: tuple[Setting, ...] = (
    Setting(
        "tracking_uri",
        ("MLFLOW_TRACKING_URI",),
        _parse_uri,
        None,
        "Tracking server base URL, e.g. https://dagshub.com/<owner>/<repo>.mlflow.",
    ),
    Setting(
        "username",
        ("MLFLOW_TRACKING_USERNAME",),
        _parse_text,
        None,
        "HTTP Basic username (Basic is used only with a password too).",
    ),
    Setting(
        "password",
        ("MLFLOW_TRACKING_PASSWORD",),
        _parse_secret,
        None,
        "HTTP Basic password or access token; with a username, Basic beats Bearer.",
        secret=True,
    ),
    Setting(
        "token",
        ("MLFLOW_TRACKING_TOKEN",),
        _parse_secret,
        None,
        "Bearer token, sent when username and password are not both set.",
        secret=True,
    ),
    Setting(
        "insecure_tls",
        ("MLFLOW_TRACKING_INSECURE_TLS",),
        _parse_bool,
        False,
        "Skip TLS certificate verification (cannot be combined with a CA bundle).",
    ),
    Setting(
        "server_cert_path",
        ("MLFLOW_TRACKING_SERVER_CERT_PATH",),
        _parse_path,
        None,
        "CA bundle used to verify the server's certificate.",
    ),
    Setting(
        "client_cert_path",
        ("MLFLOW_TRACKING_CLIENT_CERT_PATH",),
        _parse_path,
        None,
        "Client certificate (.pem with its key) for mutual TLS.",
    ),
    Setting(
        "experiment_name",
        ("MLFLOW_EXPERIMENT_NAME",),
        _parse_text,
        None,
        "Default experiment, by name.",
    ),
    Setting(
        "experiment_id",
        ("MLFLOW_EXPERIMENT_ID",),
        _parse_experiment_id,
        None,
        "Default experiment, by id.",
    ),
    Setting(
        "timeout",
        ("MLFLOW_HTTP_REQUEST_TIMEOUT",),
        _parse_seconds,
        30.0,
        "Seconds one HTTP request may take.",
    ),
    Setting(
        "max_retries",
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",),
        _parse_retries,
        7,
        "Retries of one call after a retryable failure (0 to 100).",
    ),
    Setting(
        "retry_budget",
        ("MLRELAY_RETRY_BUDGET",),
        _parse_seconds,
        120.0,
        "Total seconds one call may spend retrying.",
    ),
    Setting(
        "retry_max_wait",
        ("MLRELAY_RETRY_MAX_WAIT",),
        _parse_seconds,
        30.0,
        "Cap in seconds on one backoff or Retry-After wait.",
    ),
    Setting(
        "keyring",
        ("MLRELAY_KEYRING",),
        _parse_bool,
        True,
        "Look credentials up in the OS keyring (false turns keyring off entirely).",
    ),
    Setting(
        "home",
        ("MLRELAY_HOME",),
        _parse_home,
        None,
        "mlrelay's data directory (default ~/.local/share/mlrelay); holds journal.db.",
    ),
    Setting(
        "mode",
        ("MLRELAY_MODE",),
        _one_of("online", "offline", "disabled"),
        "online",
        "online, offline or disabled.",
    ),
    Setting(
        "run_id",
        ("MLFLOW_RUN_ID",),
        _parse_text,
        None,
        "Run that start_run() resumes when no run_id is passed.",
    ),
    Setting(
        "start_timeout",
        ("MLRELAY_START_TIMEOUT",),
        _parse_seconds,
        5.0,
        "Seconds start_run / set_experiment wait for the server before continuing locally.",
    ),
    Setting(
        "exit_timeout",
        ("MLRELAY_EXIT_TIMEOUT",),
        _parse_seconds_or_zero,
        10.0,
        "Seconds the process may wait for delivery without progress, in all: end_run and "
        "flush() waits and the exit (or SIGTERM) flush share it.",
    ),
    Setting(
        "fsync",
        ("MLRELAY_FSYNC",),
        _one_of("always", "interval", "never"),
        "interval",
        "Journal durability: interval (fsync per 100 ms group commit), always or never.",
    ),
    Setting(
        "strict",
        ("MLRELAY_STRICT",),
        _parse_bool,
        False,
        "Raise a batch the server rejected from the next flush() or end_run().",
    ),
    Setting(
        "log_environment",
        ("MLRELAY_LOG_ENVIRONMENT",),
        _parse_bool,
        False,
        "Log installed packages, the entry script and the git diff with every run.",
    ),
    Setting(
        "max_journal_bytes",
        ("MLRELAY_MAX_JOURNAL_BYTES",),
        _parse_bytes,
        None,
        "Disk budget of the journal's entries (e.g. 2G); when reached, delivered entries are "
        "reclaimed, then new entries are refused and counted (mlrelay status).",
    ),
    Setting(
        "max_in_flight",
        ("MLRELAY_MAX_IN_FLIGHT",),
        _parse_concurrency,
        8,
        "Requests one process keeps in flight to one server at most (1 to 64); the "
        "sender adapts below it to the server's throughput and overload answers. Lower "
        "it when many processes share a small server; 1 sends one batch at a time.",
    ),
    Setting(
        "s3_endpoint_url",
        ("MLFLOW_S3_ENDPOINT_URL",),
        _parse_endpoint,
        None,
        "S3-compatible endpoint for runs whose artifacts are in s3:// (MinIO, Ceph...); "
        "AWS's when unset.",
    ),
    Setting(
        "s3_ignore_tls",
        ("MLFLOW_S3_IGNORE_TLS",),
        _parse_bool,
        False,
        "Skip TLS certificate verification of the s3:// endpoint.",
    ),
    Setting(
        "s3_addressing_style",
        ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE",),
        _one_of("auto", "path", "virtual"),
        "auto",
        "S3 bucket addressing: auto, path or virtual.",
    ),
    Setting(
        "s3_upload_extra_args",
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS",),
        _parse_json_object,
        None,
        'Extra arguments of every s3:// upload, a JSON object such as {"ServerSideEncryption": '
        '"AES256"}.',
        secret=True,
    ),
    Setting(
        "s3_multipart_threshold",
        ("MLRELAY_S3_MULTIPART_THRESHOLD",),
        _parse_bytes,
        8 << 20,
        "Files from this size go to s3:// in parts (e.g. 64M).",
    ),
    Setting(
        "s3_multipart_chunksize",
        ("MLRELAY_S3_MULTIPART_CHUNKSIZE",),
        _parse_bytes,
        8 << 20,
        "The size of one part of an s3:// upload (at least 5M; more when a file needs over "
        "10,000).",
    ),
    Setting(
        "s3_max_concurrency",
        ("MLRELAY_S3_MAX_CONCURRENCY",),
        _parse_concurrency,
        4,
        "Parts of one s3:// file sent or received at the same time (1 to 64); each is a "
        "thread, and threads cost memory (MLflow's boto3 default is 10).",
    ),
    Setting(
        "dagshub_host",
        ("DAGSHUB_CLIENT_HOST",),
        _parse_uri,
        None,
        "Host mlrelay.init() builds tracking URIs on (default https://dagshub.com).",
    ),
    Setting(
        "dagshub_token",
        ("DAGSHUB_USER_TOKEN",),
        _parse_secret,
        None,
        "Token mlrelay.init() uses when none is passed.",
        secret=True,
    ),
)

_BY_NAME: dict[str, Setting] = {s.name: s for s in REGISTRY}
_CREDENTIALS: tuple[str, ...] = ("username", "password", "token")


def registry_env_names() -> list[str]:
    """Return every environment variable name in :data:`REGISTRY`, in registry order."""
    return [env for setting in REGISTRY for env in setting.env]


# --------------------------------------------------------------------------- Settings


class Settings(BaseModel):
    """The resolved configuration: frozen, typed, secrets held as ``SecretStr``.

    Build it with :func:`resolve`. Each attribute is the setting of the same name in
    :data:`REGISTRY` (listed below). ``sources`` maps every attribute name to where its
    value came from ("argument", "environment (MLFLOW_TRACKING_URI)", ".env (<path>:
    <VAR>)", "tracking URI", "keyring (mlrelay, host <host>)" or "default"), never to
    the value itself. ``repr`` and ``str`` show secrets as ``'**********'``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str | None
    username: str | None
    password: SecretStr | None
    token: SecretStr | None
    insecure_tls: bool
    server_cert_path: str | None
    client_cert_path: str | None
    experiment_name: str | None
    experiment_id: str | None
    timeout: float
    max_retries: int
    retry_budget: float
    retry_max_wait: float
    keyring: bool
    home: Path | None
    mode: Literal["online", "offline", "disabled"]
    run_id: str | None
    start_timeout: float
    exit_timeout: float
    fsync: Literal["always", "interval", "never"]
    strict: bool
    log_environment: bool
    max_journal_bytes: int | None
    max_in_flight: int
    s3_endpoint_url: str | None
    s3_ignore_tls: bool
    s3_addressing_style: Literal["auto", "path", "virtual"]
    s3_upload_extra_args: SecretStr | None
    s3_multipart_threshold: int
    s3_multipart_chunksize: int
    s3_max_concurrency: int
    dagshub_host: str | None
    dagshub_token: SecretStr | None
    sources: dict[str, str]

    @property
    def verify(self) -> bool | str:
        """The ``verify=`` for httpx: False if ``insecure_tls``, else the CA bundle path or True."""
        if self.insecure_tls:
            return False
        return self.server_cert_path if self.server_cert_path else True

    @property
    def cert(self) -> str | None:
        """The ``cert=`` for httpx: the client certificate path, if any."""
        return self.client_cert_path


Settings.__doc__ = (
    (Settings.__doc__ or "")
    + "\n    Attributes:\n"
    + "".join(
        f"        {s.name}: {s.doc} Env: {', '.join(s.env)}; default {s.default!r}.\n"
        for s in REGISTRY
    )
)


# --------------------------------------------------------------------------- resolve


@dataclass(frozen=True)
class _Found:
    """A raw value found in one layer, and how to describe where."""

    raw: object
    var: str  # the name a message shows: the env variable, or the argument's name
    source: str  # for Settings.sources
    origin: str  # for messages: "from the environment"


@dataclass(frozen=True)
class _Layer:
    """One source of raw values: arguments (keyed by attribute) or variables (keyed by env)."""

    values: Mapping[str, object]
    by_env: bool
    label: Callable[[str], str]
    origin: str

    def find(self, setting: Setting) -> _Found | None:
        for key in setting.env if self.by_env else (setting.name,):
            raw = self.values.get(key)
            if _is_given(raw):
                return _Found(raw, key, self.label(key), self.origin)
        return None


def _is_given(raw: object) -> bool:
    if raw is None or isinstance(raw, NotGiven):
        return False
    if isinstance(raw, SecretStr):
        return bool(raw.get_secret_value().strip())
    return not (isinstance(raw, str) and not raw.strip())


def _parse(setting: Setting, found: _Found) -> object:
    try:
        return setting.parse(found.raw)
    except _Invalid as exc:
        if setting.secret:
            shown = ""
        elif isinstance(found.raw, str):
            shown = f"={redact_url(found.raw.strip())!r}"
        else:
            shown = f"={found.raw!r}"
        raise ConfigurationError(f"{found.var}{shown} {found.origin} {exc}") from None


def _dotenv_layer(directory: Path, environ: Mapping[str, str]) -> _Layer | None:
    if environ.get("PYTHON_DOTENV_DISABLED", "").strip().lower() in _DOTENV_DISABLED:
        return None
    path = directory.absolute() / ".env"
    if not path.is_file():
        return None
    try:
        values = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigurationError(f"cannot read {path}: {reason}") from None
    return _Layer(values, True, lambda var: f".env ({path}: {var})", f"from {path}")


def _split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """Return ``(uri without user-info, username, password)``, percent-decoded."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, unquote(user) or None, (unquote(password) or None) if colon else None


def _credentials_from(layer: _Layer) -> dict[str, _Found]:
    found = {name: layer.find(_BY_NAME[name]) for name in _CREDENTIALS}
    return {name: f for name, f in found.items() if f is not None}


def resolve(
    explicit: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    keyring_lookup: KeyringLookup | None = None,
) -> Settings:
    """Resolve every setting once: arguments > environment > ``.env`` > keyring > defaults.

    Args:
        explicit: values passed by the caller, keyed by :class:`Settings` attribute name.
            ``NOT_GIVEN``, ``None`` and blank strings mean "not given". Passing any
            credential here means credentials are looked up nowhere else.
        environ: the environment to read instead of ``os.environ`` (it is only read).
        cwd: the directory whose ``.env`` is read, instead of the current directory.
        keyring_lookup: how to find the credentials stored for a host (pass
            :func:`mlrelay._credentials.keyring_lookup`); called only when no other layer
            holds a credential and the ``keyring`` setting is true. ``None`` means the
            keyring is not consulted at all.

    Returns:
        A frozen :class:`Settings`, with ``sources`` saying where each value came from.

    Raises:
        ConfigurationError: an unknown argument name, a value that does not parse (the
            message names the variable, the value unless secret, and its source), a
            tracking URI that is not http(s), ``insecure_tls`` together with
            ``server_cert_path``, or an unreadable ``.env``.

    >>> s = resolve({"tracking_uri": "https://alice:tok@example.com/"}, environ={})
    >>> s.tracking_uri, s.username, s.sources["password"]
    ('https://example.com', 'alice', 'tracking URI')
    """
    args = dict(explicit or {})
    _check_names(args)
    env: Mapping[str, str] = os.environ if environ is None else environ
    layers = _layers(args, env, Path.cwd() if cwd is None else cwd)
    values, sources, uri_layer = _resolve_plain(layers)
    values["tracking_uri"], userinfo = _userinfo_credentials(values["tracking_uri"])
    credentials = _layer_credentials(layers, userinfo, uri_layer)
    if not credentials and values["keyring"] and keyring_lookup is not None:
        credentials = _keyring_credentials(values["tracking_uri"], keyring_lookup)
    for name in _CREDENTIALS:
        found = credentials.get(name)
        values[name] = None if found is None else _parse(_BY_NAME[name], found)
        sources[name] = "default" if found is None else found.source
    _check_tls(values, sources)
    _log.debug("settings resolved from: %s", sources)
    return Settings.model_validate({**values, "sources": sources})


def _check_names(args: Mapping[str, object]) -> None:
    """Raise for an argument name that is not a setting."""
    unknown = sorted(set(args) - set(_BY_NAME))
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(_BY_NAME)}"
        )


def _layers(args: Mapping[str, object], env: Mapping[str, str], cwd: Path) -> list[_Layer]:
    """The layers that hold raw values, highest priority first: arguments, environment, .env."""
    layers = [
        _Layer(args, False, lambda _name: "argument", "passed as an argument"),
        _Layer(env, True, lambda var: f"environment ({var})", "from the environment"),
    ]
    dotenv = _dotenv_layer(cwd, env)
    if dotenv is not None:
        layers.append(dotenv)
    return layers


def _resolve_plain(
    layers: list[_Layer],
) -> tuple[dict[str, Any], dict[str, str], int | None]:
    """Every setting but the credentials, from the first layer that holds it.

    Returns the values, the sources of every setting (credentials "default" for now, in
    registry order) and the index of the layer that supplied the tracking URI, if any.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {s.name: "default" for s in REGISTRY}  # registry order
    uri_layer: int | None = None
    for setting in REGISTRY:
        if setting.name in _CREDENTIALS:
            continue
        values[setting.name] = setting.default
        for index, layer in enumerate(layers):
            found = layer.find(setting)
            if found is not None:
                values[setting.name], sources[setting.name] = _parse(setting, found), found.source
                if setting.name == "tracking_uri":
                    uri_layer = index
                break
    return values, sources, uri_layer


def _userinfo_credentials(uri: str | None) -> tuple[str | None, dict[str, _Found]]:
    """Split user-info off the tracking URI: ``(uri without it, the credentials it held)``."""
    if uri is None:
        return None, {}
    clean, user, password = _split_userinfo(uri)
    origin = "from the tracking URI"
    userinfo: dict[str, _Found] = {}
    if user is not None:
        userinfo["username"] = _Found(user, "username", "tracking URI", origin)
    if password is not None:
        userinfo["password"] = _Found(password, "password", "tracking URI", origin)
    return clean, userinfo


def _layer_credentials(
    layers: list[_Layer], userinfo: dict[str, _Found], uri_layer: int | None
) -> dict[str, _Found]:
    """The credential set of the first layer that holds any: its own variables, else the
    user-info of the tracking URI when that layer supplied the URI; ``{}`` when none does."""
    for index, layer in enumerate(layers):
        credentials = _credentials_from(layer) or (userinfo if index == uri_layer else {})
        if credentials:
            return credentials
    return {}


def _keyring_credentials(uri: str | None, lookup: KeyringLookup) -> dict[str, _Found]:
    """The credentials ``lookup`` finds for the tracking URI's host (``{}`` without a URI).

    A stored username means Basic ``username:token``; without one, a Bearer token.
    """
    if uri is None:
        return {}
    host = host_of(uri)
    stored = lookup(host)
    if stored is None:
        return {}
    user, token = stored
    label = f"keyring ({KEYRING_SERVICE_PREFIX.rstrip(':')}, host {host})"
    origin = "from the keyring"
    credentials = {"password" if user else "token": _Found(token, "token", label, origin)}
    if user:
        credentials["username"] = _Found(user, "username", label, origin)
    return credentials


def _check_tls(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Raise when certificate verification is both skipped and pinned to a CA bundle."""
    if values["insecure_tls"] and values["server_cert_path"] is not None:
        raise ConfigurationError(
            f"MLFLOW_TRACKING_INSECURE_TLS ({sources['insecure_tls']}) and "
            f"MLFLOW_TRACKING_SERVER_CERT_PATH ({sources['server_cert_path']}) cannot both "
            "be set: either skip certificate verification or verify against the CA bundle"
        )
