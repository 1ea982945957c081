"""Hugging Face Transformers: mlrelay's MLflowCallback against the Trainer's own, training the
same tiny BERT (built from a config, nothing downloaded) on CPU against a real ``mlflow
server``; ``report_to="mlflow"`` after ``install()``; and training with the server down."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import mlrelay
from mlrelay._pipeline import runs
from tests._frameworks import landed, train_with_server_down
from tests._servers import RunningServer
from tests._timing import deadline

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("mlflow")

STEPS = 12
TRAIN = textwrap.dedent(
    """
    import tempfile, torch, transformers
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()

    class Data(torch.utils.data.Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.ids = torch.randint(0, 100, (n, 16), generator=g)
            self.labels = torch.randint(0, 2, (n,), generator=g)
        def __len__(self):
            return len(self.ids)
        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "attention_mask": torch.ones(16, dtype=torch.long),
                    "labels": self.labels[i]}

    def train(steps, out, report_to, callbacks, save=False):
        torch.manual_seed(0)
        config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=37, vocab_size=100, num_labels=2)
        model = BertForSequenceClassification(config)
        args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=8,
                                 logging_steps=1, report_to=report_to, run_name="same-run",
                                 save_strategy="steps" if save else "no", save_steps=steps // 2,
                                 eval_strategy="steps", eval_steps=steps // 2,
                                 disable_tqdm=True, use_cpu=True, seed=0)
        trainer = Trainer(model=model, args=args, train_dataset=Data(steps * 8),
                          eval_dataset=Data(16), callbacks=callbacks)
        trainer.train()
        return trainer
    """
)


def _train(out: Path, report_to: Any, callbacks: list[Any], *, save: bool = False) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(TRAIN, "train.py", "exec"), namespace)
    return namespace["train"](STEPS, str(out), report_to, callbacks, save)


@pytest.fixture
def mlflow_globals(monkeypatch: pytest.MonkeyPatch) -> Any:
    """MLflow's own module, its process-wide active experiment put back afterwards (the
    Trainer's callback calls ``mlflow.set_experiment``; later tests use MLflow's client)."""
    import mlflow
    from mlflow.tracking import fluent as mlflow_fluent

    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    return mlflow


def test_the_same_params_keys_steps_and_tags_land_as_with_the_trainers_callback(
    mlflow_real: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlflow_globals: Any,
) -> None:
    """Same params (model config and training arguments), metric keys, steps and loss
    values, run name, tags from MLFLOW_TAGS and status as ``report_to="mlflow"``; the
    run is not left active."""
    mlflow = mlflow_globals
    from mlrelay.integrations.transformers import MLflowCallback

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    monkeypatch.setenv("MLFLOW_TAGS", '{"team": "nlp"}')
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf-stock")
    _train(tmp_path / "out", ["mlflow"], [])
    stock_run = mlflow.last_active_run()
    assert stock_run is not None
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf-ours")
    _train(tmp_path / "out", "none", [MLflowCallback()])
    assert mlrelay.active_run() is None
    ours_run = mlrelay.last_active_run()
    assert ours_run is not None
    assert mlrelay.flush(deadline(60))
    client = mlflow.MlflowClient(mlflow_real.url)
    stock = landed(client, stock_run.info.run_id, "loss")
    ours = landed(client, runs.server_id(ours_run.info.run_id), "loss")
    # (report_to is the one argument the two trainings differ in: "none" and ["mlflow"])
    assert ours["params"].pop("report_to") == "[]"
    assert stock["params"].pop("report_to") == "['mlflow']"
    assert ours["params"] == stock["params"]
    assert {"hidden_size", "learning_rate", "run_name"} <= set(ours["params"])
    assert ours["steps"] == stock["steps"]
    assert {"loss", "grad_norm", "eval_loss", "train_runtime"} <= set(ours["steps"])
    assert ours["steps"]["loss"] == list(range(1, STEPS + 1))
    assert ours["values"] == stock["values"]
    assert ours["run_name"] == stock["run_name"] == "same-run"
    assert ours["tags"]["team"] == stock["tags"]["team"] == "nlp"
    assert ours["status"] == stock["status"] == "FINISHED"
    ours_landed = client.get_run(runs.server_id(ours_run.info.run_id))
    assert client.get_experiment(ours_landed.info.experiment_id).name == "hf-ours"


def test_install_makes_report_to_mlflow_use_mlrelays_callback_and_checkpoints_land(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``install()``, ``report_to="mlflow"`` builds mlrelay's callback (not the
    Trainer's); with HF_MLFLOW_LOG_ARTIFACTS each checkpoint lands under
    ``checkpoint-<step>/``; logging into a run the user started leaves it active."""
    from transformers.integrations import integration_utils

    import mlrelay.integrations.transformers as hf

    monkeypatch.setitem(integration_utils.INTEGRATION_TO_CALLBACK, "mlflow", None)
    hf.install()
    monkeypatch.setenv("HF_MLFLOW_LOG_ARTIFACTS", "1")
    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run() as outer:
        trainer = _train(tmp_path / "out", "mlflow", [], save=True)
        assert any(isinstance(c, hf.MLflowCallback) for c in trainer.callback_handler.callbacks)
        active = mlrelay.active_run()
        assert active is not None
        assert active.info.run_id == outer.info.run_id
    assert mlrelay.flush(deadline(60))
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        run_id = runs.server_id(outer.info.run_id)
        saved = sorted(f.path for f in client.list_artifacts(run_id))
        assert saved == sorted([f"checkpoint-{STEPS // 2}", f"checkpoint-{STEPS}"])
        last = f"checkpoint-{STEPS}"
        assert f"{last}/config.json" in {f.path for f in client.list_artifacts(run_id, last)}
        assert client.get_run(run_id).data.params["hidden_size"] == "32"


_DOWN = textwrap.dedent(
    """
    import sys, time
    from mlrelay.integrations.transformers import MLflowCallback
    exec(open(sys.argv[1]).read())
    t = time.perf_counter()
    train(int(sys.argv[2]), sys.argv[3], "none", [MLflowCallback()])
    print("FIT", time.perf_counter() - t, flush=True)
    """
)


@pytest.mark.parametrize("down", ["refused", "never answers"])
def test_with_the_server_down_training_runs_through_and_sync_lands_every_point(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, down: str
) -> None:
    """Against a closed port, or a socket that accepts and never answers, training starts
    at once and completes (the Trainer's own callback blocks for minutes there); ``mlrelay
    sync`` then lands every point once on the real server."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    name = f"hf-down-{down}"
    args = [str(script), str(STEPS), str(tmp_path / "out")]
    train_with_server_down(
        down, _DOWN, args, tmp_path, monkeypatch, mlflow_real.url, MLFLOW_EXPERIMENT_NAME=name
    )
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        [synced] = client.search_runs([experiment.experiment_id])
        steps = [m.step for m in client.get_metric_history(synced.info.run_id, "loss")]
        assert sorted(steps) == list(range(1, STEPS + 1))
        assert synced.info.status == "FINISHED"
        assert synced.data.params["hidden_size"] == "32"
