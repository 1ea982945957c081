"""MLflow features the mock deliberately does not serve, named in its 404 answers.

The mock covers tracking (experiments, runs, metrics, params, tags, inputs and outputs,
search), artifacts, the model registry and MLflow 3 logged models. A request for one of the
features below gets MLflow's ``ENDPOINT_NOT_FOUND`` error code with a message that says which
feature is out of scope, instead of a bare "no endpoint".
"""

from __future__ import annotations

import re

__all__ = ["UNSUPPORTED", "unsupported_feature"]

UNSUPPORTED: dict[str, str] = {
    "traces": "GenAI tracing (traces, spans, assessments)",
    "unified-traces": "GenAI tracing (traces, spans, assessments)",
    "get-online-trace-details": "GenAI tracing (traces, spans, assessments)",
    "datasets": "evaluation datasets",
    "scorer": "scorers and online scoring",
    "scorers": "scorers and online scoring",
    "label-schemas": "labeling sessions and label schemas",
    "review-queues": "review queues",
    "issues": "GenAI issue tracking",
    "prompt-optimization": "prompt optimization and the prompt lab",
    "genai": "GenAI evaluation",
    "gateway": "the AI gateway (endpoints, secrets, providers)",
    "jobs": "server-side jobs",
    "webhooks": "registry webhooks",
    "workspaces": "workspaces",
    "demo": "the demo data generator",
}
"""The first path segment after ``/api/<version>/mlflow/`` -> the feature it belongs to."""

_API_PATH = re.compile(r"^/+(?:ajax-)?api/[23]\.0/mlflow/([^/]+)")
_GRAPHQL = re.compile(r"^/+(?:ajax-api/)?graphql/?$")


def unsupported_feature(path: str) -> str | None:
    """The out-of-scope feature a request path belongs to, or ``None``."""
    if _GRAPHQL.match(path):
        return "the GraphQL API"
    found = _API_PATH.match(path)
    return UNSUPPORTED.get(found.group(1)) if found else None
