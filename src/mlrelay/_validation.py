"""Client-side validation of everything a user logs, before anything is sent.

The MLflow server silently truncates params over 6000 characters and run tags over
8000, and stores malformed numbers as 0 with a 200 OK. mlrelay never does either:
each check here raises :class:`~mlrelay.ValidationError` naming the field, the
user's key, what is wrong and the limit, and returns the normalised value otherwise.
All functions are pure.

Every value leaves here in a form the journal can store and the wire can carry: integers
(steps, timestamps) within int64, and text that encodes as UTF-8. A ``str`` holding a lone
surrogate (what Python makes of a file name or argv that is not UTF-8, e.g.
``os.fsdecode(b"train_\\xff.csv")``) is refused, naming the key, rather than escaped:
mlrelay never stores a value other than the one given (as it never truncates), an
escaped form could not be told from a string that really holds the escape, and params
cannot be corrected once logged. The message says how to convert such a value
explicitly.
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from ._errors import ValidationError

__all__ = [
    "MAX_ENTITIES_PER_BATCH",
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MAX_EXPERIMENT_TAG_VALUE_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAGS_PER_BATCH",
    "MAX_TAG_VALUE_LENGTH",
    "unique_params",
    "validate_experiment_name",
    "validate_experiment_tag_value",
    "validate_key",
    "validate_metric_value",
    "validate_param_value",
    "validate_step",
    "validate_tag_value",
    "validate_text",
    "validate_timestamp",
]

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# MLflow's rule: Unicode word characters, '-', '.', ' ', '/', ':'.
_KEY_RE = re.compile(r"^[\w\-. /:]+$")


def _shorten(value: str, n: int = 40) -> str:
    return value if len(value) <= n else value[:n] + "..."


def _repr(value: Any) -> str:
    """A short, ASCII-only repr for messages; never raises (a user's ``__repr__`` may)."""
    try:
        return _shorten(ascii(value))
    except Exception:
        return f"<{type(value).__name__} whose repr() failed>"


def validate_key(key: Any, *, field: str = "key") -> str:
    """Check a metric, param or tag key against MLflow's rules.

    Args:
        key: the key to check.
        field: what the key names, for the message (``"metric key"``, ``"param key"``, ...).

    Returns:
        The key, unchanged.

    Raises:
        ValidationError: the key is not a non-empty string of at most 250 allowed
            characters, or it would not survive path normalisation (``a//b``, ``../x``).
    """
    if not isinstance(key, str):
        raise ValidationError(
            f"{field} must be a str, got {type(key).__name__} {_repr(key)}", field=field
        )
    if not key:
        raise ValidationError(f"{field} must not be empty", field=field, key=key)
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"{field} {_shorten(key)!r} is {len(key)} characters long; "
            f"the limit is {MAX_KEY_LENGTH}",
            field=field,
            key=key,
            limit=MAX_KEY_LENGTH,
        )
    if not _KEY_RE.match(key):
        bad = sorted({c for c in key if not _KEY_RE.match(c)})
        raise ValidationError(
            f"{field} {_shorten(key)!r} contains {''.join(bad)!r}; keys may only contain "
            "letters, digits, underscores (_), dashes (-), periods (.), spaces ( ), "
            "colons (:) and slashes (/)",
            field=field,
            key=key,
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise ValidationError(
            f"{field} {_shorten(key)!r} is not a normalised relative path "
            "(no leading '/', no '..', '.', '//' or trailing '/' segments)",
            field=field,
            key=key,
        )
    return key


def validate_text(text: str, *, field: str, key: str | None) -> str:
    """Return ``text`` if it encodes as UTF-8 (what the journal and the wire need).

    Raises:
        ValidationError: it holds a lone surrogate (a non-UTF-8 file name or argument
            decoded by Python), naming the field, the key and the position.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{field} for key {_shorten(key or '')!r} is not valid Unicode: it holds the lone "
            f"surrogate {text[exc.start]!r} at position {exc.start} (what Python makes of "
            "bytes that are not UTF-8, e.g. a file name); mlrelay does not change logged "
            "values, so convert it yourself, e.g. "
            "os.fsencode(value).decode('utf-8', 'backslashreplace')",
            field=field,
            key=key,
        ) from None
    return text


def _validate_length(value: Any, *, field: str, key: str, limit: int, what: str) -> str:
    text = value if type(value) is str else _str(value, field=field, key=key)
    validate_text(text, field=field, key=key)
    if len(text) > limit:
        raise ValidationError(
            f"{field} for key {_shorten(key)!r} is {len(text)} characters long; the limit is "
            f"{limit} ({what})",
            field=field,
            key=key,
            limit=limit,
        )
    return text


def _str(value: Any, *, field: str, key: str) -> str:
    """``str(value)``; a ``__str__`` that fails or returns something else is refused."""
    try:
        text = str(value)
    except Exception as exc:  # a user's __str__ may raise anything
        raise ValidationError(
            f"{field} for key {_shorten(key)!r}: str() of the {type(value).__name__} failed "
            f"({type(exc).__name__}: {_shorten(str(exc))})",
            field=field,
            key=key,
        ) from None
    return text


def validate_param_value(key: str, value: Any) -> str:
    """Return ``str(value)`` if it fits MLflow's 6000-character param limit.

    Raises:
        ValidationError: the value is longer (the server would silently truncate it).
    """
    return _validate_length(
        value,
        field="param value",
        key=key,
        limit=MAX_PARAM_VALUE_LENGTH,
        what="the MLflow server would silently truncate it",
    )


def validate_tag_value(key: str, value: Any) -> str:
    """Return ``str(value)`` if it fits MLflow's 8000-character run-tag limit.

    Raises:
        ValidationError: the value is longer (the server would silently truncate it).
    """
    return _validate_length(
        value,
        field="tag value",
        key=key,
        limit=MAX_TAG_VALUE_LENGTH,
        what="the MLflow server would silently truncate it",
    )


def validate_experiment_tag_value(key: str, value: Any) -> str:
    """Return ``str(value)`` if it fits MLflow's 20000-character experiment-tag limit.

    Raises:
        ValidationError: the value is longer.
    """
    return _validate_length(
        value,
        field="experiment tag value",
        key=key,
        limit=MAX_EXPERIMENT_TAG_VALUE_LENGTH,
        what="the MLflow server rejects longer values",
    )


def validate_experiment_name(name: Any) -> str:
    """Check an experiment name: a non-empty string of at most 500 characters.

    Raises:
        ValidationError: otherwise.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"experiment name must be a non-empty str, got {name!r}", field="experiment name"
        )
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ValidationError(
            f"experiment name {_shorten(name)!r} is {len(name)} characters long; the limit is "
            f"{MAX_EXPERIMENT_NAME_LENGTH}",
            field="experiment name",
            key=name,
            limit=MAX_EXPERIMENT_NAME_LENGTH,
        )
    return validate_text(name, field="experiment name", key=name)


def validate_metric_value(key: str, value: Any) -> float:
    """Return the metric value as a float, converted as MLflow converts it; NaN and
    infinities are allowed.

    Accepted: Python and NumPy numbers, ``bool``, ``Decimal``, numeric strings such as
    ``"0.5"``, NumPy 0-d and 1-element arrays, and anything with ``.item()`` or
    ``__float__`` (torch and JAX scalars).

    Raises:
        ValidationError: the value has no float value (None, a list, a non-numeric
            string, an array of more than one element).
    """
    if type(value) is float:  # the hot path: a training loop's plain floats
        return value
    try:
        if type(value) is int or isinstance(value, (numbers.Real, str)):  # (int: no ABC check)
            return float(value)
        item = getattr(value, "item", None)
        if callable(item) and getattr(value, "size", 1) == 1:
            return float(item())
        if hasattr(value, "__float__"):
            return float(value)
    except Exception:  # float("abc"), float(10**400), a user's __float__ that raises
        pass
    raise ValidationError(
        f"metric value for key {_shorten(key)!r} must be a number (or something float() "
        f"takes, such as a numeric string or a one-element array), got "
        f"{type(value).__name__} {_repr(value)}",
        field="metric value",
        key=key,
    )


def _validate_int64(value: Any, *, field: str, key: str, minimum: int) -> int:
    if type(value) is int and minimum <= value <= _INT64_MAX:  # the hot path
        return value
    if isinstance(value, bool):
        raise ValidationError(
            f"{field} for key {_shorten(key)!r} must be an integer, got bool {value}",
            field=field,
            key=key,
        )
    try:
        integral = isinstance(value, numbers.Integral) or (
            isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
        )
        number = int(value) if integral else None
    except Exception:  # a user's __int__/__float__ may raise anything; Decimal("sNaN")
        number = None
    if number is None:
        raise ValidationError(
            f"{field} for key {_shorten(key)!r} must be an integer, got "
            f"{type(value).__name__} {_repr(value)}",
            field=field,
            key=key,
        )
    if not minimum <= number <= _INT64_MAX:
        raise ValidationError(
            f"{field} for key {_shorten(key)!r} is {number}; it must be between {minimum} and "
            f"{_INT64_MAX}",
            field=field,
            key=key,
            limit=minimum,
        )
    return number


def validate_timestamp(key: str, value: Any) -> int:
    """Return a metric timestamp (epoch milliseconds) as an int >= 0.

    Raises:
        ValidationError: the value is not integral, not finite, negative or beyond int64.
    """
    return _validate_int64(value, field="timestamp", key=key, minimum=0)


def validate_step(key: str, value: Any) -> int:
    """Return a metric step as an int64 (negative steps are allowed).

    Raises:
        ValidationError: the value is not integral or beyond int64.
    """
    return _validate_int64(value, field="step", key=key, minimum=_INT64_MIN)


def unique_params(params: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """One call's params with equal repeats dropped (first-seen order kept).

    Raises:
        ValidationError: one key is given twice with different values (MLflow never
            lets a param change), naming the key and both values.
    """
    seen: dict[str, str] = {}
    for key, value in params:
        old = seen.setdefault(key, value)
        if old != value:
            raise ValidationError(
                f"param {key!r} is given twice with different values ({old!r} and "
                f"{value!r}); a run's param cannot change",
                field="param value",
                key=key,
            )
    return list(seen.items())
