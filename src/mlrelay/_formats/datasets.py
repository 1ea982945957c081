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

from mlrelay._errors import ValidationError
from mlrelay._protocol.entities import Dataset, DatasetInput, InputTag

__all__ = ["code_source", "dataset_input", "numpy_digest", "pandas_digest"]

MAX_ROWS = 10_000  # as MLflow: digests cover the first rows (and the shape)


def _md5_8(elements: list[Any]) -> str:
    """MLflow's ``get_normalized_md5_digest``: md5 over each element's bytes, 8 hex digits."""
    h = hashlib.md5(usedforsecurity=False)
    for element in elements:
        h.update(element)
    return h.hexdigest()[:8]


def pandas_digest(df: Any) -> str:
    """MLflow's ``compute_pandas_digest``: the string and numeric columns of the first
    10,000 rows, the row count and the column names."""
    import numpy as np
    import pandas as pd

    trimmed = df.head(MAX_ROWS)
    as_types = df.map(type) if hasattr(df, "map") else df.applymap(type)
    strings = trimmed.columns[(as_types == str).all(axis=0)]  # noqa: E721 - MLflow's own test
    numbers = trimmed.select_dtypes(include=[np.number]).columns
    trimmed = trimmed[strings.union(numbers)]
    return _md5_8(
        [pd.util.hash_pandas_object(trimmed).values, np.int64(len(df))]
        + [str(c).encode() for c in df.columns]
    )


def numpy_digest(features: Any, targets: Any = None) -> str:
    """MLflow's ``compute_numpy_digest``: the first 10,000 flattened values of each array
    (hashed by pandas) and its shape."""
    import numpy as np
    import pandas as pd

    elements: list[Any] = []
    for array in (features, targets):
        if array is None:
            continue
        flat = array.flatten()[:MAX_ROWS]
        try:
            elements.append(pd.util.hash_array(flat))
        except TypeError:
            elements.append(np.int64(flat.size))
        elements.extend(np.int64(n) for n in array.shape)
    return _md5_8(elements)


def code_source() -> str:
    """MLflow's source for data made in code: the running program's context tags."""
    import getpass
    import sys

    from .gitinfo import git_info

    main = sys.argv[0] if sys.argv and sys.argv[0] else None
    try:
        user = getpass.getuser()
    except (ImportError, KeyError, OSError):
        user = "unknown"
    tags = {"mlflow.user": user, "mlflow.source.name": main or "<console>"}
    tags["mlflow.source.type"] = "LOCAL"
    if main is not None:
        info = git_info(Path(main).parent if Path(main).is_file() else Path.cwd())
        if info is not None:
            tags.update(info.tags())
    return json.dumps({"tags": tags})


def _source(source: str | None) -> tuple[str, str]:
    """``(source_type, source JSON)`` as MLflow's dataset sources write them."""
    if source is None:
        return "code", code_source()
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("", "file"):
        return "local", json.dumps({"uri": source})
    if scheme in ("http", "https"):
        return "http", json.dumps({"url": source})
    return scheme, json.dumps({"uri": source})


def _from_pandas(df: Any, name: str | None, source: str | None, targets: str | None) -> Dataset:
    from .schema import column_type

    if targets is not None and targets not in df.columns:
        raise ValidationError(
            f"targets {targets!r} is not a column of the DataFrame", field="targets"
        )
    try:
        colspec = [
            {"type": column_type(df[c]), "name": str(c), "required": True} for c in df.columns
        ]
        schema: str | None = json.dumps({"mlflow_colspec": colspec})
    except ValidationError:
        schema = None  # as MLflow: a column it cannot type leaves the dataset without schema
    source_type, source_json = _source(source)
    return Dataset(
        name=name or "dataset",
        digest=pandas_digest(df),
        source_type=source_type,
        source=source_json,
        schema=schema,
        profile=json.dumps({"num_rows": len(df), "num_elements": int(df.size)}),
    )


def _from_numpy(array: Any, name: str | None, source: str | None) -> Dataset:
    from .schema import tensor_dtype

    shape = [-1, *array.shape[1:]]
    spec = [{"type": "tensor", "tensor-spec": {"dtype": tensor_dtype(array.dtype), "shape": shape}}]
    source_type, source_json = _source(source)
    return Dataset(
        name=name or "dataset",
        digest=numpy_digest(array),
        source_type=source_type,
        source=source_json,
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
    """A dataset known by where it is, as MLflow's ``MetaDataset`` records one (no schema or
    profile; the digest is MLflow's hash of name and source). One difference: the digest of
    an existing local file covers its bytes, so a file changed in place is a new dataset."""
    path = Path(location)
    if "://" not in location and not path.exists():
        raise ValidationError(
            f"log_input: {location!r} is neither an existing file nor a URI", field="dataset"
        )
    dataset_name = name or path.name or "dataset"
    if "://" not in location:
        location = str(path.resolve())
    source_type, source_json = _source(location)
    if path.is_file() and "://" not in location:
        h = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        digest = h.hexdigest()[:8]
    else:
        config = {
            "name": dataset_name,
            "source": source_json,
            "source_type": source_type,
            "schema": "",
        }
        digest = hashlib.sha256(json.dumps(config).encode("utf-8")).hexdigest()[:8]
    return Dataset(name=dataset_name, digest=digest, source_type=source_type, source=source_json)


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
