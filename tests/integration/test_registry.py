"""The registry against the mock: a server without one gives a typed error, not a raw 404."""

from __future__ import annotations

import pytest
from mlrelay_mock import MockServer

import mlrelay


def test_a_server_without_registry_raises_registry_not_supported() -> None:
    """DagsHub answers 404 (no MLflow error code) on registry routes: RegistryNotSupportedError
    names the server; a missing model on a real registry stays a NotFoundError."""
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        with pytest.raises(mlrelay.NotFoundError):
            client.get_registered_model("absent")
        server.faults.add(
            "status", path="*/registered-models/*", status=404, body="<html>Not Found</html>"
        )
        with pytest.raises(mlrelay.RegistryNotSupportedError, match="no model registry"):
            client.create_registered_model("m")
        with pytest.raises(mlrelay.RegistryNotSupportedError, match=server.url.split("//")[1]):
            client.get_registered_model("m")
