"""The exception tree, and the pure mapping from an HTTP response to it.

Every error mlrelay raises is an :class:`MlrelayError`. The tree splits first on
whether a response arrived::

    MlrelayError                      also ``mlrelay.exceptions.MlflowException``
    ├── ConfigurationError            bad or missing local settings (names the variable)
    │   ├── ArtifactsNotProxiedError  the run's artifacts are in a store mlrelay cannot reach
    │   ├── MissingExtraError         a feature needs an optional extra (names the pip command)
    │   └── TLSVerificationError      the server's certificate is not trusted (names the setting)
    ├── ValidationError               bad input caught before sending (names key, problem, limit)
    ├── RegistryNotSupportedError     the server has no model registry
    ├── ModelRegistrationError        the server failed to register a model version
    ├── UnsupportedFeatureError       an MLflow feature outside mlrelay's scope (names the way)
    ├── JournalError                  the local journal cannot be opened, read or written
    │   ├── JournalVersionError       written by a newer mlrelay (refused, never misread)
    │   └── JournalDamagedError       the file is damaged (names what could not be read)
    └── APIError                      something went wrong talking to the server
        ├── APIConnectionError        no response: refused, reset, DNS, TLS ...
        │   └── APITimeoutError       no response in time
        ├── UnexpectedResponseError   a 2xx response that is not what the protocol promises
        └── APIStatusError            a response with a non-2xx status
            ├── BadRequestError           400 INVALID_PARAMETER_VALUE, BAD_REQUEST, ...
            │   └── ResourceAlreadyExistsError   400 RESOURCE_ALREADY_EXISTS
            ├── AuthenticationError       401
            ├── PermissionDeniedError     403
            ├── NotFoundError             404
            ├── ConflictError             409
            ├── RateLimitError            429
            └── ServerError               5xx

The MLflow ``error_code`` in a JSON body decides first (``RESOURCE_ALREADY_EXISTS``
arrives as HTTP 400, ``RESOURCE_DOES_NOT_EXIST`` as 404); the HTTP status decides
when the code is absent, unknown, or the body is not JSON at all (MLflow's Flask
layer answers HTML for unknown routes and crashes, plain text for Host-header
rejections, ``{"detail": ...}`` from its artifact routes).

Every error carries MLflow's ``error_code`` (``INVALID_PARAMETER_VALUE`` for a
:class:`ValidationError`, the server's code for an :class:`APIStatusError`, ...), ``message``
and ``get_http_status_code()``, so code written against ``mlflow.exceptions.MlflowException``
reads them unchanged: ``MlflowException`` is this tree's root under its MLflow name.

Messages never contain credentials: requests are described by method and a URL
whose user-info has been stripped, and headers are never included.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ERROR_CODE_TO_HTTP_STATUS",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ArtifactsNotProxiedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "JournalDamagedError",
    "JournalError",
    "JournalVersionError",
    "MissingExtraError",
    "MlrelayError",
    "ModelRegistrationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RegistryNotSupportedError",
    "ResourceAlreadyExistsError",
    "ServerError",
    "TLSVerificationError",
    "UnexpectedResponseError",
    "UnsupportedFeatureError",
    "ValidationError",
    "error_for_status",
    "redact_url",
    "status_error",
    "without_userinfo",
    "wrong_address",
]

_MAX_BODY_IN_MESSAGE = 500


# MLflow's error code -> HTTP status (``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS``).
ERROR_CODE_TO_HTTP_STATUS: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "CANCELLED": 499,
    "RESOURCE_EXHAUSTED": 429,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "CUSTOMER_UNAUTHORIZED": 401,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}


class MlrelayError(Exception):
    """The root of every error mlrelay raises; ``mlrelay.exceptions.MlflowException`` is
    this class under MLflow's name.

    Args:
        message: what went wrong.
        error_code: MLflow's error code (default: the class's, ``INTERNAL_ERROR`` here).
        kwargs: extra fields, kept in ``json_kwargs`` as MLflow keeps them.

    Attributes:
        message: the message.
        error_code: MLflow's error code, e.g. ``RESOURCE_DOES_NOT_EXIST``.
    """

    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: object = "", error_code: str | None = None, **kwargs: Any) -> None:
        super().__init__(message)
        self.message = str(message)
        if error_code is not None:
            self.error_code = str(error_code)
        self.json_kwargs = kwargs

    def get_http_status_code(self) -> int:
        """The HTTP status MLflow associates with ``error_code`` (500 for an unknown code)."""
        return ERROR_CODE_TO_HTTP_STATUS.get(self.error_code, 500)

    def serialize_as_json(self) -> str:
        """``{"error_code": ..., "message": ...}`` as MLflow's server would answer."""
        return json.dumps(
            {"error_code": self.error_code, "message": self.message, **self.json_kwargs}
        )

    @classmethod
    def invalid_parameter_value(cls, message: str, **kwargs: Any) -> MlrelayError:
        """An error with the ``INVALID_PARAMETER_VALUE`` code (MLflow's constructor)."""
        return cls(message, error_code="INVALID_PARAMETER_VALUE", **kwargs)


class ConfigurationError(MlrelayError):
    """A local setting is missing or invalid; the message names the setting and its source."""

    error_code = "INVALID_PARAMETER_VALUE"


class ValidationError(MlrelayError, ValueError):
    """Input rejected before anything was sent.

    Attributes:
        field: what kind of value was wrong (``"param value"``, ``"metric key"``, ...).
        key: the user's key the value belongs to, when there is one.
        limit: the limit that was exceeded, when there is one.
    """

    error_code = "INVALID_PARAMETER_VALUE"

    def __init__(
        self, message: str, *, field: str, key: str | None = None, limit: int | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.key = key
        self.limit = limit


class ArtifactsNotProxiedError(ConfigurationError):
    """A run keeps its artifacts where mlrelay cannot write: not behind the tracking server's
    artifact proxy (``mlflow-artifacts:/``) and not in a store mlrelay writes directly
    (``s3://``), but in ``gs://``, ``wasbs://``, a path on the server's disk, ...

    Attributes:
        artifact_uri: the run's artifact location.
    """

    def __init__(self, message: str, *, artifact_uri: str) -> None:
        super().__init__(message)
        self.artifact_uri = artifact_uri


class MissingExtraError(ConfigurationError):
    """A feature needs a library of one of mlrelay's optional extras, and it is not
    installed; the message names the command that installs it (``pip install 'mlrelay[s3]'``).

    Attributes:
        extra: the extra's name (``"s3"``).
        package: the missing library (``"boto3"``).
    """

    def __init__(self, message: str, *, extra: str, package: str) -> None:
        super().__init__(message)
        self.extra = extra
        self.package = package


class _RequestFailure(MlrelayError):
    """A failure of one request to the tracking server (the base of those that name it).

    Attributes:
        method: the HTTP method.
        url: the request URL with any user-info removed.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = redact_url(url)


class TLSVerificationError(ConfigurationError, _RequestFailure):
    """The server's TLS certificate could not be verified: a setting, not an outage.

    Nothing is retried: the same request fails the same way until the trust settings change
    (``MLFLOW_TRACKING_SERVER_CERT_PATH``, or ``MLFLOW_TRACKING_INSECURE_TLS``).

    Attributes:
        method: the HTTP method.
        url: the request URL with any user-info removed.
    """


class RegistryNotSupportedError(MlrelayError):
    """The tracking server does not offer MLflow's model registry (DagsHub answers 404)."""

    error_code = "ENDPOINT_NOT_FOUND"


class ModelRegistrationError(MlrelayError):
    """The server reports that a model version failed to register (FAILED_REGISTRATION)."""


class UnsupportedFeatureError(MlrelayError, NotImplementedError):
    """An MLflow feature that mlrelay does not offer (GenAI tracing, evaluation, deployments,
    Projects, some model flavors); the message names what to use instead.

    A ``NotImplementedError`` rather than an ``AttributeError``, so ``mlrelay.trace`` and
    ``from mlrelay import trace`` both show the message instead of a bare "no attribute".
    """

    error_code = "NOT_IMPLEMENTED"


class JournalError(MlrelayError):
    """The local journal cannot be opened, read or written; the message names the file and
    SQLite's reason (``database or disk is full``, ``unable to open database file``, ...).

    Attributes:
        path: the journal file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class JournalVersionError(JournalError):
    """The journal was written by a newer mlrelay, whose layout this one does not know;
    it is refused rather than misread.

    Attributes:
        version: the journal's schema version.
        supported: the newest schema version this mlrelay reads.
    """

    def __init__(self, message: str, *, path: str, version: int, supported: int) -> None:
        super().__init__(message, path=path)
        self.version = version
        self.supported = supported


class JournalDamagedError(JournalError):
    """The journal file is damaged (``database disk image is malformed``, ``file is not a
    database``); ``mlrelay status`` says what, ``mlrelay sync`` sends what can be read."""

    error_code = "DATA_LOSS"


class APIError(_RequestFailure):
    """A request to the tracking server failed.

    Attributes:
        method: the HTTP method.
        url: the request URL with any user-info removed.
    """


class APIConnectionError(APIError):
    """No response arrived: the connection was refused, reset, or could not be set up.

    Attributes:
        request_sent: False when the request certainly never reached the server
            (connection refused, DNS or TLS failure, connect timeout), so even a
            non-idempotent request may be sent again.
    """

    def __init__(self, message: str, *, method: str, url: str, request_sent: bool = True) -> None:
        super().__init__(message, method=method, url=url)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """No response arrived within the timeout."""


class UnexpectedResponseError(APIError):
    """A success status whose body is not the JSON the endpoint promises.

    Typical cause: the tracking URI points at a web page or a login portal rather than
    an MLflow server.
    """


class APIStatusError(APIError):
    """The server answered with a non-success status.

    Attributes:
        status_code: the HTTP status.
        error_code: MLflow's ``error_code`` from the body, or one derived from the status
            when the body carried none (``ENDPOINT_NOT_FOUND`` for an HTML 404, ...).
        server_message: the server's message, or the start of a non-JSON body.
        request_id: the value of an ``X-Request-Id`` style header, when the server sent one.
        retry_after: seconds from a ``Retry-After`` header, when present and parseable.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status_code: int,
        error_code: str,
        server_message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.error_code = error_code
        self.server_message = server_message
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """The server rejected the request as invalid (400)."""


class ResourceAlreadyExistsError(BadRequestError):
    """The resource exists already (MLflow answers ``RESOURCE_ALREADY_EXISTS`` with HTTP 400)."""


class AuthenticationError(APIStatusError):
    """The server did not accept the credentials, or none were sent (401)."""


class PermissionDeniedError(APIStatusError):
    """The credentials are valid but lack permission (403)."""


class NotFoundError(APIStatusError):
    """The resource or the endpoint does not exist (404)."""


class ConflictError(APIStatusError):
    """The request conflicts with the server's state (409)."""


class RateLimitError(APIStatusError):
    """The server asked the client to slow down (429)."""


class ServerError(APIStatusError):
    """The server failed (5xx)."""


# MLflow error codes, mapped to classes. Codes not listed fall through to the HTTP status.
_BY_ERROR_CODE: dict[str, type[APIStatusError]] = {
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExistsError,
    "ALREADY_EXISTS": ResourceAlreadyExistsError,
    "INVALID_PARAMETER_VALUE": BadRequestError,
    "BAD_REQUEST": BadRequestError,
    "MALFORMED_REQUEST": BadRequestError,
    "INVALID_STATE": BadRequestError,
    "RESOURCE_DOES_NOT_EXIST": NotFoundError,
    "NOT_FOUND": NotFoundError,
    "ENDPOINT_NOT_FOUND": NotFoundError,
    "UNAUTHENTICATED": AuthenticationError,
    "CUSTOMER_UNAUTHORIZED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "ABORTED": ConflictError,
    "RESOURCE_CONFLICT": ConflictError,
    "RESOURCE_EXHAUSTED": RateLimitError,
    "REQUEST_LIMIT_EXCEEDED": RateLimitError,
    "INTERNAL_ERROR": ServerError,
    "TEMPORARILY_UNAVAILABLE": ServerError,
    "DEADLINE_EXCEEDED": ServerError,
    "NOT_IMPLEMENTED": ServerError,
}

# What MLflow's own client synthesises when a body carries no error code.
_CODE_FOR_STATUS: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _class_for_status(status: int) -> type[APIStatusError]:
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return APIStatusError


def _parse_body(body: bytes) -> tuple[str | None, str]:
    """Return ``(error_code, message)`` from an error body of any shape."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = data.get("error_code")
        message = data.get("message", data.get("detail"))
        code_str = code if isinstance(code, str) and not code.isdigit() else None
        if message is not None:
            return code_str, str(message)[:_MAX_BODY_IN_MESSAGE]
        return code_str, text[:_MAX_BODY_IN_MESSAGE]
    # HTML or plain text: keep a short, single-line excerpt.
    excerpt = " ".join(text.split())[:_MAX_BODY_IN_MESSAGE]
    return None, excerpt


def error_for_status(
    *,
    method: str,
    url: str,
    status_code: int,
    body: bytes,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the exception for a non-success response.

    The MLflow ``error_code`` in a JSON body decides the class first; the HTTP status
    decides when the body has none or is not JSON.

    Args:
        method: the request's HTTP method.
        url: the request URL (user-info is stripped from the message).
        status_code: the response status.
        body: the raw response body.
        request_id: a request id header value, if any.
        retry_after: the parsed ``Retry-After`` delay, if any.

    Returns:
        An :class:`APIStatusError` subclass instance, ready to raise.
    """
    code, server_message = _parse_body(body)
    return status_error(
        method=method,
        url=url,
        status_code=status_code,
        error_code=code,
        server_message=server_message,
        request_id=request_id,
        retry_after=retry_after,
    )


def status_error(
    *,
    method: str,
    url: str,
    status_code: int,
    error_code: str | None,
    server_message: str,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the exception for a non-success answer whose ``error_code`` (MLflow's name,
    None when the answer had none) and message are known: the code decides the class
    first, the HTTP status when the code is absent or unknown. :func:`error_for_status`
    reads both from an HTTP body; a direct artifact store maps its own codes to MLflow's.
    """
    cls = _BY_ERROR_CODE.get(error_code) if error_code else None
    if cls is None:
        cls = _class_for_status(status_code)
    code = error_code or _CODE_FOR_STATUS.get(status_code, f"HTTP_{status_code}")
    safe_url = redact_url(url)
    message = f"{method} {safe_url} failed with HTTP {status_code} {code}: {server_message}"
    if request_id:
        message += f" (request id {request_id})"
    return cls(
        message,
        method=method,
        url=safe_url,
        status_code=status_code,
        error_code=code,
        server_message=server_message,
        request_id=request_id,
        retry_after=retry_after,
    )


def without_userinfo(url: str) -> str:
    """Return ``url`` without any ``user:password@`` part (for what is stored on disk).

    >>> without_userinfo("https://alice:s3cret@example.com/api")
    'https://example.com/api'
    """
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://{authority.rsplit('@', 1)[1]}{slash}{path}"


def redact_url(url: str) -> str:
    """Return ``url`` with any ``user:password@`` part replaced by ``***@``.

    >>> redact_url("https://alice:s3cret@example.com/api")
    'https://***@example.com/api'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}://{authority}{slash}{path}"


def wrong_address(tracking_uri: str, exc: NotFoundError) -> ConfigurationError:
    """The error for a server that is up but has no MLflow API at the tracking URI."""
    uri = without_userinfo(tracking_uri).rstrip("/")
    hint = "check MLFLOW_TRACKING_URI (set_tracking_uri): the address, its path and port"
    if "dagshub" in uri.lower() and not uri.endswith(".mlflow"):
        hint = (
            f"a DagsHub tracking URI ends in `.mlflow`: did you mean {uri}.mlflow? "
            "(mlrelay.init(owner, repo) builds it)"
        )
    return ConfigurationError(
        f"the server at {uri} is up but has no MLflow tracking API there (HTTP "
        f"{exc.status_code} ENDPOINT_NOT_FOUND for {exc.method} {exc.url}); {hint}. Runs "
        "already journaled for this address can be sent to the right one with `mlrelay "
        f"sync --tracking-uri RIGHT_URI --from {uri}`"
    )
