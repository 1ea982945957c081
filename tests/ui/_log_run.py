"""Log one demonstration run with MLflow's client or with mlrelay (a child of compare_ui.py).

Usage: ``python _log_run.py mlflow|mlrelay EXPERIMENT REGISTERED_MODEL``, with
``MLFLOW_TRACKING_URI`` set. The same code runs on both sides; for ``mlrelay`` the real
``mlflow`` package is made unimportable first, so nothing of MLflow's can help mlrelay.
Prints one JSON line: what the client returned (run id, model URI, model version).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

PARENT_RUN = "parent-run"
CHILD_RUN = "child-fold-0"
ALIAS = "champion"
STEPS = 20


class _NoMlflow(importlib.abc.MetaPathFinder):
    """A meta-path finder that makes ``mlflow`` and its submodules unimportable."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Refuse ``mlflow`` and ``mlflow.*``; leave every other import alone."""
        if fullname == "mlflow" or fullname.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _client_module(side: str) -> Any:
    """``mlflow`` (with ``mlflow.sklearn``) for the side asked for."""
    if side == "mlrelay":
        sys.meta_path.insert(0, _NoMlflow())
        import mlrelay
        import mlrelay.sklearn

        return mlrelay  # what `import mlrelay as mlflow` binds
    if side == "mlflow":
        import mlflow
        import mlflow.sklearn

        return mlflow
    raise SystemExit(f"side must be mlflow or mlrelay, not {side!r}")


def _artifact_folder(root: Path) -> Path:
    """A small folder of files for ``log_artifacts``."""
    folder = root / "extras"
    (folder / "plots").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"C": 1.0, "max_iter": 200}, indent=2))
    (folder / "classes.txt").write_text("setosa\nversicolor\nvirginica\n")
    (folder / "plots" / "curve.csv").write_text(
        "step,loss\n" + "".join(f"{s},{1 / (s + 1):.4f}\n" for s in range(STEPS))
    )
    return folder


def log_demo_run(mlflow: Any, experiment: str, registered_model: str) -> dict[str, Any]:
    """The run both sides log: params, a metric history, tags, a description, a nested
    run, a text artifact, a folder of artifacts and a registered scikit-learn model."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=PARENT_RUN) as run:
        mlflow.log_params({"C": 1.0, "max_iter": 200, "solver": "lbfgs", "dataset": "iris"})
        mlflow.set_tags({"team": "ml-platform", "stage": "ui-comparison"})
        mlflow.set_tag("mlflow.note.content", "Same run, logged by two clients.")
        for step in range(STEPS):
            mlflow.log_metrics(
                {"loss": 1 / (step + 1), "accuracy": 0.5 + 0.45 * step / (STEPS - 1)}, step=step
            )
        with mlflow.start_run(run_name=CHILD_RUN, nested=True):
            mlflow.log_param("fold", 0)
            mlflow.log_metric("fold_accuracy", 0.93)
        mlflow.log_text("Trained on iris with logistic regression.\n", "notes/summary.txt")
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifacts(str(_artifact_folder(Path(tmp))), artifact_path="extras")
        model = LogisticRegression(C=1.0, max_iter=200).fit(X, y)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:5], registered_model_name=registered_model
        )
        mlflow.log_metric("test_accuracy", float(model.score(X, y)))
        version = info.registered_model_version
        mlflow.MlflowClient().set_registered_model_alias(registered_model, ALIAS, str(version))
        run_id = run.info.run_id
    flush = getattr(mlflow, "flush", None)
    if flush is not None:
        flush()
    return {
        "run_id": run_id,
        "model_uri": info.model_uri,
        "model_id": getattr(info, "model_id", None),
        "registered_model_version": version,
    }


def main(argv: list[str]) -> int:
    """Log the run for the side named in ``argv`` and print what the client returned."""
    if len(argv) != 3:
        raise SystemExit(__doc__)
    side, experiment, registered_model = argv
    mlflow = _client_module(side)
    result = log_demo_run(mlflow, experiment, registered_model)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
