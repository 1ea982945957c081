"""Datasets as MLflow records them: name, digest, source, schema and profile.

``log_input`` takes a pandas DataFrame, a numpy array, a file path or URI, or an
:class:`mlrelay.Dataset`; this module turns the first three into MLflow's dataset record
(the same JSON shapes MLflow's own ``mlflow.data`` writes, so the UI shows them). pandas and
numpy are imported only when such an object is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ._errors import ValidationError
from ._protocol.entities import Dataset, DatasetInput, InputTag

__all__ = ["dataset_input"]

_ROWS_HASHED = 10_000  # as MLflow: the digest covers the first rows and the shape


def _digest(*parts: bytes) -> str:
    h = hashlib.md5(usedforsecurity=False)
    for part in parts:
        h.update(part)
    return h.hexdigest()[:8]


def _code_source() -> str:
    import sys

    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "<console>"
    return json.dumps({"tags": {"mlflow.source.name": script}})


def _from_pandas(df: Any, name: str | None, source: str | None, targets: str | None) -> Dataset:
    import pandas as pd

    from ._models import _dtype_name

    head = df.head(_ROWS_HASHED)
    digest = _digest(
        pd.util.hash_pandas_object(head, index=False).values.tobytes(), str(df.shape).encode()
    )
    colspec = [
        {"type": _dtype_name(df[c].dtype), "name": str(c), "required": True} for c in df.columns
    ]
    if targets is not None and targets not in df.columns:
        raise ValidationError(
            f"targets {targets!r} is not a column of the DataFrame", field="targets"
        )
    return Dataset(
        name=name or "dataset",
        digest=digest,
        source_type="code" if source is None else "local",
        source=_code_source() if source is None else json.dumps({"uri": source}),
        schema=json.dumps({"mlflow_colspec": colspec}),
        profile=json.dumps({"num_rows": len(df), "num_elements": int(df.size)}),
    )


def _from_numpy(array: Any, name: str | None, source: str | None) -> Dataset:
    head = array[:_ROWS_HASHED]
    digest = _digest(head.tobytes(), str(array.shape).encode())
    shape = [-1, *array.shape[1:]]
    spec = [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}]
    return Dataset(
        name=name or "dataset",
        digest=digest,
        source_type="code" if source is None else "local",
        source=_code_source() if source is None else json.dumps({"uri": source}),
        schema=json.dumps({"mlflow_tensorspec": {"features": json.dumps(spec), "targets": None}}),
        profile=json.dumps(
            {
                "features_shape": list(array.shape),
                "features_size": int(array.size),
                "features_nbytes": int(array.nbytes),
            }
        ),
    )


def _from_location(location: str, name: str | None) -> Dataset:
    path = Path(location)
    if "://" not in location and not path.exists():
        raise ValidationError(
            f"log_input: {location!r} is neither an existing file nor a URI", field="dataset"
        )
    if path.is_file():
        h = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        digest = h.hexdigest()[:8]
        uri = str(path.resolve())
        kind = "local"
    else:
        digest = _digest(location.encode())
        uri = location
        kind = location.split("://", 1)[0] if "://" in location else "local"
    return Dataset(
        name=name or path.name or "dataset",
        digest=digest,
        source_type=kind,
        source=json.dumps({"uri": uri}),
    )


def dataset_input(
    obj: Any,
    *,
    context: str | None = None,
    name: str | None = None,
    source: str | None = None,
    targets: str | None = None,
) -> DatasetInput:
    """MLflow's record of a dataset a run used.

    Args:
        obj: a pandas DataFrame, a numpy array, a path or URI, an :class:`mlrelay.Dataset`
            or a ``DatasetInput``.
        context: the ``mlflow.data.context`` tag, e.g. ``"training"``.
        name: the dataset's name (default ``"dataset"``, or the file's name).
        source: where the data came from, when it is not the running code.
        targets: the target column of a DataFrame.

    Raises:
        ValidationError: another kind of object.
    """
    if isinstance(obj, DatasetInput):
        return obj
    module = type(obj).__module__
    if isinstance(obj, Dataset):
        dataset = obj
    elif module.startswith("pandas") and hasattr(obj, "columns"):
        dataset = _from_pandas(obj, name, source, targets)
    elif module == "numpy" and hasattr(obj, "shape"):
        dataset = _from_numpy(obj, name, source)
    elif isinstance(obj, str | os.PathLike):
        dataset = _from_location(os.fspath(obj), name)
    else:
        raise ValidationError(
            "log_input takes a pandas DataFrame, a numpy array, a path or URI, or an "
            f"mlrelay.Dataset; got {type(obj).__name__}",
            field="dataset",
        )
    tags = [InputTag(key="mlflow.data.context", value=context)] if context else []
    return DatasetInput(dataset=dataset, tags=tags)
