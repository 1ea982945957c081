"""System metrics (CPU, memory, disk, network, NVIDIA GPUs), sampled on a background thread
and logged into the run like any metric: journaled first, so they work offline and a sync
delivers them later.

Names, settings and cadence are MLflow's (``mlflow.system_metrics``):

- ``system/cpu_utilization_percentage``, ``system/system_memory_usage_megabytes``,
  ``system/system_memory_usage_percentage``, ``system/disk_usage_percentage``,
  ``system/disk_usage_megabytes``, ``system/disk_available_megabytes``,
  ``system/network_receive_megabytes``, ``system/network_transmit_megabytes`` (since
  the monitor started), and per NVIDIA GPU ``system/gpu_<i>_utilization_percentage``,
  ``..._memory_usage_percentage``, ``..._memory_usage_megabytes``,
  ``..._power_usage_watts``, ``..._power_usage_percentage``; with a node id, the prefix is
  ``system/<node_id>/``. Megabytes are 10^6 bytes.
- ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` (every run), ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``
  (seconds, default 10), ``MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING`` (samples averaged
  into one logged point, default 1), ``MLFLOW_SYSTEM_METRICS_NODE_ID``.
- One point per metric every interval x samples, steps 0, 1, 2, ...; a resumed run goes on
  from its last step when the server can say it (otherwise from 0).

Unlike MLflow's monitor, this one never asks the server whether the run still runs (one
request per sample there): it stops when the run ends in this process. Sampling needs
psutil (``pip install 'mlrelay[system-metrics]'``); GPUs need NVIDIA's management library
(``nvidia-ml-py``, extra ``gpu``) and are skipped without it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import MissingExtraError, ValidationError

__all__ = [
    "DEFAULT_INTERVAL",
    "Sampler",
    "SystemMetricsMonitor",
    "enabled_by_default",
    "positive",
    "settings",
]

logger = logging.getLogger("mlrelay.system_metrics")

DEFAULT_INTERVAL = 10.0
"""Seconds between samples unless set (MLflow's default)."""

ENABLE = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
INTERVAL = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
NODE_ID = "MLFLOW_SYSTEM_METRICS_NODE_ID"

_MB = 1e6


def enabled_by_default() -> bool:
    """Whether runs log system metrics unless told otherwise
    (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``)."""
    return os.environ.get(ENABLE, "").strip().lower() in ("true", "1")


def settings(
    sampling_interval: float | None = None,
    samples_before_logging: int | None = None,
    node_id: str | None = None,
) -> tuple[float, int, str | None]:
    """The interval, samples per point and node id in force: the environment's, else the
    arguments, else MLflow's defaults (10 s, 1 sample, no node id), as MLflow reads them.

    Raises:
        ValidationError: a value is not a positive number (the interval) or a positive
            integer (the samples), naming where it came from.
    """
    interval_text = os.environ.get(INTERVAL)
    samples_text = os.environ.get(SAMPLES)
    interval = positive(
        interval_text or sampling_interval or DEFAULT_INTERVAL,
        INTERVAL if interval_text else "sampling_interval",
        float,
    )
    samples = positive(
        samples_text or samples_before_logging or 1,
        SAMPLES if samples_text else "samples_before_logging",
        int,
    )
    return float(interval), int(samples), os.environ.get(NODE_ID) or node_id


def positive(value: Any, name: str, kind: Callable[[Any], float | int]) -> float | int:
    """``value`` as a positive ``kind`` (float or int).

    Raises:
        ValidationError: it is not one; the message names ``name``.
    """
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not number > 0 or (kind is int and str(value).strip() != str(number)):
        what = "a positive number of seconds" if kind is float else "a positive integer"
        raise ValidationError(f"{name} must be {what}, got {value!r}", field=name, key=None)
    return number


class Sampler:
    """Reads the machine's figures with psutil (and NVML for NVIDIA GPUs, when present).

    Raises:
        MissingExtraError: psutil is not installed.
    """

    def __init__(self) -> None:
        try:
            import psutil  # type: ignore[import-untyped]
        except ImportError as exc:
            raise MissingExtraError(
                "system metrics are read with psutil, which cannot be imported: "
                "pip install 'mlrelay[system-metrics]'",
                extra="system-metrics",
                package="psutil",
            ) from exc
        self._psutil = psutil
        net = psutil.net_io_counters()
        self._net0 = (net.bytes_recv, net.bytes_sent) if net is not None else (0, 0)
        psutil.cpu_percent()  # the first reading is since this call
        self._gpus = _nvml_handles()

    def sample(self) -> dict[str, float]:
        """One reading of every figure, keyed by MLflow's names (without the prefix)."""
        ps = self._psutil
        memory = ps.virtual_memory()
        disk = ps.disk_usage(os.sep)
        figures = {
            "cpu_utilization_percentage": float(ps.cpu_percent()),
            "system_memory_usage_megabytes": memory.used / _MB,
            "system_memory_usage_percentage": memory.used / memory.total * 100,
            "disk_usage_percentage": float(disk.percent),
            "disk_usage_megabytes": disk.used / _MB,
            "disk_available_megabytes": disk.free / _MB,
        }
        net = ps.net_io_counters()
        if net is not None:
            figures["network_receive_megabytes"] = (net.bytes_recv - self._net0[0]) / _MB
            figures["network_transmit_megabytes"] = (net.bytes_sent - self._net0[1]) / _MB
        if self._gpus:
            figures.update(_gpu_figures(*self._gpus))
        return figures


# Figures that are totals since the monitor started: the last sample stands, not the mean.
_CUMULATIVE = frozenset({"network_receive_megabytes", "network_transmit_megabytes"})


def aggregate(samples: list[dict[str, float]]) -> dict[str, float]:
    """One point per figure from several samples: the mean rounded to one decimal as MLflow
    logs it, and the last value of the cumulative network figures.

    >>> aggregate([{"cpu_utilization_percentage": 10.0}, {"cpu_utilization_percentage": 20.05}])
    {'cpu_utilization_percentage': 15.0}
    """
    keys: dict[str, list[float]] = {}
    for sample in samples:
        for key, value in sample.items():
            keys.setdefault(key, []).append(value)
    return {
        key: values[-1] if key in _CUMULATIVE else round(sum(values) / len(values), 1)
        for key, values in keys.items()
    }


def _nvml_handles() -> tuple[Any, list[Any]] | None:
    """NVML and a handle per NVIDIA GPU; None without the library or without a GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        return pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    except Exception:  # not installed, no driver, no GPU: GPU figures are skipped
        logger.debug("mlrelay: no NVIDIA GPU figures (NVML unavailable)", exc_info=True)
        return None


def _gpu_figures(nvml: Any, handles: list[Any]) -> dict[str, float]:
    """Each GPU's figures; one a GPU does not report is left out."""
    figures: dict[str, float] = {}
    for i, handle in enumerate(handles):
        gpu = f"gpu_{i}_"
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            figures[gpu + "memory_usage_megabytes"] = memory.used / _MB
            figures[gpu + "memory_usage_percentage"] = memory.used / memory.total * 100
        except Exception:
            logger.debug("mlrelay: GPU %d reports no memory figures", i, exc_info=True)
        try:
            figures[gpu + "utilization_percentage"] = float(
                nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            )
        except Exception:
            logger.debug("mlrelay: GPU %d reports no utilization", i, exc_info=True)
        try:
            milliwatts = nvml.nvmlDeviceGetPowerUsage(handle)
            figures[gpu + "power_usage_watts"] = milliwatts / 1000
            limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
            figures[gpu + "power_usage_percentage"] = milliwatts / limit * 100
        except Exception:
            logger.debug("mlrelay: GPU %d reports no power figures", i, exc_info=True)
    return figures


class SystemMetricsMonitor:
    """Samples every ``interval`` seconds on a daemon thread named ``SystemMetricsMonitor``
    and hands one aggregated point per figure every ``samples`` samples to ``log`` (with
    the prefixed key, the step and the timestamp in milliseconds).

    Args:
        log: called on the monitor's thread with ``(metrics, step, timestamp_ms)``; it must
            not block (mlrelay's journal queue does not).
        running: whether the run still runs; checked after each sample.
        first_step: the step of the first point, or a callable giving it (called on the
            monitor's thread, so a resumed run may ask the server without delaying the
            caller).
    """

    def __init__(
        self,
        log: Callable[[Mapping[str, float], int, int], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        samples: int = 1,
        node_id: str | None = None,
        running: Callable[[], bool] = lambda: True,
        first_step: int | Callable[[], int] = 0,
        sampler: Sampler | None = None,
    ) -> None:
        self.interval = interval
        self.samples = samples
        self.prefix = "system/" + (f"{node_id}/" if node_id else "")
        self.sampler = sampler or Sampler()
        self._log = log
        self._running = running
        self._first_step = first_step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.step = first_step if isinstance(first_step, int) else 0
        """The step of the next point."""
        self.cpu_seconds = 0.0
        """CPU time the monitor's thread has used (sampling and logging)."""

    def start(self) -> None:
        """Start sampling (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="SystemMetricsMonitor", daemon=True
            )
            self._thread.start()

    def finish(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait for the thread (at most ``timeout`` seconds); samples not
        yet logged are dropped, as MLflow does."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        start = time.thread_time()
        try:
            if callable(self._first_step):
                self.step = self._first_step()
            while not self._stop.is_set():
                taken: list[dict[str, float]] = []
                while len(taken) < self.samples:
                    taken.append(self.sampler.sample())
                    self.cpu_seconds = time.thread_time() - start
                    if self._stop.wait(self.interval) or not self._running():
                        return
                points = {self.prefix + k: v for k, v in aggregate(taken).items()}
                self._log(points, self.step, int(time.time() * 1000))
                self.step += 1
        except Exception:
            logger.warning("mlrelay: system metrics stopped", exc_info=True)
        finally:
            self.cpu_seconds = time.thread_time() - start
