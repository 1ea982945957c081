"""Conformance: MLflow 3 logged models (metrics linked by model id, registry tags, search).

MLflow 2.7 has no logged models: every scenario here runs on the MLflow 3 backends only.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conformance.conftest import Backend


@pytest.fixture
def v3(backend: Backend) -> Backend:
    """The backend, when it is an MLflow 3 one."""
    if backend.v2:
        pytest.skip("MLflow 2.7 has no logged models")
    return backend


def _logged_model(backend: Backend, experiment_id: str, **extra: Any) -> dict[str, Any]:
    body = {"experiment_id": experiment_id, **extra}
    model: dict[str, Any] = backend.ok("POST", "logged-models", body)["model"]
    return model


def _search(backend: Backend, experiment_id: str, **extra: Any) -> list[str]:
    body = {"experiment_ids": [experiment_id], **extra}
    found = backend.ok("POST", "logged-models/search", body)
    return [m["info"]["name"] for m in found.get("models", [])]


def test_metrics_logged_with_a_model_id_appear_on_the_model(v3: Backend) -> None:
    """A run metric logged with ``model_id`` (log-metric and log-batch) is listed in the
    logged model's ``data.metrics`` with its run, step, timestamp and dataset."""
    experiment_id = v3.experiment()
    run_id = v3.run_id(experiment_id)
    model_id = _logged_model(v3, experiment_id)["info"]["model_id"]
    point = {"run_id": run_id, "key": "acc", "value": 0.5, "timestamp": 123, "step": 1}
    linked = {"model_id": model_id, "dataset_name": "eval", "dataset_digest": "d1"}
    v3.ok("POST", "runs/log-metric", {**point, **linked})
    batch = {"key": "loss", "value": 2.0, "timestamp": 124, "step": 2, "model_id": model_id}
    v3.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": [batch]})
    v3.ok("POST", "runs/log-metric", {**point, "key": "unlinked"})
    model = v3.ok("GET", f"logged-models/{model_id}")["model"]
    metrics = sorted(model["data"]["metrics"], key=lambda m: m["key"])
    assert metrics == [
        {"key": "acc", "value": 0.5, "timestamp": 123, "step": 1, "run_id": run_id, **linked},
        {
            "key": "loss",
            "value": 2.0,
            "timestamp": 124,
            "step": 2,
            "run_id": run_id,
            "model_id": model_id,
        },
    ]


def test_registering_a_logged_model_lists_the_version_on_it(v3: Backend) -> None:
    """Each model version created with ``model_id`` is added to the logged model's
    ``mlflow.modelVersions`` tag, as JSON with integer versions."""
    experiment_id = v3.experiment()
    model = _logged_model(v3, experiment_id)["info"]
    name = f"lm-reg-{model['model_id']}"
    v3.ok("POST", "registered-models/create", {"name": name})
    body = {"name": name, "source": model["artifact_uri"], "model_id": model["model_id"]}
    for _ in range(2):
        v3.ok("POST", "model-versions/create", body)
    tags = v3.ok("GET", f"logged-models/{model['model_id']}")["model"]["info"]["tags"]
    listed = {t["key"]: t["value"] for t in tags}["mlflow.modelVersions"]
    assert listed == json.dumps([{"name": name, "version": 1}, {"name": name, "version": 2}])


def test_a_logged_model_keeps_a_source_run_id_it_cannot_find(v3: Backend) -> None:
    """``source_run_id`` is stored as given, even for a run the server does not have."""
    model = _logged_model(v3, v3.experiment(), source_run_id="123")
    assert model["info"]["source_run_id"] == "123"


def test_logged_model_search_filters_datasets_and_order(v3: Backend) -> None:
    """Search applies attribute, metric, param and tag filters, the datasets clause and
    order_by (attributes and metrics, missing values last); newest first by default."""
    experiment_id = v3.experiment()
    run_id = v3.run_id(experiment_id)
    first = _logged_model(v3, experiment_id, name="first", params=[{"key": "lr", "value": "0.1"}])
    time.sleep(0.002)  # distinct creation times, as MLflow's own test does
    second = _logged_model(v3, experiment_id, name="second", tags=[{"key": "t", "value": "x"}])
    time.sleep(0.002)
    _logged_model(v3, experiment_id, name="third")
    for model, value, dataset in ((first, 0.9, "eval"), (second, 0.4, "train")):
        v3.ok(
            "POST",
            "runs/log-metric",
            {
                "run_id": run_id,
                "key": "acc",
                "value": value,
                "timestamp": 1,
                "step": 0,
                "model_id": model["info"]["model_id"],
                "dataset_name": dataset,
                "dataset_digest": "d",
            },
        )
    assert _search(v3, experiment_id) == ["third", "second", "first"]
    assert _search(v3, experiment_id, filter="name = 'first'") == ["first"]
    assert _search(v3, experiment_id, filter="metrics.acc > 0.5") == ["first"]
    assert _search(v3, experiment_id, filter="params.lr = '0.1'") == ["first"]
    assert _search(v3, experiment_id, filter="tags.t = 'x'") == ["second"]
    on_train = [{"dataset_name": "train", "dataset_digest": "d"}]
    assert _search(v3, experiment_id, datasets=on_train) == ["second"]
    # MLflow compares a missing digest with SQL NULL: a name alone matches nothing.
    assert _search(v3, experiment_id, datasets=[{"dataset_name": "train"}]) == []
    on_eval = [{"dataset_name": "eval", "dataset_digest": "d"}]
    assert _search(v3, experiment_id, filter="metrics.acc > 0.1", datasets=on_eval) == ["first"]
    by_acc = [{"field_name": "metrics.acc", "ascending": True}]
    assert _search(v3, experiment_id, order_by=by_acc) == ["second", "first", "third"]
    oldest = [{"field_name": "creation_timestamp", "ascending": True}]
    assert _search(v3, experiment_id, order_by=oldest) == ["first", "second", "third"]


def test_a_version_of_a_logged_model_must_come_from_its_artifacts(v3: Backend) -> None:
    """With ``model_id``, the source must be the model's own (its artifact location or
    ``models:/<id>``): another model's id or a ``runs:/`` source is MLflow's 400."""
    experiment_id = v3.experiment()
    model = _logged_model(v3, experiment_id)["info"]
    other = _logged_model(v3, experiment_id)["info"]
    name = f"lm-src-{model['model_id']}"
    v3.ok("POST", "registered-models/create", {"name": name})
    for source in (model["artifact_uri"], f"models:/{model['model_id']}"):
        v3.ok(
            "POST",
            "model-versions/create",
            {"name": name, "source": source, "model_id": model["model_id"]},
        )
    for source in (other["artifact_uri"], f"models:/{other['model_id']}", "runs:/abc/model"):
        body = {"name": name, "source": source, "model_id": model["model_id"]}
        error = v3.error(400, "INVALID_PARAMETER_VALUE", "POST", "model-versions/create", body)
        assert "model_id request parameter must identify" in error["message"], error
