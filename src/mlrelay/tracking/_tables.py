"""``log_table``'s pieces, shared by the fluent API and ``MlflowClient``: MLflow's table files
(pandas' ``orient="split"`` JSON, or parquet) and the ``mlflow.loggedArtifacts`` run tag that
MLflow's UI reads to list a run's tables. pandas is imported only here, when a table is logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlrelay._errors import ValidationError

__all__ = ["LOGGED_ARTIFACTS_TAG", "read_table", "table_frame", "with_table", "write_table"]

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"


def table_frame(data: Any, artifact_file: str) -> Any:
    """``data`` (a DataFrame, or a dict of columns or of scalars) as a DataFrame.

    Raises:
        ValidationError: ``artifact_file`` is not ``.json`` or ``.parquet``, ``data`` is
            neither a DataFrame nor a dict, or pandas is not installed.
    """
    if not artifact_file.endswith((".json", ".parquet")):
        raise ValidationError(
            f"log_table: {artifact_file!r} must end in .json or .parquet", field="artifact_file"
        )
    try:
        import pandas as pd
    except ImportError as exc:
        raise ValidationError("log_table needs pandas (pip install pandas)", field="data") from exc
    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, dict):
        raise ValidationError(
            f"log_table takes a pandas DataFrame or a dict, got {type(data).__name__}",
            field="data",
        )
    try:
        return pd.DataFrame(data)
    except ValueError:  # scalars only, as MLflow: one row
        return pd.DataFrame([data])


def write_table(frame: Any, target: Path) -> None:
    """Write a table as MLflow does: split-oriented JSON without the index, ISO dates; or
    parquet.

    Raises:
        ValidationError: a value cannot be written as JSON (image columns are not supported).
    """
    try:
        if target.suffix == ".json":
            frame.to_json(target, orient="split", index=False, date_format="iso")
        else:
            frame.to_parquet(target, index=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(
            f"log_table could not write the table to {target.name}: {exc}", field="data"
        ) from exc


def read_table(path: str | Path) -> Any:
    """A table file MLflow (or mlrelay) wrote, as a DataFrame."""
    import pandas as pd

    if str(path).endswith(".json"):
        return pd.read_json(path, orient="split")
    return pd.read_parquet(path)


def with_table(tag_value: str | None, artifact_file: str) -> str | None:
    """The ``mlflow.loggedArtifacts`` tag value listing ``artifact_file`` as a table, or None
    when it lists it already (``tag_value`` is the current value, None when unset)."""
    entries = json.loads(tag_value) if tag_value else []
    entry = {"path": artifact_file, "type": "table"}
    if entry in entries:
        return None
    return json.dumps([*entries, entry])
