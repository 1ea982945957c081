"""``mlrelay.data.dataset``: the dataset record (MLflow's ``mlflow.data.dataset.Dataset``) and
what ``pandas_dataset`` and ``numpy_dataset`` share."""

from __future__ import annotations

from typing import Any

from mlrelay._protocol.entities import Dataset

__all__ = ["Dataset", "dataset_config", "record_fields"]


def dataset_config(dataset: Dataset) -> dict[str, str | None]:
    """MLflow's dataset config (``Dataset.to_dict``): name, digest, source, schema, ..."""
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source": dataset.source,
        "source_type": dataset.source_type,
        "schema": dataset.schema_,
        "profile": dataset.profile,
    }


def record_fields(record: Dataset, digest: str | None) -> dict[str, Any]:
    """A dataset record's fields, with ``digest`` in place of its own when given."""
    fields = record.model_dump(by_alias=True)
    if digest is not None:
        fields["digest"] = digest
    return fields
