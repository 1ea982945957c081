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

# The submodules are MLflow's (``mlflow.data.pandas_dataset.PandasDataset``), reachable as
# attributes after ``import mlrelay``; none imports pandas or numpy.
from . import dataset, numpy_dataset, pandas_dataset
from .dataset import Dataset
from .numpy_dataset import NumpyDataset, from_numpy
from .pandas_dataset import PandasDataset, from_pandas

__all__ = [
    "Dataset",
    "NumpyDataset",
    "PandasDataset",
    "dataset",
    "from_numpy",
    "from_pandas",
    "numpy_dataset",
    "pandas_dataset",
]
