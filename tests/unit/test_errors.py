"""The pure mapping from HTTP responses to the error tree."""

from __future__ import annotations

import pytest

import mlrelay
from mlrelay._errors import error_for_status, redact_url


def _err(status: int, body: bytes) -> mlrelay.APIStatusError:
    return error_for_status(method="POST", url="http://h/api", status_code=status, body=body)


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            400,
            b'{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "x"}',
            mlrelay.ResourceAlreadyExistsError,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            400,
            b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "x"}',
            mlrelay.BadRequestError,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            404,
            b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "x"}',
            mlrelay.NotFoundError,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            404,
            b"<!doctype html><title>404 Not Found</title>",
            mlrelay.NotFoundError,
            "ENDPOINT_NOT_FOUND",
        ),
        (405, b"<html>Method Not Allowed</html>", mlrelay.BadRequestError, "HTTP_405"),
        (
            403,
            b"Invalid Host header - possible DNS rebinding attack detected",
            mlrelay.PermissionDeniedError,
            "PERMISSION_DENIED",
        ),
        (401, b"You are not authenticated.", mlrelay.AuthenticationError, "UNAUTHENTICATED"),
        (429, b"", mlrelay.RateLimitError, "REQUEST_LIMIT_EXCEEDED"),
        (500, b"<html>Internal Server Error</html>", mlrelay.ServerError, "INTERNAL_ERROR"),
        (
            503,
            b'{"detail": "Artifact serving is disabled"}',
            mlrelay.ServerError,
            "TEMPORARILY_UNAVAILABLE",
        ),
        (502, b'{"error_code": 502, "message": "bad gateway"}', mlrelay.ServerError, "HTTP_502"),
        (
            409,
            b'{"error_code": "SOMETHING_NEW", "message": "x"}',
            mlrelay.ConflictError,
            "SOMETHING_NEW",
        ),
    ],
)
def test_status_and_body_map_to_the_right_class(
    status: int, body: bytes, cls: type[Exception], code: str
) -> None:
    """error_code decides first, the HTTP status second, for JSON, HTML and text bodies."""
    err = _err(status, body)
    assert type(err) is cls
    assert err.status_code == status
    assert err.error_code == code


def test_error_code_beats_http_status() -> None:
    """RESOURCE_DOES_NOT_EXIST in a 400 body is still a NotFoundError."""
    assert isinstance(
        _err(400, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}'), mlrelay.NotFoundError
    )


def test_message_names_method_url_status_and_server_message() -> None:
    """The message carries what a user needs: the call, the status, the server's words."""
    err = _err(400, b'{"error_code": "BAD_REQUEST", "message": "Changing param values"}')
    assert str(err).startswith("POST http://h/api failed with HTTP 400 BAD_REQUEST: ")
    assert err.server_message == "Changing param values"


def test_long_html_bodies_are_cut_to_one_short_line() -> None:
    """A huge HTML error page becomes a bounded single-line excerpt."""
    err = _err(500, b"<html>\n" + b"x" * 10_000 + b"\n</html>")
    assert "\n" not in err.server_message
    assert len(err.server_message) <= 500


def test_user_info_never_reaches_the_message() -> None:
    """Credentials embedded in a URL are stripped from errors."""
    err = error_for_status(method="GET", url="https://bob:s3cret@host/x", status_code=404, body=b"")
    assert "s3cret" not in str(err)
    assert err.url == "https://***@host/x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a:b@h:1/p?q=1", "https://***@h:1/p?q=1"),
        ("http://h/p", "http://h/p"),
        ("not a url", "not a url"),
        ("https://tok@h", "https://***@h"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """redact_url removes user-info and leaves everything else alone."""
    assert redact_url(url) == expected
