"""What a module's source imports, anywhere in it (top level, functions, TYPE_CHECKING)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

__all__ = ["imports_of"]


def imports_of(module: str) -> set[str]:
    """Every module ``module``'s file imports, and every name it imports from one.

    ``import httpx`` gives ``httpx``; ``from ._config import resolve`` gives ``._config``
    and ``._config.resolve``; ``from . import cli`` gives ``.`` and ``.cli``.
    """
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    assert spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            separator = "." if node.module else ""
            names.add(base)
            names.update(f"{base}{separator}{alias.name}" for alias in node.names)
    return names
