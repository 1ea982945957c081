"""Fault injection: rules that make matching requests fail, slow down or vanish.

A rule matches a method and a glob pattern on the endpoint path (the path after any serving
prefix, e.g. ``/api/2.0/mlflow/runs/log-batch`` or ``*/log-batch``), and then does one action:

- ``status``: answer that status (MLflow-style JSON body unless one is given; optional
  ``Retry-After``), without calling the handler;
- ``latency``: wait ``delay`` seconds, then serve normally (``delay`` also applies before any
  other action);
- ``drop``: close the connection without an answer;
- ``reset``: abort the connection with a TCP reset after the first chunk of the request body
  (mid-body for a large upload);
- ``lose_response``: serve the request (the server commits it), then drop the connection
  without sending the answer, the case exactly-once delivery has to survive;
- ``capacity``: serve at most ``limit`` matching requests at once, and answer ``status``
  (429 by default, with ``Retry-After`` when given) to those beyond: a small server, or a
  gateway in front of one. The rule counts the most it ever served at once (``peak``).

``times`` caps how often a rule fires, ``after`` lets that many matching requests through first,
``probability`` fires at random (seeded), and ``until`` ends the rule at a clock time. An outage
is a rule on every path for a time window or a number of requests. The controller is shared
between the server thread and the test thread and locks around every decision.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast, get_args

__all__ = ["Action", "FaultController", "FaultRule"]

Action = Literal["status", "latency", "drop", "reset", "lose_response", "capacity"]
ACTIONS: tuple[str, ...] = get_args(Action)


@dataclass
class FaultRule:
    """One fault rule; see the module docstring for the fields' meaning."""

    id: int
    action: Action
    method: str = "*"
    path: str = "*"
    status: int = 503
    body: str | bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | str | None = None
    delay: float = 0.0
    times: int | None = None
    after: int = 0
    probability: float = 1.0
    until: float | None = None
    limit: int | None = None
    seen: int = 0
    hits: int = 0
    active: int = 0
    peak: int = 0

    @property
    def exhausted(self) -> bool:
        """Whether the rule has fired ``times`` times."""
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str) -> bool:
        """Whether a request's method and endpoint path fall under this rule."""
        return (self.method == "*" or self.method.upper() == method) and fnmatch.fnmatchcase(
            path, self.path
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view, for ``GET /_mock/faults``."""
        body = self.body.decode(errors="replace") if isinstance(self.body, bytes) else self.body
        return {
            "id": self.id,
            "action": self.action,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": body,
            "headers": self.headers,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "times": self.times,
            "after": self.after,
            "probability": self.probability,
            "until": self.until,
            "limit": self.limit,
            "seen": self.seen,
            "hits": self.hits,
            "active": self.active,
            "peak": self.peak,
        }


class FaultController:
    """The fault rules of one server; safe to use from the test thread while it serves.

    Args:
        clock: a monotonic clock in seconds (tests may pass a fake one to move time).
        seed: the seed of the random source behind ``probability``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self.clock = clock
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._next_id = 1

    def add(
        self,
        action: Action = "status",
        *,
        method: str = "*",
        path: str = "*",
        status: int | None = None,
        body: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        times: int | None = None,
        after: int = 0,
        probability: float = 1.0,
        seconds: float | None = None,
        limit: int | None = None,
    ) -> FaultRule:
        """Add a rule (checked after the existing ones) and return it.

        Args:
            action: ``status``, ``latency``, ``drop``, ``reset``, ``lose_response`` or
                ``capacity``.
            method: an HTTP method, or ``*`` for any.
            path: a glob on the endpoint path, e.g. ``*/runs/log-batch``.
            status: the status of a ``status`` action (503 by default) or of a ``capacity``
                rule's answer beyond its limit (429 by default).
            body: its body (a dict is sent as JSON); MLflow's error body when ``None``.
            headers: extra response headers.
            retry_after: a ``Retry-After`` value (seconds or an HTTP date).
            delay: seconds to wait before acting (the whole point of ``latency``).
            times: fire at most this many times (``None``: no limit).
            after: let this many matching requests through before firing.
            probability: fire with this probability (seeded, so runs repeat).
            seconds: stop firing this many seconds from now.
            limit: the requests a ``capacity`` rule serves at once (required for it).

        Raises:
            ValueError: for an unknown action or out-of-range numbers.

        Example::

            server.faults.add("status", path="*/log-batch", status=503, times=3)
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown fault action {action!r}; expected one of {ACTIONS}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if delay < 0 or after < 0 or (times is not None and times < 0):
            raise ValueError("delay, after and times must not be negative")
        if status is None:
            status = 429 if action == "capacity" else 503
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        if (action == "capacity") != (limit is not None) or (limit is not None and limit < 1):
            raise ValueError("limit (at least 1) is required for a capacity rule, and only there")
        with self._lock:
            rule = FaultRule(
                id=self._next_id,
                action=action,
                method=method.upper(),
                path=path,
                status=status,
                body=dict(body) if isinstance(body, Mapping) else body,
                headers=dict(headers or {}),
                retry_after=retry_after,
                delay=delay,
                times=times,
                after=after,
                probability=probability,
                until=None if seconds is None else self.clock() + seconds,
                limit=limit,
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def outage(
        self,
        *,
        seconds: float | None = None,
        requests: int | None = None,
        action: Action = "status",
        status: int = 503,
    ) -> FaultRule:
        """Take the whole server down for ``seconds`` or for the next ``requests`` requests.

        Every request (``/health`` included, the ``/_mock`` control endpoints excepted) gets
        ``action``: by default a 503 ``TEMPORARILY_UNAVAILABLE``; ``"reset"`` or ``"drop"``
        look like a dead process instead.
        """
        if (seconds is None) == (requests is None):
            raise ValueError("give exactly one of seconds= or requests=")
        return self.add(action, status=status, times=requests, seconds=seconds)

    def remove(self, rule_id: int) -> bool:
        """Remove one rule; whether it existed."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """Copies of the current rules, with their counters."""
        with self._lock:
            return [replace(r) for r in self._rules]

    def decide(self, method: str, path: str, admitted: list[int] | None = None) -> FaultRule | None:
        """The rule that fires for this request, if any (counting it), else ``None``.

        A ``capacity`` rule fires only beyond its limit; below it, the request takes a place
        (its id is appended to ``admitted``) that :meth:`release` gives back once answered.
        """
        with self._lock:
            now = self.clock()
            for rule in self._rules:
                if rule.exhausted or (rule.until is not None and now >= rule.until):
                    continue
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if rule.limit is not None and rule.active < rule.limit:
                    if admitted is not None:
                        rule.active += 1
                        rule.peak = max(rule.peak, rule.active)
                        admitted.append(rule.id)
                    continue
                rule.hits += 1
                return replace(rule)
            return None

    def release(self, admitted: list[int]) -> None:
        """Give back the places a served request took in ``capacity`` rules."""
        with self._lock:
            for rule in self._rules:
                if rule.id in admitted:
                    rule.active -= 1

    def add_from_json(self, data: Mapping[str, Any]) -> FaultRule:
        """Add a rule from a JSON object (the body of ``POST /_mock/faults``)."""
        allowed = {
            "action", "method", "path", "status", "body", "headers", "retry_after", "delay",
            "times", "after", "probability", "seconds", "limit",
        }  # fmt: skip
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        kwargs = dict(data)
        action = cast(Action, kwargs.pop("action", "status"))
        return self.add(action, **kwargs)
