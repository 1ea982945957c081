"""Typed access to request arguments, with MLflow's validation and error messages.

MLflow decodes a GET query string or a JSON body into a protobuf message and then checks a
per-endpoint schema. :class:`Fields` does both in one step: each getter knows the wire type of
one field (string, int64, double, bool, enum, repeated) and raises the 400 MLflow would.

Deliberate difference: where the real server writes a malformed value as zero with a 200
(protocol notes, gotcha 1: ``"value": "abc"``, ``"timestamp": 1.5``, ``"value": true``), the mock
answers 400 ``INVALID_PARAMETER_VALUE``, so a client bug shows up in tests instead of as zeros.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlrelay_mock._errors import MlflowError, invalid, missing, wrong_type

__all__ = ["Fields", "parse_double", "run_id_of"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_RE = re.compile(r"^-?\d+$")
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@functools.lru_cache(maxsize=1024)
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_double(param: str, value: Any, *, v2: bool = False) -> float:
    """Decode a protobuf JSON double: a number, ``"NaN"``, ``"Infinity"`` or a numeric string.

    ``v2``: word a type error as MLflow 2.7 does."""
    if isinstance(value, bool):
        raise wrong_type(param, value, v2=v2)
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer beyond the double range
            raise wrong_type(param, value, v2=v2) from None
    if isinstance(value, str):
        if value in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[value]
        try:
            parsed = float(value)
        except ValueError:
            raise wrong_type(param, value, v2=v2) from None
        if math.isnan(parsed) or math.isinf(parsed):
            # Only the exact protobuf spellings are accepted for the special values.
            raise wrong_type(param, value, v2=v2)
        return parsed
    raise wrong_type(param, value, v2=v2)


class Fields:
    """The arguments of one request, read with a type per field.

    Args:
        data: the JSON object of the body, or the query string as ``{name: [values]}``.
        from_query: whether ``data`` came from a query string (every value is a list of strings).
        path: a prefix for parameter names in error messages (``"metrics[3]."``).
        lenient: read as MLflow 2.7 reads the top level of a request (see below).
        v2: word type errors as MLflow 2.7 does; ``lenient`` when not given.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        from_query: bool = False,
        path: str = "",
        lenient: bool = False,
        v2: bool | None = None,
    ) -> None:
        self._data = data
        self._from_query = from_query
        self._path = path
        # MLflow 2.7: both spellings of a field at once are accepted, and a JSON number
        # where a string is expected is taken as its text.
        self._lenient = lenient
        self._v2 = lenient if v2 is None else v2

    def has(self, name: str) -> bool:
        """Whether the request carries ``name`` (snake_case or its camelCase JSON name)."""
        return name in self._data or _camel(name) in self._data

    def raw(self, name: str) -> Any:
        """The undecoded value of ``name``, ``None`` if absent; both spellings at once are a 400."""
        camel = _camel(name)
        both = camel != name and name in self._data and camel in self._data
        if both and not self._lenient:
            raise invalid(
                f"Request specifies both '{name}' and '{camel}'; provide only one of them."
            )
        value = self._data.get(name, self._data.get(camel))
        if self._from_query and isinstance(value, list):
            return value[0] if value else None
        return value

    def nested(self, data: Mapping[str, Any], path: str) -> Fields:
        """A nested message's fields, with this request's wording of type errors. They are read
        strictly in both versions: MLflow 2.7 fails to parse a number in a nested string field
        and goes on with a half-parsed message; the mock answers 400 instead."""
        return Fields(data, path=path, v2=self._v2)

    def _wrong(self, name: str, value: Any) -> MlflowError:
        return wrong_type(self.label(name), value, v2=self._v2)

    def label(self, name: str) -> str:
        """The parameter's name as error messages show it (``metrics[3].value``)."""
        return self._path + name

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        """A string field; ``required`` rejects a missing or empty value like MLflow does."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(self.label(name))
            return default
        if self._lenient and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self._wrong(name, value)
        return value

    def optional_string(self, name: str) -> str | None:
        """A string field that may be absent (``None``), as opposed to empty."""
        if self.raw(name) is None:
            return None
        return self.string(name)

    def int64(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        """An int64 field: a JSON integer or a numeric string, within the int64 range."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(self.label(name))
            return default
        if isinstance(value, bool):
            raise self._wrong(name, value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
            raise self._wrong(name, value)
        return value

    def required_int64(self, name: str) -> int:
        """An int64 field the request must carry."""
        value = self.int64(name, required=True)
        assert value is not None  # required=True raised otherwise
        return value

    def double(self, name: str, *, required: bool = False) -> float | None:
        """A double field (numbers, ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, numeric strings)."""
        value = self.raw(name)
        if value is None or value == "":
            if required:
                raise missing(self.label(name))
            return None
        return parse_double(self.label(name), value, v2=self._v2)

    def boolean(self, name: str, *, default: bool = False) -> bool:
        """A bool field: JSON ``true``/``false``, or the strings ``true``/``false`` in a query."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str) and self._from_query:
            if value.lower() not in ("true", "false"):
                raise invalid(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self._wrong(name, value)
        return value

    def enum(self, name: str, names: Sequence[str], *, default: str | None = None) -> str | None:
        """An enum field sent by name (or number); unknown names are dropped, as MLflow does."""
        value = self.raw(name)
        if isinstance(value, bool):
            raise self._wrong(name, value)
        if isinstance(value, int):
            # Proto enum numbers start at 1 for every enum the mock serves.
            return names[value - 1] if 1 <= value <= len(names) else default
        if isinstance(value, str):
            return value if value in names else default
        if value is None:
            return default
        raise self._wrong(name, value)

    def strings(self, name: str) -> list[str]:
        """A repeated string field (repeated query keys, or a JSON list of strings)."""
        if self._from_query:
            values = self._data.get(name, self._data.get(_camel(name), []))
            return [str(v) for v in values]
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, value)
        return value

    def objects(self, name: str, *, required: bool = False) -> list[Fields]:
        """A repeated message field: a JSON list of objects, each wrapped as :class:`Fields`."""
        value = None if self._from_query else self.raw(name)
        if value is None:
            if required:
                raise missing(self.label(name))
            return []
        if not isinstance(value, list):
            raise self._wrong(name, value)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise wrong_type(f"{self.label(name)}[{i}]", item, v2=self._v2)
            out.append(self.nested(item, f"{self.label(name)}[{i}]."))
        return out

    def message(self, name: str) -> Fields | None:
        """A nested message field, ``None`` when absent."""
        value = None if self._from_query else self.raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(name, value)
        return self.nested(value, f"{self.label(name)}.")

    def key_values(self, name: str, *, value_required: bool = False) -> list[tuple[str, str]]:
        """A repeated ``{key, value}`` field (tags, params) as ``(key, value)`` pairs."""
        pairs = []
        for item in self.objects(name):
            key = item.string("key", required=True)
            pairs.append((key, item.string("value", required=value_required)))
        return pairs


def run_id_of(fields: Fields) -> str:
    """The run id of a request, from ``run_id`` or the legacy ``run_uuid``."""
    run_id = fields.string("run_id")
    if not run_id:
        run_id = fields.string("run_uuid")
    if not run_id:
        raise missing("run_id")
    return run_id
