"""``mlrelay.keras``: MLflow's ``mlflow.keras.MlflowCallback`` for Keras 3, without waiting
on the server.

::

    import mlrelay as mlflow  # the one changed line

    with mlflow.start_run():
        model.fit(x, y, epochs=5, callbacks=[mlflow.keras.MlflowCallback()])

Same as MLflow's callback: the constructor (``log_every_epoch``, ``log_every_n_steps``,
``model_id``), the optimizer's configuration as ``optimizer_<name>`` params and the model's
summary as ``model_summary.txt`` when training begins, the metrics of each epoch at the
epoch's number (or every ``log_every_n_steps`` batches at the optimizer's iteration), the
evaluation's metrics as ``validation_<name>``, logging into the active run (one is started
when none is, and left active, as MLflow's log calls do).

Each call is journaled (microseconds) and sent by mlrelay's sender in the background, where
MLflow's callback queues a request per call; a run started here never waits for the server
(it is created by the sender), so training starts at once when the server is down.

One addition: ``log_model=True`` saves the trained model (``model.save``, Keras' own
``.keras`` format) when training ends and logs it as ``model/model.keras``; load it with
``keras.saving.load_model``. MLflow's ``keras`` model flavor (``mlflow.keras.log_model``)
is not implemented.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlrelay import fluent
from mlrelay._errors import MissingExtraError, UnsupportedFeatureError, ValidationError
from mlrelay._pipeline import runs

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised without keras installed
    raise MissingExtraError(
        "mlrelay.keras needs Keras 3, which cannot be imported: pip install 'mlrelay[keras]' "
        "(and a backend: torch, jax or tensorflow, chosen with KERAS_BACKEND)",
        extra="keras",
        package="keras",
    ) from exc

__all__ = ["MlflowCallback"]


class MlflowCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Log a Keras training's params, metrics and (optionally) model to the active run
    through mlrelay's journal (see the module docstring).

    Args:
        log_every_epoch: log the metrics at the end of each epoch, at the epoch's number.
        log_every_n_steps: instead, log the metrics every n batches, at the optimizer's
            iteration (``log_every_epoch`` must then be False).
        model_id: the logged model the metrics are linked to, as in MLflow.
        log_model: save the model when training ends and log it as ``model/model.keras``.

    Raises:
        ValidationError: both or neither of ``log_every_epoch`` and ``log_every_n_steps``.
    """

    def __init__(
        self,
        log_every_epoch: bool = True,
        log_every_n_steps: int | None = None,
        model_id: str | None = None,
        *,
        log_model: bool = False,
    ) -> None:
        super().__init__()
        field = "log_every_n_steps"
        if log_every_epoch and log_every_n_steps is not None:
            raise ValidationError(
                "MlflowCallback: log_every_n_steps must be None when log_every_epoch=True "
                f"(got log_every_n_steps={log_every_n_steps})",
                field=field,
            )
        if not log_every_epoch and log_every_n_steps is None:
            raise ValidationError(
                "MlflowCallback: give log_every_n_steps when log_every_epoch=False", field=field
            )
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise ValidationError(
                f"MlflowCallback: log_every_n_steps must be at least 1 (got {log_every_n_steps})",
                field=field,
                limit=1,
            )
        self.log_every_epoch = log_every_epoch
        self.log_every_n_steps = log_every_n_steps
        self.model_id = model_id
        self.log_model = log_model
        self._run: str | None = None
        self._log_step: Callable[[Mapping[str, Any], int], None] | None = None
        # The model, read once per fit: Keras' ``Callback.model`` imports and runs an
        # isinstance check on every access (a third of a step's logging on torch). None
        # on JAX, where that access is what syncs the model's state, iterations included.
        self._trained: Any = None
        runs.warm_up("the Keras callback")

    def _local_id(self) -> str:
        """The active run's local id; a run is started (without asking the server) when
        none is active, and left active."""
        if self._run is None:
            self._run = runs.current(ask_server=False).local_id
        return self._run

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Log the optimizer's configuration and the model's summary."""
        self._run, self._log_step = None, None
        self._trained = None if keras.backend.backend() == "jax" else self.model
        run = self._local_id()
        config = self.model.optimizer.get_config()
        fluent.log_params({f"optimizer_{k}": v for k, v in config.items()}, run_id=run)
        lines: list[str] = []
        self.model.summary(print_fn=lambda line, *_, **__: lines.append(line))
        fluent.log_text("\n".join(lines), "model_summary.txt", run_id=run)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Log the epoch's metrics at step ``epoch``."""
        if self.log_every_epoch and logs is not None:
            fluent.log_metrics(logs, step=epoch, run_id=self._local_id(), model_id=self.model_id)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Every ``log_every_n_steps`` iterations: log the running metrics at the
        optimizer's iteration."""
        if self.log_every_n_steps is None or logs is None:
            return
        model = self._trained if self._trained is not None else self.model
        iteration = _iteration(model.optimizer.iterations)
        if iteration % self.log_every_n_steps == 0:
            if self.model_id is not None:
                fluent.log_metrics(
                    logs, step=iteration, run_id=self._local_id(), model_id=self.model_id
                )
                return
            if self._log_step is None:
                self._log_step = fluent.step_logger(runs.target(self._local_id()))
            self._log_step(logs, iteration)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Log the evaluation's metrics as ``validation_<name>`` (at step 0, as MLflow)."""
        if logs is not None:
            metrics = {f"validation_{k}": v for k, v in logs.items()}
            fluent.log_metrics(metrics, run_id=self._local_id(), model_id=self.model_id)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """With ``log_model``: save the model and log it as ``model/model.keras`` (copied
        into the journal now, uploaded in the background)."""
        if self.log_model:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp, "model.keras")
                self.model.save(path)
                fluent.log_artifact(path, "model", run_id=self._local_id())


def __getattr__(name: str) -> Any:
    if name in {"log_model", "save_model", "load_model", "autolog"}:
        raise UnsupportedFeatureError(
            f"mlrelay does not support mlflow.keras.{name} (MLflow's keras model flavor) "
            "yet; log the model with MlflowCallback(log_model=True), or save it with "
            "model.save() and log the file with mlrelay.log_artifact"
        )
    raise AttributeError(f"module 'mlrelay.keras' has no attribute {name!r}")


def _iteration(variable: Any) -> int:
    """The value of the optimizer's iteration counter: ``.item()`` of the backend's tensor
    under the variable when it has one (torch, JAX, NumPy: under a microsecond), else
    ``int()`` of the variable, which goes through its autocast check (about 2 us, several
    times that in a training step's cold caches). Not ``.numpy()`` (MLflow's), which builds
    an array (20 us a step on torch)."""
    item = getattr(getattr(variable, "_value", None), "item", None)
    return int(item()) if item is not None else int(variable)
