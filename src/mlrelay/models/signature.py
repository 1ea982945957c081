"""``mlrelay.models.signature``: MLflow's ``mlflow.models.signature`` names.

>>> from mlrelay.models.signature import ModelSignature, infer_signature
"""

from __future__ import annotations

from mlrelay._formats.schema import ModelSignature, infer_signature

__all__ = ["ModelSignature", "infer_signature"]
