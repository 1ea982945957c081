"""pytest plugin (entry point ``pytest11``): fixtures that run the mock server.

- ``mock_server``: a running :class:`~mlrelay_mock.MockServer` on a free loopback port, fresh
  for each test and stopped after it.
- ``mock_server_factory``: a callable taking :class:`MockServer` keyword arguments (prefix,
  auth, data_dir, ...) for tests that need a particular set-up; all its servers are stopped
  after the test.

The plugin only defines fixtures: no hooks, markers or options, so it cannot change how other
tests run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlrelay_mock._server import MockServer

__all__ = ["mock_server", "mock_server_factory"]


@pytest.fixture
def mock_server_factory() -> Iterator[Callable[..., MockServer]]:
    """Start mock servers with custom options; every one is stopped after the test."""
    # Imported here so that merely loading the plugin does not import uvicorn and starlette.
    from mlrelay_mock._server import MockServer

    servers: list[MockServer] = []

    def start(**kwargs: Any) -> MockServer:
        server = MockServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def mock_server(mock_server_factory: Callable[..., MockServer]) -> MockServer:
    """A fresh mock MLflow server (URL, ``faults``, ``requests``) for one test."""
    return mock_server_factory()
