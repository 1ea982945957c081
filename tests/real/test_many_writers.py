"""Many processes logging into one run on the production-shaped server (PostgreSQL,
``--workers 4``): "nodes" with journals of their own, as on separate machines, and
processes sharing one journal. Rank 0 creates the run; the others get it through
``MLFLOW_RUN_ID``, as distributed launchers pass it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mlrelay
from tests._env import child_env
from tests._timing import deadline
from tests.conftest import ProdServer

pytestmark = [pytest.mark.real, pytest.mark.slow]

WORKER = textwrap.dedent(
    """
    import sys
    import mlrelay
    rank, points = int(sys.argv[1]), int(sys.argv[2])
    with mlrelay.start_run():  # the run in MLFLOW_RUN_ID
        mlrelay.log_param(f"rank{rank}", rank)
        for i in range(points):
            mlrelay.log_metric(f"rank{rank}/loss", 1.0 / (i + 1), step=i)
            mlrelay.log_metric("loss", float(rank), step=rank * points + i)
    assert mlrelay.flush(600), "not delivered"
    """
)


def create_run(url: str, home: Path) -> str:
    """Rank 0: start the shared run in its own process and leave it running; its id."""
    code = (
        "import mlrelay; r = mlrelay.start_run(); mlrelay.log_param('world', 'shared'); "
        "assert mlrelay.flush(120); print(r.info.run_id)"
    )
    env = child_env(MLFLOW_TRACKING_URI=url, MLRELAY_HOME=str(home))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=deadline(120)
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def run_workers(url: str, run_id: str, homes: list[Path], points: int) -> None:
    """One process per home (rank = index), all at once, logging into ``run_id``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(rank), str(points)],
            env=child_env(MLFLOW_TRACKING_URI=url, MLFLOW_RUN_ID=run_id, MLRELAY_HOME=str(home)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank, home in enumerate(homes)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=deadline(600))
        assert proc.returncode == 0, err


def assert_every_point_once(url: str, run_id: str, ranks: int, points: int) -> None:
    """Each rank's own series holds steps 0..points-1 once, the shared series every
    rank's steps once, and every rank's param is there."""
    with mlrelay.Client(tracking_uri=url) as client:
        shared = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
        assert shared == list(range(ranks * points))
        for rank in range(ranks):
            steps = sorted(m.step for m in client.get_metric_history(run_id, f"rank{rank}/loss"))
            assert steps == list(range(points)), rank
        params = client.get_run(run_id).data.params_dict
    assert params == {"world": "shared", **{f"rank{r}": str(r) for r in range(ranks)}}


def test_eight_nodes_log_into_one_run_each_point_once(
    mlflow_prod: ProdServer, tmp_path: Path
) -> None:
    """8 processes, each with its own MLRELAY_HOME (its own journal, as on 8 machines),
    log 2,000 points each into the run rank 0 created: every point lands once."""
    url = mlflow_prod.url
    run_id = create_run(url, tmp_path / "rank0")
    homes = [tmp_path / f"node{r}" for r in range(8)]
    run_workers(url, run_id, homes, 2_000)
    assert_every_point_once(url, run_id, 8, 2_000)


def test_sixteen_processes_share_one_journal_and_one_run(
    mlflow_prod: ProdServer, tmp_path: Path
) -> None:
    """16 processes on one MLRELAY_HOME (one journal) log 1,000 points each into one run:
    every point lands once."""
    url = mlflow_prod.url
    home = tmp_path / "shared-home"
    run_id = create_run(url, home)
    run_workers(url, run_id, [home] * 16, 1_000)
    assert_every_point_once(url, run_id, 16, 1_000)
