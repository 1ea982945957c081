"""Artifacts: rendering objects (text, dicts, figures, images) to files.

Pure functions that write one file each; the fluent API journals the file and the
background sender uploads it (to the run's artifact store, :mod:`mlrelay._stores`).
Heavy libraries (yaml, matplotlib, plotly, numpy, PIL) are imported only when the object
needs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._errors import ValidationError

__all__ = [
    "rendered",
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

    name, folder = artifact_file_parts(artifact_file)
    with tempfile.TemporaryDirectory(prefix="mlrelay-") as tmp:
        target = Path(tmp) / name
        render(target)
        deliver(target, folder)


def artifact_file_parts(artifact_file: str) -> tuple[str, str | None]:
    """``artifact_file``'s file name and its folder (None at the root).

    Raises:
        ValidationError: ``artifact_file`` is not a relative file name.
    """
    from pathlib import PurePosixPath

    name = PurePosixPath(artifact_file)
    if not name.name or name.is_absolute() or ".." in name.parts or artifact_file.endswith("/"):
        raise ValidationError(
            f"{artifact_file!r} must be a relative file name such as 'plots/loss.png'",
            field="artifact_file",
        )
    parent = name.parent.as_posix()
    return name.name, None if parent == "." else parent
