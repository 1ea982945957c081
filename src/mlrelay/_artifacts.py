"""Artifacts: rendering objects to files, and uploading files through the artifact proxy.

Pure functions that write one file each; the fluent API journals the file and the
background sender uploads it. Heavy libraries (yaml, matplotlib, plotly, numpy, PIL)
are imported only when the object needs them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ._errors import ValidationError

if TYPE_CHECKING:
    from tqdm import tqdm

    from ._transport import HTTPResponse, Transport

__all__ = [
    "artifact_target",
    "download",
    "list_dir",
    "proxy_path",
    "rendered",
    "upload_dir",
    "upload_file",
    "write_dict",
    "write_figure",
    "write_image",
    "write_text",
]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tiff", ".webp")


def write_text(text: str, dest: Path) -> None:
    """Write ``text`` as UTF-8."""
    if not isinstance(text, str):
        raise ValidationError(f"log_text takes a str, got {type(text).__name__}", field="text")
    dest.write_text(text, encoding="utf-8")


def write_dict(d: Mapping[str, Any], dest: Path) -> None:
    """Write a mapping as JSON (``.json``) or YAML (``.yaml`` / ``.yml``), as MLflow does."""
    suffix = dest.suffix.lower()
    if suffix == ".json":
        dest.write_text(json.dumps(d, indent=2), encoding="utf-8")
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - PyYAML ships with most stacks
            raise ValidationError(
                "log_dict to a .yaml file needs PyYAML (pip install pyyaml)",
                field="artifact_file",
            ) from exc
        dest.write_text(yaml.safe_dump(dict(d), sort_keys=False), encoding="utf-8")
    else:
        raise ValidationError(
            f"log_dict writes .json, .yaml or .yml files; {dest.name!r} has another extension",
            field="artifact_file",
        )


def write_figure(figure: Any, dest: Path) -> None:
    """Write a matplotlib figure (any image format it knows) or a plotly figure (.html/.png)."""
    module = type(figure).__module__
    if module.startswith("matplotlib"):
        figure.savefig(dest)
    elif module.startswith("plotly"):
        if dest.suffix.lower() == ".html":
            figure.write_html(str(dest))
        else:
            figure.write_image(str(dest))
    else:
        raise ValidationError(
            f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}",
            field="figure",
        )


def write_image(image: Any, dest: Path) -> None:
    """Write a numpy array (HxW, HxWx3 or HxWx4; uint8, or floats in [0, 1]) or a PIL image."""
    if dest.suffix.lower() not in _IMAGE_SUFFIXES:
        raise ValidationError(
            f"log_image writes {', '.join(_IMAGE_SUFFIXES)} files; {dest.name!r} is not one",
            field="artifact_file",
        )
    try:
        from PIL import Image
    except ImportError as exc:
        raise ValidationError("log_image needs Pillow (pip install pillow)", field="image") from exc
    if isinstance(image, Image.Image):
        image.save(dest)
        return
    if type(image).__module__ != "numpy":
        raise ValidationError(
            f"log_image takes a numpy array or a PIL image, got {type(image).__name__}",
            field="image",
        )
    import numpy as np

    array = image
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValidationError(
            f"log_image takes an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {array.shape}",
            field="image",
        )
    if array.dtype.kind == "f":
        if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 1):
            raise ValidationError(
                "log_image: a float image must have values in [0, 1]", field="image"
            )
        array = (array * 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValidationError(
            f"log_image takes uint8 or float arrays, got {array.dtype}", field="image"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    Image.fromarray(array).save(dest)


def rendered(
    artifact_file: str, render: Callable[[Path], None], deliver: Callable[[Path, str | None], None]
) -> None:
    """Render an object into ``artifact_file``'s name in a private temporary directory and
    hand the file and its folder (None at the root) to ``deliver`` (upload or journal).

    Raises:
        ValidationError: ``artifact_file`` is not a relative file name.
    """
    import tempfile
    from pathlib import PurePosixPath

    name = PurePosixPath(artifact_file)
    if not name.name or name.is_absolute() or ".." in name.parts or artifact_file.endswith("/"):
        raise ValidationError(
            f"{artifact_file!r} must be a relative file name such as 'plots/loss.png'",
            field="artifact_file",
        )
    with tempfile.TemporaryDirectory(prefix="mlrelay-") as tmp:
        target = Path(tmp) / name.name
        render(target)
        parent = name.parent.as_posix()
        deliver(target, None if parent == "." else parent)


# --- upload through the mlflow-artifacts proxy ------------------------------------------

_PROXY = "/api/2.0/mlflow-artifacts/artifacts/"
_CHUNK = 1 << 20


def proxy_path(artifact_uri: str) -> str:
    """The proxy path of a run's ``artifact_uri`` (``mlflow-artifacts:/1/<run>/artifacts``).

    Raises:
        ArtifactsNotProxiedError: the run's artifacts are not served by the tracking server
            (s3://, gs://, a path on the server's disk...), so there is nothing to upload
            to over HTTP.
    """
    from urllib.parse import urlsplit

    from ._errors import ArtifactsNotProxiedError

    parts = urlsplit(artifact_uri)
    if parts.scheme != "mlflow-artifacts":
        raise ArtifactsNotProxiedError(
            f"the run's artifact location {artifact_uri!r} is not served by the tracking "
            "server, and mlrelay uploads only through the server's artifact proxy; start the "
            "server with `mlflow server --serve-artifacts --artifacts-destination <store>` "
            "(the default in MLflow 2.x and 3.x) and no --default-artifact-root, or log to "
            "an experiment whose artifact location is mlflow-artifacts:/",
            artifact_uri=artifact_uri,
        )
    return _PROXY + "/".join(p for p in parts.path.split("/") if p)


def artifact_target(name: str, artifact_path: str | None) -> str:
    """``artifact_path/name`` below a run's root, checked.

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


_PROGRESS_FROM = 64 << 20  # files this large show a progress bar on a terminal


def _stream(
    path: Path, offset: int = 0, length: int | None = None
) -> Callable[[], Iterator[bytes]]:
    """A fresh iterator over ``length`` bytes of ``path`` from ``offset`` for each attempt,
    read in 1 MiB blocks (constant memory whatever the size)."""
    total = path.stat().st_size - offset if length is None else length

    def chunks() -> Iterator[bytes]:
        bar = _progress(f"uploading {path.name}", total)
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


def _progress(label: str, size: int | None) -> tqdm[NoReturn] | None:
    """A tqdm bar on a terminal for a transfer of at least 64 MB; None otherwise (not a TTY,
    a small file, an unknown size)."""
    import sys

    if size is None or size < _PROGRESS_FROM or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=size, unit="B", unit_scale=True, desc=label, leave=False)


MULTIPART_MIN_BYTES = 500 << 20
"""Files this large go in parts when the server offers multipart uploads (as MLflow)."""
PART_BYTES = 10 << 20
"""The size of one part (MLflow's default), larger when a file would need over 10,000."""
_MAX_PARTS = 10_000


def upload_file(
    transport: Transport,
    artifact_uri: str,
    local: Path,
    artifact_path: str | None,
    *,
    multipart: bool = False,
) -> None:
    """Upload one file below a run's artifact root, streamed from disk.

    Safe to repeat: the proxy overwrites, so a resend after a lost response leaves one
    intact file. With ``multipart`` (the server says so in ``server-info``) a file of at
    least :data:`MULTIPART_MIN_BYTES` goes in parts, each streamed and retried on its own;
    if the server's store cannot take parts (501), or otherwise, one PUT retried as a whole.
    """
    from urllib.parse import quote

    from ._errors import APIStatusError

    target = artifact_target(local.name, artifact_path)
    size = local.stat().st_size
    if multipart and size >= MULTIPART_MIN_BYTES:
        try:
            _upload_parts(transport, artifact_uri, local, target, size)
            return
        except APIStatusError as exc:
            if exc.status_code not in (404, 501):
                raise
            # As MLflow's client: a store without multipart support means one PUT.
    transport.send(
        "PUT",
        f"{proxy_path(artifact_uri)}/{quote(target)}",
        content=_stream(local),
        # A length, not chunked encoding: proxies in front of servers want one.
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        idempotent=True,
    )


def _upload_parts(
    transport: Transport, artifact_uri: str, local: Path, target: str, size: int
) -> None:
    from urllib.parse import quote

    folder, _, filename = target.rpartition("/")
    root = proxy_path(artifact_uri).replace("/artifacts/", "/mpu/{op}/", 1)
    part_bytes = max(PART_BYTES, -(-size // _MAX_PARTS))
    count = -(-size // part_bytes)

    def call(op: str, body: dict[str, Any]) -> Any:
        response = transport.send(
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

            response = transport.put_foreign(  # a presigned URL: not our credentials
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


UPLOAD_WORKERS = 4
"""Files of one ``log_artifacts`` call uploaded at the same time."""


def upload_dir(
    transport: Transport,
    artifact_uri: str,
    local: Path,
    artifact_path: str | None,
    *,
    multipart: bool = False,
) -> None:
    """Upload every file below ``local``, keeping the tree under ``artifact_path``;
    :data:`UPLOAD_WORKERS` files at a time, each retried on its own. The first failure is
    raised once the other files are done."""
    base = artifact_target("", artifact_path).strip("/")
    jobs = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        relative = path.parent.relative_to(local).as_posix()
        sub = "/".join(p for p in (base, "" if relative == "." else relative) if p)
        jobs.append((path, sub or None))
    _in_parallel(
        [
            functools.partial(upload_file, transport, artifact_uri, *job, multipart=multipart)
            for job in jobs
        ]
    )


def _in_parallel(tasks: list[Callable[[], object]]) -> None:
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


def list_dir(transport: Transport, artifact_uri: str, path: str) -> list[dict[str, Any]]:
    """The proxy's listing of one folder below the run's root (``[]`` for a file or a
    missing path): ``[{"path": <name>, "is_dir": bool, "file_size"?: int}]``."""
    root = proxy_path(artifact_uri)[len(_PROXY) :]
    listing = transport.send(
        "GET",
        _PROXY.rstrip("/"),
        params={"path": "/".join(p for p in (root, path.strip("/")) if p)},
        idempotent=True,
    ).json()
    files: list[dict[str, Any]] = listing.get("files") or []
    return files


def download(transport: Transport, artifact_uri: str, path: str, dst: Path) -> Path:
    """Download one artifact file or a whole directory into ``dst``, at ``dst/<path>`` as
    MLflow does; returns that local path.

    Files stream to a temporary name beside their destination and are renamed when
    complete, so a broken download never leaves a truncated file under the real name.

    Raises:
        NotFoundError: nothing exists at ``path``.
    """
    rel = "/".join(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))
    if ".." in rel.split("/"):
        raise ValidationError(f"{path!r} climbs out of the run's artifacts", field="path")
    target = dst / rel if rel else dst
    entries = list_dir(transport, artifact_uri, rel)
    if entries or not rel:
        target.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            download(transport, artifact_uri, f"{rel}/{entry['path']}".strip("/"), dst)
        return target
    _download_file(transport, f"{proxy_path(artifact_uri)}/{rel}", target)
    return target


def _download_file(transport: Transport, proxy_file: str, target: Path) -> None:
    import tempfile
    from urllib.parse import quote

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    partial = Path(name)

    def write(response: HTTPResponse) -> None:  # once per attempt: starts the file over
        size = int(response.headers.get("content-length") or 0)
        bar = _progress(f"downloading {target.name}", size)
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
        transport.send("GET", quote(proxy_file), idempotent=True, sink=write)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
