"""Capabilities as values: the journal's JSON form, the major version, the per-server cache.
(Probing real servers and both mock profiles: tests/real/test_capabilities.py.)"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from mlrelay import _capabilities
from mlrelay._capabilities import Capabilities, capabilities_of


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each test starts and ends with nothing cached."""
    _capabilities.forget()
    yield
    _capabilities.forget()


class _NoNetwork:
    """A transport stand-in whose only use would be to probe: probing fails the test."""

    base_url = "http://127.0.0.1:9/prefix"

    def send(self, *args: object, **kwargs: object) -> None:
        """Probing is not expected here."""
        raise AssertionError("probed a server whose capabilities were known")


def test_json_round_trip() -> None:
    """What sync records in the journal reads back equal."""
    found = Capabilities("2.7.1", False, False, False, True)
    assert Capabilities.from_json(found.to_json()) == found


@pytest.mark.parametrize(
    ("version", "major"), [("3.17.2", 3), ("2.7.1", 2), (None, None), ("dev", None)]
)
def test_major_version(version: str | None, major: int | None) -> None:
    """The major version when /version said a number, None otherwise."""
    assert Capabilities(version, True, True, False, True).major == major


def test_remembered_capabilities_are_not_probed_again() -> None:
    """A server seeded from the journal (trailing slash or not) answers from the cache;
    forget() for that server drops it."""
    known = Capabilities("3.17.2", True, True, True, True)
    _capabilities.remember("http://127.0.0.1:9/prefix/", known)
    assert capabilities_of(_NoNetwork()) == known
    _capabilities.forget("http://127.0.0.1:9/prefix")
    with pytest.raises(AssertionError, match="probed"):
        capabilities_of(_NoNetwork())


class _Answer:
    """A success response to every probe: an MLflow 3 server without multipart uploads."""

    text = "3.17.2"

    def json(self) -> dict[str, object]:
        """The server-info body."""
        return {"multipart_uploads_enabled": False}


class _FakeServer:
    """A transport stand-in that counts its probes; with a gate, every request waits on it."""

    def __init__(self, base_url: str, gate: threading.Event | None = None) -> None:
        self.base_url = base_url
        self.gate = gate
        self.probing = threading.Event()  # set once a request has arrived
        self.probes = 0  # /version requests: one per probe
        self._count = threading.Lock()

    def send(self, method: str, path: str, **kwargs: object) -> _Answer:
        """Answer a probe request, after the gate opens if there is one."""
        if path == "/version":
            with self._count:
                self.probes += 1
        self.probing.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        return _Answer()


class _WatchedLock:
    """A lock that tells when a thread starts waiting for it (before it gets it)."""

    def __init__(self, waiters: int) -> None:
        self._lock = threading.Lock()
        self._seen = 0
        self._count = threading.Lock()
        self.all_waiting = threading.Event()  # `waiters` threads have come to the lock
        self.waiters = waiters

    def __enter__(self) -> bool:
        with self._count:
            self._seen += 1
            if self._seen >= self.waiters:
                self.all_waiting.set()
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


_thread_numbers = itertools.count()


def _in_thread(transport: object, results: dict[str, Capabilities]) -> threading.Thread:
    """Start a thread that looks ``transport`` up and stores the answer under its name."""
    name = f"lookup-{next(_thread_numbers)}"

    def lookup() -> None:
        results[name] = capabilities_of(transport)  # type: ignore[arg-type]

    thread = threading.Thread(target=lookup, name=name, daemon=True)
    thread.start()
    return thread


def test_a_slow_probe_does_not_block_other_servers() -> None:
    """While server A's probe hangs, a lookup for server B completes; then A completes."""
    gate = threading.Event()
    slow, fast = _FakeServer("http://a.example", gate), _FakeServer("http://b.example")
    results: dict[str, Capabilities] = {}
    try:
        a = _in_thread(slow, results)
        assert slow.probing.wait(timeout=10)
        b = _in_thread(fast, results)
        b.join(timeout=10)
        assert not b.is_alive(), "the lookup for B waited for A's probe"
        assert a.is_alive()
        assert list(results.values()) == [Capabilities("3.17.2", True, True, False, True)]
    finally:
        gate.set()
    a.join(timeout=10)
    assert not a.is_alive()
    assert (slow.probes, fast.probes) == (1, 1)
    assert len(results) == 2


def test_concurrent_lookups_of_one_server_probe_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second lookup that arrives during the first one's probe waits for it: one probe."""
    gate = threading.Event()
    server = _FakeServer("http://a.example", gate)
    lock = _WatchedLock(waiters=2)
    monkeypatch.setitem(_capabilities._probe_locks, "http://a.example", lock)
    results: dict[str, Capabilities] = {}
    try:
        first = _in_thread(server, results)
        assert server.probing.wait(timeout=10)
        second = _in_thread(server, results)
        assert lock.all_waiting.wait(timeout=10)  # the second lookup waits for the probe
    finally:
        gate.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert not first.is_alive()
    assert not second.is_alive()
    assert server.probes == 1
    assert len(results) == 2
    assert len(set(results.values())) == 1
