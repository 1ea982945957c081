"""Optional authentication, so a test can pose as a hosted backend.

Basic ``username:password`` (DagsHub style: the password is a token) and ``Bearer <token>`` are
accepted as configured. Missing or wrong credentials get the 401 of MLflow's basic-auth app; an
authenticated identity without permission gets its 403. ``/health`` stays open, as there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from starlette.responses import PlainTextResponse, Response

__all__ = ["AuthConfig"]

_READ_ONLY_POSTS = ("/search", "/get-latest-versions")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class AuthConfig:
    """Who may use the server.

    Args:
        basic: user name -> password (or token) accepted with HTTP Basic.
        bearer: tokens accepted with ``Authorization: Bearer``.
        readers: user names or bearer tokens that may only read (writes get 403).
        denied: user names or bearer tokens that are known but may do nothing (403).

    Example::

        AuthConfig(basic={"alice": "tok-123"}, bearer=["tok-456"], readers=["bob"])
    """

    basic: Mapping[str, str] = field(default_factory=dict)
    bearer: Collection[str] = ()
    readers: Collection[str] = ()
    denied: Collection[str] = ()

    def identify(self, header: str | None) -> str | None:
        """The user name or token an ``Authorization`` header proves, ``None`` if it proves none."""
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer":
            return next((t for t in self.bearer if _same(t, credentials)), None)
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        expected = self.basic.get(user)
        if not sep or expected is None or not _same(expected, password):
            return None
        return user

    def check(self, header: str | None, method: str, endpoint: str) -> Response | None:
        """``None`` if the request may proceed, else the 401 or 403 to answer."""
        if endpoint == "/health":
            return None
        who = self.identify(header)
        if who is None:
            return PlainTextResponse(
                "You are not authenticated. Please see "
                "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
                "on how to authenticate.",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="mlflow"'},
            )
        writes = method not in ("GET", "HEAD") and not endpoint.endswith(_READ_ONLY_POSTS)
        if who in self.denied or (writes and who in self.readers):
            return PlainTextResponse("Permission denied", status_code=403)
        return None
