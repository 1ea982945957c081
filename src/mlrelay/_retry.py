"""When to retry a request, how long to wait, and the tenacity wiring that does it.

The policy is a frozen value; the decisions are pure functions of the policy and the
error (:func:`should_retry`, :func:`compute_wait`, :func:`parse_retry_after`);
tenacity only drives the loop. Two limits stop the loop, whichever comes first: an
attempt count and a total time budget (a wait that would cross the budget is not
started). Every individual request also has a finite timeout, set on the HTTP client.

What is retried:

* connection failures and timeouts, and HTTP 408, 429, 500, 502, 503, 504;
* for a **non-idempotent** operation (``runs/create``), only failures where the
  server certainly did not act: the request never left (connection refused, connect
  timeout) or the server refused it outright (408, 429, 503). An ambiguous failure
  (a reset after sending, a read timeout, 500/502/504) is handed back to the caller,
  which knows how to check whether the operation happened (see ``Client.create_run``).

Whether the server *refused data* is a second, separate question, answered by
:func:`is_refusal` from the same table: a 4xx other than 408/429 and the credential
statuses 401/403 means "this data will never be accepted" (the pipeline sets it aside);
everything else means "deliver later" (the pipeline keeps it and tries again).

``Retry-After`` (seconds or an HTTP date) replaces the backoff when present, capped
at ``max_wait``. Otherwise the wait is capped exponential backoff with "equal
jitter": half the exponential step, plus a random part of up to the other half.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from ._errors import APIConnectionError, APIStatusError

__all__ = [
    "CREDENTIAL_STATUSES",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "call_exactly_once",
    "call_with_retries",
    "compute_wait",
    "is_ambiguous",
    "is_refusal",
    "parse_retry_after",
    "should_retry",
]

logger = logging.getLogger("mlrelay.retry")

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that mean the server did not carry out the request at all.
_NOT_PROCESSED_STATUSES = frozenset({408, 429, 503})
CREDENTIAL_STATUSES = frozenset({401, 403})
"""Statuses that will change once the credentials do: not a refusal of the data."""


@dataclass(frozen=True)
class RetryPolicy:
    """How one call is retried.

    Args:
        max_retries: retries after the first attempt (0 turns retrying off).
        budget: total seconds one call may spend, waits included; a wait that would
            cross it is not started.
        initial_wait: the first backoff step, in seconds.
        max_wait: the cap for any single wait, ``Retry-After`` included.
        respect_retry_after: whether ``Retry-After`` replaces the backoff.
        sleep: the function that waits; tests pass a recorder so nothing sleeps.
        on_retry: called with each failure that is retried, before the wait (the sender's
            adaptive limit learns of a 429 or a timeout the retry hides).

    >>> RetryPolicy(max_retries=3, budget=10.0).max_retries
    3
    """

    max_retries: int = 7
    budget: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    respect_retry_after: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    on_retry: Callable[[BaseException], None] | None = field(
        default=None, compare=False, repr=False
    )

    def with_changes(self, **changes: Any) -> RetryPolicy:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def should_retry(exc: BaseException, *, idempotent: bool) -> bool:
    """Decide whether a failed attempt may be tried again.

    Args:
        exc: what the attempt raised.
        idempotent: whether replaying the operation is harmless.
    """
    if isinstance(exc, APIConnectionError):
        return idempotent or not exc.request_sent
    if isinstance(exc, APIStatusError):
        if exc.status_code not in RETRYABLE_STATUSES:
            return False
        return idempotent or exc.status_code in _NOT_PROCESSED_STATUSES
    return False


def is_refusal(exc: APIStatusError) -> bool:
    """Whether the server refused the data for good, rather than "deliver it later".

    A refusal is a status below 500 that is neither retryable (408, 429) nor about the
    credentials (401, 403): sending the same data again can never succeed, so the
    pipeline sets it aside. Anything else keeps the data for a later attempt.
    """
    status = exc.status_code
    return status < 500 and status not in RETRYABLE_STATUSES | CREDENTIAL_STATUSES


def is_ambiguous(exc: BaseException) -> bool:
    """Whether the server may or may not have carried out a failed request (a reset after
    sending, a read timeout, 500/502/504): retryable when idempotent, but not otherwise."""
    return should_retry(exc, idempotent=True) and not should_retry(exc, idempotent=False)


def compute_wait(
    attempt: int,
    exc: BaseException | None,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``Retry-After`` wins when present and allowed; otherwise capped exponential
    backoff with equal jitter. The result never exceeds ``policy.max_wait``.
    """
    retry_after = getattr(exc, "retry_after", None)
    if policy.respect_retry_after and retry_after is not None:
        return float(min(max(retry_after, 0.0), policy.max_wait))
    step = min(policy.initial_wait * (2 ** (attempt - 1)), policy.max_wait)
    return float(step / 2 + rand() * step / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delay-seconds or an HTTP date.

    Returns:
        Seconds to wait (never negative), or None when absent or unparseable.

    >>> parse_retry_after("2")
    2.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def call_with_retries(
    fn: Callable[[], T], *, policy: RetryPolicy, idempotent: bool, what: str = "request"
) -> T:
    """Call ``fn`` and retry it as ``policy`` allows; re-raise the last error otherwise.

    Args:
        fn: one attempt; it raises mlrelay errors on failure.
        policy: the retry policy.
        idempotent: whether replaying the operation is harmless.
        what: a short description for log lines (never containing secrets).
    """
    if policy.max_retries <= 0:
        return fn()

    retrying = _retrying(policy, lambda e: should_retry(e, idempotent=idempotent), what)
    return retrying(fn)


def call_exactly_once(
    send: Callable[[], T], find: Callable[[], T | None], *, policy: RetryPolicy, what: str
) -> T:
    """Carry out a non-idempotent operation at most once, retrying as ``policy`` allows.

    After an ambiguous failure (see :func:`is_ambiguous`) the operation may have happened,
    so before sending again ``find`` looks for its result (a run by its client key, an
    experiment by its name) and returns it when found. Other failures are raised.
    """
    retrying = _retrying(policy, is_ambiguous, what)
    for attempt in retrying:
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                found = find()
                if found is not None:
                    return found
            return send()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def _retrying(policy: RetryPolicy, retry: Callable[[BaseException], bool], what: str) -> Retrying:
    """The tenacity loop for ``policy``: attempts and time budget, our waits, a log line."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return compute_wait(state.attempt_number, exc, policy)

    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if policy.on_retry is not None and exc is not None:
            policy.on_retry(exc)
        logger.info(
            "%s failed (%s); retrying in %.2f s (attempt %d of %d)",
            what,
            exc,
            state.upcoming_sleep,
            state.attempt_number + 1,
            policy.max_retries + 1,
        )

    return Retrying(
        stop=stop_after_attempt(policy.max_retries + 1) | stop_before_delay(policy.budget),
        retry=retry_if_exception(retry),
        wait=wait,
        sleep=policy.sleep,
        before_sleep=log,
        reraise=True,
    )
