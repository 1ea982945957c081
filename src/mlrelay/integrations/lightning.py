"""PyTorch Lightning: :class:`MLFlowLogger`, a drop-in for Lightning's own
``lightning.pytorch.loggers.MLFlowLogger`` that never makes training wait on the server.

::

    from lightning.pytorch import Trainer
    from mlrelay.integrations.lightning import MLFlowLogger  # the one changed line

    trainer = Trainer(logger=MLFlowLogger(experiment_name="lightning_logs"))

Lightning's logger sends every ``log_metrics`` call to the server and waits for it (or, with
``synchronous=False``, makes MLflow's async queue do the same work and waits for it at the
end), and it creates its run on the server before the first step. This one journals each
call (microseconds) and lets mlrelay's sender deliver in the background, so the training loop
runs at the speed it runs without a logger, whatever the server's latency, and training
starts at once when the server is down (everything is sent later, by this process or by
``mlrelay sync``).

Same as Lightning's logger: the constructor's arguments, the keys (hyperparameters flattened
with Lightning's own helpers, metric keys prefixed and cleaned the same way), the steps, one
timestamp per ``log_metrics`` call, the run's tags and name, checkpoints logged as artifacts
under ``<checkpoint_path_prefix>/<checkpoint name>/`` with ``metadata.yaml`` and
``aliases.txt`` (``log_model=True`` at the end, ``"all"`` as they are saved), the final status
(FINISHED, FAILED), logging from global rank 0 only.

Differences, each deliberate:

- The run is created by the sender, not before training: until the server has it,
  :attr:`run_id` (and ``version``) is mlrelay's local id, and :attr:`name` is the experiment's
  name when its id is not known yet. ``mlrelay.log_*(..., run_id=logger.run_id)`` works with
  either id at any time.
- ``finalize`` queues the run's end behind its points and returns (the journal's writer
  records it at its next tick); delivery goes on in the background and is waited for
  (bounded by ``MLRELAY_EXIT_TIMEOUT``) when the process exits.
- Param values are never cut: a value over MLflow's 6000 characters raises
  :class:`~mlrelay.ValidationError` naming the key, where Lightning's logger truncates it.
- ``tracking_uri`` uses mlrelay's configuration when not given (``MLFLOW_TRACKING_URI``,
  ``.env``, the keyring); ``save_dir`` and ``file:`` URIs are not supported (mlrelay logs to
  tracking servers; offline runs are journaled under ``MLRELAY_HOME``).
- ``artifact_location`` is not supported (the server's default is used).
- ``synchronous=True`` waits for delivery after each call; ``None``/``False`` never wait.
"""

from __future__ import annotations

import contextvars
import re
import tempfile
import warnings
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from mlrelay import fluent
from mlrelay._errors import MissingExtraError, UnsupportedFeatureError
from mlrelay._pipeline import runs

try:
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.fabric.utilities.logger import _add_prefix, _convert_params, _flatten_dict
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities.rank_zero import (  # type: ignore[attr-defined]
        rank_zero_only,
        rank_zero_warn,
    )
except ImportError as exc:  # pragma: no cover - exercised without lightning installed
    raise MissingExtraError(
        "mlrelay.integrations.lightning needs PyTorch Lightning, which cannot be imported: "
        "pip install 'mlrelay[lightning]'",
        extra="lightning",
        package="lightning",
    ) from exc

__all__ = ["MLFlowLogger"]

_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}
_UNSAFE_KEY = re.compile("[^a-zA-Z0-9_/. -]+")  # (Lightning's logger's cleaning)


class _LazyClient:
    """An :class:`mlrelay.tracking.MlflowClient` built on first use: Lightning touches
    ``logger.experiment`` during ``fit`` without calling it, and building a client (its
    credentials, its TLS context) takes a few hundred milliseconds."""

    def __init__(self, tracking_uri: str | None) -> None:
        self._tracking_uri = tracking_uri
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from mlrelay.tracking import MlflowClient

            self._client = MlflowClient(self._tracking_uri)
        return getattr(self._client, name)

    def close(self) -> None:
        """Close the client if it was built."""
        if self._client is not None:
            self._client.close()


class MLFlowLogger(Logger):
    """Log a Lightning training to an MLflow-compatible tracking server through mlrelay's
    journal (see the module docstring for what is the same as Lightning's logger and what
    differs)."""

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        experiment_name: str = "lightning_logs",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        save_dir: str | None = "./mlruns",
        log_model: Literal[True, False, "all"] = False,
        checkpoint_path_prefix: str = "",
        prefix: str = "",
        artifact_location: str | None = None,
        run_id: str | None = None,
        synchronous: bool | None = None,
    ) -> None:
        super().__init__()
        if artifact_location is not None:
            raise UnsupportedFeatureError(
                "MLFlowLogger(artifact_location=...): mlrelay creates experiments with the "
                "server's default artifact location"
            )
        if tracking_uri and tracking_uri.startswith("file:"):
            raise UnsupportedFeatureError(
                f"MLFlowLogger(tracking_uri={tracking_uri!r}): mlrelay logs to tracking "
                "servers, not to file: stores (offline runs are journaled under MLRELAY_HOME "
                "and sent with `mlrelay sync`)"
            )
        self._experiment_name = experiment_name
        self._run_name = run_name
        self._tracking_uri = tracking_uri
        self.tags = tags
        self._save_dir = save_dir
        self._log_model = log_model
        self._checkpoint_path_prefix = checkpoint_path_prefix
        self._prefix = prefix
        self._run_id = run_id
        self._synchronous = bool(synchronous)
        self._handle: runs.RunHandle | None = None
        self._log_step: Callable[[Mapping[str, Any], int], None] | None = None
        self._logged_model_time: dict[str, float] = {}
        self._clean_keys: dict[str, str] = {}  # metric key -> the key cleaned
        self._checkpoint_callback: Any = None
        self._client: Any = None  # the MlflowClient of `experiment`, closed by finalize
        if tracking_uri and fluent.get_tracking_uri() != tracking_uri:
            fluent.set_tracking_uri(tracking_uri)
        if getattr(rank_zero_only, "rank", 0) == 0:
            runs.warm_up("the Lightning logger")

    # --- the run ------------------------------------------------------------------------

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """An :class:`mlrelay.tracking.MlflowClient` for calls Lightning's logger leaves to
        MLflow's client (``self.logger.experiment.log_text(self.logger.run_id, ...)``); they
        go to the server when made. The run is started (journaled) on first use."""
        self._open()
        if self._client is None:
            self._client = _LazyClient(self._tracking_uri)
        return self._client

    def _open(self) -> runs.RunHandle:
        """The run, started on first use in a context of its own, so it never becomes the
        active run of the code around the trainer (Lightning's logger does not either)."""
        if self._handle is None:
            if self._tracking_uri and fluent.get_tracking_uri() != self._tracking_uri:
                fluent.set_tracking_uri(self._tracking_uri)
            tags = dict(self.tags or {})
            tags.pop("mlflow.runName", None)  # run_name wins, as in Lightning's logger
            self._handle = contextvars.Context().run(
                runs.start,
                self._run_id,
                run_name=self._run_name or (self.tags or {}).get("mlflow.runName"),
                tags=tags,
                experiment_name=None if self._run_id else self._experiment_name,
                ask_server=False,
            )
        return self._handle

    @property
    def run_id(self) -> str:
        """The run's id (mlrelay's local id until the server has created the run)."""
        handle = self._open()
        return (
            runs.server_id(handle.local_id) if handle.run_id == handle.local_id else handle.run_id
        )

    @property
    def experiment_id(self) -> str | None:
        """The experiment's id once known (None before the server has the run)."""
        handle = self._open()
        record = runs.session.ensure_pipeline().journal.run(handle.local_id)
        return record.experiment_id if record is not None else handle.experiment_id

    @property
    def name(self) -> str | None:
        """The experiment's id, or its name while the id is not known yet."""
        return self.experiment_id or self._experiment_name

    @property
    def version(self) -> str:
        """The run's id."""
        return self.run_id

    @property
    def save_dir(self) -> str | None:
        """None: runs live on the tracking server (Lightning then keeps checkpoints under
        the trainer's ``default_root_dir``)."""
        return None

    # --- logging ------------------------------------------------------------------------

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """Log the hyperparameters as params, flattened as Lightning's logger flattens them.

        Raises:
            ValidationError: a value over 6000 characters (named; nothing is logged).
        """
        flat = _flatten_dict(_convert_params(params))
        run = self._open().local_id  # (started here even with no params, as Lightning's)
        if not flat:  # (Lightning passes the module's hparams, often none)
            return
        fluent.log_params({k: str(v) for k, v in flat.items()}, run_id=run)
        if self._synchronous:
            self._wait()

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Journal the metrics at ``step`` with one timestamp (keys prefixed and cleaned
        as Lightning's logger does; string values are dropped with a warning)."""
        log_step = self._log_step
        if log_step is None:
            log_step = self._log_step = fluent.step_logger(self._open())
        if self._prefix:
            metrics = _add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        clean_keys = self._clean_keys
        for key, value in metrics.items():  # (every step: keys clean, no string, one loop)
            if clean_keys.get(key) != key or isinstance(value, str):
                break
        else:
            log_step(metrics, step or 0)
            if self._synchronous:
                self._wait()
            return
        points: dict[str, Any] = {}
        for key, value in metrics.items():
            if isinstance(value, str):
                warnings.warn(f"Discarding metric with string value {key}={value}.", stacklevel=2)
                continue
            clean = clean_keys.get(key)
            if clean is None:
                clean = clean_keys[key] = _UNSAFE_KEY.sub("", key)
            if clean != key:
                rank_zero_warn(
                    "MLFlow only allows '_', '/', '.' and ' ' special characters in metric name."
                    f" Replacing {key} with {clean}.",
                    category=RuntimeWarning,
                )
            points[clean] = value
        log_step(points, step or 0)
        if self._synchronous:
            self._wait()

    def _wait(self) -> None:
        """``synchronous=True``: wait until what was logged is delivered."""
        runs.deliver_now("what the Lightning logger logged")

    # --- checkpoints and the end ---------------------------------------------------------

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Log checkpoints as artifacts: now with ``log_model="all"`` (or ``True`` and
        ``save_top_k=-1``), at the end with ``log_model=True``."""
        if self._log_model == "all" or (
            self._log_model is True and checkpoint_callback.save_top_k == -1
        ):
            self._log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback

    def _log_checkpoints(self, callback: Any) -> None:
        """Each new checkpoint file with its metadata.yaml and aliases.txt (copied into the
        journal now, uploaded in the background)."""
        import yaml
        from lightning.pytorch.loggers.utilities import _scan_checkpoints  # only needed here

        run = self._open().local_id
        for saved_at, path, score, _ in _scan_checkpoints(callback, self._logged_model_time):
            metadata = {
                "score": score.item() if hasattr(score, "item") else score,
                "original_filename": Path(path).name,
                "Checkpoint": {
                    k: getattr(callback, k)
                    for k in ("monitor", "mode", "save_last", "save_top_k", "save_weights_only",
                              "_every_n_train_steps", "_every_n_val_epochs")
                    if hasattr(callback, k)
                },
            }  # fmt: skip
            aliases = ["latest", "best"] if path == callback.best_model_path else ["latest"]
            artifact_path = str(Path(self._checkpoint_path_prefix) / Path(path).stem)
            fluent.log_artifact(path, artifact_path, run_id=run)
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "metadata.yaml").write_text(yaml.dump(metadata, default_flow_style=False))
                Path(tmp, "aliases.txt").write_text(str(aliases))
                fluent.log_artifacts(tmp, artifact_path, run_id=run)
            self._logged_model_time[path] = saved_at

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Log the remaining checkpoints (``log_model=True``) and end the run: the end is
        queued behind the run's points, journaled by the writer and sent after them."""
        if self._handle is None:
            return
        if self._checkpoint_callback is not None:
            self._log_checkpoints(self._checkpoint_callback)
        runs.end_run(_STATUS.get(status, status), run=self._handle, wait=self._synchronous)
        if self._client is not None:
            self._client.close()
            self._client = None
