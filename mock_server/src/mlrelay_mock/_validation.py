"""The SQL store's limits and name rules (protocol notes §3), as pure functions.

Over-long param values and run tag values are truncated silently, like the real server does
with its default ``MLFLOW_TRUNCATE_LONG_VALUES=true``; every other violation is a 400.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re

from mlrelay_mock._errors import invalid

__all__ = [
    "MAX_BATCH_ENTITIES",
    "MAX_BATCH_METRICS",
    "MAX_BATCH_PARAMS",
    "MAX_BATCH_TAGS",
    "MAX_EXPERIMENT_NAME",
    "MAX_EXPERIMENT_TAG_VALUE",
    "MAX_KEY",
    "MAX_PARAM_VALUE",
    "MAX_REGISTRY_TAG_VALUE",
    "MAX_RUN_TAG_VALUE",
    "V2_MAX_PARAM_VALUE",
    "V2_MAX_TAG_VALUE",
    "check_key",
    "check_key_v2",
    "check_length",
    "check_model_name",
    "check_value_v2",
]

MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_RUN_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_REGISTRY_TAG_VALUE = 100000
MAX_EXPERIMENT_NAME = 500

_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)


def _invalid_value(path: str, value: str, message: str) -> str:
    return f"Invalid value {json.dumps(value)} for parameter '{path}' supplied: {message}"


@functools.lru_cache(maxsize=4096)
def check_key(key: str, *, entity: str, path: str = "key") -> None:
    """Reject a metric, param or tag key MLflow would reject (characters, path form, length).

    Args:
        key: the key as sent.
        entity: the name used in the length message (``"Metric name"``, ``"Param key"``, ``"key"``).
        path: the parameter name used in the character messages.

    Valid keys are cached (keys repeat in every batch); invalid ones raise each time.
    """
    if not _NAME_RE.match(key):
        raise invalid(_invalid_value(path, key, _BAD_CHARACTERS))
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise invalid(
            _invalid_value(
                path,
                key,
                "Names may be treated as files in certain cases, and must not resolve to other"
                f" names when treated as such. This name would resolve to {norm!r}",
            )
        )
    check_length(entity, key, MAX_KEY)


def check_length(entity: str, value: str, limit: int) -> None:
    """A 400 when ``value`` is longer than ``limit`` characters."""
    if len(value) > limit:
        raise invalid(f"'{entity}' exceeds the maximum length of {limit} characters")


def check_model_name(name: str) -> None:
    """Registered model names: no ``/`` or ``:``, and stable under path normalisation."""
    if "/" in name or ":" in name:
        raise invalid(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if posixpath.normpath(name) != name or name in (".", ".."):
        raise invalid(f"Invalid model name '{name}'.")


# --- MLflow 2.7 (protocol notes §15, and measured against a real 2.7.1 server) -----------

V2_MAX_PARAM_VALUE = 500
V2_MAX_TAG_VALUE = 5000
_NAME_RE_V2 = re.compile(r"^[/\w.\- ]*$")


def check_key_v2(key: str, *, kind: str) -> None:
    """MLflow 2.7's name rule: no colon; ``kind`` is ``metric``, ``param`` or ``tag``."""
    if not _NAME_RE_V2.match(key):
        raise invalid(
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores "
            "(_), dashes (-), periods (.), spaces ( ), and slashes (/)."
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise invalid(
            f"Invalid {kind} name: '{key}'. Names may be treated as files in certain cases, "
            "and must not resolve to other names when treated as such. This name would "
            f"resolve to '{norm}'"
        )
    if len(key) > MAX_KEY:
        raise invalid(
            f"{kind.capitalize()} key '{key}' had length {len(key)}, which exceeded length "
            f"limit of {MAX_KEY}"
        )


def check_value_v2(kind: str, value: str, limit: int) -> None:
    """MLflow 2.7 refuses long values (3.x truncates run tags and params silently)."""
    if len(value) > limit:
        raise invalid(
            f"{kind} value '{value}' had length {len(value)}, which exceeded length limit "
            f"of {limit}"
        )
