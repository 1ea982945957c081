"""``mlrelay.data.numpy_dataset``: ``NumpyDataset`` and ``from_numpy``, where MLflow keeps them."""

from __future__ import annotations

import json
from typing import Any

from pydantic import PrivateAttr

from mlrelay._errors import ValidationError
from mlrelay._formats.datasets import dataset_input, numpy_digest

from .dataset import Dataset, dataset_config, record_fields

__all__ = ["NumpyDataset", "from_numpy"]


class NumpyDataset(Dataset):
    """An array's dataset record (what ``log_input`` sends) and the arrays themselves."""

    _features: Any = PrivateAttr(default=None)
    _targets: Any = PrivateAttr(default=None)

    @classmethod
    def of(cls, fields: dict[str, Any], features: Any, targets: Any) -> NumpyDataset:
        """The dataset with these record fields, holding the arrays."""
        dataset = cls.model_validate(fields)
        dataset._features, dataset._targets = features, targets  # noqa: SLF001  (same class)
        return dataset

    @property
    def features(self) -> Any:
        """The features array."""
        return self._features

    @property
    def targets(self) -> Any:
        """The targets array, if given."""
        return self._targets

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's dataset config: name, digest, source, source type, schema and profile."""
        return dataset_config(self)


def from_numpy(
    features: Any,
    source: str | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A dataset for numpy arrays, as MLflow's ``mlflow.data.from_numpy``.

    Args:
        features: the features array.
        source: where it came from (a path or URI); default: the running code.
        targets: the targets array.
        name: the dataset's name (default ``"dataset"``).
        digest: a digest to use instead of MLflow's hash of the data.

    Raises:
        ValidationError: ``features`` or ``targets`` is not a numpy array.
    """
    for what, array in (("features", features), ("targets", targets)):
        if array is not None and not (
            type(array).__module__ == "numpy" and hasattr(array, "shape")
        ):
            raise ValidationError(
                f"from_numpy takes numpy arrays; {what} is a {type(array).__name__}", field=what
            )
    record = dataset_input(features, name=name, source=source).dataset
    fields = record_fields(record, digest)
    if targets is not None:
        fields.update(_with_targets(features, targets, record, digest))
    return NumpyDataset.of(fields, features, targets)


def _with_targets(
    features: Any, targets: Any, record: Dataset, digest: str | None
) -> dict[str, Any]:
    """The digest, schema and profile of features with targets, as MLflow computes them."""
    target_record = dataset_input(targets, source="targets").dataset

    def spec(dataset: Dataset) -> Any:
        return json.loads(dataset.schema_ or "{}")["mlflow_tensorspec"]["features"]

    schema = {"mlflow_tensorspec": {"features": spec(record), "targets": spec(target_record)}}
    profile = {
        **json.loads(record.profile or "{}"),
        "targets_shape": list(targets.shape),
        "targets_size": int(targets.size),
        "targets_nbytes": int(targets.nbytes),
    }
    return {
        "digest": digest if digest is not None else numpy_digest(features, targets),
        "schema": json.dumps(schema),
        "profile": json.dumps(profile),
    }
