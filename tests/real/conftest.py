"""Real-server test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay import fluent


@pytest.fixture(autouse=True)
def _fresh_fluent_state() -> Iterator[None]:
    """Every test starts and ends with a clean fluent state (pipeline closed, client closed)."""
    fluent._reset()
    yield
    fluent._reset()
