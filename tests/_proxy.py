"""A loopback HTTP proxy that can lose responses: the request reaches the real server,
which commits it, and the client's connection is closed before any response byte.

This is what a dropped connection after the server acted looks like to a client, and
is the case exactly-once delivery has to survive. It can also answer in the server's
place without forwarding (an SSO portal's 200 login page, a 302 to it): what a proxy
in front of a tracking server says when its session expired.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests._timing import deadline

__all__ = ["LossyProxy", "lossy_proxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class _Rule:
    method: str
    path_suffix: str
    remaining: int
    answer: tuple[int, bytes, dict[str, str]] | None = None


@dataclass
class LossyProxy:
    """A running proxy in front of ``upstream``; see :func:`lossy_proxy`."""

    upstream: str
    url: str = ""
    forwarded: list[tuple[str, str, bool]] = field(default_factory=list)
    intercepted: list[str] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lose_response(self, method: str, path_suffix: str, times: int = 1) -> None:
        """Forward the next ``times`` matching requests, then drop their responses."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), path_suffix, times))

    def answer(
        self,
        method: str,
        path_suffix: str,
        *,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with this response, not forwarding them."""
        with self._lock:
            self._rules.append(
                _Rule(method.upper(), path_suffix, times, (status, body, dict(headers or {})))
            )

    def clear(self) -> None:
        """Forget every rule: from now on the proxy forwards everything."""
        with self._lock:
            self._rules.clear()

    def answered(self, path_suffix: str) -> int:
        """How many requests to paths ending in ``path_suffix`` the proxy answered itself."""
        return sum(1 for p in self.intercepted if p.split("?")[0].endswith(path_suffix))

    def _match(self, method: str, path: str, *, answers: bool) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.remaining > 0
                    and (rule.answer is not None) == answers
                    and method == rule.method
                    and path.split("?")[0].endswith(rule.path_suffix)
                ):
                    rule.remaining -= 1
                    return rule
        return None

    def _should_drop(self, method: str, path: str) -> bool:
        return self._match(method, path, answers=False) is not None

    def dropped(self, path_suffix: str) -> int:
        """How many responses to paths ending in ``path_suffix`` were dropped."""
        return sum(1 for _, p, d in self.forwarded if d and p.split("?")[0].endswith(path_suffix))


@contextmanager
def lossy_proxy(upstream: str) -> Iterator[LossyProxy]:
    """Run a :class:`LossyProxy` on 127.0.0.1 (free port) for the duration of the block."""
    proxy = LossyProxy(upstream=upstream.rstrip("/"))
    client = httpx.Client(base_url=proxy.upstream, timeout=deadline(60))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            canned = proxy._match(self.command, self.path, answers=True)
            if canned is not None and canned.answer is not None:
                with proxy._lock:
                    proxy.intercepted.append(self.path)
                status, payload, extra = canned.answer
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            upstream_response = client.request(
                self.command, self.path, content=body, headers=headers
            )
            drop = proxy._should_drop(self.command, self.path)
            with proxy._lock:
                proxy.forwarded.append((self.command, self.path, drop))
            if drop:
                # The server has acted; the client never hears about it.
                self.close_connection = True
                return
            payload = upstream_response.content
            self.send_response(upstream_response.status_code)
            for k, v in upstream_response.headers.items():
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="lossy-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=deadline(10))
        client.close()
