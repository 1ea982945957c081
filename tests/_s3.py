"""An S3-compatible object store on loopback for the suite: moto's server in a child process.

``moto_server`` starts ``moto_server`` (moto[server], a test dependency) on 127.0.0.1 with a
free port, makes the named buckets, and yields the endpoint and the credentials a client
needs (moto accepts any). Its state lives in the process and is gone when it stops.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._servers import free_port, spawn_logged, stop_process, wait_until_healthy
from tests._timing import deadline

__all__ = ["S3Store", "moto_server"]


@dataclass(frozen=True)
class S3Store:
    """A running moto server: its endpoint and the environment a boto3 client needs."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """``MLFLOW_S3_ENDPOINT_URL`` and fixed test credentials (moto accepts any)."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@contextlib.contextmanager
def moto_server(workdir: Path, buckets: tuple[str, ...] = ("mlrelay-test",)) -> Iterator[S3Store]:
    """Run moto's S3 server on 127.0.0.1 with ``buckets`` created; stop it afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"moto-{port}.log"
    moto_bin = Path(sys.executable).with_name("moto_server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    process = spawn_logged(
        [str(moto_bin), "-H", "127.0.0.1", "-p", str(port)], log_path, cwd=workdir, env=env
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(endpoint, process, deadline(60), path="/moto-api/")
        for bucket in buckets:  # S3's CreateBucket: a PUT on the bucket (moto needs no signature)
            httpx.put(f"{endpoint}/{bucket}", timeout=deadline(10)).raise_for_status()
        yield S3Store(endpoint=endpoint, process=process, log_path=log_path)
    finally:
        stop_process(process)
