"""Autologging: MLflow's ``autolog()`` for scikit-learn, XGBoost and LightGBM, over the fluent
API, with MLflow's names.

:func:`autolog` turns on each supported framework the user has imported, and arranges for
the others to be turned on when (if ever) they are imported: it never imports a framework
itself. It does that with a post-import hook, as MLflow does, rather than by patching on
first use: there is no single place to catch a first ``fit`` (each estimator class has its
own), and the hook costs one dictionary lookup per import of a module not yet loaded, and
nothing at all once the frameworks are in.

The integrations live in :mod:`.sklearn`, :mod:`.xgboost` and :mod:`.lightgbm`, each with
MLflow's signature; the shared machinery in :mod:`._core`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["FRAMEWORKS", "autolog", "when_imported"]

# The framework's module -> mlrelay's integration module, as MLflow's table has them.
FRAMEWORKS = {
    "sklearn": "mlrelay._autolog.sklearn",
    "xgboost": "mlrelay._autolog.xgboost",
    "lightgbm": "mlrelay._autolog.lightgbm",
}

_lock = threading.RLock()
_global_options: dict[str, dict[str, Any]] = {}  # integration -> options autolog() gave it


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: list[str] | None = None,
) -> None:
    """Turn on autologging for every supported framework (scikit-learn, XGBoost, LightGBM):
    now for those already imported, at their import for the others. Never imports one.

    As in MLflow, a framework whose own ``autolog`` the user called keeps those options;
    ``disable=True`` turns every integration this call covers off and puts back every
    original method. ``log_traces`` is accepted for MLflow's signature: tracing (GenAI) is
    out of mlrelay's scope.

    Args:
        exclude_flavors: integrations to leave alone, e.g. ``["lightgbm"]``.
    """
    given = {k: v for k, v in locals().items() if k not in ("exclude_flavors", "log_traces")}
    excluded = set(exclude_flavors or ())
    for framework, module_name in FRAMEWORKS.items():
        if framework in excluded:
            continue
        if disable:
            _hooks.pop(framework, None)
            if module_name in sys.modules:
                _call(module_name, given)
            _global_options.pop(framework, None)
            continue
        when_imported(framework, _setup(module_name, given))


def _setup(module_name: str, given: dict[str, Any]) -> Callable[[ModuleType], None]:
    def setup(_framework: ModuleType) -> None:
        from . import _core

        name = module_name.rsplit(".", 1)[1]
        with _lock:
            if _core.options(name) is not None and name not in _global_options:
                return  # the user called this integration's autolog: keep its options
            _global_options[name] = given
        _call(module_name, given)

    return setup


def _call(module_name: str, given: dict[str, Any]) -> None:
    integration = importlib.import_module(module_name)
    fn = integration.autolog
    accepted = inspect.signature(fn).parameters
    fn(**{k: v for k, v in given.items() if k in accepted})


# --- the post-import hook ------------------------------------------------------------------

_hooks: dict[str, Callable[[ModuleType], None]] = {}


def when_imported(name: str, hook: Callable[[ModuleType], None]) -> None:
    """Call ``hook(module)`` now if ``name`` is imported, else once right after its import
    has run (replacing any hook registered for ``name`` before). A hook that raises is
    warned about; the import itself always succeeds."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks[name] = hook
            if not any(isinstance(f, _Finder) for f in sys.meta_path):
                sys.meta_path.insert(0, _Finder())
            return
        _hooks.pop(name, None)
    _run(name, hook, module)


def _run(name: str, hook: Callable[[ModuleType], None], module: ModuleType) -> None:
    from ._core import warn_once

    try:
        hook(module)
    except Exception as exc:
        warn_once(name, f"could not be turned on ({type(exc).__name__}: {exc})")


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched name, asks the finders after it and wraps the
    loader they return, so the hook runs once the module has executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None


class _Loader(importlib.abc.Loader):
    """The real loader, plus the hook after ``exec_module``; the module keeps the real one."""

    def __init__(self, loader: Any, name: str) -> None:
        self.loader = loader
        self.name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        with _lock:
            hook = _hooks.pop(self.name, None)
        if hook is not None:
            _run(self.name, hook, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
