"""Artifacts over real sockets to the mock: uploads that break mid-body, listing, downloads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from mlrelay_mock import MockServer

import mlrelay
from tests._env import child_env


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_reset_mid_body_is_retried_and_lands_intact(tmp_path: Path) -> None:
    """The server resets the connection after the first chunk of a 16 MiB upload: the client
    retries that file and the artifact downloaded afterwards is byte for byte the original."""
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(16 << 20))
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        run_id = client.create_run("0").info.run_id
        server.faults.add("reset", method="PUT", path="*weights.bin", times=1)
        client.log_artifact(run_id, str(big), "model")
        puts = [r for r in server.requests if r.method == "PUT"]
        assert [r.fault for r in puts] == ["reset", None]
        local = client.download_artifacts(run_id, "model/weights.bin", str(tmp_path / "dl"))
        assert _digest(Path(local)) == _digest(big)
        assert not list((tmp_path / "dl").rglob("*.part"))


def test_directory_upload_list_and_download(tmp_path: Path) -> None:
    """log_artifacts keeps the tree (files sent in parallel); list_artifacts shows one level;
    download_artifacts of a directory rebuilds it; text and dict artifacts round-trip."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(6):
        (src / f"f{i}.txt").write_text(f"file {i}")
    (src / "sub" / "deep.txt").write_text("deep")
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        run_id = client.create_run("0").info.run_id
        client.log_artifacts(run_id, str(src), "data")
        client.log_text(run_id, "hello", "notes/hello.txt")
        client.log_dict(run_id, {"a": [1, 2]}, "config.yaml")
        listed = {f.path: f.is_dir for f in client.list_artifacts(run_id, "data")}
        assert listed == {**{f"data/f{i}.txt": False for i in range(6)}, "data/sub": True}
        out = Path(client.download_artifacts(run_id, "data", str(tmp_path / "out")))
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")) == sorted(
            [f"f{i}.txt" for i in range(6)] + ["sub/deep.txt"]
        )
        assert (out / "sub" / "deep.txt").read_text() == "deep"
        hello = client.download_artifacts(run_id, "notes/hello.txt", str(tmp_path / "t"))
        assert Path(hello).read_text() == "hello"
        conf = client.download_artifacts(run_id, "config.yaml", str(tmp_path / "c"))
        assert Path(conf).read_text() == "a:\n- 1\n- 2\n"


def test_multipart_upload_when_the_server_offers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that says multipart_uploads_enabled gets large files in parts (create, one
    PUT per part to the URLs it handed out, complete); a part whose connection resets is
    sent again; the assembled artifact is the original. Without the offer: one PUT."""
    from mlrelay import _capabilities
    from mlrelay._stores import proxy

    monkeypatch.setattr(proxy, "MULTIPART_MIN_BYTES", 1 << 20)
    monkeypatch.setattr(proxy, "PART_BYTES", 1 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((3 << 20) + 123))
    _capabilities.forget()
    with MockServer(multipart=True) as server, mlrelay.Client(tracking_uri=server.url) as client:
        assert client.capabilities().multipart_uploads is True
        run_id = client.create_run("0").info.run_id
        server.faults.add("reset", method="PUT", path="/mpu-parts/*/2", times=1)
        client.log_artifact(run_id, str(big))
        paths = [r.path for r in server.requests if "mpu" in r.path]
        assert [p.split("/mpu/")[1].split("/")[0] for p in paths if "mlflow-artifacts" in p] == [
            "create",
            "complete",
        ]
        part_puts = [r for r in server.requests if r.path.startswith("/mpu-parts/")]
        assert len(part_puts) == 5  # four parts, the second one twice
        local = client.download_artifacts(run_id, "big.bin", str(tmp_path / "dl"))
        assert _digest(Path(local)) == _digest(big)
    _capabilities.forget()
    with MockServer() as plain, mlrelay.Client(tracking_uri=plain.url) as client:
        run_id = client.create_run("0").info.run_id
        client.log_artifact(run_id, str(big))
        assert not [r for r in plain.requests if "mpu" in r.path]
    _capabilities.forget()


def test_images_and_figures(tmp_path: Path) -> None:
    """log_image takes numpy arrays (uint8 or floats in [0, 1]) and PIL images; log_figure a
    matplotlib figure; a bad array names its problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        run_id = client.create_run("0").info.run_id
        client.log_image(run_id, np.zeros((4, 5, 3), dtype=np.uint8), "img/a.png")
        client.log_image(run_id, np.full((4, 5), 0.5), "img/b.png")
        client.log_image(run_id, Image.new("RGB", (3, 2)), "img/c.png")
        with pytest.raises(mlrelay.ValidationError, match=r"values in \[0, 1\]"):
            client.log_image(run_id, np.full((2, 2), 3.0), "img/d.png")
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3])
        client.log_figure(run_id, figure, "plots/line.png")
        plt.close(figure)
        assert {f.path for f in client.list_artifacts(run_id, "img")} == {
            "img/a.png", "img/b.png", "img/c.png",
        }  # fmt: skip
        local = client.download_artifacts(run_id, "img/b.png", str(tmp_path))
        with Image.open(local) as image:
            assert (image.size, image.getpixel((0, 0))) == ((5, 4), 128)
        assert client.list_artifacts(run_id, "plots")[0].file_size


def test_multipart_refused_by_the_store_falls_back_to_one_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As MLflow's client: when mpu/create answers 501 (a store without multipart, as MLflow
    3 on local storage), the file goes in one PUT into its folder and lands intact."""
    from mlrelay import _capabilities
    from mlrelay._capabilities import Capabilities
    from mlrelay._stores import proxy

    monkeypatch.setattr(proxy, "MULTIPART_MIN_BYTES", 1 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((2 << 20) + 5))
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        _capabilities.forget()
        _capabilities.remember(server.url, Capabilities("3.17.2", True, True, True, True))
        run_id = client.create_run("0").info.run_id
        client.log_artifact(run_id, str(big), "deep/dir")
        creates = [r for r in server.requests if "/mpu/create/" in r.path]
        assert len(creates) == 1
        assert creates[0].path.endswith("/artifacts/deep/dir")  # the folder; the file in the body
        puts = [r for r in server.requests if r.method == "PUT"]
        assert [p.path.rsplit("/", 3)[-3:] for p in puts] == [["deep", "dir", "big.bin"]]
        local = client.download_artifacts(run_id, "deep/dir/big.bin", str(tmp_path / "dl"))
        assert local == str(tmp_path / "dl" / "deep" / "dir" / "big.bin")
        assert _digest(Path(local)) == _digest(big)
    _capabilities.forget()


def test_multipart_into_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of a file logged under artifact_path assemble at <artifact_path>/<name>."""
    from mlrelay import _capabilities
    from mlrelay._stores import proxy

    monkeypatch.setattr(proxy, "MULTIPART_MIN_BYTES", 1 << 20)
    monkeypatch.setattr(proxy, "PART_BYTES", 1 << 20)
    big = tmp_path / "w.bin"
    big.write_bytes(os.urandom((2 << 20) + 1))
    _capabilities.forget()
    with MockServer(multipart=True) as server, mlrelay.Client(tracking_uri=server.url) as client:
        run_id = client.create_run("0").info.run_id
        client.log_artifact(run_id, str(big), "weights")
        assert [f.path for f in client.list_artifacts(run_id, "weights")] == ["weights/w.bin"]
        assert len([r for r in server.requests if r.path.startswith("/mpu-parts/")]) == 3
        local = client.download_artifacts(run_id, "weights", str(tmp_path / "dl"))
        assert _digest(Path(local) / "w.bin") == _digest(big)
    _capabilities.forget()


def test_a_run_whose_artifacts_are_not_proxied_gets_a_clear_error(tmp_path: Path) -> None:
    """An experiment with a gs:// location (no store of mlrelay's): log_artifact raises
    ArtifactsNotProxiedError naming the run's URI and --serve-artifacts, and uploads
    nothing."""
    data = tmp_path / "a.txt"
    data.write_text("a")
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        exp_id = client.create_experiment("gs-exp", artifact_location="gs://bucket/prefix")
        run = client.create_run(exp_id)
        assert (run.info.artifact_uri or "").startswith("gs://bucket/prefix")
        with pytest.raises(mlrelay.ArtifactsNotProxiedError, match="--serve-artifacts") as info:
            client.log_artifact(run.info.run_id, str(data))
        assert info.value.artifact_uri == run.info.artifact_uri
        with pytest.raises(mlrelay.ArtifactsNotProxiedError):
            client.log_text(run.info.run_id, "t", "t.txt")
        assert not [r for r in server.requests if r.method == "PUT"]


def test_log_artifact_is_safe_to_repeat(tmp_path: Path) -> None:
    """Sending the same file twice (a resend after a lost response) leaves one intact file,
    and a changed file replaces it."""
    data = tmp_path / "m.txt"
    data.write_text("first")
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        run_id = client.create_run("0").info.run_id
        server.faults.add("lose_response", method="PUT", path="*m.txt", times=1)
        client.log_artifact(run_id, str(data), "d")
        client.log_artifact(run_id, str(data), "d")
        faults = [r.fault for r in server.requests if r.method == "PUT"]
        assert faults == ["lose_response", None, None]  # the lost one was sent again
        assert [f.path for f in client.list_artifacts(run_id, "d")] == ["d/m.txt"]
        data.write_text("second")
        client.log_artifact(run_id, str(data), "d")
        out = client.download_artifacts(run_id, "d/m.txt", str(tmp_path / "o"))
        assert Path(out).read_text() == "second"
        with pytest.raises(mlrelay.ValidationError, match="relative folder"):
            client.log_artifact(run_id, str(data), "../escape")


EXIT_SCRIPT = """
import os, sys
import mlrelay
out = os.path.join(sys.argv[1], "outputs")
os.makedirs(out)
for i in range(3):
    with open(os.path.join(out, f"f{i}.txt"), "w") as f:
        f.write(str(i))
mlrelay.log_param("p", 1)
mlrelay.log_artifacts(out)
print(mlrelay.active_run().info.run_id, flush=True)
"""


def test_artifacts_logged_just_before_exit_land_and_the_run_finishes(tmp_path: Path) -> None:
    """A script that logs a directory and exits (MLflow's quickstart) lands every file: the
    upload sent while the interpreter shuts down does not need a thread pool."""
    import subprocess
    import sys

    with MockServer() as server:
        env = child_env()
        env.update(MLFLOW_TRACKING_URI=server.url, MLRELAY_HOME=str(tmp_path / "home"))
        env["PYTHONPATH"] = os.pathsep.join([str(Path(mlrelay.__file__).parents[1]), *sys.path])
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        run_id = done.stdout.split()[-1]
        with mlrelay.Client(tracking_uri=server.url) as client:
            listed = sorted(f.path for f in client.list_artifacts(run_id))
            assert listed == ["f0.txt", "f1.txt", "f2.txt"], done.stderr
            assert client.get_run(run_id).info.status == "FINISHED"
        assert "not yet delivered" not in done.stderr


def test_rendered_artifacts_are_written_straight_into_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fluent ``log_text``, ``log_dict`` and ``log_image`` write their file straight
    into the journal's blob area (no temporary directory, no copy), readable by the owner
    only (0600 in a 0700 folder); a render that raises leaves nothing behind and raises at
    the call; what was logged lands on the server as written."""
    import tempfile

    import numpy as np
    from PIL import Image

    from mlrelay._pipeline.runs import session

    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def counted(*args: object, **kwargs: object) -> str:
        made.append("mkdtemp")
        return mkdtemp(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tempfile, "mkdtemp", counted)
    with MockServer() as server, mlrelay.Client(tracking_uri=server.url) as client:
        mlrelay.set_tracking_uri(server.url)
        with mlrelay.start_run() as run:
            mlrelay.log_text("hello", "notes/hello.txt")
            mlrelay.log_dict({"lr": 0.1}, "config.json")
            mlrelay.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/a.png")
            with pytest.raises(mlrelay.ValidationError, match="log_text takes a str"):
                mlrelay.log_text(b"bytes", "bad.txt")  # type: ignore[arg-type]
            blob_dir = session.ensure_pipeline().journal.blob_dir
            files = sorted(p for p in blob_dir.rglob("*") if p.is_file())
            assert sorted(p.name for p in files) == ["a.png", "config.json", "hello.txt"]
            for path in files:
                assert path.stat().st_mode & 0o777 == 0o600, path
                assert path.parent.stat().st_mode & 0o777 == 0o700, path.parent
            assert not [p for p in blob_dir.rglob("*") if p.is_dir() and not any(p.iterdir())]
        assert made == []
        assert mlrelay.flush(30)
        run_id = run.info.run_id
        hello = client.download_artifacts(run_id, "notes/hello.txt", str(tmp_path / "t"))
        assert Path(hello).read_text() == "hello"
        conf = client.download_artifacts(run_id, "config.json", str(tmp_path / "c"))
        assert Path(conf).read_text() == '{\n  "lr": 0.1\n}'
        image = client.download_artifacts(run_id, "img/a.png", str(tmp_path / "i"))
        with Image.open(image) as opened:
            assert opened.size == (5, 4)
        assert {f.path for f in client.list_artifacts(run_id)} == {
            "notes", "config.json", "img",
        }  # fmt: skip
