"""Capabilities as values: the journal's JSON form, the major version, the per-server cache.
(Probing real servers and both mock profiles: tests/real/test_capabilities.py.)"""

from __future__ import annotations

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
