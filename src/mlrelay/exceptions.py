"""MLflow's exception names over mlrelay's one error tree.

``MlflowException`` *is* :class:`mlrelay.MlrelayError`, the root of every error mlrelay
raises, not a second class beside it: ``except MlflowException`` catches everything
mlrelay raises (a refused value, a missing tracking URI, a server's 404), as MLflow's own
``except MlflowException`` catches everything MLflow's client raises. Each error has
``error_code`` (``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, ...), ``message``
and ``get_http_status_code()``; ``MlflowException("...", error_code=INVALID_PARAMETER_VALUE)``
builds one, as in MLflow.

``RestException`` is :class:`mlrelay.APIStatusError` (the server answered with an error)
and ``MissingConfigException`` is :class:`mlrelay.ConfigurationError`. The error-code
constants are the codes' names (MLflow's are protobuf numbers that its exceptions turn into
these same names).

>>> import mlrelay
>>> from mlrelay.exceptions import MlflowException
>>> try:
...     mlrelay.get_run("no-such-run")  # doctest: +SKIP
... except MlflowException as e:
...     print(e.error_code)  # doctest: +SKIP
RESOURCE_DOES_NOT_EXIST
"""

from __future__ import annotations

from ._errors import (
    ERROR_CODE_TO_HTTP_STATUS,
    APIStatusError,
    ConfigurationError,
    MlrelayError,
    UnsupportedFeatureError,
)

__all__ = [
    "ABORTED",
    "ALREADY_EXISTS",
    "BAD_REQUEST",
    "ENDPOINT_NOT_FOUND",
    "ERROR_CODE_TO_HTTP_STATUS",
    "INTERNAL_ERROR",
    "INVALID_PARAMETER_VALUE",
    "INVALID_STATE",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "PERMISSION_DENIED",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_CONFLICT",
    "RESOURCE_DOES_NOT_EXIST",
    "TEMPORARILY_UNAVAILABLE",
    "UNAUTHENTICATED",
    "MissingConfigException",
    "MlflowException",
    "RestException",
    "UnsupportedFeatureError",
]

MlflowException = MlrelayError
RestException = APIStatusError
MissingConfigException = ConfigurationError

ABORTED = "ABORTED"
ALREADY_EXISTS = "ALREADY_EXISTS"
BAD_REQUEST = "BAD_REQUEST"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
INTERNAL_ERROR = "INTERNAL_ERROR"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
INVALID_STATE = "INVALID_STATE"
NOT_FOUND = "NOT_FOUND"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
PERMISSION_DENIED = "PERMISSION_DENIED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
UNAUTHENTICATED = "UNAUTHENTICATED"
