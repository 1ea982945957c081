"""The machinery every autolog integration shares: patches that can be undone exactly, the
options each integration was turned on with, training sessions, managed runs, and the guard
that keeps mlrelay's own failures away from the user's code.

Guarantees, for every patched callable:

- The user's call is made exactly once, with the same arguments; its return value is returned
  and its exception propagates unchanged (the wrappers never catch around it).
- Whatever mlrelay does before or after it runs under :func:`guard`: an exception there is
  turned into one warning (the same message is not repeated; none with ``silent=True``) and
  swallowed.
- ``unpatch`` puts back the very object that was there (``cls.fit is original`` again), or
  removes the attribute when the class only inherited it. A patch is applied once: calling
  autolog twice updates the options and patches nothing twice.

Sessions are process-wide, as in MLflow: while one autologged ``fit`` runs, the fits it makes
(a Pipeline's steps, a search's clones, joblib worker threads) are not logged again.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

logger = logging.getLogger("mlrelay.autolog")

__all__ = [
    "AUTOLOGGING_TAG",
    "SHARED",
    "TrainingSession",
    "any_on",
    "configure",
    "disabled_scope",
    "guard",
    "is_patched",
    "managed_run",
    "options",
    "patch",
    "patch_method",
    "unpatch",
    "warn_once",
]

AUTOLOGGING_TAG = "mlflow.autologging"
SHARED = "_shared"  # the patches every integration uses (sklearn.metrics functions)
_MARK = "__mlrelay_autolog__"  # set on every wrapper: (integration, original)
_MISSING = object()

_lock = threading.RLock()
_options: dict[str, dict[str, Any]] = {}
_warned: set[str] = set()
_disabled_depth = threading.local()


# --- options -------------------------------------------------------------------------------


def configure(integration: str, values: Mapping[str, Any] | None) -> None:
    """Record the options ``integration`` was turned on with (None: turned off)."""
    with _lock:
        if values is None:
            _options.pop(integration, None)
        else:
            _options[integration] = dict(values)


def options(integration: str) -> dict[str, Any] | None:
    """The options of an integration that is on, else None (also inside :func:`disabled_scope`)."""
    if getattr(_disabled_depth, "n", 0):
        return None
    return _options.get(integration)


def any_on() -> bool:
    """Whether any integration is on."""
    return bool(_options)


@contextlib.contextmanager
def disabled_scope() -> Iterator[None]:
    """Autologging off in this thread for the block (``cross_val_score`` and friends)."""
    _disabled_depth.n = getattr(_disabled_depth, "n", 0) + 1
    try:
        yield
    finally:
        _disabled_depth.n -= 1


# --- warnings and the guard ----------------------------------------------------------------


def warn_once(integration: str, message: str) -> None:
    """Warn about a failure in mlrelay's autologging, once per message, unless silent."""
    opts = _options.get(integration) or {}
    text = f"mlrelay {integration} autologging: {message}"
    with _lock:
        if opts.get("silent") or text in _warned:
            return
        _warned.add(text)
    warnings.warn(text, RuntimeWarning, stacklevel=3)


def guard(integration: str, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` (mlrelay's own logging work); an exception becomes one warning and None.

    With ``silent=True`` the warnings that third-party code raises inside ``fn`` (scikit-learn's
    metric warnings, say) are hidden too, as MLflow hides them.
    """
    silent = bool((_options.get(integration) or {}).get("silent"))
    try:
        with warnings.catch_warnings():
            if silent:
                warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except Exception as exc:
        warn_once(integration, f"{what} failed and was skipped ({type(exc).__name__}: {exc})")
        return None


# --- patches -------------------------------------------------------------------------------


@dataclass
class _Patch:
    owner: Any
    name: str
    wrapper: Any
    previous: Any  # what vars(owner)[name] held, or _MISSING (the attribute was inherited)


_patches: dict[str, list[_Patch]] = {}


def _original_of(value: Any) -> Any:
    marked = getattr(value, _MARK, None)
    return marked[1] if isinstance(marked, tuple) else value


def is_patched(owner: Any, name: str) -> bool:
    """Whether ``owner.name`` (its own attribute) is one of mlrelay's autolog wrappers."""
    return isinstance(getattr(vars(owner).get(name), _MARK, None), tuple)


def patch(
    integration: str, owner: Any, name: str, impl: Callable[..., Any], *, original: Any = None
) -> bool:
    """Replace ``owner.name`` by a wrapper that calls ``impl(original, *args, **kwargs)``.

    ``original`` defaults to the attribute as looked up on ``owner``. Returns False (and
    changes nothing) when it is already patched.
    """
    with _lock:
        own = vars(owner).get(name, _MISSING)
        if isinstance(getattr(own, _MARK, None), tuple):
            return False
        target = _original_of(getattr(owner, name) if original is None else original)

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return impl(target, *args, **kwargs)

        setattr(wrapper, _MARK, (integration, target))
        setattr(owner, name, wrapper)
        _patches.setdefault(integration, []).append(_Patch(owner, name, wrapper, own))
        return True


def patch_method(integration: str, cls: type, name: str, impl: Callable[..., Any]) -> None:
    """Patch method ``name`` of ``cls`` as MLflow does: a plain function (own or inherited) is
    wrapped on ``cls``; scikit-learn's delegating descriptor (``available_if``) has its ``fn``
    wrapped where it is defined; anything else (properties, class methods) is left alone."""
    for klass in cls.__mro__:
        raw = vars(klass).get(name, _MISSING)
        if raw is _MISSING:
            continue
        if callable(getattr(raw, "fn", None)) and hasattr(raw, "check"):
            patch(integration, raw, "fn", impl)
        elif inspect.isfunction(raw):
            patch(integration, cls, name, impl, original=raw)
        return


def unpatch(integration: str) -> None:
    """Undo every patch of ``integration``, newest first: put back exactly what was there."""
    with _lock:
        for item in reversed(_patches.pop(integration, [])):
            if vars(item.owner).get(item.name) is not item.wrapper:
                continue  # someone patched over us: leave their patch in place
            if item.previous is _MISSING:
                delattr(item.owner, item.name)
            else:
                setattr(item.owner, item.name, item.previous)


# --- training sessions ---------------------------------------------------------------------


class TrainingSession:
    """One autologged training call; nested calls ask :meth:`should_log` (MLflow's rule)."""

    _stack: ClassVar[list[TrainingSession]] = []

    def __init__(self, estimator: Any, *, allow_children: bool) -> None:
        self.estimator = estimator
        self.allow_children = allow_children
        self.parent: TrainingSession | None = None

    def __enter__(self) -> TrainingSession:
        stack = TrainingSession._stack
        if stack:
            self.parent = stack[-1]
            self.allow_children = stack[-1].allow_children and self.allow_children
        stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        TrainingSession._stack.remove(self)

    def should_log(self) -> bool:
        """True for the outermost call, or under a parent that allows children (and is not
        training this same estimator)."""
        for session in TrainingSession._stack:
            if session is self:
                break
            if session.estimator is self.estimator:
                return False
        return self.parent is None or self.parent.allow_children

    @staticmethod
    def active() -> bool:
        """Whether any autologged training call is running in this process."""
        return bool(TrainingSession._stack)

    @staticmethod
    def current() -> TrainingSession | None:
        """The innermost running session."""
        return TrainingSession._stack[-1] if TrainingSession._stack else None


# --- runs ----------------------------------------------------------------------------------


def user_run_active() -> bool:
    """Whether a run is active in this context that autologging did not start."""
    from mlrelay import fluent

    run = fluent.active_run()
    return run is not None and run.local_id not in _managed


_managed: set[str] = set()  # local ids of the runs autologging started


@contextlib.contextmanager
def managed_run(integration: str) -> Iterator[None]:
    """Start a run for the block when none is active (tags ``mlflow.autologging`` and the
    integration's ``extra_tags``); end it FINISHED, or FAILED when the block raises.

    A failure to start or end the run is mlrelay's: warned about, never raised."""
    from mlrelay import fluent

    run = None
    if fluent.active_run() is None and not TrainingSession.active():
        extra = (_options.get(integration) or {}).get("extra_tags") or {}
        tags = {**extra, AUTOLOGGING_TAG: integration}
        run = guard(integration, "starting a run", fluent.start_run, tags=tags)
        if run is not None:
            _managed.add(run.local_id)
    try:
        yield
    except BaseException:
        if run is not None:
            _managed.discard(run.local_id)
            guard(integration, "ending the run", fluent.end_run, "FAILED")
        raise
    if run is not None:
        _managed.discard(run.local_id)
        guard(integration, "ending the run", fluent.end_run, "FINISHED")
