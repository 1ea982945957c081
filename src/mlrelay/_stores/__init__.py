"""Artifact stores: where a run's files go, chosen by the scheme of its artifact location.

::

    Client: log_artifact(s), log_model, list_artifacts, download_artifacts, download_model
        |   Stores.open(artifact_uri)
    ArtifactStore        one location: upload a file, list a folder, download a file
        ├── ProxyStore   mlflow-artifacts:/  through the tracking server (_stores.proxy)
        └── S3Store      s3://               straight to the bucket with boto3 (_stores.s3)
        |
    Transport / boto3    the wire

What is the same for every store is written once, here: a folder uploaded file by file
(:data:`UPLOAD_WORKERS` at a time), a folder downloaded by listing it, the checks that
keep paths inside the location. Keys are laid out as MLflow's artifact repositories lay
them out (``<location>/<artifact_path>/<file name>``), so MLflow's client reads what
mlrelay writes and the other way round.

A direct store's library is an optional extra of mlrelay. It is imported the first time
a location of its scheme is opened, never by ``import mlrelay``; when it is missing,
opening the location raises :class:`~mlrelay.MissingExtraError` naming the extra. Its
connection (a boto3 client: endpoint, credentials, connection pool) is made once per
``Client`` and shared by the client's ``with_options()`` copies.

Adding a store (``gs://``, ``wasbs://``): a module with ``connect(settings)`` returning a
:class:`Connection`, one entry in :data:`DIRECT` (scheme, extra, library, how to connect),
and the extra in ``pyproject.toml``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlrelay._errors import MissingExtraError
from mlrelay._stores.common import (
    UPLOAD_WORKERS,
    ArtifactStore,
    Connection,
    artifact_target,
    download,
    relative,
    upload_dir,
)

if TYPE_CHECKING:
    from mlrelay._config import Settings
    from mlrelay._transport import Transport

__all__ = [
    "DIRECT",
    "UPLOAD_WORKERS",
    "ArtifactStore",
    "Connection",
    "Direct",
    "Stores",
    "artifact_target",
    "download",
    "relative",
    "upload_dir",
]


@dataclass(frozen=True)
class Direct:
    """A store mlrelay writes directly, with a library from an optional extra."""

    extra: str
    """The extra that installs the library (``pip install 'mlrelay[<extra>]'``)."""
    package: str
    """The library (for the message when it is missing)."""
    connect: Callable[[Settings], Connection]
    """Makes the connection; imports the library (ImportError when it is missing)."""


def _connect_s3(settings: Settings) -> Connection:
    from mlrelay._stores.s3 import connect

    return connect(settings)


DIRECT: dict[str, Direct] = {"s3": Direct("s3", "boto3", _connect_s3)}
"""The stores mlrelay writes directly, by URI scheme; every other location goes through
the tracking server's artifact proxy (or is refused, when it is not ``mlflow-artifacts:``)."""


class Stores:
    """Opens the store of an artifact location, by its scheme; keeps each direct store's
    connection for the client that owns it (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def is_direct(self, artifact_uri: str) -> bool:
        """Whether mlrelay reaches this location itself rather than through the server."""
        return _scheme(artifact_uri) in DIRECT

    def open(
        self, artifact_uri: str, transport: Transport, multipart: Callable[[], bool]
    ) -> ArtifactStore:
        """The store of ``artifact_uri``; ``transport`` and ``multipart`` (whether the server
        takes multipart uploads, asked only for a large file) serve the proxy.

        Raises:
            ArtifactsNotProxiedError: neither the proxy nor a direct store serves it.
            MissingExtraError: a direct store whose library is not installed.
        """
        scheme = _scheme(artifact_uri)
        direct = DIRECT.get(scheme)
        if direct is None:
            from .proxy import ProxyStore

            return ProxyStore(transport, artifact_uri, multipart)
        with self._lock:
            connection = self._connections.get(scheme)
            if connection is None:
                connection = self._connect(scheme, direct, artifact_uri)
                self._connections[scheme] = connection
        return connection.store(artifact_uri)

    def _connect(self, scheme: str, direct: Direct, artifact_uri: str) -> Connection:
        try:
            return direct.connect(self._settings)
        except ImportError as exc:
            raise MissingExtraError(
                f"the artifacts at {artifact_uri} are in {scheme}:// storage, which mlrelay "
                f"reaches directly with {direct.package}, and {exc.name or direct.package} "
                f"cannot be imported: pip install 'mlrelay[{direct.extra}]'",
                extra=direct.extra,
                package=direct.package,
            ) from None

    def close(self) -> None:
        """Close every direct store's connection (opened again when next used)."""
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            connection.close()


def _scheme(artifact_uri: str) -> str:
    return urlsplit(artifact_uri).scheme.lower()
