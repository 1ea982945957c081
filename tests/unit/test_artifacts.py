"""Rendering objects to artifact files, and the checks on artifact locations (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import mlrelay
from mlrelay._artifacts import rendered, write_dict, write_figure, write_image, write_text
from mlrelay._stores import artifact_target
from mlrelay._stores.proxy import proxy_path
from tests._imports import imports_of


def test_text_and_dicts(tmp_path: Path) -> None:
    """Text is UTF-8; dicts are JSON or YAML by the extension, anything else is refused with
    the file named."""
    write_text("héllo", tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_bytes() == "héllo".encode()
    write_dict({"a": [1, 2]}, tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2]}
    write_dict({"b": {"c": 1}}, tmp_path / "c.yml")
    assert yaml.safe_load((tmp_path / "c.yml").read_text()) == {"b": {"c": 1}}
    with pytest.raises(mlrelay.ValidationError, match=r"'c\.toml'") as info:
        write_dict({}, tmp_path / "c.toml")
    assert info.value.field == "artifact_file"
    with pytest.raises(mlrelay.ValidationError, match="takes a str"):
        write_text(b"bytes", tmp_path / "b.txt")  # type: ignore[arg-type]


def test_images_from_arrays_and_pil(tmp_path: Path) -> None:
    """uint8 and [0, 1] float arrays and PIL images become image files; bad shapes, ranges
    and extensions name their problem."""
    pytest.importorskip("PIL", reason="Pillow is not installed (`make test-lowest`)")
    from PIL import Image

    write_image(np.full((2, 3), 1.0), tmp_path / "white.png")
    with Image.open(tmp_path / "white.png") as image:
        assert (image.size, image.getpixel((0, 0))) == ((3, 2), 255)
    write_image(np.zeros((2, 2, 3), dtype=np.uint8), tmp_path / "rgb.jpg")
    write_image(Image.new("L", (1, 1)), tmp_path / "pil.png")
    assert (tmp_path / "pil.png").stat().st_size > 0
    with pytest.raises(mlrelay.ValidationError, match="shape"):
        write_image(np.zeros((2, 2, 2)), tmp_path / "x.png")
    with pytest.raises(mlrelay.ValidationError, match=r"\[0, 1\]"):
        write_image(np.full((2, 2), 2.0), tmp_path / "x.png")
    with pytest.raises(mlrelay.ValidationError, match=r"'x\.txt'"):
        write_image(np.zeros((2, 2)), tmp_path / "x.txt")


def test_figures(tmp_path: Path) -> None:
    """A matplotlib figure is saved in the extension's format; other objects are refused."""
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (`make test-lowest`)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2])
    write_figure(figure, tmp_path / "f.svg")
    plt.close(figure)
    assert (tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(mlrelay.ValidationError, match="matplotlib or plotly"):
        write_figure(object(), tmp_path / "f.png")


def test_rendered_hands_over_the_file_and_its_folder(tmp_path: Path) -> None:
    """rendered() writes into a private folder and delivers (file, folder); the folder is
    None at the root; absolute and climbing names are refused."""
    delivered: list[tuple[str, str | None, str]] = []

    def deliver(path: Path, folder: str | None) -> None:
        delivered.append((path.name, folder, path.read_text()))

    rendered("plots/deep/a.txt", lambda p: write_text("x", p), deliver)
    rendered("b.txt", lambda p: write_text("y", p), deliver)
    assert delivered == [("a.txt", "plots/deep", "x"), ("b.txt", None, "y")]
    for bad in ("/etc/passwd", "../out.txt", "dir/"):
        with pytest.raises(mlrelay.ValidationError, match="relative file name"):
            rendered(bad, lambda p: write_text("z", p), deliver)


def test_proxy_paths_and_the_non_proxied_error() -> None:
    """mlflow-artifacts URIs map to the proxy; any other location (s3:// has its own store)
    raises ArtifactsNotProxiedError naming it and the server option to set."""
    uri = "mlflow-artifacts:/1/abc/artifacts"
    assert proxy_path(uri) == "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts"
    assert proxy_path("mlflow-artifacts://host:5000/1/abc/artifacts/") == proxy_path(uri)
    for location in ("gs://bucket/1/abc/artifacts", "/srv/mlruns/1/abc/artifacts"):
        with pytest.raises(mlrelay.ArtifactsNotProxiedError, match="--serve-artifacts") as info:
            proxy_path(location)
        assert info.value.artifact_uri == location
        assert location in str(info.value)
        assert isinstance(info.value, mlrelay.ConfigurationError)


def test_artifact_paths_stay_inside_the_run() -> None:
    """artifact_path is a relative folder: slashes are normalised, '..' and absolute paths
    are refused."""
    assert artifact_target("f.bin", None) == "f.bin"
    assert artifact_target("f.bin", "a//b/./") == "a/b/f.bin"
    assert artifact_target("f.bin", "a\\b") == "a/b/f.bin"
    for bad in ("../x", "/abs", "a/../../b"):
        with pytest.raises(mlrelay.ValidationError, match="relative folder"):
            artifact_target("f.bin", bad)


def test_artifacts_do_not_import_httpx() -> None:
    """_artifacts and the proxy store leave HTTP to the transport: no httpx import anywhere
    in them."""
    for module in ("mlrelay._artifacts", "mlrelay._stores", "mlrelay._stores.proxy"):
        assert not [name for name in imports_of(module) if name.startswith("httpx")], module
