"""Search filters, ordering and page tokens, shared by runs, experiments and the registry.

The grammar is MLflow's search syntax: ``<entity>.<key> <op> <value>`` clauses joined by
``AND`` only (``OR`` is a 400). Keys with special characters are back-quoted or double-quoted;
string literals use single (or double) quotes; ``IN`` takes a parenthesised list. Each searchable
entity supplies an :class:`EntitySchema` that resolves a parsed :class:`Clause` to a value of one
of its objects; evaluation and sorting are the same code for all of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mlrelay_mock._errors import invalid

__all__ = [
    "Clause",
    "EntitySchema",
    "OrderKey",
    "decode_page_token",
    "encode_page_token",
    "filter_items",
    "page",
    "parse_filter",
    "parse_order_by",
    "sort_items",
]

T = TypeVar("T")

_ENTITY_ALIASES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
NULL_OPS = ("IS NULL", "IS NOT NULL")
SET_OPS = ("IN", "NOT IN")
_WORD_OPS = ("IS NOT NULL", "IS NULL", "NOT IN", "ILIKE", "LIKE", "IN")
_WORD_OP_PATTERNS = tuple(
    (op, re.compile(r"(?i)" + op.replace(" ", r"\s+") + r"(?=\s|\(|$)")) for op in _WORD_OPS
)
_NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_BARE_KEY_RE = re.compile(r"[\w.\-/:]+")


@dataclass(frozen=True)
class Clause:
    """One comparison of a filter: ``entity.key op value``."""

    entity: str  # metric | param | tag | attribute | dataset
    key: str
    op: str
    value: Any  # float, str, tuple of str, or None for IS [NOT] NULL


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` item: an entity key and a direction."""

    entity: str
    key: str
    ascending: bool


def _bad_filter(text: str, why: str) -> Exception:
    return invalid(f"Invalid filter '{text}': {why}")


def _split_outside_quotes(text: str) -> list[str]:
    """Split ``text`` on the keyword AND, ignoring quoted parts; reject OR."""
    parts: list[str] = []
    start = 0
    i = 0
    quote: str | None = None
    depth = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (i == 0 or text[i - 1].isspace()):
            word = re.match(r"(?i)(and|or)(?=\s|$)", text[i:])
            if word:
                if word.group(1).upper() == "OR":
                    raise invalid("Invalid clause(s) in filter string: 'OR'")
                parts.append(text[start:i])
                i += 3
                start = i
                continue
        i += 1
    if quote:
        raise _bad_filter(text, "unterminated quote")
    parts.append(text[start:])
    return parts


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    end = text.find(quote, pos + 1)
    if end < 0:
        raise _bad_filter(text, "unterminated quote")
    return text[pos + 1 : end], end + 1


def _read_identifier(text: str, pos: int) -> tuple[str, str, int]:
    """Read ``entity.key`` (or a bare attribute); return (entity, key, next position)."""
    if text[pos] in '`"':
        key, pos = _read_quoted(text, pos)
        return "attribute", key, pos
    word = re.compile(r"\w+").match(text, pos)
    if not word:
        raise _bad_filter(text, "expected an identifier")
    pos = word.end()
    if pos < len(text) and text[pos] == ".":
        entity = _ENTITY_ALIASES.get(word.group(0).lower())
        if entity is None:
            raise _bad_filter(text, f"invalid entity type '{word.group(0)}'")
        pos += 1
        if pos < len(text) and text[pos] in '`"':
            key, pos = _read_quoted(text, pos)
            return entity, key, pos
        bare = _BARE_KEY_RE.match(text, pos)
        if not bare:
            raise _bad_filter(text, "expected a key after '.'")
        return entity, bare.group(0), bare.end()
    return "attribute", word.group(0), pos


def _read_value(text: str, rest: str) -> Any:
    rest = rest.strip()
    if not rest:
        raise _bad_filter(text, "expected a value")
    if rest[0] in "'\"":
        value, end = _read_quoted(rest, 0)
        if rest[end:].strip():
            raise _bad_filter(text, "unexpected text after the value")
        return value
    if rest[0] == "(":
        if not rest.endswith(")"):
            raise _bad_filter(text, "unterminated list")
        items = []
        for raw in rest[1:-1].split(","):
            item = raw.strip()
            if len(item) < 2 or item[0] not in "'\"" or item[-1] != item[0]:
                raise _bad_filter(text, "list items must be quoted strings")
            items.append(item[1:-1])
        return tuple(items)
    if _NUMBER_RE.match(rest):
        return float(rest)
    raise _bad_filter(text, f"invalid value {rest!r}")


def _parse_clause(text: str) -> Clause:
    stripped = text.strip()
    if not stripped:
        raise _bad_filter(text, "empty clause")
    entity, key, pos = _read_identifier(stripped, 0)
    rest = stripped[pos:].lstrip()
    op_match = re.match(r"!=|>=|<=|=|>|<", rest)
    if op_match:
        op = op_match.group(0)
        rest = rest[op_match.end() :]
    else:
        for word_op, pattern in _WORD_OP_PATTERNS:
            word_match = pattern.match(rest)
            if word_match:
                op = word_op
                rest = rest[word_match.end() :]
                break
        else:
            raise _bad_filter(stripped, "expected a comparison operator")
    if op in NULL_OPS:
        if rest.strip():
            raise _bad_filter(stripped, f"unexpected text after {op}")
        return Clause(entity, key, op, None)
    value = _read_value(stripped, rest)
    if op in SET_OPS and not isinstance(value, tuple):
        raise _bad_filter(stripped, f"{op} needs a parenthesised list")
    if op not in SET_OPS and isinstance(value, tuple):
        raise _bad_filter(stripped, f"a list needs IN or NOT IN, not {op}")
    return Clause(entity, key, op, value)


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses (empty for no filter); 400 on bad syntax."""
    if not text or not text.strip():
        return []
    return [_parse_clause(part) for part in _split_outside_quotes(text)]


def parse_order_by(items: Sequence[str]) -> list[OrderKey]:
    """Parse ``order_by`` items like ``"metrics.acc DESC"``; 400 on bad syntax."""
    keys = []
    for item in items:
        text = item.strip()
        if not text:
            raise invalid(f"Invalid order_by clause '{item}'.")
        entity, key, pos = _read_identifier(text, 0)
        direction = text[pos:].strip().upper()
        if direction not in ("", "ASC", "DESC"):
            raise invalid(f"Invalid order_by clause '{item}'.")
        keys.append(OrderKey(entity, key, direction != "DESC"))
    return keys


def _like(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return (
        re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
        is not None
    )


def compare(op: str, actual: Any, expected: Any) -> bool:
    """Evaluate one operator; a missing value (``None``) matches only ``IS NULL``."""
    if op == "IS NULL":
        return actual is None
    if op == "IS NOT NULL":
        return actual is not None
    if actual is None:
        return False
    if op == "IN":
        return bool(actual in expected)
    if op == "NOT IN":
        return bool(actual not in expected)
    if op == "LIKE":
        return _like(str(expected), str(actual), ignore_case=False)
    if op == "ILIKE":
        return _like(str(expected), str(actual), ignore_case=True)
    result: bool
    if op == "=":
        result = actual == expected
    elif op == "!=":
        result = actual != expected
    elif op == ">":
        result = actual > expected
    elif op == ">=":
        result = actual >= expected
    elif op == "<":
        result = actual < expected
    else:
        result = actual <= expected
    return result


@dataclass
class EntitySchema(Generic[T]):
    """What one searchable entity allows, and how to read a key from one of its objects.

    Args:
        name: the entity's name for messages (``"run"``).
        string_attributes: attributes compared as strings.
        numeric_attributes: attributes compared as numbers.
        getter: ``getter(obj, entity, key)`` -> the value, or ``None`` when absent.
        entities: the clause entity types allowed besides ``attribute``.
        set_attributes: string attributes that allow ``IN`` / ``NOT IN``.
        aliases: other names for attributes (``created`` -> ``start_time``).
    """

    name: str
    string_attributes: tuple[str, ...]
    numeric_attributes: tuple[str, ...]
    getter: Callable[[T, str, str], Any]
    entities: tuple[str, ...] = ("tag",)
    set_attributes: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)

    def _attribute(self, key: str) -> str:
        key = self.aliases.get(key, key)
        if key not in self.string_attributes and key not in self.numeric_attributes:
            valid = sorted(self.string_attributes + self.numeric_attributes)
            raise invalid(f"Invalid attribute key '{key}' specified. Valid keys are '{valid}'")
        return key

    def check(self, clause: Clause) -> Clause:
        """Validate a clause against this entity; return it with attribute aliases resolved."""
        if clause.entity != "attribute" and clause.entity not in self.entities:
            raise invalid(f"Invalid entity type '{clause.entity}' for {self.name} search.")
        numeric = clause.entity == "metric"
        key = clause.key
        if clause.entity == "attribute":
            key = self._attribute(key)
            numeric = key in self.numeric_attributes
        if numeric:
            allowed: tuple[str, ...] = NUMERIC_OPS
        elif clause.entity in ("param", "tag"):
            allowed = STRING_OPS + NULL_OPS
        elif clause.entity == "dataset" or key in self.set_attributes:
            allowed = STRING_OPS + SET_OPS
        else:
            allowed = STRING_OPS
        if clause.op not in allowed:
            raise invalid(
                f"Invalid comparator '{clause.op}' not one of '{list(allowed)}' "
                f"for {clause.entity} '{clause.key}'."
            )
        if numeric and not isinstance(clause.value, float):
            raise invalid(f"Expected numeric value type for {clause.entity} '{clause.key}'.")
        if not numeric and isinstance(clause.value, float) and clause.op not in NULL_OPS:
            raise invalid(f"Expected a quoted string value for {clause.entity} '{clause.key}'.")
        return Clause(clause.entity, key, clause.op, clause.value)

    def check_order(self, key: OrderKey) -> OrderKey:
        """Validate one order_by key against this entity."""
        if key.entity != "attribute" and key.entity not in self.entities:
            raise invalid(f"Invalid order_by entity type '{key.entity}'.")
        name = self._attribute(key.key) if key.entity == "attribute" else key.key
        return OrderKey(key.entity, name, key.ascending)

    def value(self, obj: T, entity: str, key: str) -> Any:
        """The value of ``entity.key`` on ``obj``, numeric attributes as floats."""
        found = self.getter(obj, entity, key)
        if entity == "attribute" and key in self.numeric_attributes and found is not None:
            return float(found)
        return found


def filter_items(items: Sequence[T], clauses: Sequence[Clause], schema: EntitySchema[T]) -> list[T]:
    """The items that satisfy every clause."""
    checked = [schema.check(c) for c in clauses]
    return [
        item
        for item in items
        if all(compare(c.op, schema.value(item, c.entity, c.key), c.value) for c in checked)
    ]


def sort_items(items: Sequence[T], keys: Sequence[OrderKey], schema: EntitySchema[T]) -> list[T]:
    """Sort by ``keys`` (first key most significant); missing values go last either way.

    ``items`` should already be in the tie-break order: the sort is stable.
    """
    result = list(items)
    for key in reversed([schema.check_order(k) for k in keys]):
        present = [(schema.value(i, key.entity, key.key), i) for i in result]
        have = [p for p in present if p[0] is not None]
        lack = [p[1] for p in present if p[0] is None]
        have.sort(key=lambda p: p[0], reverse=not key.ascending)
        result = [p[1] for p in have] + lack
    return result


def encode_page_token(offset: int) -> str:
    """The SQL store's page token: base64 of ``{"offset": N}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset in a page token (0 when none), read as MLflow's SQL stores read it.

    Like ``SearchUtils.parse_start_offset_from_page_token``: lenient base64 (characters outside
    the alphabet are dropped), then JSON, then a truthy ``offset`` that ``int()`` accepts, each
    failure a 400 with MLflow's words. An offset of 0 is refused, as MLflow refuses it. Where
    MLflow fails with a 500 (a JSON token that is not an object, an offset ``int()`` rejects
    with a ``TypeError``) the mock answers the neighbouring 400 instead; a negative offset,
    which SQL reads as no offset, counts from the start.
    """
    if not token:
        return 0
    try:
        decoded = base64.b64decode(token)
    except (binascii.Error, ValueError):
        raise invalid("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise invalid(f"Invalid page token, decoded value={decoded!r}") from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if not offset:
        raise invalid(f"Invalid page token, parsed value={parsed!r}")
    try:
        return max(int(offset), 0)
    except (TypeError, ValueError, OverflowError):
        raise invalid(f"Invalid page token, not stringable {offset}") from None


def page(items: Sequence[T], token: str | None, max_results: int) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next page (``None`` on the last page)."""
    offset = decode_page_token(token)
    chunk = list(items[offset : offset + max_results])
    end = offset + max_results
    return chunk, encode_page_token(end) if end < len(items) else None
