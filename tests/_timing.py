"""Time limits for the suite, scaled to the machine it runs on.

A test never decides its outcome by how fast the machine is. It waits for a condition
(an event, a process exiting, a poll that comes true) and bounds that wait with a
:func:`deadline`, which is generous on purpose: it only costs time when something is
broken. pytest-timeout's per-test backstop (``timeout`` in pyproject.toml) is scaled the
same way (tests/conftest.py). Where a test asserts that the product keeps its own time
limit (exit within ``MLRELAY_EXIT_TIMEOUT``, a log call that never waits on the network),
the tolerance on top of that limit is a :func:`slack`.

``MLRELAY_TEST_TIME_SCALE`` multiplies both (default 2: a laptop or a CI runner busy with
other jobs; use 4 or more on an emulated or heavily shared machine). A larger scale makes
the upper-bound checks more lenient too, so keep it as small as the machine allows. It is
read once, when this module is first imported, because the suite's autouse fixture
removes every ``MLRELAY_*`` variable from the environment of each test.
"""

from __future__ import annotations

import os

__all__ = ["SCALE_ENV", "deadline", "scale", "slack"]

SCALE_ENV = "MLRELAY_TEST_TIME_SCALE"
DEFAULT_SCALE = 2.0


def _read_scale(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_SCALE
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SCALE_ENV}={raw!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{SCALE_ENV}={raw!r} must be a positive, finite number")
    return value


_SCALE = _read_scale(os.environ.get(SCALE_ENV))


def scale() -> float:
    """The factor every limit of the suite is multiplied by (``MLRELAY_TEST_TIME_SCALE``)."""
    return _SCALE


def deadline(seconds: float) -> float:
    """How long to wait for something that should happen: ``seconds`` times the scale."""
    return seconds * _SCALE


def slack(seconds: float) -> float:
    """Tolerance on top of a time limit the product keeps: ``seconds`` times the scale."""
    return seconds * _SCALE
