"""``mlrelay.artifacts``: MLflow's ``mlflow.artifacts`` functions over the tracking server.

``download_artifacts``, ``list_artifacts``, ``load_text`` and ``load_dict`` take what
MLflow's take: an ``artifact_uri`` (``runs:/<run_id>/<path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``models:/<model_id>``, ``mlflow-artifacts:/...``, ``s3://...``,
or a local path) or a ``run_id`` with an ``artifact_path``. Paths come out as MLflow's do:
for a URI, relative to the folder the URI's last part is in (``runs:/<id>/model`` lists
``model/MLmodel``, and downloads to ``<dst_path>/model``).

They ask the server when called, through the fluent API's client (or one for
``tracking_uri``; MLflow's ``registry_uri`` is not taken: models are read from the tracking
server); offline mode raises :class:`mlrelay.ConfigurationError`. A run id this
process logged under a local id is mapped to the server's id.

Raises (every function):
    ValidationError: both or neither of ``artifact_uri`` and ``run_id``, or ``artifact_path``
        with ``artifact_uri``.
    NotFoundError: nothing exists there.
    ArtifactsNotProxiedError: the location is neither served by the tracking server nor in
        ``s3://`` (``gs://``, a path on the server's disk...), which mlrelay does not read.
    MissingExtraError: the location is in ``s3://`` and boto3 is not installed
        (``pip install 'mlrelay[s3]'``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import ValidationError
from ._pipeline import runs
from ._protocol.entities import FileInfo
from .client import Client

__all__ = ["download_artifacts", "list_artifacts", "load_dict", "load_text"]


@contextlib.contextmanager
def _client(tracking_uri: str | None, purpose: str) -> Iterator[Client]:
    if tracking_uri is None:
        yield runs.session.client(purpose)
    else:
        with Client(tracking_uri=tracking_uri) as client:
            yield client


def _check(artifact_uri: str | None, run_id: str | None, artifact_path: str | None) -> None:
    if (artifact_uri is None) == (run_id is None):
        raise ValidationError("pass exactly one of artifact_uri and run_id", field="artifact_uri")
    if artifact_uri is not None and artifact_path is not None:
        raise ValidationError(
            "artifact_path goes with run_id, not with artifact_uri", field="artifact_path"
        )


def _split(client: Client, artifact_uri: str) -> tuple[str, str]:
    """``(location, name)``: the artifact location of the folder the URI's last part is in,
    and that last part (``""`` for a run's or a model's whole tree)."""
    if artifact_uri.startswith("runs:/"):
        run_id, _, path = artifact_uri[len("runs:/") :].strip("/").partition("/")
        root = (client.get_run(runs.server_id(run_id)).info.artifact_uri or "").rstrip("/")
        folder, _, name = path.strip("/").rpartition("/")
        return (f"{root}/{folder}" if folder else root), name
    if artifact_uri.startswith("models:/"):
        location = client.model_location(artifact_uri)
        if location.startswith("models:/"):  # a version registered from a logged model
            location = client.model_location(location)
        return location, ""
    parent, _, name = artifact_uri.rstrip("/").rpartition("/")
    return parent, name


def download_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    dst_path: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Download an artifact file or directory; returns its local path.

    Args:
        artifact_uri: where the artifact is (see the module docstring).
        run_id: a run, with ``artifact_path`` the file or folder in it (all when None).
        artifact_path: with ``run_id``: the path below the run's root.
        dst_path: a local directory to download into, created if missing (default: a new
            temporary directory).
        tracking_uri: the server (default: the fluent API's).

    >>> download_artifacts("runs:/<run_id>/model", dst_path="out")  # doctest: +SKIP
    'out/model'
    """
    _check(artifact_uri, run_id, artifact_path)
    if dst_path is not None:
        Path(dst_path).mkdir(parents=True, exist_ok=True)
    if artifact_uri is None:
        artifact_uri = f"runs:/{run_id}/{artifact_path or ''}"
    if os.path.exists(artifact_uri):  # a local path, as MLflow accepts one
        if dst_path is None:
            return artifact_uri
        target = Path(dst_path) / Path(artifact_uri).name
        copy = shutil.copytree if Path(artifact_uri).is_dir() else shutil.copy2
        copy(artifact_uri, target)
        return str(target)
    with _client(tracking_uri, "download_artifacts") as client:
        location, name = _split(client, artifact_uri)
        return client.download_artifacts_at(location, name, dst_path)


def list_artifacts(
    artifact_uri: str | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    tracking_uri: str | None = None,
) -> list[FileInfo]:
    """The files and directories directly below an artifact URI, or below ``artifact_path``
    in a run (paths as MLflow gives them; see the module docstring)."""
    _check(artifact_uri, run_id, artifact_path)
    with _client(tracking_uri, "list_artifacts") as client:
        if run_id is not None:
            return client.list_artifacts(runs.server_id(run_id), artifact_path)
        assert artifact_uri is not None
        location, name = _split(client, artifact_uri)
        return client.list_artifacts_at(location, name or None)


def load_text(artifact_uri: str) -> str:
    """The text of an artifact file (UTF-8), e.g. ``runs:/<run_id>/notes/summary.txt``.

    Raises:
        ValidationError: the file is not UTF-8 text.
    """
    with tempfile.TemporaryDirectory(prefix="mlrelay-") as tmp:
        local = download_artifacts(artifact_uri, dst_path=tmp)
        try:
            return Path(local).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError) as exc:
            raise ValidationError(
                f"{artifact_uri!r} is not a UTF-8 text file", field="artifact_uri"
            ) from exc


def load_dict(artifact_uri: str) -> dict[str, Any]:
    """A JSON artifact file as a dict, e.g. ``runs:/<run_id>/config.json``.

    Raises:
        ValidationError: the file is not JSON.
    """
    text = load_text(artifact_uri)
    try:
        loaded: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{artifact_uri!r} is not a JSON file", field="artifact_uri") from exc
    return loaded
