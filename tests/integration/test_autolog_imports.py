"""``autolog()`` and imports, in a fresh interpreter each: it imports no framework, and a
framework imported afterwards is patched by the post-import hook."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_autolog_imports_no_framework_and_patches_one_imported_later() -> None:
    """With nothing imported, autolog() loads none of sklearn/xgboost/lightgbm (nor
    mlflow); importing sklearn afterwards patches its fit methods, leaves the module's
    real loader in place, and disable=True restores the originals."""
    out = _run(
        """
        import sys
        import mlrelay
        from mlrelay._autolog import autolog
        autolog()
        frameworks = ("sklearn", "xgboost", "lightgbm", "mlflow")
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in frameworks))
        from sklearn.linear_model import LogisticRegression
        import sklearn
        print("patched:", hasattr(LogisticRegression.fit, "__mlrelay_autolog__"))
        print("loader:", type(sklearn.__loader__).__name__, type(sklearn.__spec__.loader).__name__)
        print("xgboost:", "xgboost" in sys.modules)
        autolog(disable=True)
        print("restored:", not hasattr(LogisticRegression.fit, "__mlrelay_autolog__"))
        """
    )
    assert "loaded: []" in out
    assert "patched: True" in out
    assert "loader: SourceFileLoader SourceFileLoader" in out
    assert "restored: True" in out


def test_autolog_turns_on_only_what_is_imported_and_keeps_an_integrations_own_options() -> None:
    """autolog() after `import sklearn` patches scikit-learn at once and imports neither
    XGBoost nor LightGBM; options given to sklearn's own autolog before are kept."""
    out = _run(
        """
        import sys
        import sklearn.linear_model
        from mlrelay._autolog import _core, autolog
        from mlrelay._autolog import sklearn as sk
        sk.autolog(max_tuning_runs=1)
        autolog(log_models=False)
        print("others:", [m for m in ("xgboost", "lightgbm") if m in sys.modules])
        fit = sklearn.linear_model.LogisticRegression.fit
        print("patched:", hasattr(fit, "__mlrelay_autolog__"))
        opts = _core.options("sklearn")
        print("options:", opts["max_tuning_runs"], opts["log_models"])
        """
    )
    assert "others: []" in out
    assert "patched: True" in out
    assert "options: 1 True" in out
