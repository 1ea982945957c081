"""What scikit-learn autologging adds to ``fit``: mlrelay's and MLflow's, side by side.

Usage: python benchmarks/autolog.py [--repeats N]

Two models: small (LogisticRegression, 1,000 rows x 20 features) and medium
(RandomForestClassifier, 100 trees, 20,000 rows x 20 features). For each model a fresh real
``mlflow server`` (sqlite store, proxied artifacts) is started on 127.0.0.1 and both clients
log to it, each into its own experiment. Each variant runs in its own fresh interpreter:

- ``none``: plain ``fit``, no tracking at all;
- ``mlrelay``: ``mlrelay._autolog.sklearn.autolog()`` (what ``mlrelay.sklearn.autolog()`` runs);
- ``mlflow``: ``mlflow.sklearn.autolog()``.

Every variant first fits a 200-row copy of the model once (imports, first run, connection
pool: not counted), then times ``fit`` on the full data ``--repeats`` times (default 3); the
median is reported. An autologged ``fit`` here is the whole thing a user waits for: a run
started for it, params, training metrics, the model uploaded, the run ended (mlrelay's
``end_run`` waits until the server has everything, as MLflow's calls do).

Both do the same work: the same params, metrics, tags, dataset and model, and for a classifier
the same three PNG plots (confusion matrix, ROC, precision-recall) drawn with matplotlib.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._env import child_env  # noqa: E402
from tests._servers import mlflow_server  # noqa: E402

CHILD = textwrap.dedent(
    """
    import json, sys, time
    variant, uri, size, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    if variant == "mlflow":
        import mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("bench-mlflow")
        mlflow.sklearn.autolog()
    elif variant == "mlrelay":
        import mlrelay
        from mlrelay._autolog.sklearn import autolog
        mlrelay.set_tracking_uri(uri)
        mlrelay.set_experiment("bench-mlrelay")
        autolog()
    if size == "small":
        X, y = make_classification(n_samples=1_000, n_features=20, random_state=0)
        make = lambda: LogisticRegression(max_iter=1000)
    else:
        X, y = make_classification(n_samples=20_000, n_features=20, random_state=0)
        make = lambda: RandomForestClassifier(n_estimators=100, random_state=0)
    make().fit(X[:200], y[:200])  # warm-up: imports, first run, connections
    times = []
    for _ in range(repeats):
        model = make()
        t = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - t)
    print(json.dumps(times))
    """
)

MODELS = {
    "small": "LogisticRegression, 1,000 rows",
    "medium": "RandomForest 100 trees, 20,000 rows",
}


def _child(variant: str, url: str, size: str, repeats: int, home: Path) -> list[float]:
    env = child_env(MLRELAY_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, variant, url, size, str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant}/{size} failed:\n{done.stderr[-3000:]}")
    times: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def main() -> None:
    """Run both models, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlrelay-bench-autolog-") as tmp:
        for size, label in MODELS.items():
            with mlflow_server(Path(tmp) / f"server-{size}") as server:
                medians = {
                    variant: statistics.median(
                        _child(variant, server.url, size, args.repeats, Path(tmp) / "home")
                    )
                    for variant in ("none", "mlrelay", "mlflow")
                }
            rows.append((label, medians))
    print(f"fit time, median of {args.repeats} (seconds; ratio to fit without autolog)\n")
    print("| model | no autolog | mlrelay autolog | MLflow autolog | mlrelay / MLflow |")
    print("| --- | --- | --- | --- | --- |")
    for label, m in rows:
        base = m["none"]
        print(
            f"| {label} | {base:.3f} s | {m['mlrelay']:.3f} s ({m['mlrelay'] / base:.2f}x) "
            f"| {m['mlflow']:.3f} s ({m['mlflow'] / base:.2f}x) "
            f"| {m['mlrelay'] / m['mlflow']:.2f} |"
        )
        overhead = {v: m[v] - base for v in ("mlrelay", "mlflow")}
        print(
            f"|   added by autolog | | +{overhead['mlrelay']:.3f} s | +{overhead['mlflow']:.3f} s "
            f"| {overhead['mlrelay'] / overhead['mlflow']:.2f} |"
        )


if __name__ == "__main__":
    main()
