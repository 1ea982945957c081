"""Dataset records are exactly what MLflow's own ``mlflow.data`` writes: name, digest,
source, schema and profile (compared with MLflow's package in the test venv)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlrelay
from mlrelay._formats.datasets import dataset_input

# Skipped where MLflow is not installed (`make test-lowest`).
NO_MLFLOW = "compared with MLflow's own package, which is not installed here"


def _mlflow_record(dataset: Any) -> dict[str, Any]:
    entity = dataset._to_mlflow_entity()
    return {k.strip("_"): v for k, v in vars(entity).items()}


def _ours(obj: Any, **kwargs: Any) -> dict[str, Any]:
    dumped = dataset_input(obj, **kwargs).dataset.model_dump()
    return {k.strip("_"): v for k, v in dumped.items()}


@pytest.fixture(autouse=True)
def _no_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow adds git tags to a code source only with GitPython installed (it is not here);
    mlrelay reads .git itself, so comparisons switch that off (see the test below)."""
    import mlrelay._formats.gitinfo

    monkeypatch.setattr(mlrelay._formats.gitinfo, "git_info", lambda _start: None)


FRAME = pd.DataFrame(
    {
        "a": [1, 2, 3],
        "b": [0.5, 1.5, 2.5],
        "s": ["x", "y", "z"],
        "i": np.array([1, 2, 3], dtype=np.int32),
        "t": [True, False, True],
    }
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "train", "targets": "a"},
        {"source": "s3://bucket/train.csv"},
        {"source": "/data/train.csv"},
        {"source": "https://example.org/train.csv"},
    ],
    ids=["code-source", "s3", "local", "http"],
)
@pytest.mark.parametrize("frame", [FRAME, FRAME.assign(o=[1, "a", None])], ids=["typed", "mixed"])
def test_dataframes_match_mlflow(kwargs: dict[str, str], frame: pd.DataFrame) -> None:
    """A DataFrame gives MLflow's digest, source, column schema (none for a column MLflow
    cannot type) and profile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("mlflow", reason=NO_MLFLOW)
        import mlflow.data

        reference = _mlflow_record(mlflow.data.from_pandas(frame, **kwargs))
    assert _ours(frame, **kwargs) == reference


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.float32).reshape(4, 3), np.array(["a", "b"]), np.arange(30_000)],
    ids=["float32", "strings", "long"],
)
def test_arrays_match_mlflow(array: np.ndarray) -> None:
    """A numpy array gives MLflow's digest (first 10,000 values and the shape), tensor schema
    and profile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("mlflow", reason=NO_MLFLOW)
        import mlflow.data

        reference = _mlflow_record(mlflow.data.from_numpy(array, name="arr"))
    assert _ours(array, name="arr") == reference


def test_a_uri_is_recorded_as_mlflow_records_a_meta_dataset() -> None:
    """A URI alone: MLflow's MetaDataset digest (a hash of name and source), no schema."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("mlflow", reason=NO_MLFLOW)
        from mlflow.data.http_dataset_source import HTTPDatasetSource
        from mlflow.data.meta_dataset import MetaDataset

        source = HTTPDatasetSource("https://example.org/d.csv")
        reference = _mlflow_record(MetaDataset(source, name="d.csv"))
    assert _ours("https://example.org/d.csv") == reference


def test_a_local_file_digest_covers_its_bytes(tmp_path: Path) -> None:
    """A file path: its name, a local source with the absolute path, and a digest that
    changes when the file's content does."""
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    first = dataset_input(str(data), context="training").dataset
    assert (first.name, first.source_type) == ("train.csv", "local")
    assert json.loads(first.source) == {"uri": str(data.resolve())}
    data.write_text("a,b\n1,3\n")
    assert dataset_input(data).dataset.digest != first.digest


def test_code_source_names_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Data made in code records the running program and, in a git work tree, the commit
    (as MLflow does when GitPython is installed)."""
    from mlrelay._formats.datasets import code_source
    from mlrelay._formats.gitinfo import GitInfo

    monkeypatch.setattr(
        "mlrelay._formats.gitinfo.git_info", lambda _start: GitInfo("abc123", "main", None)
    )
    monkeypatch.setattr("sys.argv", [__file__])
    tags = json.loads(code_source())["tags"]
    assert tags["mlflow.source.name"] == __file__
    assert tags["mlflow.source.type"] == "LOCAL"
    assert (tags["mlflow.source.git.commit"], tags["mlflow.source.git.branch"]) == (
        "abc123",
        "main",
    )


def test_context_tag_and_errors() -> None:
    """The context becomes the mlflow.data.context tag; other objects, missing files and an
    unknown targets column are clear errors."""
    item = dataset_input(FRAME, context="training")
    assert [(t.key, t.value) for t in item.tags] == [("mlflow.data.context", "training")]
    assert dataset_input(item) is item
    with pytest.raises(mlrelay.ValidationError, match="pandas DataFrame, a numpy array"):
        dataset_input({"not": "data"})
    with pytest.raises(mlrelay.ValidationError, match="neither an existing file nor a URI"):
        dataset_input("no/such/file.csv")
    with pytest.raises(mlrelay.ValidationError, match="targets 'y'"):
        dataset_input(FRAME, targets="y")
