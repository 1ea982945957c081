"""Features the mock leaves out answer a JSON 404 that names them."""

from __future__ import annotations

import httpx
import pytest
from mlrelay_mock import MockServer


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        ("POST", "/api/3.0/mlflow/traces", "GenAI tracing"),
        ("GET", "/ajax-api/2.0/mlflow/traces/tr-1", "GenAI tracing"),
        ("POST", "/graphql", "the GraphQL API"),
        ("POST", "/ajax-api/3.0/mlflow/datasets/create", "evaluation datasets"),
        ("GET", "/api/3.0/mlflow/scorers/list", "scorers"),
        ("POST", "/ajax-api/3.0/mlflow/prompt-optimization/jobs", "prompt optimization"),
        ("POST", "/api/2.0/mlflow/webhooks", "registry webhooks"),
    ],
)
def test_an_out_of_scope_feature_is_a_json_404_naming_it(
    mock_server: MockServer, method: str, path: str, feature: str
) -> None:
    """ENDPOINT_NOT_FOUND with MLflow's error shape, and the message says the mock does not
    support that feature (rather than a bare "no endpoint")."""
    response = httpx.request(method, mock_server.url + path, json={})
    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert f"the mlrelay mock server does not support {feature}" in body["message"]


def test_an_unknown_endpoint_is_a_plain_json_404(mock_server: MockServer) -> None:
    """A path that is no MLflow feature at all is ENDPOINT_NOT_FOUND without a feature name."""
    response = httpx.get(mock_server.url + "/api/2.0/mlflow/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "No endpoint GET /api/2.0/mlflow/no-such-thing",
    }
