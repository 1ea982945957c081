"""The mock never fails on what a real server must not take: NUL bytes in artifact paths
(escaped as MLflow 3 does, or a 400) and request bodies over its size limit (413)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from mlrelay_mock import MockServer

from tests._timing import deadline

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_nul_byte_in_an_artifact_path_is_never_a_500(tmp_path: Path, on_disk: bool) -> None:
    """A NUL byte in an artifact path: MLflow 3 escapes it (the file is ``a%00b.txt``, as
    MLflow 3.17's validate_path_is_safe makes it); the 2.7 profile, where MLflow 2.7 crashes
    with a 500, refuses it with a 400. Never a 500, in both artifact stores."""
    for version in ("3.17.2", "2.7.1"):
        data_dir = tmp_path / version if on_disk else None
        with (
            MockServer(data_dir=data_dir, mlflow_version=version) as server,
            httpx.Client(base_url=server.url, timeout=deadline(30)) as client,
        ):
            bad = f"{ARTIFACTS}/0/r/artifacts/a%00b.txt"
            put = client.put(bad, content=b"x")
            listing = client.get(ARTIFACTS, params={"path": "0/r\x00/artifacts"})
            if version.startswith("3"):
                assert put.status_code == 200, put.text
                assert client.get(bad).content == b"x"
                files = client.get(ARTIFACTS, params={"path": "0/r/artifacts"}).json()["files"]
                assert files == [{"path": "a%00b.txt", "is_dir": False, "file_size": 1}]
                assert (listing.status_code, listing.json()) == (200, {})
                continue
            assert put.status_code == 400, put.text
            assert "NUL" in put.text
            assert client.get(bad).status_code == 400
            assert listing.status_code == 400
            assert listing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            ok = client.put(f"{ARTIFACTS}/0/r/artifacts/ab.txt", content=b"x")
            assert ok.status_code == 200


def test_a_body_over_the_limit_is_a_413() -> None:
    """A JSON body one byte over the limit is refused with 413; one at the limit is served."""
    with (
        MockServer(max_body_bytes=4096) as server,
        httpx.Client(base_url=server.url, timeout=deadline(30)) as client,
    ):

        def body(size: int) -> bytes:
            head = b'{"name": "'
            tail = b'"}'
            return head + b"e" * (size - len(head) - len(tail)) + tail

        headers = {"Content-Type": "application/json"}
        over = client.post(API + "experiments/create", content=body(4097), headers=headers)
        assert over.status_code == 413
        assert over.json()["error_code"] == "BAD_REQUEST"
        assert "4097" in over.json()["message"]
        # A chunked body (no Content-Length) is measured as it arrives.
        chunked = client.post(
            API + "experiments/create",
            content=iter([body(4097)[:2000], body(4097)[2000:]]),
            headers=headers,
        )
        assert chunked.status_code == 413
        at_limit = client.post(API + "experiments/create", content=body(4096), headers=headers)
        assert at_limit.status_code == 400  # served: the name is too long for MLflow
        ok = client.post(API + "experiments/create", content=b'{"name": "fits"}', headers=headers)
        assert ok.status_code == 200, ok.text
        assert client.get(
            API + "experiments/get-by-name", params={"experiment_name": "fits"}
        ).json()


def test_the_default_limit_takes_the_largest_mlflow_batch() -> None:
    """By default a full log-batch (800 metrics, 100 long params, 100 long tags) is served."""
    with (
        MockServer() as server,
        httpx.Client(base_url=server.url, timeout=deadline(30)) as client,
    ):
        run = client.post(API + "runs/create", json={"experiment_id": "0", "start_time": 1}).json()
        run_id = run["run"]["info"]["run_id"]
        batch = {
            "run_id": run_id,
            "metrics": [
                {"key": f"m{i % 10}", "value": i, "timestamp": i, "step": i} for i in range(800)
            ],
            "params": [{"key": f"p{i}", "value": "v" * 6000} for i in range(100)],
            "tags": [{"key": f"t{i}", "value": "v" * 8000} for i in range(100)],
        }
        answer = client.post(
            API + "runs/log-batch",
            content=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text[:300]


def test_artifact_uploads_are_not_limited() -> None:
    """An artifact upload larger than the body limit streams to storage as on MLflow's server."""
    with (
        MockServer(max_body_bytes=1024) as server,
        httpx.Client(base_url=server.url, timeout=deadline(30)) as client,
    ):
        path = f"{ARTIFACTS}/0/r/artifacts/big.bin"
        assert client.put(path, content=b"x" * 100_000).status_code == 200
        assert len(client.get(path).content) == 100_000
