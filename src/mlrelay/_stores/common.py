"""What every artifact store has in common: the interface (:class:`ArtifactStore`), the
checks that keep paths inside a location, and what is done the same way whatever the
store: a folder uploaded file by file, a folder downloaded by listing it, a progress bar."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol

from mlrelay._errors import ValidationError

if TYPE_CHECKING:
    from tqdm import tqdm

    from mlrelay._protocol.entities import FileInfo

__all__ = [
    "UPLOAD_WORKERS",
    "ArtifactStore",
    "Connection",
    "artifact_target",
    "download",
    "progress",
    "relative",
    "upload_dir",
]


class ArtifactStore(Protocol):
    """One artifact location (a run's root, a logged model's, a folder in them)."""

    artifact_uri: str

    def upload_file(self, local: Path, artifact_path: str | None) -> None:
        """Upload ``local`` to ``<location>/<artifact_path>/<its name>``, streamed from
        disk; safe to repeat (the same file lands at the same place, whole)."""

    def list_dir(self, path: str) -> list[FileInfo]:
        """The files and folders directly below ``path`` (``""``: the root), their paths
        relative to the location; ``[]`` for a file or a missing path."""

    def download_file(self, path: str, target: Path) -> None:
        """Download the file at ``path`` to ``target``: whole, or not at all.

        Raises:
            NotFoundError: there is no file at ``path``.
        """


class Connection(Protocol):
    """A direct store's connection, made once per client: opens its locations."""

    def store(self, artifact_uri: str) -> ArtifactStore:
        """The store of one location of this scheme."""

    def close(self) -> None:
        """Release the connection pool."""


# --- paths ---------------------------------------------------------------------------


def artifact_target(name: str, artifact_path: str | None) -> str:
    """``artifact_path/name`` below a location's root, checked.

    Raises:
        ValidationError: ``artifact_path`` is absolute or climbs out with ``..``.
    """
    folder = (artifact_path or "").replace("\\", "/")
    segments = [p for p in folder.split("/") if p not in ("", ".")]
    if folder.startswith("/") or ".." in segments:
        raise ValidationError(
            f"artifact_path {artifact_path!r} must be a relative folder inside the run's "
            "artifacts (no leading '/', no '..')",
            field="artifact_path",
        )
    return "/".join([*segments, name])


def relative(path: str) -> str:
    """``path`` below a location's root, normalised (``""`` for the root).

    Raises:
        ValidationError: it climbs out with ``..``.
    """
    rel = "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))
    if ".." in rel.split("/"):
        raise ValidationError(f"{path!r} climbs out of the run's artifacts", field="path")
    return rel


# --- what every store does the same way -------------------------------------------------

UPLOAD_WORKERS = 4
"""Files of one ``log_artifacts`` call uploaded at the same time."""


def upload_dir(store: ArtifactStore, local: Path, artifact_path: str | None) -> None:
    """Upload every file below ``local``, keeping the tree under ``artifact_path``;
    :data:`UPLOAD_WORKERS` files at a time, each retried on its own. The first failure is
    raised once the other files are done."""
    base = artifact_target("", artifact_path).strip("/")
    jobs = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        folder = path.parent.relative_to(local).as_posix()
        sub = "/".join(p for p in (base, "" if folder == "." else folder) if p)
        jobs.append(functools.partial(store.upload_file, path, sub or None))
    _in_parallel(jobs)


def _in_parallel(tasks: Sequence[Callable[[], object]]) -> None:
    """Run ``tasks`` on up to :data:`UPLOAD_WORKERS` plain threads; raise the first failure
    (in task order) once all are done. Not ``concurrent.futures``: its pool refuses work once
    the interpreter shuts down, and the journal's last artifacts are sent from ``atexit``."""
    errors: list[tuple[int, BaseException]] = []
    pending = list(enumerate(tasks))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index, task = pending.pop(0)
            try:
                task()
            except BaseException as exc:  # re-raised in the caller below
                with lock:
                    errors.append((index, exc))

    workers = [
        threading.Thread(target=work, name=f"mlrelay-up-{i}", daemon=True)
        for i in range(min(UPLOAD_WORKERS, len(tasks)))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]


def download(store: ArtifactStore, path: str, dst: Path) -> Path:
    """Download one artifact file or a whole folder into ``dst``, at ``dst/<path>`` as
    MLflow does; returns that local path. A file never appears under its name half written.

    Raises:
        NotFoundError: nothing exists at ``path``.
        ValidationError: ``path`` climbs out of the location.
    """
    rel = relative(path)
    target = dst / rel if rel else dst
    entries = store.list_dir(rel)
    if entries or not rel:
        target.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            download(store, entry.path, dst)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    store.download_file(rel, target)
    return target


_PROGRESS_FROM = 64 << 20  # files this large show a progress bar on a terminal


def progress(label: str, size: int | None) -> tqdm[NoReturn] | None:
    """A tqdm bar on a terminal for a transfer of at least 64 MB; None otherwise (not a TTY,
    a small file, an unknown size)."""
    import sys

    if size is None or size < _PROGRESS_FROM or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=size, unit="B", unit_scale=True, desc=label, leave=False)
