"""The fluent API's MLflow 3 logged models: ``mlrelay.initialize_logged_model``,
``get_logged_model``, ``last_logged_model``, ``search_logged_models``,
``set_logged_model_tags``, ``delete_logged_model_tag`` and ``finalize_logged_model``, with
MLflow 3's signatures.

Each asks the tracking server when called (as ``get_run`` does), through the fluent API's
client; none is journaled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ._errors import ValidationError
from ._logged_model_api import last_logged_model_id, remember_logged_model
from ._pipeline import runs
from ._pipeline.runs import session

if TYPE_CHECKING:
    from ._protocol.logged_models import LoggedModel, LoggedModelStatus

__all__ = [
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_logged_model",
    "initialize_logged_model",
    "last_logged_model",
    "search_logged_models",
    "set_logged_model_tags",
]


def initialize_logged_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """Create a logged model with no files yet (status PENDING), as MLflow 3's
    ``initialize_logged_model``: in the active run's experiment (else the active
    experiment), its source the active run unless ``source_run_id`` is given, tagged with
    this process's context (user, source, git) under ``tags``. A flavor's
    ``log_model(..., model_id=model.model_id)`` then stores the model in it and marks it
    READY. Asks the server now (not journaled).

    Raises:
        ConfigurationError: the active run has not reached the server yet.
        ValidationError: the server is MLflow 2, which has no logged models.
    """
    from ._fluent_models import server_run_id
    from .fluent import _experiment_id

    client = session.client("initialize_logged_model")
    run = runs.active_run()
    if source_run_id is None and run is not None:
        source_run_id = server_run_id(run)
    if experiment_id is None:
        if source_run_id is not None:
            experiment_id = str(client.get_run(source_run_id).info.experiment_id)
        else:
            experiment_id = _experiment_id(client)
    model = client.create_logged_model(
        experiment_id, name, source_run_id, {**runs.context_tags(), **(tags or {})}, params,
        model_type,
    )  # fmt: skip
    remember_logged_model(model.model_id)
    return model


def get_logged_model(model_id: str) -> LoggedModel:
    """A logged model by id (``models:/<model_id>``), with its tags, params and metrics.

    Raises:
        NotFoundError: there is no such model.
    """
    return session.client("get_logged_model").get_logged_model(model_id)


def last_logged_model() -> LoggedModel | None:
    """The last model logged by this thread (``log_model`` of any flavor), fetched from the
    server; None when none was logged (also offline and on MLflow 2 servers, where
    ``log_model`` makes no logged model)."""
    model_id = last_logged_model_id()
    return get_logged_model(model_id) if model_id else None


def search_logged_models(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    datasets: list[dict[str, str]] | None = None,
    max_results: int | None = None,
    order_by: list[dict[str, Any]] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
) -> Any:
    """Logged models matching ``filter_string`` (MLflow's syntax: ``"name = 'm'"``,
    ``"metrics.acc > 0.9 AND params.C = '1'"``...), in the active experiment when no
    ``experiment_ids`` are given; all pages, at most ``max_results``.

    ``datasets`` and ``order_by`` are MLflow's lists of dicts (``{"dataset_name": ...}``,
    ``{"field_name": "creation_time", "ascending": False}``).

    Returns:
        With ``output_format="pandas"`` (the default) and pandas installed, MLflow's
        DataFrame: one row per model, a column per :class:`LoggedModel` attribute
        (``status`` a :class:`LoggedModelStatus`). Otherwise (``"list"``, or no pandas) a
        list of :class:`LoggedModel`.

    Raises:
        ValidationError: another ``output_format``.
    """
    if output_format not in ("pandas", "list"):
        raise ValidationError(
            f"output_format {output_format!r} is not 'pandas' or 'list'", field="output_format"
        )
    from .fluent import _experiment_id

    client = session.client("search_logged_models")
    ids = experiment_ids or [_experiment_id(client)]
    found = client.search_logged_models(
        ids, filter_string=filter_string, datasets=datasets, max_results=max_results,
        order_by=order_by,
    )  # fmt: skip
    if output_format == "list":
        return found
    try:
        import pandas as pd
    except ImportError:
        return found
    return pd.DataFrame([{**m.to_dictionary(), "status": m.status} for m in found])


def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    """Set tags on a logged model (values are sent as strings).

    Raises:
        NotFoundError: there is no such model.
    """
    session.client("set_logged_model_tags").set_logged_model_tags(model_id, tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    """Remove a tag from a logged model.

    Raises:
        NotFoundError: there is no such model, or it has no tag ``key``.
    """
    session.client("delete_logged_model_tag").delete_logged_model_tag(model_id, key)


def finalize_logged_model(
    model_id: str, status: Literal["READY", "FAILED"] | LoggedModelStatus
) -> LoggedModel:
    """Set a logged model's final status (``"READY"`` or ``"FAILED"``); returns the model.

    Raises:
        ValidationError: another status.
    """
    return session.client("finalize_logged_model").finalize_logged_model(model_id, status)
