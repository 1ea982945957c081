"""Training throughput with no logger, with the framework's stock MLflow logger, and with
mlrelay's, logging every step, against the mock server with 0, 50 and 500 ms added to every
request, and against an unreachable server (a closed port; a socket that never answers).

Usage: python benchmarks/frameworks.py [--rounds R (default 5) | --paired N]
[--stock-cap SECONDS] [--workloads anchor big] [--frameworks lightning hf keras]
[--servers 0 50 500 refused never]

Workloads (CPU, ``torch.set_num_threads(1)``), "anchor" as in ../shared/anchors/frameworks and
a bigger one:

- Lightning: ``Linear(32->1)``, batch 32, 300 steps, ``self.log("loss")`` every step; big: an
  MLP 256-1024-1024-1, batch 64. Stock: Lightning's ``MLFlowLogger``, synchronous (its
  default) and ``synchronous=False``. "e2e" is from ``Trainer(...)`` to the return of
  ``fit()``; the logger is built before, as in the anchors (its own column).
- HF (the ``Trainer``): a BERT from a config (hidden 32, 1 layer, seq 16), batch 16, 100 steps,
  ``logging_steps=1``; big: hidden 128, 2 layers, seq 64. Stock: ``report_to=["mlflow"]``
  (the ``Trainer`` builds it); mlrelay's callback is built before, as the Lightning loggers.
  "e2e" is from ``Trainer(...)`` to the return of ``train()``.
- Keras (torch backend): ``Dense(1)`` on 32 inputs, batch 32, 300 steps; big: the MLP above.
  Both callbacks with ``log_every_n_steps=1``, built before (as the Lightning loggers), no
  run started by the script (each callback starts one). "e2e" is ``fit()``.

Each configuration runs in a fresh process; "loop" is from the first step's end to the
last's. With ``--paired N``, no logger and mlrelay run in one process per workload and
server instead: a warm-up fit of each, then N pairs of fits in alternating order (ABBA), so
the ratio of each pair is taken seconds apart, not minutes (this VM's speed drifts by tens
of percent from one minute to the next); after each mlrelay fit delivery is waited for,
outside the timed span, so it never overlaps the next fit. "total ratio" is the sum of no
logger's times over the sum of the logger's; "median 95 % interval" (with 20 pairs or more)
is a bootstrap interval of the median ratio (2,000 resamples of the pairs, a fixed seed):
a line inside it is neither shown met nor shown missed; "fastest 10 % ratio" (with 20 fits or more)
is no logger's 10th percentile time over the logger's: interference from the rest of a
shared machine only ever adds time, so the fastest fits show the logger's own cost best.
Ratios are to the no-logger run of the same round (rounds alternate the order); the median
over rounds is shown. A stock run that has not finished after ``--stock-cap`` seconds
(default 30) is killed and shown as such: against an unreachable server the stock loggers
block for minutes (see ../shared/research/framework-loggers.md).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlrelay_mock import MockServer  # noqa: E402

CHILD_RUN = textwrap.dedent(
    """
    # Each fit of cfg["sequence"] in turn (one process: --paired), each timed alone. After
    # an mlrelay fit, delivery is waited for outside the span, so it never overlaps the
    # next fit (in a real program it goes on in the background after training).
    for kind in cfg.get("sequence") or [cfg["logger"]]:
        build, e2e, ends = fit(kind)
        if kind == "mlrelay" and cfg.get("settle"):
            import mlrelay
            mlrelay.flush(120)
        print("RESULT " + json.dumps({"logger": kind, "e2e_s": e2e, "build_logger_s": build,
                                      "loop_s": ends[-1] - ends[0], "steps": len(ends)}),
              flush=True)
    """
)

# The Lightning workloads (the anchor's and the bigger one), their data and a step timer;
# also benchmarks/writer_placement.py's.
LIGHTNING_WORKLOAD = textwrap.dedent(
    """
    import json, logging, os, sys, time, warnings
    import torch
    torch.set_num_threads(1)
    import lightning as L
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    cfg = json.loads(sys.argv[1])
    STEPS = 300
    big = cfg["workload"] == "big"

    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            if big:
                self.net = torch.nn.Sequential(
                    torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                    torch.nn.ReLU(), torch.nn.Linear(1024, 1))
            else:
                self.net = torch.nn.Linear(32, 1)
        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("loss", loss)
            return loss
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Timer(L.Callback):
        def __init__(self):
            self.ends = []
        def on_train_batch_end(self, *a):
            self.ends.append(time.perf_counter())

    torch.manual_seed(0)
    width, batch = (256, 64) if big else (32, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS * batch, width, generator=g)
    y = torch.randn(STEPS * batch, 1, generator=g)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
    """
)

CHILD_LIGHTNING = (
    LIGHTNING_WORKLOAD
    + textwrap.dedent(
        """
    def fit(kind):
        b0 = time.perf_counter()
        if kind == "none":
            logger = False
        elif kind == "mlrelay":
            from mlrelay.integrations.lightning import MLFlowLogger
            logger = MLFlowLogger(experiment_name="pl_bench", tracking_uri=cfg["uri"])
        else:
            from lightning.pytorch.loggers import MLFlowLogger
            logger = MLFlowLogger(experiment_name="pl_bench", tracking_uri=cfg["uri"],
                                  synchronous=kind == "stock-sync")
        net = Net()
        t0 = time.perf_counter()
        timer = Timer()
        trainer = L.Trainer(max_steps=STEPS, max_epochs=1000, logger=logger,
                            log_every_n_steps=1, enable_progress_bar=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            accelerator="cpu", devices=1, limit_val_batches=0,
                            callbacks=[timer])
        trainer.fit(net, data)
        t1 = time.perf_counter()
        return t0 - b0, t1 - t0, timer.ends
    """
    )
    + "\n"
    + CHILD_RUN
)


CHILD_HF = (
    textwrap.dedent(
        """
    import json, os, sys, tempfile, time, warnings
    import torch
    torch.set_num_threads(1)
    import transformers
    from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                              TrainerCallback, TrainingArguments)
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    cfg = json.loads(sys.argv[1])
    big = cfg["workload"] == "big"
    STEPS, BATCH, SEQ = 100, 16, (64 if big else 16)

    class Data(torch.utils.data.Dataset):
        def __init__(self, n):
            g = torch.Generator().manual_seed(0)
            self.ids = torch.randint(0, 100, (n, SEQ), generator=g)
            self.labels = torch.randint(0, 2, (n,), generator=g)
        def __len__(self):
            return len(self.ids)
        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long),
                    "labels": self.labels[i]}

    class Timer(TrainerCallback):
        def __init__(self):
            self.ends = []
        def on_step_end(self, *a, **k):
            self.ends.append(time.perf_counter())

    if big:
        config = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=512, vocab_size=100, num_labels=2)
    else:
        config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=37, vocab_size=100, num_labels=2)
    os.environ["MLFLOW_TRACKING_URI"] = cfg["uri"]
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "hf_bench"
    data = Data(STEPS * BATCH)

    def fit(kind):
        torch.manual_seed(0)
        model = BertForSequenceClassification(config)
        args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=STEPS,
                                 per_device_train_batch_size=BATCH, logging_steps=1,
                                 report_to=["mlflow"] if kind == "stock" else [],
                                 save_strategy="no", eval_strategy="no", disable_tqdm=True,
                                 use_cpu=True, dataloader_num_workers=0, seed=0)
        b0 = time.perf_counter()
        timer = Timer()
        callbacks = [timer]
        if kind == "mlrelay":
            from mlrelay.integrations.transformers import MLflowCallback
            callbacks.append(MLflowCallback())
        t0 = time.perf_counter()
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks)
        trainer.train()
        t1 = time.perf_counter()
        return t0 - b0, t1 - t0, timer.ends
    """
    )
    + "\n"
    + CHILD_RUN
)

CHILD_KERAS = (
    textwrap.dedent(
        """
    import json, os, sys, time, warnings
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, torch
    torch.set_num_threads(1)
    import keras
    warnings.filterwarnings("ignore")
    cfg = json.loads(sys.argv[1])
    big = cfg["workload"] == "big"
    STEPS = 300
    width, batch = (256, 64) if big else (32, 32)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []
        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * batch, width)).astype("float32")
    y = rng.normal(size=(STEPS * batch, 1)).astype("float32")
    os.environ["MLFLOW_TRACKING_URI"] = cfg["uri"]
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "keras_bench"

    def fit(kind):
        keras.utils.set_random_seed(0)
        if big:
            layers = [keras.layers.Dense(1024, activation="relu"),
                      keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(1)]
        else:
            layers = [keras.layers.Dense(1)]
        model = keras.Sequential([keras.Input((width,)), *layers])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        b0 = time.perf_counter()
        timer = Timer()
        callbacks = [timer]
        if kind == "mlrelay":
            import mlrelay.keras
            callbacks.append(mlrelay.keras.MlflowCallback(log_every_epoch=False,
                                                          log_every_n_steps=1))
        elif kind == "stock":
            import mlflow.keras
            callbacks.append(mlflow.keras.MlflowCallback(log_every_epoch=False,
                                                         log_every_n_steps=1))
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, callbacks=callbacks, verbose=0)
        t1 = time.perf_counter()
        return t0 - b0, t1 - t0, timer.ends
    """
    )
    + "\n"
    + CHILD_RUN
)

CHILDREN = {"lightning": CHILD_LIGHTNING, "hf": CHILD_HF, "keras": CHILD_KERAS}
STOCK = {"lightning": ["stock-sync", "stock-async"], "hf": ["stock"], "keras": ["stock"]}


SERVERS: dict[str, tuple[str, int | None]] = {
    "0": ("mock +0 ms", 0),
    "50": ("mock +50 ms", 50),
    "500": ("mock +500 ms", 500),
    "refused": ("refused", None),
    "never": ("never answers", None),
}


def _post(url: str, path: str, body: dict[str, Any] | None, method: str = "POST") -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _set_latency(url: str, ms: int) -> None:
    _post(url, "/_mock/faults", None, method="DELETE")
    if ms:
        _post(url, "/_mock/faults", {"action": "latency", "path": "*", "delay": ms / 1000})


def _run(cfg: dict[str, Any], home: Path, cap: float) -> list[dict[str, Any]] | None:
    """The results of the child's fits (one, or each of ``cfg["sequence"]``); None if it
    was killed at ``cap`` seconds."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "MLRELAY_HOME": str(home / "mlrelay"),
        "MLRELAY_EXIT_TIMEOUT": "1",
        "TMPDIR": str(home),  # (the Trainer's output_dir and the like: removed with it)
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILDREN[cfg["framework"]], json.dumps(cfg)],
            env=env,
            capture_output=True,
            text=True,
            timeout=cap,
        )
    except subprocess.TimeoutExpired:
        return None
    results = [json.loads(line[7:]) for line in done.stdout.splitlines() if line[:7] == "RESULT "]
    if not results:  # (as before: a child that printed its results counts, whatever its exit)
        raise SystemExit(f"{cfg} failed:\n{done.stderr[-3000:]}")
    return results


class _Blackhole:
    """A socket that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stock-cap", type=float, default=30.0)
    parser.add_argument("--workloads", nargs="+", default=["anchor", "big"])
    parser.add_argument("--frameworks", nargs="+", default=list(CHILDREN), choices=CHILDREN)
    parser.add_argument(
        "--servers",
        nargs="+",
        default=list(SERVERS),
        choices=SERVERS,
        help="which servers (default: all): added latency in ms, refused, never (answers)",
    )
    parser.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="no logger and mlrelay in one process per workload and server, N pairs of fits "
        "in alternating order after one warm-up fit of each (instead of --rounds fresh "
        "processes); the stock loggers still run once each in a process of their own",
    )
    args = parser.parse_args()
    workloads = [(f, w) for f in args.frameworks for w in args.workloads]
    blackhole = _Blackhole()
    rows: dict[tuple[tuple[str, str], str, str], list[dict[str, Any] | None]] = {}
    with MockServer() as mock, tempfile.TemporaryDirectory() as tmp:
        uris = {"refused": _closed_port(), "never": blackhole.url}
        targets = [
            (label, uris.get(name, mock.url), ms)
            for name, (label, ms) in SERVERS.items()
            if name in args.servers
        ]
        k = 0
        for workload in workloads:
            for server, uri, ms in targets:
                if args.paired:
                    k += 1
                    _paired(rows, workload, (server, uri, ms), mock.url, args, Path(tmp) / f"h{k}")
                    continue
                for r in range(args.rounds):
                    # The stock loggers once (they are far off, and capped); no logger and
                    # mlrelay every round, in alternating order.
                    loggers = ["none", "mlrelay"] + (STOCK[workload[0]] if r == 0 else [])
                    for logger in loggers if r % 2 == 0 else loggers[::-1]:
                        if ms is not None:
                            _set_latency(mock.url, ms)
                        k += 1
                        cap = args.stock_cap if logger.startswith("stock") else 600
                        cfg = {
                            "framework": workload[0],
                            "workload": workload[1],
                            "logger": logger,
                            "uri": uri,
                        }
                        results = _run(cfg, Path(tmp) / f"h{k}", cap)
                        result = results[0] if results else None
                        rows.setdefault((workload, server, logger), []).append(result)
                        print(workload, server, logger, result, flush=True)
        _set_latency(mock.url, 0)
    _table(rows, workloads, [t[0] for t in targets], args.stock_cap)


def _paired(
    rows: dict[tuple[tuple[str, str], str, str], list[dict[str, Any] | None]],
    workload: tuple[str, str],
    target: tuple[str, str, int | None],
    mock_url: str,
    args: argparse.Namespace,
    home: Path,
) -> None:
    """--paired: the stock loggers once each in a fresh process (capped), then one process
    that fits with no logger and with mlrelay's, one warm-up fit each and ``args.paired``
    pairs in ABBA order; delivery is waited for after each mlrelay fit against the mock."""
    server, uri, ms = target
    base = {"framework": workload[0], "workload": workload[1], "uri": uri}
    for i, logger in enumerate(STOCK[workload[0]]):
        if ms is not None:
            _set_latency(mock_url, ms)
        results = _run({**base, "logger": logger}, home / f"stock{i}", args.stock_cap)
        rows[(workload, server, logger)] = [results[0] if results else None]
        print(workload, server, logger, rows[(workload, server, logger)][0], flush=True)
    if ms is not None:
        _set_latency(mock_url, ms)
    pairs = [["none", "mlrelay"] if i % 2 == 0 else ["mlrelay", "none"] for i in range(args.paired)]
    sequence = ["mlrelay", "none"] + [kind for pair in pairs for kind in pair]
    cfg = {**base, "logger": "none", "sequence": sequence, "settle": ms is not None}
    results = _run(cfg, home / "paired", 600 + 120 * len(sequence))
    if results is None:
        raise SystemExit(f"{workload} {server}: the paired run did not finish")
    for result in results[2:]:  # (the warm-up fits are left out)
        rows.setdefault((workload, server, result["logger"]), []).append(result)
    print(workload, server, "paired", [round(r["e2e_s"], 3) for r in results], flush=True)


def _table(
    rows: dict[tuple[tuple[str, str], str, str], list[dict[str, Any] | None]],
    workloads: list[tuple[str, str]],
    servers: list[str],
    cap: float,
) -> None:
    print(
        f"\n{'workload':<16} {'server':<14} {'logger':<12} {'e2e s':>7} {'e2e ratio':>10} "
        f"{'loop ratio':>11} {'build logger s':>15} {'e2e ratio quartiles':>20} "
        f"{'total ratio':>12} {'fastest 10 % ratio':>19} {'median 95 % interval':>21}"
    )
    for workload in workloads:
        name = "/".join(workload)
        for server in servers:
            base = rows[(workload, server, "none")]
            for logger in ("none", *STOCK[workload[0]], "mlrelay"):
                results = rows[(workload, server, logger)]
                if any(r is None for r in results):
                    killed = f"killed after {cap:.0f} s"
                    print(f"{name:<16} {server:<14} {logger:<12} {killed:>31}")
                    continue
                e2e = [float(r["e2e_s"]) for r in results if r]
                ratio = [float(b["e2e_s"]) / x for b, x in zip(base, e2e, strict=False) if b]
                loop = [
                    float(b["loop_s"]) / float(r["loop_s"])
                    for b, r in zip(base, results, strict=False)
                    if b and r
                ]
                build = statistics.median(float(r["build_logger_s"]) for r in results if r)
                spread = total = ""
                if len(ratio) >= 4:
                    q1, _, q3 = statistics.quantiles(ratio, n=4)
                    spread = f"{q1:.3f}-{q3:.3f}"
                if len(base) == len(e2e):  # the sum of no logger's times over the logger's
                    total = f"{sum(float(b['e2e_s']) for b in base if b) / sum(e2e):.3f}"
                fastest = _fastest_ratio([float(b["e2e_s"]) for b in base if b], e2e)
                interval = _median_interval(ratio)
                print(
                    f"{name:<16} {server:<14} {logger:<12} {statistics.median(e2e):>7.2f} "
                    f"{statistics.median(ratio):>10.3f} {statistics.median(loop):>11.3f} "
                    f"{build:>15.3f} {spread:>20} {total:>12} {fastest:>19} {interval:>21}"
                )


def _fastest_ratio(base: list[float], times: list[float]) -> str:
    """No logger's 10th percentile time over the logger's ("" under 20 fits of each)."""
    if min(len(base), len(times)) < 20:
        return ""
    return f"{statistics.quantiles(base, n=10)[0] / statistics.quantiles(times, n=10)[0]:.3f}"


def _median_interval(ratios: list[float], resamples: int = 2000) -> str:
    """A bootstrap 95 % interval of the median of the paired ratios ("" under 20 pairs):
    the pairs resampled with replacement, a fixed seed, so a table can be read again."""
    if len(ratios) < 20:
        return ""
    draw = random.Random(0).choices
    medians = sorted(statistics.median(draw(ratios, k=len(ratios))) for _ in range(resamples))
    return f"{medians[int(resamples * 0.025)]:.3f}-{medians[int(resamples * 0.975) - 1]:.3f}"


if __name__ == "__main__":
    main()
