"""``mlrelay.models``: MLflow's ``mlflow.models`` for classic ML, without MLflow.

- :func:`infer_signature` and :class:`ModelSignature`: a model's input, output and
  parameter schemas, inferred from data as MLflow infers them and written to MLmodel as
  MLflow writes them;
- :class:`Model`: an MLmodel file (``Model.load(path_or_uri)``), :class:`ModelInfo`: what
  ``log_model`` returns, :func:`get_model_info`;
- :func:`set_signature` and :func:`validate_schema`.

>>> from mlrelay.models import infer_signature  # doctest: +SKIP
>>> signature = infer_signature(X_train, model.predict(X_train))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from mlrelay._errors import ValidationError
from mlrelay._formats.schema import ModelSignature, Schema, enforce, infer_signature
from mlrelay._registry import ModelInfo

from .model import Model, get_model_info, set_signature

__all__ = [
    "Model",
    "ModelInfo",
    "ModelSignature",
    "get_model_info",
    "infer_signature",
    "set_signature",
    "validate_schema",
]


def validate_schema(data: Any, expected_schema: Schema) -> None:
    """Check that ``data`` fits ``expected_schema`` (a signature's ``inputs``) as a model's
    ``predict`` would receive it: required columns present, convertible types, tensors of
    the described dtype.

    Raises:
        ValidationError: the data does not fit (the message says how).
    """
    if not isinstance(expected_schema, Schema):
        raise ValidationError(
            f"expected_schema must be a Schema (a signature's inputs), got "
            f"{type(expected_schema).__name__}",
            field="expected_schema",
        )
    enforce(data, expected_schema)
