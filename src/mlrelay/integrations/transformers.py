"""Hugging Face Transformers: :class:`MLflowCallback`, a drop-in for the ``Trainer``'s own
``transformers.integrations.MLflowCallback`` that never makes training wait on the server.

Either pass it to the trainer in place of ``report_to="mlflow"``::

    from mlrelay.integrations.transformers import MLflowCallback

    args = TrainingArguments(..., report_to="none")
    trainer = Trainer(model=model, args=args, callbacks=[MLflowCallback()])

or keep ``report_to="mlflow"`` and call :func:`install` once, before the trainer is built::

    import mlrelay.integrations.transformers

    mlrelay.integrations.transformers.install()  # report_to="mlflow" now uses mlrelay's

The ``Trainer``'s callback waits for the server when it starts its run (``set_experiment``,
``start_run``) and when it ends it, and it blocks training for minutes when the server is
down; its metrics go through MLflow's async queue, one request per ``on_log``. This one
journals each call (microseconds) and mlrelay's sender delivers in the background: training
starts at once whatever the server's state, and everything logged is sent later, by this
process or by ``mlrelay sync``.

Same as the ``Trainer``'s callback: the environment variables it reads
(``MLFLOW_EXPERIMENT_NAME``, ``MLFLOW_TAGS`` (a JSON object), ``MLFLOW_NESTED_RUN``,
``MLFLOW_RUN_ID``, ``MLFLOW_FLATTEN_PARAMS``, ``MLFLOW_MAX_LOG_PARAMS``,
``HF_MLFLOW_LOG_ARTIFACTS``, ``MLFLOW_TRACKING_URI``, and ``DISABLE_MLFLOW_INTEGRATION`` for
:func:`install`), the params (the model's config and the training arguments, the latter
winning, flattened when asked; values over MLflow's 6000 characters dropped with a warning
naming the key), the metrics (the numbers of each ``on_log`` at ``state.global_step``, keys
cleaned the same way), the run's name (``args.run_name``), logging into the active run when
there is one, ending the run it started when training ends, logging from the world's
process zero only.

Differences, each deliberate:

- The run is created by the sender, not before training: until the server has it,
  ``mlrelay.active_run().info.run_id`` is mlrelay's local id.
- With ``HF_MLFLOW_LOG_ARTIFACTS``, each saved checkpoint is logged as the run's artifacts
  under ``checkpoint-<step>/`` (copied into the journal at once, uploaded in the
  background). The ``Trainer``'s callback wraps it in a pyfunc model of that name, which
  needs the server there and then (and whose ``PythonModel`` predicts nothing).
- Ending the run returns at once; delivery goes on in the background and is waited for
  (bounded by ``MLRELAY_EXIT_TIMEOUT``) when the process exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlrelay import fluent
from mlrelay._errors import MissingExtraError
from mlrelay._pipeline import runs
from mlrelay._validation import MAX_PARAM_VALUE_LENGTH

try:
    from transformers import TrainerCallback
    from transformers.utils.generic import flatten_dict
except ImportError as exc:  # pragma: no cover - exercised without transformers installed
    raise MissingExtraError(
        "mlrelay.integrations.transformers needs Hugging Face Transformers, which cannot be "
        "imported: pip install 'mlrelay[transformers]'",
        extra="transformers",
        package="transformers",
    ) from exc

__all__ = ["MLflowCallback", "install"]

logger = logging.getLogger(__name__)

_TRUE = {"1", "ON", "YES", "TRUE"}  # transformers' ENV_VARS_TRUE_VALUES
_UNSAFE_KEY = re.compile(r"[^0-9A-Za-z_\-\.\ :/]")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "FALSE").upper() in _TRUE


class MLflowCallback(TrainerCallback):
    """Log a ``Trainer``'s training to an MLflow-compatible tracking server through
    mlrelay's journal (see the module docstring for what is the same as the ``Trainer``'s
    own ``MLflowCallback`` and what differs)."""

    def __init__(self) -> None:
        self._initialized = False
        self._auto_end_run = False
        self._log_artifacts = False
        self._handle: runs.RunHandle | None = None
        self._log_step: Callable[[Mapping[str, Any], int], None] | None = None
        self._clean_keys: dict[str, str] = {}  # a logged key -> the key cleaned
        if os.environ.get("RANK", "0") == "0":
            runs.warm_up("the Trainer callback")

    def setup(self, args: Any, state: Any, model: Any) -> None:
        """Start the run (or join the active one) and log the model's config and the
        training arguments as params (see the module docstring for the environment)."""
        self._log_artifacts = _env_flag("HF_MLFLOW_LOG_ARTIFACTS")
        if state.is_world_process_zero:
            nested, run_id = _env_flag("MLFLOW_NESTED_RUN"), os.environ.get("MLFLOW_RUN_ID")
            active = runs.active_run()
            if active is None or nested or run_id:
                self._handle = runs.start(
                    run_name=args.run_name,
                    nested=nested,
                    experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME") or None,
                    ask_server=False,
                )
                self._auto_end_run = True
            else:
                self._handle = runs.current()
            self._log_step = None
            fluent.log_params(_params(args, model), run_id=self._handle.local_id)
            tags = os.environ.get("MLFLOW_TAGS")
            if tags:
                fluent.set_tags(json.loads(tags))  # (the run is the active one here)
        self._initialized = True

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Set up at the start of training."""
        if not self._initialized:
            self.setup(args, state, kwargs.get("model"))

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Journal the numbers among ``logs`` at ``state.global_step`` (other values are
        dropped with a warning, as by the ``Trainer``'s callback)."""
        logs: dict[str, Any] = kwargs.get("logs") or {}
        if not self._initialized:
            self.setup(args, state, kwargs.get("model"))
        if not state.is_world_process_zero or self._handle is None:
            return
        metrics: dict[str, float] = {}
        clean_keys = self._clean_keys
        for key, value in logs.items():
            clean = clean_keys.get(key)
            if clean is None:
                clean = clean_keys[key] = _UNSAFE_KEY.sub("_", key)
            if isinstance(value, int | float):
                metrics[clean] = value
            elif getattr(value, "numel", None) is not None and value.numel() == 1:
                metrics[clean] = value.item()
            else:
                logger.warning(
                    'Trainer is attempting to log a value of "%s" of type %s for key "%s" as '
                    "a metric. MLflow's log_metric() only accepts float and int types so we "
                    "dropped this attribute.",
                    value,
                    type(value),
                    key,
                )
        if self._log_step is None:
            self._log_step = fluent.step_logger(self._handle)
        self._log_step(metrics, state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """With ``HF_MLFLOW_LOG_ARTIFACTS``: journal the checkpoint just saved as the run's
        artifacts under ``checkpoint-<step>/`` (uploaded in the background)."""
        if self._initialized and state.is_world_process_zero and self._log_artifacts:
            name = f"checkpoint-{state.global_step}"
            path = Path(args.output_dir, name)
            if path.is_dir() and self._handle is not None:
                fluent.log_artifacts(path, name, run_id=self._handle.local_id)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """End the run this callback started (journaled; delivery goes on in the
        background)."""
        if self._initialized and state.is_world_process_zero:
            self._end()

    def _end(self) -> None:
        if self._auto_end_run and self._handle is not None and not self._handle.ended:
            runs.end_run(run=self._handle, wait=False)

    def __del__(self) -> None:
        # An interrupted training: end the run it started, as the Trainer's callback does
        # (at interpreter shutdown anything may be gone already).
        with contextlib.suppress(Exception):
            self._end()


def _params(args: Any, model: Any) -> dict[str, str]:
    """The model's config and the training arguments (these win), flattened when
    ``MLFLOW_FLATTEN_PARAMS`` asks, without values over MLflow's limit, at most
    ``MLFLOW_MAX_LOG_PARAMS`` of them."""
    combined = args.to_dict()
    config = getattr(model, "config", None)
    if config is not None:
        combined = {**config.to_dict(), **combined}
    if _env_flag("MLFLOW_FLATTEN_PARAMS"):
        combined = flatten_dict(combined)
    params: dict[str, str] = {}
    for key, value in combined.items():
        text = str(value)
        if len(text) > MAX_PARAM_VALUE_LENGTH:
            logger.warning(
                "mlrelay: the Trainer's param %r is %d characters long, over MLflow's limit "
                "of %d; it is not logged (MLFLOW_FLATTEN_PARAMS=1 splits nested values)",
                key,
                len(text),
                MAX_PARAM_VALUE_LENGTH,
            )
            continue
        params[key] = text
    limit = os.environ.get("MLFLOW_MAX_LOG_PARAMS")
    if limit and limit.isdigit():
        params = dict(list(params.items())[: int(limit)])
    return params


def install() -> None:
    """Make ``report_to="mlflow"`` use :class:`MLflowCallback` in this
    process, in place of the ``Trainer``'s own. Call it before the trainer is built."""
    from transformers.integrations import integration_utils

    integration_utils.INTEGRATION_TO_CALLBACK["mlflow"] = MLflowCallback
