"""Custom pyfunc models: MLflow's ``PythonModel`` convention, without MLflow.

Names here are recorded in files on disk, so they stay where they are:

- ``PythonModel`` and ``PythonModelContext`` (re-exported as ``mlrelay.pyfunc.*``): a model
  logged with ``mlrelay.pyfunc.log_model(python_model=...)`` is pickled in MLflow's own
  format (``loader_module: mlflow.pyfunc.model``), and its class refers to this module's
  ``PythonModel``; MLflow's loader calls ``load_context`` and ``predict(context, ...)`` on it
  as on its own (the model lists mlrelay in its requirements).
- ``CallableModel`` / ``ContextModel`` / :func:`_load_pyfunc`: the older
  ``mlrelay.log_model`` writes a plain callable, or an object with
  ``predict(context, model_input)``, as ``python_model.pkl`` with ``mlrelay._pyfunc`` as
  the ``loader_module``.

Reading a ``python_model.pkl`` written by MLflow itself, :func:`load_python_model` maps
MLflow's ``PythonModel`` (and the few helper classes its pickles name) onto the classes
here, so such models load without the mlflow package.
"""

from __future__ import annotations

import inspect
import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError

__all__ = [
    "CallableModel",
    "ContextModel",
    "PythonModel",
    "PythonModelContext",
    "PythonModelWrapper",
    "TypeHints",
    "load_python_model",
]


class PythonModelContext:
    """What a :class:`PythonModel` gets at load time: ``artifacts`` (name -> absolute local
    path of each artifact logged with the model) and ``model_config``."""

    def __init__(
        self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None
    ) -> None:
        # The attribute names are MLflow's, so pickled contexts read the same either way.
        self._artifacts = dict(artifacts)
        self._model_config = dict(model_config) if model_config is not None else None

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name -> absolute local path."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The configuration given at load time, if any."""
        return self._model_config


class TypeHints:
    """The input and output type hints of ``predict`` (MLflow's loader asks for them; the
    models written here declare none)."""

    def __init__(self, input_: Any = None, output: Any = None) -> None:
        self.input = input_
        self.output = output

    def __repr__(self) -> str:
        return f"<input: {self.input}, output: {self.output}>"


class PythonModel:
    """A custom model, as MLflow's ``mlflow.pyfunc.PythonModel``: subclass it, implement
    ``predict(self, context, model_input, params=None)`` and optionally ``load_context``,
    and log it with ``mlrelay.pyfunc.log_model(python_model=...)``.

    >>> class Add(PythonModel):
    ...     def predict(self, context, model_input, params=None):
    ...         return model_input + 1
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, with its artifacts; load them here."""

    def predict(self, context: PythonModelContext, model_input: Any, params: Any = None) -> Any:
        """The model's prediction for ``model_input``.

        Raises:
            NotImplementedError: always, here; subclasses implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict")

    def predict_stream(
        self, context: PythonModelContext, model_input: Any, params: Any = None
    ) -> Any:
        """Streaming predictions (not implemented unless the subclass does).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_stream")

    @property
    def predict_type_hints(self) -> TypeHints:
        """No type hints: MLflow's loader passes inputs to ``predict`` as they come."""
        return TypeHints()


def _takes_context(predict: Any) -> bool:
    """MLflow's rule: ``predict`` takes a context when it has a parameter named ``context``
    or exactly two parameters besides ``self`` and ``params``."""
    parameters = inspect.signature(predict).parameters
    named = [p for p in parameters if p not in ("self", "params")]
    return "context" in parameters or len(named) == 2


class PythonModelWrapper:
    """A loaded :class:`PythonModel` with the pyfunc ``predict(data, params=None)``."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """``python_model.predict([context,] data[, params=params])``, by its signature."""
        predict = self.python_model.predict
        kwargs = {"params": params} if "params" in inspect.signature(predict).parameters else {}
        if _takes_context(predict):
            return predict(self.context, data, **kwargs)
        return predict(data, **kwargs)


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


# MLflow's classes that its pickled PythonModels name, and what stands for them here.
_STAND_INS: dict[tuple[str, str], type] = {
    ("mlflow.pyfunc.model", "PythonModel"): PythonModel,
    ("mlflow.pyfunc", "PythonModel"): PythonModel,
    ("mlflow.pyfunc.model", "PythonModelContext"): PythonModelContext,
    ("mlflow.pyfunc", "PythonModelContext"): PythonModelContext,
    ("mlflow.models.signature", "_TypeHints"): TypeHints,
}


class _Unpickler(pickle.Unpickler):
    """Reads pickles that name MLflow's PythonModel classes, without the mlflow package."""

    def find_class(self, module: str, name: str) -> Any:
        stand_in = _STAND_INS.get((module, name))
        if stand_in is not None:
            return stand_in
        if module == "mlflow" or module.startswith("mlflow."):
            raise ValidationError(
                f"this model's pickle refers to {module}.{name}, which only the mlflow "
                "package provides (a type-hinted or MLflow-defined PythonModel); load it "
                "with mlflow.pyfunc.load_model",
                field="model_uri",
            )
        return super().find_class(module, name)


def load_python_model(file: Path) -> Any:
    """Unpickle a ``python_model.pkl`` (MLflow's or mlrelay's).

    Raises:
        ValidationError: the pickle needs the mlflow package.
    """
    return _Unpickler(io.BytesIO(file.read_bytes())).load()
