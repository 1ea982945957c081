"""Poison values against a real MLflow 3 server: refused at the call site, or set aside by the
journal writer, and never in the way of what is logged next (issue 13, item 1)."""

from __future__ import annotations

import logging
import os

import pytest

import mlrelay
import mlrelay.fluent as ml
from mlrelay._pipeline import runs
from mlrelay._pipeline.runs import session
from mlrelay._protocol.batches import KIND_METRIC, KIND_PARAM
from tests._servers import RunningServer

pytestmark = pytest.mark.real

SURROGATE = os.fsdecode(b"/data/train_\xff.csv")


@pytest.fixture
def online(mlflow_real: RunningServer, monkeypatch: pytest.MonkeyPatch) -> mlrelay.Client:
    """The fluent API pointed at the real server; a Client to read back what landed."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    ml.set_experiment("write-path")
    return mlrelay.Client(tracking_uri=mlflow_real.url)


def test_poison_values_at_the_call_site_then_300_points_land(online: mlrelay.Client) -> None:
    """step=2**64 and lone surrogates raise ValidationError; the 300 points after them land."""
    with ml.start_run() as run:
        with pytest.raises(mlrelay.ValidationError, match="step"):
            ml.log_metric("x", 1.0, step=2**64)
        with pytest.raises(mlrelay.ValidationError, match="data_path"):
            ml.log_param("data_path", SURROGATE)
        with pytest.raises(mlrelay.ValidationError, match="data_path"):
            ml.set_tag("data_path", SURROGATE)
        for i in range(300):
            ml.log_metric("loss", i / 300, step=i)
        assert ml.flush(timeout=60)
    with online:
        history = online.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(300))
        assert online.get_run(run.info.run_id).info.status == "FINISHED"


def test_entries_the_journal_cannot_store_are_set_aside_and_the_rest_land(
    online: mlrelay.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Unstorable entries that get past validation are set aside with one warning; the
    300 points queued after them land and flush() returns True."""
    with ml.start_run() as run, caplog.at_level(logging.WARNING, logger="mlrelay.pipeline"):
        local_id = runs.current().local_id
        # What a caller that skips validation would queue: the writer is the last line.
        session.log((local_id, KIND_METRIC, "x", 1.0, 0, 2**64))
        session.log((local_id, KIND_PARAM, "data_path", SURROGATE, None, None))
        for i in range(300):
            ml.log_metric("loss", i / 300, step=i)
        assert ml.flush(timeout=60)
    pipeline = session.pipeline
    assert pipeline is not None
    assert pipeline.set_aside == 2
    assert any("set aside" in r.getMessage() for r in caplog.records)
    with online:
        history = online.get_metric_history(run.info.run_id, "loss")
        assert sorted(m.step for m in history) == list(range(300))
        assert "data_path" not in online.get_run(run.info.run_id).data.params
    reasons = [reason for *_, reason in pipeline.journal.set_aside_entries(local_id)]
    assert len(reasons) == 2
    assert "OverflowError" in reasons[0]
