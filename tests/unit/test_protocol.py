"""Wire models: MLflow's NaN/Inf encoding, int64 tolerance, strict requests, tolerant responses."""

from __future__ import annotations

import json
import math

import pydantic
import pytest

from mlrelay import Metric, Run
from mlrelay._protocol import messages as m


def test_non_finite_values_are_sent_as_mlflow_strings() -> None:
    """NaN and ±Inf serialise as "NaN"/"Infinity"/"-Infinity", never as bare tokens."""
    batch = m.LogBatch(
        run_id="r",
        metrics=[
            Metric(key="a", value=v, timestamp=1, step=0) for v in (math.nan, math.inf, -math.inf)
        ],
    )
    raw = batch.model_dump_json(exclude_none=True)
    assert [x["value"] for x in json.loads(raw)["metrics"]] == ["NaN", "Infinity", "-Infinity"]
    single = m.LogMetric(run_id="r", key="a", value=math.nan, timestamp=1)
    assert json.loads(single.model_dump_json())["value"] == "NaN"


def test_responses_read_nan_strings_and_numeric_string_int64() -> None:
    """ "NaN" comes back as float nan; int64 fields accept numeric strings."""
    run = Run.model_validate(
        {
            "info": {"run_id": "r", "experiment_id": "1", "start_time": "1700000000000"},
            "data": {"metrics": [{"key": "a", "value": "NaN", "timestamp": "5", "step": "-2"}]},
        }
    )
    point = run.data.metric_list[0]
    assert math.isnan(run.data.metrics["a"])
    assert math.isnan(point.value)
    assert point.timestamp == 5
    assert point.step == -2
    assert run.info.start_time == 1_700_000_000_000


def test_responses_keep_unknown_fields() -> None:
    """Fields from newer servers are tolerated and kept."""
    run = Run.model_validate({"info": {"run_id": "r", "experiment_id": "1", "new_field": 3}})
    assert run.info.model_extra == {"new_field": 3}


def test_requests_reject_unknown_fields() -> None:
    """A misspelt request field fails locally instead of being silently ignored by MLflow."""
    with pytest.raises(pydantic.ValidationError):
        m.GetRun(run_id="r", run_uid="typo")  # type: ignore[call-arg]


def test_experiment_id_is_sent_as_a_string() -> None:
    """MLflow rejects a JSON int experiment_id; the request model makes it a string."""
    body = json.loads(m.CreateRun(experiment_id="4", start_time=1).model_dump_json())
    assert body["experiment_id"] == "4"
