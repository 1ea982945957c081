"""The environment a test's child process starts from."""

from __future__ import annotations

import os

__all__ = ["child_env"]


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any ``MLFLOW_*``/``MLRELAY_*`` setting (so a
    child sees only what the test gives it), plus ``overrides``.

    The suite's temporary HOME and XDG directories are inherited, so a child never writes
    under the real home.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLRELAY_"))}
    env.update(overrides)
    return env
