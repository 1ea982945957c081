"""Real-server test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlrelay import fluent
from tests._servers import RunningServer
from tests.conftest import ProdServer


@pytest.fixture(autouse=True)
def _fresh_fluent_state() -> Iterator[None]:
    """Every test starts and ends with a clean fluent state (pipeline closed, client closed)."""
    fluent._reset()
    yield
    fluent._reset()


@pytest.fixture(
    params=[
        pytest.param("mlflow_real", id="sqlite"),
        pytest.param("mlflow_prod", id="postgres-4-workers-s3"),
    ]
)
def tracking_server(request: pytest.FixtureRequest) -> RunningServer | ProdServer:
    """The acceptance tests' server, each in turn: the one-worker sqlite server with artifacts
    on local disk, and the production-shaped one (PostgreSQL, four workers, artifacts proxied
    to S3)."""
    server: RunningServer | ProdServer = request.getfixturevalue(request.param)
    return server
