"""Pure retry decisions: what is retried, how long to wait, Retry-After parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlrelay
from mlrelay._errors import error_for_status
from mlrelay._retry import RetryPolicy, compute_wait, parse_retry_after, should_retry


def _status(code: int, retry_after: float | None = None) -> mlrelay.APIStatusError:
    return error_for_status(
        method="POST", url="http://h", status_code=code, body=b"", retry_after=retry_after
    )


def _conn(sent: bool) -> mlrelay.APIConnectionError:
    return mlrelay.APIConnectionError("x", method="POST", url="http://h", request_sent=sent)


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_for_idempotent_calls(code: int) -> None:
    """MLflow's retryable set is retried when a replay is harmless."""
    assert should_retry(_status(code), idempotent=True)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 501])
def test_other_statuses_are_never_retried(code: int) -> None:
    """Client errors and 501 are final."""
    assert not should_retry(_status(code), idempotent=True)
    assert not should_retry(_status(code), idempotent=False)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(408, True), (429, True), (503, True), (500, False), (502, False), (504, False)],
)
def test_non_idempotent_calls_retry_only_when_the_server_did_not_act(
    code: int, expected: bool
) -> None:
    """runs/create is resent only after a refusal, never after an ambiguous 500/502/504."""
    assert should_retry(_status(code), idempotent=False) is expected


def test_connection_errors_depend_on_whether_the_request_left() -> None:
    """A refused connection is always retryable; a reset after sending only if idempotent."""
    assert should_retry(_conn(sent=False), idempotent=False)
    assert should_retry(_conn(sent=True), idempotent=True)
    assert not should_retry(_conn(sent=True), idempotent=False)
    assert not should_retry(ValueError("x"), idempotent=True)


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    """Retry-After wins over backoff, capped at max_wait."""
    policy = RetryPolicy(max_wait=30.0)
    assert compute_wait(1, _status(429, retry_after=2.0), policy) == 2.0
    assert compute_wait(1, _status(429, retry_after=3600.0), policy) == 30.0
    assert (
        compute_wait(1, _status(429, retry_after=2.0), RetryPolicy(respect_retry_after=False))
        <= 0.5
    )


@given(st.integers(1, 40), st.floats(0, 1, exclude_max=True))
def test_backoff_grows_and_stays_within_bounds(attempt: int, r: float) -> None:
    """Exponential backoff with equal jitter: between half and all of the capped step."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=30.0)
    step = min(0.5 * 2 ** (attempt - 1), 30.0)
    wait = compute_wait(attempt, _status(503), policy, rand=lambda: r)
    assert step / 2 <= wait <= step


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("soon", None),
        (None, None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After as seconds or HTTP date; past dates and negatives mean now; junk means absent."""
    assert parse_retry_after(header, now=1445412470.0) == expected
