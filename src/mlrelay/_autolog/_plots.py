"""The PNG plots MLflow's autologging draws, when matplotlib is importable: a classifier's
``training_confusion_matrix.png`` (and, for two classes, ``training_roc_curve.png`` and
``training_precision_recall_curve.png``), and XGBoost's and LightGBM's
``feature_importance_<type>.png``.

matplotlib is imported here only, at the first plot (never at ``autolog()``), and only
through ``matplotlib.figure.Figure``: no pyplot state, no GUI backend, no figure left open.
Without matplotlib nothing is drawn and nothing is said (MLflow logs a warning). Everything
here runs inside :func:`mlrelay._autolog._core.guard`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from . import _log

__all__ = ["classifier_plots", "feature_importance_plot", "plotting_available"]

# MLflow's settings (mlflow/sklearn/utils.py and the boosting integrations).
_RC = {"savefig.dpi": 175, "figure.autolayout": True, "font.size": 8}
_available: bool | None = None


def plotting_available() -> bool:
    """True when matplotlib can be imported (checked once, without importing it)."""
    global _available
    if _available is None:
        _available = importlib.util.find_spec("matplotlib") is not None
    return _available


def _save(fig: Any, path: Path) -> None:
    fig.savefig(str(path), format="png")


def classifier_plots(
    estimator: Any, x: Any, y: Any, weight: Any, prefix: str = "training_"
) -> None:
    """Log MLflow's classifier plots of ``estimator`` on ``(x, y)``."""
    if not plotting_available():
        return
    import matplotlib
    from matplotlib.figure import Figure
    from sklearn import metrics

    labels = getattr(estimator, "classes_", None)
    count = len(labels) if labels is not None else len(set(y))
    cm_rc = {"font.size": min(8.0, 50.0 / count), "axes.labelsize": 8.0, "figure.dpi": 175}
    plots: list[tuple[str, str, Any, dict[str, Any]]] = [
        (
            "confusion_matrix",
            "Normalized confusion matrix",
            metrics.ConfusionMatrixDisplay.from_estimator,
            {"normalize": "true", "cmap": "Blues", "figsize": (6.0, 4.0), "rc": cm_rc},
        )
    ]
    if len(set(y)) == 2:
        plots.append(("roc_curve", "ROC curve", metrics.RocCurveDisplay.from_estimator, {}))
        plots.append(
            (
                "precision_recall_curve",
                "Precision recall curve",
                metrics.PrecisionRecallDisplay.from_estimator,
                {},
            )
        )
    for name, title, draw, extra in plots:
        extra = dict(extra)
        figsize, rc = extra.pop("figsize", None), {**_RC, **extra.pop("rc", {})}
        with matplotlib.rc_context(rc):
            fig = Figure(figsize=figsize)
            display = draw(estimator, x, y, sample_weight=weight, ax=fig.subplots(), **extra)
            display.ax_.set_title(title)
            _log.log_artifact_file(f"{prefix}{name}.png", lambda p, fig=fig: _save(fig, p))


def feature_importance_plot(kind: str, importances: dict[str, Any]) -> None:
    """Log ``feature_importance_<kind>.png``: a horizontal bar per feature (one per class
    when the importances are per class), smallest first, as MLflow draws it."""
    if not plotting_available() or not importances:
        return
    import numpy as np
    from matplotlib.figure import Figure

    features = np.array(list(importances))
    values = np.array([np.ravel(v) for v in importances.values()], dtype=float)
    order = np.argsort(np.abs(values).sum(axis=1), kind="stable")
    features, values = features[order], values[order]
    count, classes = values.shape
    height = 4.8 + (0.1 * count if count > 10 else 0) + (0.1 * classes if classes > 1 else 0)
    fig = Figure(figsize=(6.4, height))
    ax = fig.subplots()
    bar = 0.5 / classes
    rows = np.arange(count)
    for column in range(classes):
        label = f"Class {column}" if classes > 1 else None
        ax.barh(rows + column * bar, values[:, column], align="center", height=bar, label=label)
    ax.set_yticks(rows + bar * (classes - 1) / 2)
    ax.set_yticklabels(features)
    ax.set_xlabel("Importance")
    ax.set_title(f"Feature Importance ({kind})")
    if classes > 1:
        ax.legend(loc="lower right")
    fig.tight_layout()
    _log.log_artifact_file(f"feature_importance_{kind}.png", lambda p: _save(fig, p))
