"""Artifact storage behind the ``mlflow-artifacts`` proxy: in memory, or in a directory.

Paths are relative to the artifact root (``<experiment_id>/<run_id>/artifacts/<file>``), use
``/`` separators, and must not escape the root. Uploads arrive as a stream of chunks and are
written as they come; a file only appears when its upload is complete.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from mlrelay_mock._errors import MlflowError, not_found

__all__ = ["ArtifactStore", "DiskArtifacts", "FileEntry", "MemoryArtifacts", "clean_path"]


@dataclass(frozen=True)
class FileEntry:
    """One listed entry: a path relative to the listed directory, and a size for files."""

    path: str
    is_dir: bool
    file_size: int | None

    def to_json(self, prefix: str = "") -> dict[str, object]:
        """The MLflow ``FileInfo`` object; no ``file_size`` for directories and empty files."""
        out: dict[str, object] = {"path": prefix + self.path, "is_dir": self.is_dir}
        if self.file_size:
            out["file_size"] = self.file_size
        return out


def clean_path(path: str) -> str:
    """Normalise a relative artifact path; 400 for ``..`` segments or a NUL byte."""
    if "\x00" in path:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid path: {path!r} contains a NUL byte")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid path: '{path}'")
    return "/".join(parts)


class ArtifactStore:
    """The interface both backends implement."""

    async def put(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        """Store a file from a stream of chunks (overwriting); returns its size."""
        raise NotImplementedError

    def get(self, path: str) -> bytes | Path:
        """A file's bytes (memory) or location (disk); 404 when missing, 400 for a directory."""
        raise NotImplementedError

    def list(self, path: str) -> list[FileEntry] | None:
        """The direct children of a directory, ``None`` for a file or a missing path."""
        raise NotImplementedError

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree; a missing path is fine."""
        raise NotImplementedError


def _is_a_directory(path: str) -> MlflowError:
    return MlflowError(
        "INVALID_PARAMETER_VALUE",
        f"Artifact path refers to a directory, not a file: '{path}'",
        status=400,
    )


class MemoryArtifacts(ArtifactStore):
    """Artifacts held in a dict (the default: nothing touches the disk)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def _is_dir(self, path: str) -> bool:
        return path == "" or any(f.startswith(path + "/") for f in self.files)

    async def put(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        """Store a file from a stream of chunks (overwriting); returns its size."""
        data = bytearray()
        async for chunk in chunks:
            data += chunk
        self.files[path] = bytes(data)
        return len(data)

    def get(self, path: str) -> bytes | Path:
        """A file's bytes; 404 when missing, 400 for a directory."""
        if path in self.files:
            return self.files[path]
        if self._is_dir(path):
            raise _is_a_directory(path)
        raise not_found(f"No such artifact: '{path}'")

    def list(self, path: str) -> list[FileEntry] | None:
        """The direct children of a directory, ``None`` for a file or a missing path."""
        if path in self.files or not self._is_dir(path):
            return None
        prefix = path + "/" if path else ""
        children: dict[str, FileEntry] = {}
        for name, data in self.files.items():
            if not name.startswith(prefix):
                continue
            head, sep, _ = name[len(prefix) :].partition("/")
            children[head] = (
                FileEntry(head, True, None) if sep else FileEntry(head, False, len(data))
            )
        return [children[k] for k in sorted(children)]

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree; a missing path is fine."""
        for name in [f for f in self.files if f == path or f.startswith(path + "/") or not path]:
            del self.files[name]


class DiskArtifacts(ArtifactStore):
    """Artifacts in a directory (used with ``--data-dir``, so they survive a restart)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _local(self, path: str) -> Path:
        return self.root.joinpath(*path.split("/")) if path else self.root

    async def put(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        """Stream the chunks to a temporary file, then move it into place."""
        target = self._local(path)
        if target.is_dir():
            raise _is_a_directory(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return size

    def get(self, path: str) -> bytes | Path:
        """A file's location; 404 when missing, 400 for a directory."""
        local = self._local(path)
        if local.is_dir():
            raise _is_a_directory(path)
        if not local.is_file():
            raise not_found(f"No such artifact: '{path}'")
        return local

    def list(self, path: str) -> list[FileEntry] | None:
        """The direct children of a directory, ``None`` for a file or a missing path."""
        local = self._local(path)
        if not local.is_dir():
            return None
        return [
            FileEntry(p.name, p.is_dir(), None if p.is_dir() else p.stat().st_size)
            for p in sorted(local.iterdir())
            if not p.name.startswith(".upload-")
        ]

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree; a missing path is fine."""
        local = self._local(path)
        if local.is_dir():
            shutil.rmtree(local, ignore_errors=True)
        elif local.exists():
            local.unlink()


def join(*parts: str) -> str:
    """Join artifact path parts with ``/``, ignoring empty ones."""
    return posixpath.join(*[p for p in parts if p]) if any(parts) else ""
