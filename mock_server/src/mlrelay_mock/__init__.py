"""An MLflow-compatible tracking server for tests, with fault injection.

It speaks MLflow's REST protocol (tracking, artifacts proxy, model registry, MLflow 3 logged
models) from in-memory state or a data directory, and never imports ``mlrelay``: its truth is
the protocol notes and a conformance suite that also runs against a real ``mlflow server``.

Public API::

    from mlrelay_mock import create_app, MockServer, AuthConfig

    app = create_app(prefix="", auth=None, data_dir=None, mlflow_version="3.17.2")
    with MockServer() as server:   # uvicorn in a background thread, free loopback port
        server.url                 # the tracking URI
        server.faults.add("status", path="*/log-batch", status=503, times=3)
        server.faults.outage(seconds=10)
        server.requests            # the request journal
"""

from mlrelay_mock._app import MockApp, create_app
from mlrelay_mock._auth import AuthConfig
from mlrelay_mock._faults import FaultController, FaultRule
from mlrelay_mock._journal import Journal, RecordedRequest
from mlrelay_mock._server import MockServer

__all__ = [
    "AuthConfig",
    "FaultController",
    "FaultRule",
    "Journal",
    "MockApp",
    "MockServer",
    "RecordedRequest",
    "create_app",
]
