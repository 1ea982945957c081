"""Makes the real ``mlflow`` package unimportable in the process that loads it.

The compatibility runner puts this directory first on PYTHONPATH for the mlrelay side,
so that a script rewritten to ``import mlrelay as mlflow`` cannot reach MLflow's package,
directly or through a library, in the script's process or in any process it starts.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder


class BlockMlflow(MetaPathFinder):
    """Refuses ``mlflow`` and every ``mlflow.*`` module."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        """Raise ModuleNotFoundError for MLflow's modules; let every other import through."""
        if fullname == "mlflow" or fullname.startswith("mlflow."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (blocked by the compatibility runner)",
                name=fullname,
            )


sys.meta_path.insert(0, BlockMlflow())
