"""The sender's flow control on its own: the adaptive limit on requests in flight (with a
fake clock) and the worker threads that make the requests."""

from __future__ import annotations

import threading

import pytest

from mlrelay._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    ServerError,
)
from mlrelay._pipeline.flow import HOLD, AdaptiveLimit, Stopped, Workers, overloaded
from tests._timing import deadline


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer_period(
    limit: AdaptiveLimit,
    clock: Clock,
    entries_per_s: float,
    latency: float = 0.1,
    *,
    full: bool = True,
) -> None:
    """Answer one measurement period's worth of requests (as many as the limit needs, over
    1 s) at ``entries_per_s``, each answer ``latency`` seconds after its request. With
    ``full`` the sender keeps every place the limit allows taken (a new request for each
    answer, and requests in flight carry over to the next period); without, it has one
    request at a time to send."""
    n = limit.period_answers

    def width() -> int:
        return limit.limit if full else 1

    while limit.in_flight < width() and limit.try_acquire():
        pass
    for _ in range(n):
        clock.now += 1.0 / n
        limit.release(round(entries_per_s / n), latency=latency)
        while limit.in_flight < width() and limit.try_acquire():
            pass


URL = "http://127.0.0.1/api/2.0/mlflow/runs/log-batch"


def status_error(code: int, cls: type[APIStatusError]) -> APIStatusError:
    """An APIStatusError subclass as the client raises it for ``code``."""
    return cls(
        f"HTTP {code}", method="POST", url=URL, status_code=code, error_code="X", server_message="m"
    )


def timeout() -> APITimeoutError:
    """A request timeout as the client raises it."""
    return APITimeoutError("timed out", method="POST", url=URL)


def test_limit_grows_while_throughput_grows_and_stops_at_maximum() -> None:
    """Each period with 5 % more throughput than the last adds one place, up to the maximum."""
    clock = Clock()
    limit = AdaptiveLimit(2, 5, period=0.5, clock=clock)
    rate = 1000.0
    seen = []
    for _ in range(6):
        answer_period(limit, clock, rate)
        seen.append(limit.limit)
        rate *= 1.5
    assert seen == [3, 4, 5, 5, 5, 5]


def test_a_server_that_answers_one_request_at_a_time_is_sent_one_at_a_time() -> None:
    """From one request to two, the median answer took twice as long (a single worker
    serialising them): the limit goes back to one, holds for two periods, then tries two
    again; each further serial verdict doubles the hold, up to HOLD. When two then answer
    about as fast as one, it grows as throughput grows."""
    clock = Clock()
    limit = AdaptiveLimit(1, 8, period=0.5, clock=clock)
    assert limit.limit == 1  # it starts at one request
    answer_period(limit, clock, 1000, latency=0.1)
    assert limit.limit == 2  # tries two
    holds = []
    for _ in range(4):
        answer_period(limit, clock, 1000, latency=0.2)  # each answer waited for the other
        assert limit.limit == 1
        seen = []
        while limit.limit == 1:
            answer_period(limit, clock, 1000, latency=0.1)
            seen.append(limit.limit)
        holds.append(len(seen) - 1)  # periods held at one, then it tried two again
    assert holds == [2, 4, HOLD, HOLD]
    answer_period(limit, clock, 1900, latency=0.11)  # the server now has room: stays
    assert limit.limit == 2
    answer_period(limit, clock, 2800, latency=0.11)  # +47 %: one more
    assert limit.limit == 3


def test_limit_holds_on_a_plateau_and_shrinks_when_throughput_stays_lower() -> None:
    """Flat throughput keeps the limit; a fall of more than 10 % takes one place away once
    the next period is as low (against the rate before the fall)."""
    clock = Clock()
    limit = AdaptiveLimit(4, 8, period=0.5, clock=clock)
    answer_period(limit, clock, 1000)  # first period: no comparison yet, grows
    assert limit.limit == 5
    answer_period(limit, clock, 1020)  # +2 %: holds
    assert limit.limit == 5
    answer_period(limit, clock, 800)  # -22 %: once, holds
    assert limit.limit == 5
    answer_period(limit, clock, 850)  # still -17 % against 1,020: shrinks
    assert limit.limit == 4


def test_one_slow_period_among_good_ones_takes_no_place_away() -> None:
    """A single period more than 10 % down (a slow answer or two: a period holds 8-16
    answers) followed by one at the old pace leaves the limit, again and again."""
    clock = Clock()
    limit = AdaptiveLimit(4, 8, period=0.5, clock=clock)
    answer_period(limit, clock, 1000)
    assert limit.limit == 5
    seen = []
    for rate in (1000, 850, 1000, 850, 990, 850, 1000):
        answer_period(limit, clock, rate)
        seen.append(limit.limit)
    assert seen == [5, 5, 5, 5, 5, 5, 5]


def test_a_period_with_the_limit_full_for_less_than_three_quarters_is_not_judged() -> None:
    """The end of a run: the last answers come in one by one with nothing new to send, so
    the period's throughput is low although the server is not: it is not judged, even when
    most of the period's requests took the last place allowed."""
    clock = Clock()
    limit = AdaptiveLimit(4, 8, period=0.5, clock=clock)
    answer_period(limit, clock, 1000)
    assert limit.limit == 5
    for _ in range(3):  # three ends of runs in a row: each would count as a fall
        n = limit.period_answers
        while limit.try_acquire():
            pass
        assert limit.in_flight == 5
        assert n == 10
        for i in range(n):  # full for 0.3 s, answered and refilled 6 times, then draining
            clock.now += 0.05 if i < 6 else 0.7 / 4
            limit.release(50, latency=0.1)
            if i < 6:
                assert limit.try_acquire()
        assert limit.in_flight == 1
        assert limit.limit == 5
    answer_period(limit, clock, 800)
    answer_period(limit, clock, 800)  # two real falls against the last full period
    assert limit.limit == 4


def test_a_parallel_server_keeps_two_requests_in_flight_when_throughput_falls() -> None:
    """Once two requests were answered about as fast as one, a fall in throughput (a
    checkpoint on the server, another client) takes places away down to two, not to one."""
    clock = Clock()
    limit = AdaptiveLimit(1, 8, period=0.5, clock=clock)
    answer_period(limit, clock, 1000, latency=0.1)
    answer_period(limit, clock, 1900, latency=0.11)  # two as fast as one: parallel
    answer_period(limit, clock, 2800)
    assert limit.limit == 3
    seen = []
    for rate in (2000, 1500, 1000, 800, 500, 400):  # each more than 10 % below the last
        answer_period(limit, clock, rate)
        seen.append(limit.limit)
    assert seen == [3, 2, 2, 2, 2, 2]


def test_a_period_with_less_to_send_than_allowed_is_not_judged() -> None:
    """When the sender mostly had fewer requests to send than the limit allowed (the end of
    a run, a slow training loop), the throughput says nothing about the server: the limit
    neither grows nor shrinks, and the next full period is compared with the last full one."""
    clock = Clock()
    limit = AdaptiveLimit(4, 8, period=0.5, clock=clock)
    answer_period(limit, clock, 1000)
    assert limit.limit == 5
    answer_period(limit, clock, 100, full=False)  # a tenth of the pace: not the server
    answer_period(limit, clock, 5000, full=False)
    assert limit.limit == 5
    answer_period(limit, clock, 1010)  # flat against the last full period: holds
    assert limit.limit == 5
    answer_period(limit, clock, 800)
    answer_period(limit, clock, 800)  # a real fall (twice): shrinks
    assert limit.limit == 4


def test_overload_halves_the_limit_at_once_and_never_below_one() -> None:
    """A 429, a 503 or a timeout halves the limit without waiting for a period's end."""
    clock = Clock()
    limit = AdaptiveLimit(8, 8, clock=clock)
    assert limit.try_acquire()
    limit.release(0, overloaded=True)
    assert limit.limit == 4
    limit.retried(status_error(503, ServerError))
    assert limit.limit == 2
    limit.retried(timeout())
    limit.retried(timeout())
    assert limit.limit == 1


def test_failures_that_are_not_overload_leave_the_limit() -> None:
    """A refused connection or a 500 says nothing about load: the limit stays."""
    limit = AdaptiveLimit(4, 8)
    limit.retried(APIConnectionError("refused", method="POST", url=URL))
    limit.retried(status_error(500, ServerError))
    assert limit.limit == 4
    assert overloaded(status_error(429, RateLimitError))
    assert not overloaded(None)


def test_acquire_waits_for_room_and_stops_when_asked() -> None:
    """Beyond the limit acquire() waits; it returns once a place is released, and raises
    Stopped when the sender is asked to stop."""
    limit = AdaptiveLimit(1, 1)
    stop = threading.Event()
    limit.acquire(stop)
    assert not limit.try_acquire()
    got = threading.Event()

    def second() -> None:
        limit.acquire(stop)
        got.set()

    t = threading.Thread(target=second)
    t.start()
    assert not got.wait(0.2)
    limit.release(1)
    assert got.wait(deadline(5))
    t.join()
    assert limit.in_flight == 1
    stop.set()
    with pytest.raises(Stopped):
        limit.acquire(stop)


def test_limit_rejects_an_initial_value_outside_its_range() -> None:
    """The initial limit must lie between 1 and the maximum; the error names both."""
    with pytest.raises(ValueError, match=r"initial must be within 1\.\.maximum \(4\); got 5"):
        AdaptiveLimit(5, 4)


def test_workers_run_calls_at_once_up_to_their_size() -> None:
    """Workers start threads on demand: ``size`` calls run together, and each call's
    on_done runs before its result is visible."""
    workers = Workers(3, "test-workers")
    release = threading.Event()
    started = threading.Semaphore(0)
    finished: list[int] = []

    def job(i: int) -> int:
        started.release()
        assert release.wait(deadline(10))
        return i

    calls = [
        workers.submit(lambda i=i: job(i), lambda c: finished.append(c.value or 0))
        for i in range(3)
    ]
    for _ in range(3):  # all three are running at once
        assert started.acquire(timeout=deadline(10))
    release.set()
    stop = threading.Event()
    assert [c.wait(stop) for c in calls] == [0, 1, 2]
    assert sorted(finished) == [0, 1, 2]
    workers.close()


def test_a_call_error_reaches_the_waiter() -> None:
    """An exception raised by a call is raised by wait()."""
    workers = Workers(1)
    call = workers.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        call.wait(threading.Event())
    workers.close()
