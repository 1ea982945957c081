"""The tracking server's artifact proxy (``mlflow-artifacts:/``): files go over HTTP to
``/api/2.0/mlflow-artifacts/artifacts/...``, streamed from disk, large ones in parts when
the server offers multipart uploads (as MLflow's client does)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from mlrelay._errors import APIStatusError, ArtifactsNotProxiedError
from mlrelay._protocol.entities import FileInfo
from mlrelay._stores.common import artifact_target, progress

if TYPE_CHECKING:
    from mlrelay._transport import HTTPResponse, Transport

__all__ = ["MULTIPART_MIN_BYTES", "PART_BYTES", "ProxyStore", "proxy_path"]

_PROXY = "/api/2.0/mlflow-artifacts/artifacts/"
_CHUNK = 1 << 20

MULTIPART_MIN_BYTES = 500 << 20
"""Files this large go in parts when the server offers multipart uploads (as MLflow)."""
PART_BYTES = 10 << 20
"""The size of one part (MLflow's default), larger when a file would need over 10,000."""
_MAX_PARTS = 10_000


def proxy_path(artifact_uri: str) -> str:
    """The proxy path of an ``artifact_uri`` (``mlflow-artifacts:/1/<run>/artifacts``).

    Raises:
        ArtifactsNotProxiedError: the location is not served by the tracking server and is
            not one mlrelay writes directly (gs://, a path on the server's disk...).
    """
    parts = urlsplit(artifact_uri)
    if parts.scheme != "mlflow-artifacts":
        raise ArtifactsNotProxiedError(
            f"the run's artifact location {artifact_uri!r} is not served by the tracking "
            "server, and mlrelay uploads only through the server's artifact proxy or "
            "directly to s3:// (pip install 'mlrelay[s3]'); start the server with `mlflow "
            "server --serve-artifacts --artifacts-destination <store>` (the default in MLflow "
            "2.x and 3.x) and no --default-artifact-root, or log to an experiment whose "
            "artifact location is mlflow-artifacts:/ or s3://",
            artifact_uri=artifact_uri,
        )
    return _PROXY + "/".join(p for p in parts.path.split("/") if p)


class ProxyStore:
    """A location behind the tracking server's artifact proxy.

    Raises (on creation):
        ArtifactsNotProxiedError: the location is not ``mlflow-artifacts:``.
    """

    def __init__(
        self, transport: Transport, artifact_uri: str, multipart: Callable[[], bool]
    ) -> None:
        self.artifact_uri = artifact_uri
        self._root = proxy_path(artifact_uri)
        self._transport = transport
        self._multipart = multipart

    def upload_file(self, local: Path, artifact_path: str | None) -> None:
        """Upload one file, streamed from disk.

        Safe to repeat: the proxy overwrites, so a resend after a lost response leaves one
        intact file. A file of at least :data:`MULTIPART_MIN_BYTES` goes in parts when the
        server offers multipart uploads, each streamed and retried on its own; if the
        server's store cannot take parts (501), or otherwise, one PUT retried as a whole.
        """
        target = artifact_target(local.name, artifact_path)
        size = local.stat().st_size
        if size >= MULTIPART_MIN_BYTES and self._multipart():
            try:
                self._upload_parts(local, target, size)
                return
            except APIStatusError as exc:
                if exc.status_code not in (404, 501):
                    raise
                # As MLflow's client: a store without multipart support means one PUT.
        self._transport.send(
            "PUT",
            f"{self._root}/{quote(target)}",
            content=_stream(local),
            # A length, not chunked encoding: proxies in front of servers want one.
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            idempotent=True,
        )

    def _upload_parts(self, local: Path, target: str, size: int) -> None:
        folder, _, filename = target.rpartition("/")
        root = self._root.replace("/artifacts/", "/mpu/{op}/", 1)
        part_bytes = max(PART_BYTES, -(-size // _MAX_PARTS))
        count = -(-size // part_bytes)

        def call(op: str, body: dict[str, Any]) -> Any:
            response = self._transport.send(
                "POST",
                "/".join(p for p in (root.format(op=op), quote(folder)) if p),
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                idempotent=op != "create",
            )
            return response.json() if response.content.strip() else {}

        created = call("create", {"path": filename, "num_parts": count})
        upload_id = created["upload_id"]
        parts = []
        try:
            for credential in created["credentials"]:
                number = int(credential["part_number"])
                offset = (number - 1) * part_bytes
                length = min(part_bytes, size - offset)

                response = self._transport.put_foreign(  # a presigned URL: not our credentials
                    credential["url"],
                    content=_stream(local, offset, length),
                    headers={**(credential.get("headers") or {}), "Content-Length": str(length)},
                    what="uploading a part",
                )
                etag = str(response.headers.get("ETag", ""))
                parts.append({"part_number": number, "etag": etag, "url": credential["url"]})
        except BaseException:
            with contextlib.suppress(Exception):
                call("abort", {"path": filename, "upload_id": upload_id})
            raise
        call("complete", {"path": filename, "upload_id": upload_id, "parts": parts})

    def list_dir(self, path: str) -> list[FileInfo]:
        """The proxy's listing of one folder (``[]`` for a file or a missing path)."""
        folder = path.strip("/")
        listing = self._transport.send(
            "GET",
            _PROXY.rstrip("/"),
            params={"path": "/".join(p for p in (self._root[len(_PROXY) :], folder) if p)},
            idempotent=True,
        ).json()
        return [
            FileInfo(
                path="/".join(p for p in (folder, str(f["path"]).rsplit("/", 1)[-1]) if p),
                is_dir=bool(f.get("is_dir")),
                file_size=f.get("file_size"),
            )
            for f in listing.get("files") or []
        ]

    def download_file(self, path: str, target: Path) -> None:
        """Stream one file to a temporary name beside ``target``, renamed when complete.

        Raises:
            NotFoundError: there is no file at ``path``.
        """
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        partial = Path(name)

        def write(response: HTTPResponse) -> None:  # once per attempt: starts the file over
            size = int(response.headers.get("content-length") or 0)
            bar = progress(f"downloading {target.name}", size)
            try:
                with partial.open("wb") as f:
                    for block in response.iter_bytes(_CHUNK):
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()

        try:
            self._transport.send("GET", quote(f"{self._root}/{path}"), idempotent=True, sink=write)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def _stream(
    path: Path, offset: int = 0, length: int | None = None
) -> Callable[[], Iterator[bytes]]:
    """A fresh iterator over ``length`` bytes of ``path`` from ``offset`` for each attempt,
    read in 1 MiB blocks (constant memory whatever the size)."""
    total = path.stat().st_size - offset if length is None else length

    def chunks() -> Iterator[bytes]:
        bar = progress(f"uploading {path.name}", total)
        try:
            with path.open("rb") as f:
                f.seek(offset)
                left = total
                while left > 0 and (block := f.read(min(_CHUNK, left))):
                    left -= len(block)
                    if bar is not None:
                        bar.update(len(block))
                    yield block
        finally:
            if bar is not None:
                bar.close()

    return chunks
