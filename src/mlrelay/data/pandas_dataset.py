"""``mlrelay.data.pandas_dataset``: ``PandasDataset`` and ``from_pandas``, where MLflow keeps them
(MLflow 3's examples annotate with ``mlflow.data.pandas_dataset.PandasDataset``)."""

from __future__ import annotations

from typing import Any

from pydantic import PrivateAttr

from mlrelay._errors import ValidationError
from mlrelay._formats.datasets import dataset_input

from .dataset import Dataset, dataset_config, record_fields

__all__ = ["PandasDataset", "from_pandas"]


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
        return dataset_config(self)


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
    return PandasDataset.of(record_fields(record, digest), df, targets, predictions)
