"""``mlrelay.tracking``: MLflow's ``mlflow.tracking`` namespace.

``MlflowClient`` (MLflow's client class, over :class:`mlrelay.Client`) and the tracking-URI
functions of the fluent API: ``set_tracking_uri``, ``get_tracking_uri``,
``is_tracking_uri_set``.

>>> from mlrelay.tracking import MlflowClient  # doctest: +SKIP
>>> client = MlflowClient("http://127.0.0.1:5000")  # doctest: +SKIP
"""

from __future__ import annotations

from mlrelay.fluent import get_tracking_uri, is_tracking_uri_set, set_tracking_uri

from .client import MlflowClient

__all__ = ["MlflowClient", "get_tracking_uri", "is_tracking_uri_set", "set_tracking_uri"]
