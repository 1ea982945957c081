"""MLflow's ``python_function`` loader for custom models logged by mlrelay.

``log_model`` writes a plain callable, or an object with ``predict(context, model_input)``
(MLflow's PythonModel convention), as ``python_model.pkl`` with this module as the
``loader_module``: ``mlflow.pyfunc.load_model`` imports it (mlrelay is listed in the model's
requirements) and calls :func:`_load_pyfunc`.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["CallableModel", "ContextModel"]


class CallableModel:
    """Wraps ``fn(model_input)`` as a pyfunc model."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """``fn(model_input)``; ``params`` are passed when ``fn`` accepts them."""
        return self.fn(model_input) if params is None else self.fn(model_input, params=params)


class ContextModel:
    """Wraps an object with ``predict(context, model_input)`` as a pyfunc model."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """``model.predict(None, model_input)`` (there is no MLflow context here)."""
        if params is None:
            return self.model.predict(None, model_input)
        return self.model.predict(None, model_input, params=params)


def _load_pyfunc(path: str) -> Any:
    """Called by ``mlflow.pyfunc.load_model`` with the model's ``python_model.pkl``."""
    with open(path, "rb") as f:
        return pickle.load(f)
