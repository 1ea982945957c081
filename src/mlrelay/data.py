"""``mlrelay.data``: MLflow's ``mlflow.data.from_pandas`` and ``from_numpy``.

Each returns a dataset that ``mlrelay.log_input(dataset, context="training")`` records as
MLflow does: the same name, digest, source, schema and profile that MLflow's
``mlflow.data`` computes for the same data, so MLflow's UI shows it the same way. The
dataset is a :class:`mlrelay.entities.Dataset` (its record) that also keeps the data:
``.df``, ``.targets`` and ``.predictions`` for pandas, ``.features`` and ``.targets`` for
numpy.

Differences from MLflow: ``source`` is a string (a path or URI; default: the running code,
as in MLflow), not a ``DatasetSource`` object, and ``.source`` is the source's JSON text;
``from_numpy`` takes arrays, not dicts of arrays.

>>> ds = mlrelay.data.from_pandas(df, source="data/wine.csv", targets="quality")  # doctest: +SKIP
>>> mlrelay.log_input(ds, context="training")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import PrivateAttr

from ._errors import ValidationError
from ._formats.datasets import dataset_input, numpy_digest
from ._protocol.entities import Dataset

__all__ = ["Dataset", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]


class PandasDataset(Dataset):
    """A DataFrame's dataset record (what ``log_input`` sends) and the DataFrame itself."""

    _df: Any = PrivateAttr(default=None)
    _targets: str | None = PrivateAttr(default=None)
    _predictions: str | None = PrivateAttr(default=None)

    @classmethod
    def of(
        cls, fields: dict[str, Any], df: Any, targets: str | None, predictions: str | None
    ) -> PandasDataset:
        """The dataset with these record fields, holding ``df``."""
        dataset = cls.model_validate(fields)
        dataset._df, dataset._targets = df, targets  # noqa: SLF001  (same class)
        dataset._predictions = predictions  # noqa: SLF001  (same class)
        return dataset

    @property
    def df(self) -> Any:
        """The DataFrame."""
        return self._df

    @property
    def targets(self) -> str | None:
        """The target column, if one was named."""
        return self._targets

    @property
    def predictions(self) -> str | None:
        """The predictions column, if one was named."""
        return self._predictions

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's dataset config: name, digest, source, source type, schema and profile."""
        return _config(self)


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
        return _config(self)


def _config(dataset: Dataset) -> dict[str, str | None]:
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source": dataset.source,
        "source_type": dataset.source_type,
        "schema": dataset.schema_,
        "profile": dataset.profile,
    }


def from_pandas(
    df: Any,
    source: str | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A dataset for a pandas DataFrame, as MLflow's ``mlflow.data.from_pandas``.

    Args:
        df: the DataFrame.
        source: where it came from (a path or URI); default: the running code.
        targets: the target column.
        name: the dataset's name (default ``"dataset"``).
        digest: a digest to use instead of MLflow's hash of the data.
        predictions: the predictions column.

    Raises:
        ValidationError: ``df`` is not a DataFrame, or ``targets`` / ``predictions`` is not
            one of its columns.
    """
    if not (type(df).__module__.startswith("pandas") and hasattr(df, "columns")):
        raise ValidationError(
            f"from_pandas takes a pandas DataFrame, got {type(df).__name__}", field="df"
        )
    if predictions is not None and predictions not in df.columns:
        raise ValidationError(
            f"predictions {predictions!r} is not a column of the DataFrame", field="predictions"
        )
    record = dataset_input(df, name=name, source=source, targets=targets).dataset
    return PandasDataset.of(_fields(record, digest), df, targets, predictions)


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
    fields = _fields(record, digest)
    if targets is not None:
        fields.update(_with_targets(features, targets, record, digest))
    return NumpyDataset.of(fields, features, targets)


def _fields(record: Dataset, digest: str | None) -> dict[str, Any]:
    fields = record.model_dump(by_alias=True)
    if digest is not None:
        fields["digest"] = digest
    return fields


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
