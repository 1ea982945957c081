"""System metrics, as ``mlflow.system_metrics``: switch them on for every run, and set the
sampling interval, the samples averaged into each logged point and the node id.

Each setter sets the environment variable MLflow reads (so child processes inherit it);
``None`` unsets it. ``start_run(log_system_metrics=True/False)`` overrides the switch for
one run. What is sampled, under which names, is described in ``mlrelay._system_metrics``;
sampling needs ``pip install 'mlrelay[system-metrics]'``.

>>> import mlrelay
>>> mlrelay.enable_system_metrics_logging()  # doctest: +SKIP
>>> mlrelay.set_system_metrics_sampling_interval(1)  # doctest: +SKIP
"""

from __future__ import annotations

import os

from mlrelay._system_metrics import ENABLE, INTERVAL, NODE_ID, SAMPLES, positive

__all__ = [
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "set_system_metrics_node_id",
    "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval",
]


def enable_system_metrics_logging() -> None:
    """Log system metrics in every run from now on (``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``)."""
    os.environ[ENABLE] = "true"


def disable_system_metrics_logging() -> None:
    """Stop logging system metrics in new runs unless a run asks for them."""
    os.environ[ENABLE] = "false"


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Sample every ``interval`` seconds (default 10; None: the default again).

    Raises:
        ValidationError: not a positive number of seconds.
    """
    if interval is None:
        os.environ.pop(INTERVAL, None)
        return
    positive(interval, "sampling interval", float)
    os.environ[INTERVAL] = str(interval)


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Average ``samples`` samples into each logged point (default 1; None: the default).

    Raises:
        ValidationError: not a positive integer.
    """
    if samples is None:
        os.environ.pop(SAMPLES, None)
        return
    positive(samples, "samples before logging", int)
    os.environ[SAMPLES] = str(samples)


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Log under ``system/<node_id>/...`` (one node of a multi-node job; None: no node id)."""
    if node_id is None:
        os.environ.pop(NODE_ID, None)
    else:
        os.environ[NODE_ID] = str(node_id)
