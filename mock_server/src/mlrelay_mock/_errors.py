"""MLflow's error shape: ``{"error_code": ..., "message": ...}`` and the code -> HTTP status table.

The status for each code follows the MLflow 3.17.2 server (protocol notes §5.2); note that
``RESOURCE_ALREADY_EXISTS`` is a 400, not a 409.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "STATUS_BY_CODE",
    "MlflowError",
    "bad_request",
    "invalid",
    "missing",
    "not_found",
    "wrong_type",
]

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "PERMISSION_DENIED": 403,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_CONFLICT": 409,
    "RESOURCE_EXHAUSTED": 429,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

_API_DOCS_HINT = " See the API docs for more information about request parameters."


class MlflowError(Exception):
    """An error the server answers with MLflow's JSON error body.

    Args:
        error_code: the MLflow ``error_code`` string, e.g. ``"RESOURCE_DOES_NOT_EXIST"``.
        message: the human-readable ``message``.
        status: the HTTP status; derived from ``error_code`` when not given.
    """

    def __init__(self, error_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status if status is not None else STATUS_BY_CODE.get(error_code, 500)

    def body(self) -> dict[str, Any]:
        """The JSON body MLflow sends for this error."""
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> MlflowError:
    """A 400 ``INVALID_PARAMETER_VALUE`` error."""
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def bad_request(message: str) -> MlflowError:
    """A 400 ``BAD_REQUEST`` error (what MLflow answers for SQL integrity errors)."""
    return MlflowError("BAD_REQUEST", message)


def not_found(message: str) -> MlflowError:
    """A 404 ``RESOURCE_DOES_NOT_EXIST`` error."""
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def missing(param: str) -> MlflowError:
    """The 400 MLflow answers when a required parameter is absent or empty."""
    return invalid(f"Missing value for required parameter '{param}'.{_API_DOCS_HINT}")


def wrong_type(param: str, value: Any, *, v2: bool = False) -> MlflowError:
    """The 400 MLflow answers when a parameter has the wrong JSON type.

    MLflow 3 shows the value as compact JSON (``Invalid value "5" for parameter 'tags'
    supplied:  Hint: ...``, two spaces, as its ``invalid_value`` helper joins them); MLflow 2.7
    shows it with ``str()`` and ends the first sentence with a period.
    """
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    if v2:
        return invalid(
            f"Invalid value {value} for parameter '{param}' supplied.{hint}{_API_DOCS_HINT}"
        )
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON-encodable: cannot come from a JSON request
        shown = repr(value)
    return invalid(
        f"Invalid value {shown} for parameter '{param}' supplied: {hint}{_API_DOCS_HINT}"
    )
