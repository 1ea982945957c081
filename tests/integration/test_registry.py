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


def test_log_model_with_registration_fails_before_uploading_without_a_registry() -> None:
    """log_model(registered_model_name=...) on a server without a registry raises
    RegistryNotSupportedError before any model file is uploaded."""
    from mlrelay import _capabilities

    _capabilities.forget()
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        server.faults.add("status", path="*/registered-models/*", status=404, body="<html/>")
        run_id = client.create_run("0").info.run_id
        with pytest.raises(mlrelay.RegistryNotSupportedError, match="no model registry"):
            client.log_model(run_id, len, "model", registered_model_name="m")
        assert not [r for r in server.requests if r.method == "PUT"]
    _capabilities.forget()
