"""Integration-test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import fluent


@pytest.fixture(autouse=True)
def _fresh_fluent_state() -> Iterator[None]:
    """Every test starts and ends with a clean fluent state (pipeline closed, client closed)."""
    fluent._reset()
    yield
    fluent._reset()


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh mock server for one test, on a free loopback port."""
    with MockServer() as s:
        yield s


@pytest.fixture
def client(server: MockServer) -> Iterator[mlrelay.Client]:
    """A direct client to read back what landed on the mock server."""
    with mlrelay.Client(tracking_uri=server.url) as c:
        yield c
