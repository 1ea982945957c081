"""Server capabilities are detected once per server: real MLflow 3.17.2 and 2.7.1, both mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlrelay_mock import MockServer

import mlrelay
from mlrelay import _capabilities
from mlrelay._capabilities import Capabilities

pytestmark = pytest.mark.real

MLFLOW3 = Capabilities("3.17.2", True, True, False, True)
MLFLOW27 = Capabilities("2.7.1", False, False, False, True)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each test probes for itself."""
    _capabilities.forget()
    yield
    _capabilities.forget()


@pytest.mark.parametrize(
    ("server", "expected"),
    [("mlflow_real", MLFLOW3), ("mlflow27", MLFLOW27), ("mock", MLFLOW3), ("mock-2.7", MLFLOW27)],
)
def test_detected_capabilities(
    server: str, expected: Capabilities, request: pytest.FixtureRequest
) -> None:
    """Version, server-info, logged models, multipart and registry as each server has them;
    the mock's profiles report what the real versions do."""
    if server.startswith("mock"):
        version = "2.7.1" if server == "mock-2.7" else "3.17.2"
        with (
            MockServer(mlflow_version=version) as mock,
            mlrelay.Client(tracking_uri=mock.url) as client,
        ):
            assert client.capabilities() == expected
        return
    url = request.getfixturevalue(server).url
    with mlrelay.Client(tracking_uri=url) as client:
        assert client.capabilities() == expected
        assert client.capabilities().major == int(expected.version.split(".")[0])  # type: ignore[union-attr]


def test_probed_once_per_server_and_process() -> None:
    """A second client of the same server reuses what the first detected: no new requests."""
    with MockServer() as mock:
        with mlrelay.Client(tracking_uri=mock.url) as first:
            first.capabilities()
        seen = len(mock.requests)
        with mlrelay.Client(tracking_uri=mock.url) as second:
            assert second.capabilities() == MLFLOW3
        assert len(mock.requests) == seen


def test_register_model_fails_clearly_without_a_registry() -> None:
    """Without a registry (DagsHub), register_model raises RegistryNotSupportedError before
    sending anything to the registry."""
    with MockServer() as mock, mlrelay.Client(tracking_uri=mock.url) as client:
        mock.faults.add("status", path="*/registered-models/*", status=404, body="<html/>")
        with pytest.raises(mlrelay.RegistryNotSupportedError, match="no model registry"):
            client.register_model("runs:/abc/model", "m")
        assert not any(r.path.endswith("model-versions/create") for r in mock.requests)
