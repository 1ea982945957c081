"""The production-shaped servers themselves: PostgreSQL behind four workers, artifacts in S3.

These check the fixtures, so that a test run against ``mlflow_prod`` really exercises
PostgreSQL, several server processes and an S3 bucket (and not a sqlite file, one process
and a local directory that would pass the same tests).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

import mlrelay
from tests._timing import deadline
from tests.conftest import PROD_WORKERS, ProdServer

pytestmark = pytest.mark.real


def _workers(server: ProdServer) -> list[psutil.Process]:
    """The processes that listen on the server's port and whose parent does too: the
    workers, without the supervisor that opened the socket and started them."""
    tree = psutil.Process(server.server.process.pid).children(recursive=True)
    listening = {
        p.pid: p
        for p in tree
        if any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == server.server.port
            for c in p.net_connections("tcp")
        )
    }
    return [p for p in listening.values() if p.ppid() in listening]


def test_four_workers_serve_runs_kept_in_postgresql(mlflow_prod: ProdServer) -> None:
    """Four worker processes listen on the server's port (the uvicorn supervisor behind
    ``--workers 4``), and a run created over HTTP is a row of the server's PostgreSQL database."""
    workers = _workers(mlflow_prod)
    assert len(workers) == PROD_WORKERS, [w.cmdline() for w in workers]
    with mlrelay.Client(tracking_uri=mlflow_prod.url) as client:
        run = client.create_run("0", run_name="in-postgres")
    conn = mlflow_prod.postgres.connect(mlflow_prod.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM runs WHERE run_uuid = %s", (run.info.run_id,))
            assert cur.fetchall() == [("in-postgres",)]
    finally:
        conn.close()


def test_proxied_artifacts_are_objects_in_the_bucket(
    mlflow_prod: ProdServer, tmp_path: Path
) -> None:
    """mlrelay's log_artifact through the proxy makes an object under ``s3://<bucket>/proxied``
    with the file's bytes, and what is put into the bucket is what the proxy serves."""
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01 through S3")
    with mlrelay.Client(tracking_uri=mlflow_prod.url) as client:
        run = client.create_run("0")
        client.log_artifact(run.info.run_id, str(tmp_path / "weights.bin"), "model")
    root = str(run.info.artifact_uri).removeprefix("mlflow-artifacts:/").strip("/")
    key = f"{mlflow_prod.prefix}/{root}/model/weights.bin"
    assert key in mlflow_prod.object_keys()
    assert mlflow_prod.read_object(key) == b"\x00\x01 through S3"
    # And the other way: an object put into the bucket is what the proxy serves.
    direct_key = f"{mlflow_prod.prefix}/{root}/model/put-by-boto3.txt"
    mlflow_prod.s3_client().put_object(Bucket=mlflow_prod.bucket, Key=direct_key, Body=b"S3")
    served = httpx.get(
        f"{mlflow_prod.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model/put-by-boto3.txt",
        timeout=deadline(30),
    )
    assert (served.status_code, served.content) == (200, b"S3")


def test_direct_mode_hands_out_s3_locations_mlflow_writes_to(
    mlflow_prod_direct: ProdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--no-serve-artifacts`` a run's artifact URI is ``s3://<bucket>/direct/...`` and
    MLflow's own client (MLFLOW_S3_ENDPOINT_URL and the credentials in the environment) writes
    the file straight into the bucket, where it is found with the file's bytes."""
    from mlflow import MlflowClient

    for name, value in mlflow_prod_direct.s3_env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "notes.txt").write_text("written by MLflow itself")
    client = MlflowClient(tracking_uri=mlflow_prod_direct.url)
    run = client.create_run("0")
    location = run.info.artifact_uri
    assert location.startswith(f"{mlflow_prod_direct.artifact_root}/"), location
    client.log_artifact(run.info.run_id, str(tmp_path / "notes.txt"), "docs")
    key = f"{location.removeprefix(f's3://{mlflow_prod_direct.bucket}/')}/docs/notes.txt"
    assert key in mlflow_prod_direct.object_keys()
    assert mlflow_prod_direct.read_object(key) == b"written by MLflow itself"
    # The server moves no bytes in this mode: its artifact proxy answers 503, naming the flag.
    proxied = httpx.get(
        f"{mlflow_prod_direct.url}/api/2.0/mlflow-artifacts/artifacts", timeout=deadline(30)
    )
    assert proxied.status_code == 503
    assert "--no-serve-artifacts" in proxied.text
