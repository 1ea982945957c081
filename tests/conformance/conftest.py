"""The conformance suite's backends: every scenario runs against the mock and a real MLflow.

Scenarios talk raw HTTP (httpx), never the mlrelay SDK, so they pin down the protocol itself.
The real servers are session-wide fixtures (``mlflow_real``: sqlite, one worker, artifacts on
local disk; ``mlflow_prod``: PostgreSQL, four workers, artifacts proxied to S3), shared by all
scenarios, so each scenario works in experiments and models with unique names.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from mlrelay_mock import MockServer

from tests._servers import RunningServer
from tests._timing import deadline
from tests.conftest import ProdServer

API = "/api/2.0/mlflow/"


@dataclass
class Backend:
    """One server under test, with small helpers for the calls most scenarios need."""

    name: str
    url: str
    http: httpx.Client = field(repr=False)
    version: str = "3.17.2"
    postgres: bool = False  # the tracking store is PostgreSQL (the others: sqlite, or the mock)
    s3: bool = False  # the server proxies artifacts to an S3 bucket (the others: a local directory)

    @property
    def v2(self) -> bool:
        """An MLflow 2.x server (or the mock's 2.7 profile)."""
        return self.version.startswith("2.")

    def call(self, method: str, endpoint: str, body: Any = None, **params: Any) -> httpx.Response:
        """``method /api/2.0/mlflow/<endpoint>`` with a JSON body or query parameters."""
        return self.http.request(method, API + endpoint, json=body, params=params or None)

    def ok(self, method: str, endpoint: str, body: Any = None, **params: Any) -> Any:
        """Like :meth:`call`, but the answer must be a 200 and is returned decoded."""
        r = self.call(method, endpoint, body, **params)
        assert r.status_code == 200, f"{self.name}: {method} {endpoint} -> {r.status_code} {r.text}"
        return r.json()

    def error(
        self,
        status: int,
        code: str | None,
        method: str,
        endpoint: str,
        body: Any = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Like :meth:`call`, but the answer must be this status (and MLflow error_code)."""
        r = self.call(method, endpoint, body, **params)
        assert r.status_code == status, (
            f"{self.name}: {method} {endpoint} -> {r.status_code} {r.text}"
        )
        if code is None:
            return {}
        data: dict[str, Any] = r.json()
        assert data["error_code"] == code, f"{self.name}: {data}"
        assert isinstance(data["message"], str)
        return data

    def experiment(self, **extra: Any) -> str:
        """Create an experiment with a unique name; its id."""
        body = {"name": f"exp-{uuid.uuid4().hex}", **extra}
        return str(self.ok("POST", "experiments/create", body)["experiment_id"])

    def run(self, experiment_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """Create a run (in a new experiment unless given); its ``run`` object."""
        body = {
            "experiment_id": experiment_id or self.experiment(),
            "start_time": int(time.time() * 1000),
            **extra,
        }
        run: dict[str, Any] = self.ok("POST", "runs/create", body)["run"]
        return run

    def run_id(self, experiment_id: str | None = None, **extra: Any) -> str:
        """Create a run; its id."""
        return str(self.run(experiment_id, **extra)["info"]["run_id"])

    def history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """A metric's full history."""
        metrics: list[dict[str, Any]] = self.ok(
            "GET", "metrics/get-history", run_id=run_id, metric_key=key
        ).get("metrics", [])
        return metrics

    def get_run(self, run_id: str) -> dict[str, Any]:
        """``runs/get``."""
        run: dict[str, Any] = self.ok("GET", "runs/get", run_id=run_id)["run"]
        return run


REAL = {  # param: (fixture, version, PostgreSQL and S3)
    "real": ("mlflow_real", "3.17.2", False),
    "real-pg": ("mlflow_prod", "3.17.2", True),
    "real-2.7": ("mlflow27", "2.7.1", False),
}


@pytest.fixture(
    params=[
        "mock",
        pytest.param("real", marks=pytest.mark.real),
        pytest.param("real-pg", marks=pytest.mark.real),
        "mock-2.7",
        pytest.param("real-2.7", marks=pytest.mark.real),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each scenario against the mock and a real MLflow 3.17.2, the same on PostgreSQL with
    four workers and artifacts in S3, then against the mock's 2.7 profile and a real MLflow
    2.7.1 (DagsHub's version)."""
    if request.param in REAL:
        fixture, version, prod = REAL[request.param]
        real: RunningServer | ProdServer = request.getfixturevalue(fixture)
        with httpx.Client(base_url=real.url, timeout=deadline(60)) as client:
            yield Backend(request.param, real.url, client, version, postgres=prod, s3=prod)
        return
    version = "2.7.1" if request.param == "mock-2.7" else "3.17.2"
    with (
        MockServer(mlflow_version=version) as server,
        httpx.Client(base_url=server.url, timeout=deadline(60)) as client,
    ):
        yield Backend(request.param, server.url, client, version)
