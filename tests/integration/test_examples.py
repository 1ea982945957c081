"""The examples run green against the mock server and a real MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlrelay
from tests._servers import RunningServer
from tests._timing import deadline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(
    script: str, uri: str | None, *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    # The developer's MLflow and mlrelay settings stay out; the test's MLRELAY_HOME stays in,
    # as do HOME and the XDG dirs (all temporary): an example never journals into the real
    # ~/.local/share/mlrelay.
    env = {
        k: v
        for k, v in os.environ.items()
        if k == "MLRELAY_HOME" or not k.startswith(("MLFLOW_", "MLRELAY_"))
    }
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        check=False,
    )


def test_quickstart_against_the_mock_server() -> None:
    """examples/quickstart.py logs and reads back a run on the bundled mock server."""
    from mlrelay_mock import MockServer

    with MockServer() as server:
        result = _run("quickstart.py", server.url)
    assert result.returncode == 0, result.stderr
    assert "status FINISHED" in result.stdout
    assert "Loss history    : 20 points" in result.stdout


@pytest.mark.real
def test_quickstart_against_a_real_server(mlflow_real: RunningServer) -> None:
    """The same script lands the same run on a real MLflow server."""
    result = _run("quickstart.py", mlflow_real.url)
    assert result.returncode == 0, result.stderr
    assert "'epochs': '20'" in result.stdout
    assert "Loss history    : 20 points" in result.stdout


def test_demo_command_runs() -> None:
    """`make demo`'s script starts the mock server, runs the quickstart and exits 0."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=deadline(120),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Started a bundled mock server" in result.stdout
    assert "dagshub.com" in result.stdout


def test_sklearn_grid_example_against_the_mock(tmp_path: Path) -> None:
    """The tutorial grid (import swapped) logs four nested runs with curves to the mock."""
    from mlrelay_mock import MockServer

    with MockServer() as server:
        result = _run("sklearn_grid.py", server.url, MLRELAY_HOME=str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "4 runs logged; best:" in result.stdout
        with mlrelay.Client(tracking_uri=server.url) as c:
            exp = c.get_experiment_by_name("sklearn-grid")
            assert exp is not None
            runs = list(c.search_runs([exp.experiment_id]))
            assert len(runs) == 5
            child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags_dict)
            assert len(c.get_metric_history(child.info.run_id, "val_loss")) == 30


def test_ci_example_configured_only_by_environment(tmp_path: Path) -> None:
    """MLFLOW_TRACKING_URI and MLFLOW_EXPERIMENT_NAME alone direct the CI example."""
    from mlrelay_mock import MockServer

    with MockServer() as server:
        result = _run(
            "ci_env.py",
            server.url,
            MLFLOW_EXPERIMENT_NAME="nightly-benchmarks",
            MLRELAY_HOME=str(tmp_path),
        )
        assert result.returncode == 0, result.stderr
        assert "delivered=True" in result.stdout
        with mlrelay.Client(tracking_uri=server.url) as c:
            exp = c.get_experiment_by_name("nightly-benchmarks")
            assert exp is not None
            [run] = list(c.search_runs([exp.experiment_id]))
        assert run.data.tags_dict["ci.job"] == "local"


def test_dagshub_init_example_against_a_mock_posing_as_dagshub(tmp_path: Path) -> None:
    """init(owner, repo) with DAGSHUB_CLIENT_HOST and DAGSHUB_USER_TOKEN, as a user would."""
    from mlrelay_mock import AuthConfig, MockServer

    auth = AuthConfig(basic={"ann": "tok-1"})
    with MockServer(prefix="/ann/demo.mlflow", auth=auth) as server:
        host = server.url.split("/ann/")[0]
        result = _run(
            "dagshub_init.py",
            None,
            "ann",
            "demo",
            "--username",
            "ann",
            DAGSHUB_CLIENT_HOST=host,
            DAGSHUB_USER_TOKEN="tok-1",
            MLRELAY_HOME=str(tmp_path),
        )
    assert result.returncode == 0, result.stderr
    assert "delivered=True" in result.stdout
    assert "tok-1" not in result.stdout + result.stderr


def test_end_to_end_against_the_mock_server() -> None:
    """examples/end_to_end.py: params, metrics, figure, dataset, model, registry, champion."""
    from mlrelay_mock import MockServer

    with MockServer() as server:
        result = _run("end_to_end.py", server.url)
        assert result.returncode == 0, result.stderr
        # It journaled into this test's temporary MLRELAY_HOME, not the user's data dir.
        assert (Path(os.environ["MLRELAY_HOME"]) / "journal.db").exists()
        assert "(Production, alias champion)" in result.stdout
        assert "same as trained: True" in result.stdout
        with mlrelay.Client(tracking_uri=server.url) as client:
            exp = client.get_experiment_by_name("end-to-end")
            assert exp is not None
            [run] = list(client.search_runs([exp.experiment_id]))
            assert {f.path for f in client.list_artifacts(run.info.run_id, "plots")} == {
                "plots/confusion_matrix.png"
            }
            assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["wine-train"]  # type: ignore[union-attr]
            assert set(run.data.metrics_dict) == {"accuracy", "f1_macro"}


@pytest.mark.real
def test_end_to_end_against_a_real_server(mlflow_real: RunningServer) -> None:
    """The same story on a real MLflow server."""
    result = _run("end_to_end.py", mlflow_real.url)
    assert result.returncode == 0, result.stderr
    assert "same as trained: True" in result.stdout
