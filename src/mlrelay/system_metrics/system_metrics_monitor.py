"""``SystemMetricsMonitor`` as ``mlflow.system_metrics.system_metrics_monitor`` has it: a
monitor started by hand for a run given by id (``start_run(log_system_metrics=True)``
starts one itself)."""

from __future__ import annotations

from mlrelay import _system_metrics
from mlrelay._pipeline import runs

__all__ = ["SystemMetricsMonitor"]


class SystemMetricsMonitor:
    """Sample system metrics into the run ``run_id`` from :meth:`start` until :meth:`finish`
    or the end of the run, journaled like any log call (MLflow's arguments; the
    ``MLFLOW_SYSTEM_METRICS_*`` variables override them, as in MLflow).

    Args:
        run_id: the run (its server id, or the local id of a run of this process).
        sampling_interval: seconds between samples.
        samples_before_logging: samples averaged into each logged point.
        resume_logging: go on from the run's last system metric step (asked of the server
            on the monitor's thread; 0 when it does not answer).
        node_id: log under ``system/<node_id>/``.
        tracking_uri: accepted for MLflow's signature; the run's own server is used.

    Raises:
        MissingExtraError: psutil is not installed (``mlrelay[system-metrics]``).
        ValidationError: an interval or a sample count that is not positive.
    """

    def __init__(
        self,
        run_id: str,
        sampling_interval: float = 10,
        samples_before_logging: int = 1,
        resume_logging: bool = False,
        node_id: str | None = None,
        tracking_uri: str | None = None,
    ) -> None:
        del tracking_uri  # the run's own server is used
        interval, samples, node = _system_metrics.settings(
            sampling_interval, samples_before_logging, node_id
        )
        self.sampling_interval, self.samples_before_logging, self.node_id = interval, samples, node
        self._run = runs.target(run_id)
        self._monitor = runs.system_monitor(
            self._run, interval, samples, node, resumed=resume_logging
        )

    def start(self) -> None:
        """Start sampling on a daemon thread named ``SystemMetricsMonitor``."""
        self._monitor.start()

    def finish(self) -> None:
        """Stop sampling (samples not logged yet are dropped, as in MLflow)."""
        self._monitor.finish()
