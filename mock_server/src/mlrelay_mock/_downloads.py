"""How MLflow's server hands out an artifact: path checks, content type and attachment headers.

Every download (the ``mlflow-artifacts`` proxy, ``/get-artifact``, ``/model-versions/get-artifact``
and a logged model's ``artifacts/files``) is sent as an attachment with
``X-Content-Type-Options: nosniff`` and a content type guessed from the file name only, never
from what the client asks for, so a browser cannot be made to render an artifact as a page.
"""

from __future__ import annotations

import mimetypes
import pathlib
import posixpath
import unicodedata
import urllib.parse
from pathlib import Path

from starlette.responses import FileResponse, Response

from mlrelay_mock._errors import MlflowError

__all__ = [
    "attachment",
    "content_disposition",
    "flask_error_page",
    "guess_mime_type",
    "validate_path_is_safe",
]

TEXT_EXTENSIONS = frozenset(
    {
        *("txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop"),
        *("hocon", "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv"),
        *("md", "rst", "ipynb", "MLmodel", "mlproject"),
    }
)
"""Extensions (or, without one, whole file names) MLflow serves as ``text/plain``."""

_PAGES = {
    400: (
        "Bad Request",
        "The browser (or proxy) sent a request that this server could not understand.",
    ),
    500: (
        "Internal Server Error",
        "The server encountered an internal error and was unable to complete your request. "
        "Either the server is overloaded or there is an error in the application.",
    ),
}


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def guess_mime_type(name: str) -> str:
    """MLflow's ``_guess_mime_type``: ``text/plain`` (no charset) for text files, ``MLmodel``
    and ``mlproject``; the standard guess otherwise; ``application/octet-stream`` if none."""
    filename = pathlib.PurePosixPath(name).name
    extension = posixpath.splitext(filename)[1].replace(".", "") or filename
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _quote(value: str) -> str:
    """Werkzeug's ``quote_header_value``: a bare token as is, anything else in quotes."""
    if not value:
        return '""'
    if _TOKEN_CHARS.issuperset(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(filename: str) -> str:
    """MLflow's ``Content-Disposition`` for an attachment (RFC 6266 / 5987 for non-ASCII)."""
    try:
        filename.encode("ascii")
    except UnicodeEncodeError:
        fallback = (
            unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
            or "download"
        )
        quoted = urllib.parse.quote(filename, safe="!#$&+-.^_`|~")
        return f"attachment; filename={_quote(fallback)}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_quote(filename)}"


def attachment(found: bytes | Path, name: str) -> Response:
    """A download of ``found`` (bytes, or a file on disk) named ``name``, with MLflow's headers."""
    basename = name.rsplit("/", 1)[-1]
    headers = {
        "Content-Disposition": content_disposition(basename),
        "X-Content-Type-Options": "nosniff",
    }
    media_type = guess_mime_type(basename)
    if isinstance(found, bytes):
        response: Response = Response(found, media_type=media_type, headers=headers)
    else:
        response = FileResponse(found, media_type=media_type, headers=headers)
    # Starlette appends "; charset=utf-8" to text/* types; MLflow sends the bare type.
    response.headers["Content-Type"] = media_type
    return response


def _decode(url: str) -> str:
    for _ in range(10):
        decoded = urllib.parse.unquote(url)
        parsed = urllib.parse.urlunparse(urllib.parse.urlparse(decoded))
        if parsed == url:
            return url
        url = parsed
    raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid path")


def _escape_control_characters(text: str) -> str:
    return "".join(f"%{ord(c):02x}" if ord(c) <= 31 or ord(c) == 127 else c for c in text)


def _file_uri_path(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    path = parsed.path
    if parsed.netloc:
        path = "//" + parsed.netloc + path
    return urllib.parse.unquote(path)


def validate_path_is_safe(path: str, *, v3: bool = True) -> str:
    """MLflow's ``validate_path_is_safe`` (on a POSIX server): the decoded path, or a 400.

    MLflow 3 decodes percent-escapes until stable, escapes control characters and refuses a
    ``#``, a ``..`` segment and absolute (POSIX or Windows) paths with ``Invalid path``;
    MLflow 2.7 checks the path as given and names it (``Invalid path: <path>``).
    """
    original = path
    if v3:
        path = _escape_control_characters(_decode(path))
    message = "Invalid path" if v3 else f"Invalid path: {original}"
    if v3 and "#" in path:
        raise MlflowError("INVALID_PARAMETER_VALUE", message)
    checked = _file_uri_path(path) if urllib.parse.urlparse(path).scheme == "file" else path
    if (
        ".." in checked.split("/")
        or pathlib.PureWindowsPath(checked).is_absolute()
        or pathlib.PurePosixPath(checked).is_absolute()
    ):
        raise MlflowError("INVALID_PARAMETER_VALUE", message)
    return checked if v3 else original


def flask_error_page(status: int) -> Response:
    """Flask's (werkzeug's) HTML error page for a 400 or a 500."""
    title, text = _PAGES[status]
    body = f"<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n"
    body += f"<h1>{title}</h1>\n<p>{text}</p>\n"
    return Response(body, status_code=status, media_type="text/html")
