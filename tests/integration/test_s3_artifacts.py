"""Direct s3:// artifacts against the session's production-shaped MLflow server with
``--no-serve-artifacts`` (``mlflow_prod_direct``: PostgreSQL, four workers, artifacts in
``s3://mlrelay-test/direct`` on moto's S3 server, all on 127.0.0.1).

mlrelay writes the bucket itself, with boto3, at the keys MLflow's S3ArtifactRepository
uses: MLflow's client reads what mlrelay wrote and the other way round. Covered: files,
folders, models, listing, downloads, offline logging then ``mlrelay sync``, a file in parts
with one part's response lost, boto3 missing, and secrets kept out of errors and logs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

import mlrelay
from mlrelay import cli
from tests._env import child_env
from tests._proxy import lossy_proxy
from tests._servers import free_port
from tests._timing import deadline
from tests.conftest import ProdServer

pytestmark = pytest.mark.real


@pytest.fixture
def direct(mlflow_prod_direct: ProdServer, monkeypatch: pytest.MonkeyPatch) -> ProdServer:
    """The session's MLflow server with ``--no-serve-artifacts`` (runs in PostgreSQL, four
    workers, artifacts in s3://mlrelay-test/direct on moto), with its S3 endpoint and test
    credentials in this process's environment, as a user sets them."""
    for name, value in mlflow_prod_direct.s3_env.items():
        monkeypatch.setenv(name, value)
    return mlflow_prod_direct


def _keys(direct: ProdServer, prefix: str) -> set[str]:
    """Every object key below ``prefix`` (relative to it)."""
    pages = (
        direct.s3_client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=direct.bucket, Prefix=prefix)
    )
    return {o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", [])}


def _prefix(direct: ProdServer, artifact_uri: str) -> str:
    """The key prefix of an s3:// location, with a trailing slash."""
    bucket = f"s3://{direct.bucket}/"
    assert artifact_uri.startswith(bucket), artifact_uri
    return artifact_uri[len(bucket) :].rstrip("/") + "/"


def _head(direct: ProdServer, root: str, path: str) -> dict[str, Any]:
    """S3's HEAD of the object at ``path`` below the location ``root``."""
    key = _prefix(direct, root) + path
    head: dict[str, Any] = direct.s3_client().head_object(Bucket=direct.bucket, Key=key)
    return head


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new_run(client: mlrelay.Client) -> tuple[str, str]:
    """A run in a fresh experiment: its id and artifact URI (in the s3:// root)."""
    run = client.create_run(client.create_experiment(f"s3-{uuid.uuid4().hex[:10]}"))
    return run.info.run_id, str(run.info.artifact_uri)


def _tree(base: Path) -> Path:
    """A small folder: a.txt, sub/b.json."""
    (base / "tree" / "sub").mkdir(parents=True)
    (base / "tree" / "a.txt").write_text("A")
    (base / "tree" / "sub" / "b.json").write_text('{"b": 1}')
    return base / "tree"


def test_files_and_folders_land_at_mlflows_keys_and_come_back(
    direct: ProdServer, tmp_path: Path
) -> None:
    """log_artifact, log_artifacts and log_text write straight to the bucket at
    <run root>/<artifact_path>/<name> with MLflow's Content-Type; list_artifacts lists them
    as MLflow's FileInfo; download_artifacts brings a file and a folder back intact."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello s3")
    with mlrelay.Client(tracking_uri=direct.url) as client:
        run_id, root = _new_run(client)
        assert root.startswith(f"{direct.artifact_root}/")
        client.log_artifact(run_id, str(notes), "docs")
        client.log_artifacts(run_id, str(_tree(tmp_path)), "tree")
        client.log_text(run_id, "t", "texts/t.txt")
        assert _keys(direct, _prefix(direct, root)) == {
            "docs/notes.txt", "tree/a.txt", "tree/sub/b.json", "texts/t.txt",
        }  # fmt: skip
        head = direct.s3_client().head_object(
            Bucket=direct.bucket, Key=_prefix(direct, root) + "docs/notes.txt"
        )
        assert head["ContentType"] == "text/plain"  # guessed from the name, as MLflow does
        listed = client.list_artifacts(run_id)
        assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
            ("docs", True, None), ("texts", True, None), ("tree", True, None),
        ]  # fmt: skip
        listed = client.list_artifacts(run_id, "tree")
        assert [(f.path, f.is_dir, f.file_size) for f in listed] == [
            ("tree/a.txt", False, 1), ("tree/sub", True, None),
        ]  # fmt: skip
        assert client.list_artifacts(run_id, "tree/a.txt") == []  # a file lists as nothing
        got = client.download_artifacts(run_id, "docs/notes.txt", str(tmp_path / "dl"))
        assert Path(got).read_text() == "hello s3"
        folder = Path(client.download_artifacts(run_id, "tree", str(tmp_path / "dl2")))
        assert (folder / "sub" / "b.json").read_text() == '{"b": 1}'
        with pytest.raises(mlrelay.NotFoundError):
            client.download_artifacts(run_id, "docs/missing.txt", str(tmp_path / "dl3"))


def test_mlflow_and_mlrelay_read_each_others_files(direct: ProdServer, tmp_path: Path) -> None:
    """MLflow's MlflowClient lists and downloads what mlrelay uploaded (same paths, sizes,
    bytes), and mlrelay lists and downloads what MLflow's client uploaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow

    blob = tmp_path / "w.bin"
    blob.write_bytes(os.urandom(300_000))
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("written by MLflow")
    with mlrelay.Client(tracking_uri=direct.url) as client:
        run_id, _ = _new_run(client)
        client.log_artifact(run_id, str(blob), "weights")
        client.log_artifacts(run_id, str(_tree(tmp_path)), "tree")
        mlflow_client = mlflow.MlflowClient(tracking_uri=direct.url)
        ours = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "tree")]
        listed = mlflow_client.list_artifacts(run_id, "tree")
        assert [(f.path, f.is_dir, f.file_size) for f in listed] == ours
        got = mlflow_client.download_artifacts(run_id, "weights/w.bin", str(tmp_path / "m"))
        assert _digest(Path(got)) == _digest(blob)
        got = mlflow_client.download_artifacts(run_id, "tree", str(tmp_path / "m2"))
        assert (Path(got) / "sub" / "b.json").read_text() == '{"b": 1}'

        mlflow_client.log_artifact(run_id, str(theirs), "from-mlflow")
        assert [f.path for f in client.list_artifacts(run_id, "from-mlflow")] == [
            "from-mlflow/theirs.txt"
        ]
        back = client.download_artifacts(run_id, "from-mlflow", str(tmp_path / "r"))
        assert (Path(back) / "theirs.txt").read_text() == "written by MLflow"


def _iris_model() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y), X


def test_a_model_is_stored_in_s3_and_loads_with_mlrelay_and_mlflow(
    direct: ProdServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """log_model uploads the logged model's files to its s3:// location; mlrelay's and
    MLflow's pyfunc.load_model load it by models:/<id> and predict as the original."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.pyfunc

    model, X = _iris_model()
    expected = model.predict(X[:5]).tolist()
    with mlrelay.Client(tracking_uri=direct.url) as client:
        run_id, _ = _new_run(client)
        info = client.log_model(run_id, model, "model")
        assert info.model_id is not None
        location = str(client.get_logged_model(info.model_id).artifact_location)
        assert location.startswith(f"{direct.artifact_root}/")
        assert "/models/" in location
        stored = _keys(direct, _prefix(direct, location))
        assert {"MLmodel", "requirements.txt"} <= stored
        assert "model/MLmodel" in {f.path for f in client.list_artifacts(run_id, "model")}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", direct.url)
    loaded = mlrelay.pyfunc.load_model(info.model_uri)
    assert loaded.predict(X[:5]).tolist() == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert mlflow.pyfunc.load_model(info.model_uri).predict(X[:5]).tolist() == expected


OFFLINE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mlrelay
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    work = Path(sys.argv[1])
    X, y = load_iris(return_X_y=True)
    mlrelay.set_experiment(sys.argv[2])
    with mlrelay.start_run() as run:
        mlrelay.log_artifact(work / "tree" / "a.txt", "docs")
        mlrelay.log_artifacts(work / "tree", "tree")
        mlrelay.log_text("offline", "texts/t.txt")
        mlrelay.sklearn.log_model(LogisticRegression(max_iter=300).fit(X, y), name="model")
    """
)


def test_offline_artifacts_and_models_are_synced_to_s3(
    direct: ProdServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files, a folder and a model logged offline are journaled; `mlrelay sync` creates the
    run and uploads every one of them straight to its s3:// location."""
    home = tmp_path / "home"
    experiment = f"s3-offline-{uuid.uuid4().hex[:8]}"
    _tree(tmp_path)
    env = child_env(MLRELAY_HOME=str(home), MLFLOW_TRACKING_URI=direct.url, MLRELAY_MODE="offline")
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE, str(tmp_path), experiment],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(180),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.setenv("MLRELAY_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", direct.url)
    assert cli.main(["sync"]) == 0
    with mlrelay.Client(tracking_uri=direct.url) as client:
        experiment_id = client.get_experiment_by_name(experiment).experiment_id  # type: ignore[union-attr]
        [run] = list(client.search_runs([experiment_id]))
        assert run.info.status == "FINISHED"
        assert _keys(direct, _prefix(direct, str(run.info.artifact_uri))) == {
            "docs/a.txt", "tree/a.txt", "tree/sub/b.json", "texts/t.txt",
        }  # fmt: skip
        [model] = client.search_logged_models([experiment_id])
        assert model.status.name == "READY"
        assert "MLmodel" in _keys(direct, _prefix(direct, str(model.artifact_location)))
        got = client.download_artifacts(run.info.run_id, "texts/t.txt", str(tmp_path / "dl"))
        assert Path(got).read_text() == "offline"


def test_a_large_file_goes_in_parts_and_a_lost_part_is_sent_again(
    direct: ProdServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With MLRELAY_S3_MULTIPART_THRESHOLD=1M a 6 MiB file goes as a multipart upload
    (5 MiB parts: two); when the answer to one part is lost, botocore sends that part again,
    not the file; the object assembles from two parts and downloads intact."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((6 << 20) + 1))
    monkeypatch.setenv("MLRELAY_S3_MULTIPART_THRESHOLD", "1M")
    monkeypatch.setenv("MLRELAY_S3_MULTIPART_CHUNKSIZE", "5M")
    with lossy_proxy(direct.s3.endpoint) as proxy:
        monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", proxy.url)
        with mlrelay.Client(tracking_uri=direct.url) as client:
            run_id, root = _new_run(client)
            proxy.lose_response("PUT", "big.bin", times=1)
            client.log_artifact(run_id, str(big), "weights")
            puts = [p for m, p, _ in proxy.forwarded if m == "PUT" and "big.bin" in p]
            assert proxy.dropped("big.bin") == 1
            assert len(puts) == 3  # two parts, one of them twice
            assert all("partNumber=" in p for p in puts)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", direct.s3.endpoint)
    with mlrelay.Client(tracking_uri=direct.url) as client:  # downloads in ranged parts too
        got = client.download_artifacts(run_id, "weights/big.bin", str(tmp_path / "dl"))
    head = direct.s3_client().head_object(
        Bucket=direct.bucket, Key=_prefix(direct, root) + "weights/big.bin"
    )
    assert head["ETag"].strip('"').endswith("-2")  # S3's mark of an object made of 2 parts
    assert head["ContentLength"] == big.stat().st_size
    assert _digest(Path(got)) == _digest(big)


def test_without_boto3_an_s3_run_names_the_extra_to_install(
    direct: ProdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When boto3 cannot be imported, uploading to, listing or downloading from an s3:// run
    raises MissingExtraError (a ConfigurationError) naming `pip install 'mlrelay[s3]'` and the
    run's location; nothing is half done."""
    data = tmp_path / "a.txt"
    data.write_text("a")
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` now fails
    with mlrelay.Client(tracking_uri=direct.url) as client:
        run_id, root = _new_run(client)
        with pytest.raises(mlrelay.MissingExtraError) as info:
            client.log_artifact(run_id, str(data))
        assert "pip install 'mlrelay[s3]'" in str(info.value)
        assert root in str(info.value)
        assert (info.value.extra, info.value.package) == ("s3", "boto3")
        assert isinstance(info.value, mlrelay.ConfigurationError)
        with pytest.raises(mlrelay.MissingExtraError, match=r"mlrelay\[s3\]"):
            client.list_artifacts(run_id)
        with pytest.raises(mlrelay.MissingExtraError, match=r"mlrelay\[s3\]"):
            client.download_artifacts(run_id, "", str(tmp_path / "dl"))


SECRET = "Sup3r-S3cret-never-shown-9f2c"
EXTRA_SECRET = "SSE-key-never-shown-41d7"


def test_aws_secret_and_upload_arguments_never_reach_errors_or_logs(
    direct: ProdServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a distinctive AWS secret key and upload arguments holding a secret: a missing
    bucket (NotFoundError), an endpoint that refuses connections (APIConnectionError) and an
    upload argument boto3 does not take (ConfigurationError) each say what went wrong and
    where, and no secret is in any message, repr or the settings; the AWS secret is in no log
    record at DEBUG (every logger, botocore's included), the upload arguments in none of
    mlrelay's."""
    data = tmp_path / "a.txt"
    data.write_text("a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", f'{{"Metadata": {{"k": "{EXTRA_SECRET}"}}}}')
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with mlrelay.Client(tracking_uri=direct.url) as client:
        assert EXTRA_SECRET not in repr(client.settings)
        missing = client.create_experiment(f"nb-{uuid.uuid4().hex[:8]}", "s3://no-such-bucket/x")
        run_id = client.create_run(missing).info.run_id
        with pytest.raises(mlrelay.NotFoundError, match="s3://no-such-bucket/") as info:
            client.log_artifact(run_id, str(data))
        errors.append(info.value)
        good_run, _ = _new_run(client)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with mlrelay.Client(tracking_uri=direct.url) as client:
        with pytest.raises(mlrelay.APIConnectionError, match="cannot connect") as conn:
            client.log_artifact(good_run, str(data))
        errors.append(conn.value)
        assert conn.value.request_sent is False
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", f'{{"Token": "{EXTRA_SECRET}"}}')
    with mlrelay.Client(tracking_uri=direct.url) as client:
        with pytest.raises(mlrelay.ConfigurationError, match="Token") as bad:
            client.log_artifact(good_run, str(data))
        errors.append(bad.value)
    for error in errors:
        for text in (str(error), repr(error), repr(error.__cause__)):
            assert SECRET not in text
            assert EXTRA_SECRET not in text
    assert any(r.name.startswith("botocore") for r in caplog.records)  # it did log, at DEBUG
    assert SECRET not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mlrelay")]
    assert not [m for m in ours if EXTRA_SECRET in m or SECRET in m]
