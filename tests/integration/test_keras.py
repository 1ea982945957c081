"""Keras 3: ``mlrelay.keras.MlflowCallback`` against MLflow's ``mlflow.keras.MlflowCallback``,
training the same tiny model on CPU (torch backend) against a real ``mlflow server``; the
model logged at the end; and training with the server down."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # (before keras is imported: no TensorFlow)

import mlrelay
from mlrelay._pipeline import runs
from tests._frameworks import landed, train_with_server_down
from tests._servers import RunningServer
from tests._timing import deadline

pytest.importorskip("torch")
pytest.importorskip("keras")
pytest.importorskip("mlflow")

# Keras' torch backend hands metric values over as objects whose __array__ predates NumPy 2's
# copy keyword; NumPy's deprecation warning about it is not the subject here.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

EPOCHS = 3
TRAIN = textwrap.dedent(
    """
    import numpy as np, keras, torch
    torch.set_num_threads(1)

    def train(callbacks, epochs):
        keras.backend.clear_session()  # (layer and optimizer names start again: "adam")
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 8)).astype("float32")
        y = rng.normal(size=(64, 1)).astype("float32")
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
        model.fit(x, y, batch_size=16, epochs=epochs, validation_data=(x[:16], y[:16]),
                  callbacks=callbacks, verbose=0)
        return model
    """
)


def _train(callbacks: list[Any]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(TRAIN, "train.py", "exec"), namespace)
    return namespace["train"](callbacks, EPOCHS)


@pytest.mark.parametrize("every", [None, 2], ids=["every epoch", "every 2 steps"])
def test_the_same_params_keys_and_steps_land_as_with_mlflows_callback(
    mlflow_real: RunningServer, monkeypatch: pytest.MonkeyPatch, every: int | None
) -> None:
    """Same optimizer params, metric keys (validation ones included), steps and loss
    values, and the model summary artifact, as MLflow's own callback, logging every epoch
    or every 2 steps."""
    import mlflow
    import mlflow.keras

    import mlrelay.keras

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_real.url)
    kwargs: dict[str, Any] = {} if every is None else {"log_every_epoch": False}
    kwargs["log_every_n_steps"] = every
    with mlflow.start_run() as stock_run:
        _train([mlflow.keras.MlflowCallback(**kwargs)])
    with mlrelay.start_run() as ours_run:
        _train([mlrelay.keras.MlflowCallback(**kwargs)])
    assert mlrelay.flush(deadline(60))
    client = mlflow.MlflowClient(mlflow_real.url)
    stock = landed(client, stock_run.info.run_id, "loss")
    ours = landed(client, runs.server_id(ours_run.info.run_id), "loss")
    assert ours["params"] == stock["params"]
    assert {"optimizer_learning_rate", "optimizer_name"} <= set(ours["params"])
    assert ours["steps"] == stock["steps"]
    assert {"loss", "mae", "validation_loss"} <= set(ours["steps"])
    assert ("val_loss" in ours["steps"]) == (every is None)  # (in the epochs' logs only)
    assert ours["steps"]["loss"] == (list(range(EPOCHS)) if every is None else [2, 4, 6, 8, 10, 12])
    assert ours["values"] == pytest.approx(stock["values"])
    assert ours["artifacts"] == stock["artifacts"] == ["model_summary.txt"]


@pytest.mark.parametrize("accumulate", [None, 2], ids=["plain", "gradient accumulation"])
def test_each_step_is_the_optimizers_iteration_as_mlflow_reads_it(
    mlflow_real: RunningServer, accumulate: int | None
) -> None:
    """Each batch's points land at the step MLflow's callback reads
    (``optimizer.iterations.numpy()``), with a plain optimizer and with gradient
    accumulation (where ``iterations`` is a tensor computed from the variable, not the
    variable); ``_iteration`` reads every kind of counter: a Keras variable, a tensor, an
    object with only ``__int__``."""
    import keras
    import numpy as np
    import torch

    import mlrelay.keras
    from mlrelay.keras import _iteration

    class Counter:
        def __int__(self) -> int:
            return 5

    assert _iteration(keras.Variable(7, dtype="int64", trainable=False)) == 7
    assert _iteration(torch.tensor(3)) == 3
    assert _iteration(Counter()) == 5

    class Probe(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[int] = []

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps.append(int(np.asarray(self.model.optimizer.iterations)))

    keras.utils.set_random_seed(0)
    x = np.ones((64, 4), dtype="float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=accumulate), loss="mse"
    )
    probe = Probe()
    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run() as run:
        callback = mlrelay.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)
        model.fit(x, x[:, :1], batch_size=8, epochs=2, callbacks=[probe, callback], verbose=0)
    assert mlrelay.flush(deadline(60))
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        history = client.get_metric_history(runs.server_id(run.info.run_id), "loss")
    assert sorted(int(m.step) for m in history) == sorted(probe.steps)
    assert len(probe.steps) == 16
    if accumulate:  # the counter moves every other batch: two batches share each step
        assert probe.steps[:4] == [0, 1, 1, 2]


def test_the_model_is_logged_when_asked_and_loads_with_keras(
    mlflow_real: RunningServer, tmp_path: Path
) -> None:
    """``log_model=True``: ``model/model.keras`` lands and ``keras.saving.load_model``
    reads it back with the trained weights."""
    import keras
    import numpy as np

    import mlrelay.keras

    mlrelay.set_tracking_uri(mlflow_real.url)
    with mlrelay.start_run() as run:
        model = _train([mlrelay.keras.MlflowCallback(log_model=True)])
    assert mlrelay.flush(deadline(60))
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        local = client.download_artifacts(runs.server_id(run.info.run_id), "model", str(tmp_path))
    loaded = keras.saving.load_model(Path(local) / "model.keras")
    x = np.ones((2, 8), dtype="float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments_are_named() -> None:
    """Both or neither of the two logging frequencies: a ValidationError naming them."""
    import mlrelay.keras

    with pytest.raises(mlrelay.ValidationError, match="log_every_n_steps"):
        mlrelay.keras.MlflowCallback(log_every_epoch=True, log_every_n_steps=5)
    with pytest.raises(mlrelay.ValidationError, match="log_every_n_steps"):
        mlrelay.keras.MlflowCallback(log_every_epoch=False)
    with pytest.raises(mlrelay.UnsupportedFeatureError, match=r"mlflow\.keras\.log_model"):
        mlrelay.keras.log_model  # noqa: B018


_DOWN = textwrap.dedent(
    """
    import sys, time
    import mlrelay
    exec(open(sys.argv[1]).read())
    t = time.perf_counter()
    train([mlrelay.keras.MlflowCallback(log_every_epoch=False, log_every_n_steps=1)], 3)
    print("FIT", time.perf_counter() - t, flush=True)
    """
)


@pytest.mark.parametrize("down", ["refused", "never answers"])
def test_with_the_server_down_training_runs_through_and_sync_lands_every_point(
    mlflow_real: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, down: str
) -> None:
    """Against a closed port, or a socket that accepts and never answers, training (with
    no run started by the user) completes at once; ``mlrelay sync`` then lands every point
    once on the real server."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    name = f"keras-down-{down}"
    train_with_server_down(
        down,
        _DOWN,
        [str(script)],
        tmp_path,
        monkeypatch,
        mlflow_real.url,
        MLFLOW_EXPERIMENT_NAME=name,
        KERAS_BACKEND="torch",
    )
    with mlrelay.MlflowClient(mlflow_real.url) as client:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        [synced] = client.search_runs([experiment.experiment_id])
        steps = [m.step for m in client.get_metric_history(synced.info.run_id, "loss")]
        assert sorted(steps) == list(range(1, 3 * 4 + 1))  # 3 epochs of 4 batches
        assert float(synced.data.params["optimizer_learning_rate"]) == pytest.approx(0.01)
