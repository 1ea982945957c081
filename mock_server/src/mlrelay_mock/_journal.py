"""The request journal: what clients sent, so tests can assert on it.

Each entry keeps the method, path, query, the body (up to a size cap; the size always), which
fault fired, the status answered, and whether an ``Authorization`` header was present with its
scheme and user name. The credential itself is never stored: a test can check that auth was
sent without the journal becoming a place secrets leak to.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

__all__ = ["Journal", "RecordedRequest", "describe_auth"]

_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def describe_auth(header: str | None) -> tuple[str | None, str | None]:
    """The scheme (``"Basic"``/``"Bearer"``) and, for Basic, the user name of a header value."""
    if not header:
        return None, None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return scheme, None
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return scheme, None
    return scheme, user


@dataclass(eq=False)
class RecordedRequest:
    """One request as the server saw it (mutable while the request is in flight)."""

    seq: int
    time: float
    method: str
    path: str
    endpoint: str
    query: str
    headers: dict[str, str]
    has_auth: bool
    auth_scheme: str | None
    auth_user: str | None
    body_size: int = 0
    body: bytes | None = b""
    status: int | None = None
    fault: str | None = None
    _complete: threading.Event = field(default_factory=threading.Event, repr=False)
    _kept_bytes: int = field(default=0, repr=False)

    @property
    def json(self) -> Any:
        """The body decoded as JSON, ``None`` if it is not JSON or was too large to keep."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def wait(self, timeout: float) -> bool:
        """Wait until the server finished with this request (answered, failed or dropped)."""
        return self._complete.wait(timeout)

    def finish(self) -> None:
        """Mark the request as finished."""
        self._complete.set()

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view, for ``GET /_mock/requests``."""
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "query": self.query,
            "headers": self.headers,
            "has_auth": self.has_auth,
            "auth_scheme": self.auth_scheme,
            "auth_user": self.auth_user,
            "body_size": self.body_size,
            "json": self.json,
            "status": self.status,
            "fault": self.fault,
        }


class Journal(Sequence[RecordedRequest]):
    """A bounded, thread-safe list of the most recent requests.

    Args:
        max_entries: how many requests to keep (older ones are dropped).
        max_body: the largest body kept in full; bigger ones keep only their size.
        max_total_body: the bytes of bodies kept in all; past it, the oldest bodies are
            forgotten first (their sizes stay).
    """

    def __init__(
        self, max_entries: int = 10_000, max_body: int = 1 << 20, max_total_body: int = 64 << 20
    ) -> None:
        self.max_body = max_body
        self.max_total_body = max_total_body
        self._entries: deque[RecordedRequest] = deque()
        self._max_entries = max_entries
        self._kept = 0  # bytes of bodies held by accounted entries
        self._accounted: deque[RecordedRequest] = deque()
        self._lock = threading.Lock()
        self._seq = 0

    def start(
        self,
        *,
        method: str,
        path: str,
        endpoint: str,
        query: str,
        headers: dict[str, str],
        now: float,
    ) -> RecordedRequest:
        """Record a request as it arrives; the caller fills in body, status and fault."""
        scheme, user = describe_auth(headers.get("authorization"))
        with self._lock:
            self._seq += 1
            entry = RecordedRequest(
                seq=self._seq,
                time=now,
                method=method,
                path=path,
                endpoint=endpoint,
                query=query,
                headers={k: v for k, v in headers.items() if k not in _HIDDEN_HEADERS},
                has_auth="authorization" in headers,
                auth_scheme=scheme,
                auth_user=user,
            )
            self._entries.append(entry)
            while len(self._entries) > self._max_entries:
                self._forget_body(self._entries.popleft())
        return entry

    def _forget_body(self, entry: RecordedRequest) -> None:
        self._kept -= entry._kept_bytes
        entry._kept_bytes = 0
        entry.body = None

    def account(self, entry: RecordedRequest) -> None:
        """Count a finished request's body against ``max_total_body``, forgetting old ones."""
        with self._lock:
            if not entry.body:
                return
            entry._kept_bytes = len(entry.body)
            self._kept += entry._kept_bytes
            self._accounted.append(entry)
            while self._accounted and (
                self._kept > self.max_total_body or len(self._accounted) > self._max_entries
            ):
                self._forget_body(self._accounted.popleft())

    def snapshot(self) -> list[RecordedRequest]:
        """A copy of the entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._accounted.clear()
            self._kept = 0

    def matching(
        self, method: str | None = None, endpoint: str | None = None
    ) -> list[RecordedRequest]:
        """The entries with this method and/or an endpoint path ending with ``endpoint``."""
        return [
            e
            for e in self.snapshot()
            if (method is None or e.method == method)
            and (endpoint is None or e.endpoint.endswith(endpoint))
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> RecordedRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[RecordedRequest]: ...

    def __getitem__(self, index: int | slice) -> RecordedRequest | list[RecordedRequest]:
        return self.snapshot()[index]
