"""System metrics against a real ``mlflow server``: MLflow's names and steps, the settings
MLflow reads, the monitor's thread, offline runs synced later, and the errors."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import mlrelay
from mlrelay import cli
from mlrelay._pipeline import runs
from mlrelay.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from tests._servers import RunningServer
from tests._timing import deadline

pytest.importorskip("psutil")

NAMES = [
    "cpu_utilization_percentage",
    "system_memory_usage_megabytes",
    "system_memory_usage_percentage",
    "disk_usage_percentage",
    "disk_usage_megabytes",
    "disk_available_megabytes",
    "network_receive_megabytes",
    "network_transmit_megabytes",
]


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    end = time.monotonic() + deadline(seconds)
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def server_client(mlflow_real: RunningServer) -> Iterator[mlrelay.MlflowClient]:
    """MLflow's client class on the real server (closed after the test)."""
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        yield client


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]


def test_a_run_with_system_metrics_lands_mlflows_names_at_steps_0_1_2(
    mlflow_real: RunningServer, server_client: mlrelay.MlflowClient
) -> None:
    """start_run(log_system_metrics=True) samples on a thread named as MLflow names it; each
    interval logs one point per figure under ``system/``, steps 0, 1, 2, ...; the thread
    ends with the run."""
    mlrelay.set_tracking_uri(mlflow_real.url)
    mlrelay.set_system_metrics_sampling_interval(0.05)
    try:
        with mlrelay.start_run(log_system_metrics=True) as run:
            handle = runs.current()
            assert handle.monitor is not None
            assert _monitor_threads()
            _wait_until(lambda: handle.monitor is not None and handle.monitor.step >= 3, "3 points")
        assert not _monitor_threads()
    finally:
        mlrelay.set_system_metrics_sampling_interval(None)
    client = server_client
    metrics = client.get_run(run.info.run_id).data.metrics
    assert {f"system/{name}" for name in NAMES} <= set(metrics)
    history = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    steps = [m.step for m in history]
    assert steps == list(range(len(steps)))
    assert len(steps) >= 3
    assert metrics["system/system_memory_usage_megabytes"] > 0
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100 * (1 + len(NAMES))


def test_the_environment_switches_them_on_with_a_node_id_and_averages_samples(
    mlflow_real: RunningServer,
    server_client: mlrelay.MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING, MLFLOW_SYSTEM_METRICS_NODE_ID and the samples
    per point are read as MLflow reads them; log_system_metrics=False still opts a run out."""
    mlrelay.set_tracking_uri(mlflow_real.url)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.02")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "3")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_NODE_ID", "node_1")
    with mlrelay.start_run(log_system_metrics=False):
        assert runs.current().monitor is None
    with mlrelay.start_run() as run:
        monitor = runs.current().monitor
        assert monitor is not None
        assert monitor.samples == 3
        _wait_until(lambda: monitor.step >= 2, "2 points")
    metrics = server_client.get_run(run.info.run_id).data.metrics
    assert "system/node_1/disk_usage_percentage" in metrics
    assert not any(k.startswith("system/cpu") for k in metrics)


def test_mlflows_manual_monitor_logs_into_a_run_and_stops_when_it_ends(
    mlflow_real: RunningServer, server_client: mlrelay.MlflowClient
) -> None:
    """SystemMetricsMonitor(run_id, ...) started by hand, as in MLflow's own test: it logs
    until the run ends, then its thread is gone."""
    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run(log_system_metrics=False) as run:
        monitor = SystemMetricsMonitor(
            run.info.run_id, sampling_interval=0.02, samples_before_logging=2
        )
        monitor.start()
        assert _monitor_threads()
        _wait_until(lambda: monitor._monitor.step >= 2, "2 points")
    _wait_until(lambda: not _monitor_threads(), "the thread to end")
    history = server_client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert history[-1].step > 0


def test_offline_system_metrics_are_journaled_and_synced_later(
    mlflow_real: RunningServer,
    server_client: mlrelay.MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline, the points go to the journal like any log call; ``mlrelay sync`` lands them."""
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.02")
    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run(log_system_metrics=True) as run:
        monitor = runs.current().monitor
        assert monitor is not None
        _wait_until(lambda: monitor.step >= 2, "2 points")
    logged = monitor.step
    runs.session.reset()
    out = io.StringIO()
    assert cli.main(["sync", "--tracking-uri", mlflow_real.url], out=out) == 0, out.getvalue()
    client = server_client
    landed = client.search_runs(
        ["0"],
        f"tags.`mlflow.mlrelay.clientKey` = '{run.info.run_id}'",  # the local id
    )
    assert len(landed) == 1
    assert landed[0].info.status == "FINISHED"
    history = client.get_metric_history(landed[0].info.run_id, "system/disk_usage_percentage")
    assert [m.step for m in history] == list(range(logged))


def test_without_psutil_asking_raises_and_the_environment_only_warns(
    mlflow_real: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """log_system_metrics=True without psutil is a MissingExtraError naming the extra; the
    environment switch warns and the run goes on without them."""
    mlrelay.set_tracking_uri(mlflow_real.url)
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(mlrelay.MissingExtraError, match=r"mlrelay\[system-metrics\]"):
        mlrelay.start_run(log_system_metrics=True)
    assert mlrelay.active_run() is None  # refused before the run started
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    with pytest.warns(RuntimeWarning, match="psutil"), mlrelay.start_run():
        assert runs.current().monitor is None


@pytest.mark.parametrize(
    ("setter", "value", "name"),
    [
        (mlrelay.set_system_metrics_sampling_interval, 0, "sampling interval"),
        (mlrelay.set_system_metrics_sampling_interval, "soon", "sampling interval"),
        (mlrelay.set_system_metrics_samples_before_logging, 0, "samples before logging"),
        (mlrelay.set_system_metrics_samples_before_logging, 1.5, "samples before logging"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    setter: Callable[[object], None], value: object, name: str
) -> None:
    """A non-positive interval or sample count is a ValidationError naming the setting."""
    with pytest.raises(mlrelay.ValidationError, match=name):
        setter(value)


def test_a_bad_environment_value_is_refused_at_start_run_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL is named when a run would sample."""
    monkeypatch.setenv("MLRELAY_MODE", "offline")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "-1")
    with pytest.raises(mlrelay.ValidationError, match="MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
        mlrelay.start_run(log_system_metrics=True)
    assert mlrelay.active_run() is None
