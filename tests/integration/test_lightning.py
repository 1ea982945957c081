"""PyTorch Lightning: mlrelay's MLFlowLogger against Lightning's own, training the same tiny
model on CPU against a real ``mlflow server``; and training with the server down."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import mlrelay
from tests._frameworks import train_with_server_down
from tests._servers import RunningServer
from tests._timing import deadline

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
pytest.importorskip("mlflow")

# Lightning's and torch's own warnings about this tiny setup are not the subject here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*treespec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:lightning"),
    pytest.mark.filterwarnings("ignore::UserWarning:torch"),
]

STEPS = 24
TRAIN = textwrap.dedent(
    """
    import torch, lightning as L
    torch.set_num_threads(1)

    class Tiny(L.LightningModule):
        def __init__(self, lr=0.01, widths=(32, 1), optim={"name": "sgd", "momentum": 0.0}):
            super().__init__()
            self.save_hyperparameters()
            self.lin = torch.nn.Linear(32, 1)
        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.lin(x), y)
            self.log("train/loss", loss)
            self.log("lr x", 0.01)  # a key Lightning's logger cleans
            return loss
        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.lin(x), y))
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train(logger, steps, root, checkpoints=False):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(steps * 8, 32, generator=g), torch.randn(steps * 8, 1, generator=g)
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
        callbacks = []
        if checkpoints:
            callbacks.append(L.pytorch.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=1))
        trainer = L.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1,
                            enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=checkpoints, callbacks=callbacks,
                            limit_train_batches=steps // 2, limit_val_batches=2,
                            accelerator="cpu", devices=1, default_root_dir=root)
        trainer.fit(Tiny(), data, data)
    """
)


def _train(logger: Any, root: Path, *, checkpoints: bool = False) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(TRAIN, "train.py", "exec"), namespace)
    namespace["train"](logger, STEPS, str(root), checkpoints)


def _landed(client: Any, run_id: str) -> dict[str, Any]:
    """What the server holds of a run: params, each metric's steps, tags, status, artifacts."""
    run = client.get_run(run_id)
    return {
        "params": run.data.params,
        "steps": {
            key: sorted(m.step for m in client.get_metric_history(run_id, key))
            for key in run.data.metrics
        },
        "run_name": run.data.tags.get("mlflow.runName"),
        "status": run.info.status,
        "artifacts": sorted(
            (f.path, sorted(g.path for g in client.list_artifacts(run_id, f.path)))
            for f in client.list_artifacts(run_id)
        ),
    }


@pytest.fixture
def stock_and_ours(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same training logged by Lightning's MLFlowLogger and by mlrelay's, as landed."""
    import mlflow
    from lightning.pytorch.loggers import MLFlowLogger as StockLogger
    from mlflow.tracking._tracking_service import utils

    # Lightning's logger calls mlflow.set_tracking_uri, a global of MLflow's that would
    # outlive this test (later tests use MLflow's client with MLFLOW_TRACKING_URI): the
    # value it had is put back afterwards.
    monkeypatch.setattr(utils, "_tracking_uri", utils._tracking_uri)

    from mlrelay.integrations.lightning import MLFlowLogger

    tags = {"team": "vision"}
    stock = StockLogger("stock", "same-run", mlflow_real.url, dict(tags), log_model=True)
    _train(stock, tmp_path / "stock", checkpoints=True)
    ours = MLFlowLogger("ours", "same-run", mlflow_real.url, dict(tags), log_model=True)
    _train(ours, tmp_path / "ours", checkpoints=True)
    assert mlrelay.flush(deadline(60))
    client = mlflow.MlflowClient(mlflow_real.url)
    return _landed(client, stock.run_id), _landed(client, ours.run_id)


def test_the_same_params_keys_steps_and_checkpoints_land_as_with_lightnings_logger(
    stock_and_ours: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Same params (flattened the same way), metric keys (cleaned the same way) and steps,
    run name, status, and checkpoint artifacts (file, metadata.yaml, aliases.txt)."""
    stock, ours = stock_and_ours
    assert ours["params"] == stock["params"]
    assert "optim/name" in ours["params"]
    assert ours["steps"] == stock["steps"]
    assert set(ours["steps"]) >= {"train/loss", "lr x", "val_loss", "epoch"}
    assert ours["run_name"] == stock["run_name"] == "same-run"
    assert ours["status"] == stock["status"] == "FINISHED"
    assert ours["artifacts"] == stock["artifacts"]
    assert ours["artifacts"], "a checkpoint was logged"


def test_the_logger_never_makes_the_run_active_and_logs_from_rank_zero_only(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logger's run is not the active run of the code around the trainer; on a rank
    other than 0 nothing is journaled."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from mlrelay.integrations.lightning import MLFlowLogger

    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run() as outer:
        logger = MLFlowLogger("active", tracking_uri=mlflow_real.url)
        _train(logger, tmp_path)
        active = mlrelay.active_run()
        assert active is not None
        assert active.info.run_id == outer.info.run_id
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    other = MLFlowLogger("rank1", tracking_uri=mlflow_real.url)
    other.log_metrics({"x": 1.0}, step=0)
    assert other._handle is None


def test_every_call_drops_strings_and_cleans_keys_as_lightnings_logger_does(
    mlflow_real: RunningServer,
) -> None:
    """Every call, not only the first, drops string values and cleans unsafe keys with a
    warning each time, as Lightning's logger does; every number lands at its step."""
    from mlrelay.integrations.lightning import MLFlowLogger

    logger = MLFlowLogger("cleaning", tracking_uri=mlflow_real.url)
    calls = [
        {"loss": 1.0, "epoch": 0},
        {"loss": 2.0, "epoch": 0, "note": "text"},
        {"loss": 3.0, "epoch": 1, "acc(top1)": 0.5},
        {"loss": "4.0", "epoch": 1},  # a string under a key logged before: dropped too
        {"loss": 5.0, "epoch": 2},
    ]
    told = []
    for step, metrics in enumerate(calls):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logger.log_metrics(metrics, step=step)
        told.append([str(w.message) for w in caught])
    assert told == [
        [],
        ["Discarding metric with string value note=text."],
        [
            "MLFlow only allows '_', '/', '.' and ' ' special characters in metric name. "
            "Replacing acc(top1) with acctop1."
        ],
        ["Discarding metric with string value loss=4.0."],
        [],
    ]
    logger.finalize()
    assert mlrelay.flush(60)
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        run_id = logger.run_id
        history = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            for key in ("loss", "epoch", "acctop1", "note")
        }
        assert client.get_run(run_id).info.status == "FINISHED"
    assert history == {
        "loss": [(0, 1.0), (1, 2.0), (2, 3.0), (4, 5.0)],
        "epoch": [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0), (4, 2.0)],
        "acctop1": [(2, 0.5)],
        "note": [],
    }


def test_synchronous_true_delivers_each_call_before_it_returns(
    mlflow_real: RunningServer,
) -> None:
    """``synchronous=True`` (Lightning's default for its own logger) waits for delivery in
    each call: the hyperparameters, each step's metrics and the run's end are on the
    server when the call returns, with no flush."""
    from mlrelay.integrations.lightning import MLFlowLogger

    logger = MLFlowLogger("synchronous", tracking_uri=mlflow_real.url, synchronous=True)
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        logger.log_hyperparams({"lr": 0.1, "optim": {"name": "sgd"}})
        run_id = logger.run_id
        assert client.get_run(run_id).data.params == {"lr": "0.1", "optim/name": "sgd"}
        for step in range(3):
            logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            landed = [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")]
            assert sorted(landed) == [(i, 1.0 / (i + 1)) for i in range(step + 1)]
        logger.finalize("success")
        assert client.get_run(run_id).info.status == "FINISHED"


_DOWN = textwrap.dedent(
    """
    import os, sys, time
    from mlrelay.integrations.lightning import MLFlowLogger
    exec(open(sys.argv[1]).read())
    t = time.perf_counter()
    logger = MLFlowLogger("down", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    train(logger, int(sys.argv[2]), sys.argv[3])
    print("FIT", time.perf_counter() - t, logger.run_id, flush=True)
    """
)


@pytest.mark.parametrize("down", ["refused", "never answers"])
def test_with_the_server_down_training_runs_through_and_sync_lands_every_point(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, down: str
) -> None:
    """Against a closed port, or a socket that accepts and never answers, training starts
    at once and completes (Lightning's own logger blocks for minutes there); ``mlrelay sync``
    then lands every point once on the real server."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    args = [str(script), str(STEPS), str(tmp_path)]
    run_id = train_with_server_down(down, _DOWN, args, tmp_path, monkeypatch, mlflow_real.url)
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        _check_landed(client, run_id)


def _check_landed(client: mlrelay.MlflowClient, run_id: str) -> None:
    [landed] = client.search_runs(
        [client.get_experiment_by_name("down").experiment_id], order_by=["start_time DESC"]
    )[:1]
    steps = [m.step for m in client.get_metric_history(landed.info.run_id, "train/loss")]
    assert sorted(steps) == list(range(STEPS))
    assert landed.info.status == "FINISHED"
    assert run_id  # the local id the logger handed out while the server was down
