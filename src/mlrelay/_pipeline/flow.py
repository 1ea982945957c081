"""How many requests the sender keeps on the wire, and the threads that make them.

:class:`AdaptiveLimit` is the number of requests in flight to one server. It grows while
throughput grows and shrinks when the server is overloaded, as TCP's congestion control
does (additive increase, multiplicative decrease):

* it starts at one request, and the first step, from one to two, is checked against the
  answers' latency: if the median answer takes :data:`SERIAL` times as long with two
  requests in flight as with one, the server handles one request at a time (a single
  worker; MLflow on SQLite, whose writes are serialised, even loses throughput to
  concurrent requests), so the limit goes back to one and tries again after two periods,
  then four, up to :data:`HOLD` (a wrong verdict, say from a worker's slow first answers,
  costs little; a server that is serial is rarely asked twice). The period at two takes
  :data:`CHECK_ANSWERS` answers;
* otherwise, after each measurement period (at least ``2 x limit`` answered requests, 4 at
  least, and ``period`` seconds), the entries delivered per second are compared with the
  period before: the limit grows by one while throughput grows by at least 5 %, shrinks by
  one when it stays more than 10 % below that for two periods in a row (one such period is
  as likely a slow answer or two as a server that has too much to do: a period holds 8-16
  answers, and one answer more or less is 6-12 % of its rate), and stays otherwise. It
  shrinks this way to two at the least once the server has shown it takes requests in
  parallel: a server's throughput varies by more than 10 % from one period to the next (a
  checkpoint, another client), and one request at a time costs such a server half its
  throughput;
* a period in which the sender mostly had less to send than the limit allowed (the end of
  a run, a training loop logging slowly) says nothing about the server: it is not judged,
  and the limit stays. "Mostly" counts both requests (most of them did not take the last
  place allowed) and time (the limit was full for less than 3/4 of the period: the end of a
  run, when the last answers come in one by one and the next run is not logged yet);
* an overload answer (429, 503, a timeout) halves it at once, and the next period starts
  from scratch, so a small server is never kept overrun.

The limit is shared by every run the sender delivers to that server, so several runs and
several batches of one run never put more than ``limit`` requests on the wire together.

:class:`Workers` makes the requests: daemon threads started on demand, never joined at
interpreter exit, so a hung request cannot delay exit.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mlrelay._errors import APIStatusError, APITimeoutError

__all__ = ["HOLD", "AdaptiveLimit", "Call", "Stopped", "Workers", "overloaded"]

T = TypeVar("T")

logger = logging.getLogger("mlrelay.flow")

_GROW = 1.05  # throughput must grow by 5 % for the limit to grow
_SHRINK = 0.90  # and stay more than 10 % lower (_FALLS periods in a row) for it to shrink
_FALLS = 2
_FULL = 0.75  # a period is judged when the limit was full for this share of its time

SERIAL = 1.8
"""Median latency with two requests in flight, over that with one, from which a server is
taken to handle one request at a time (2.0 when it does exactly; 1.0 when it has room)."""

HOLD = 8
"""The most periods the limit stays at one on a server found to handle one request at a
time, before it tries two again (the server may have changed)."""

CHECK_ANSWERS = 8
"""Answers in the period at two that decides whether a server is serial (the median of a
few would be swayed by the slow first answers of a worker that just got its first
connection)."""


def overloaded(exc: BaseException | None) -> bool:
    """Whether a failed request says the server is overloaded (429, 503, a timeout)."""
    if isinstance(exc, APITimeoutError):
        return True
    return isinstance(exc, APIStatusError) and exc.status_code in (429, 503)


class Stopped(Exception):
    """The sender was asked to stop while a request was on the wire.

    The request may still land; nothing is acknowledged for it, so it is sent again later
    and the server deduplicates it.
    """


class AdaptiveLimit:
    """The number of requests in flight to one server (see the module docstring).

    Args:
        initial: the limit to start from.
        maximum: the most requests ever in flight.
        period: the shortest measurement period, in seconds.
        clock: monotonic seconds (a parameter for tests).
    """

    def __init__(
        self,
        initial: int = 1,
        maximum: int = 8,
        *,
        period: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= initial <= maximum:
            raise ValueError(f"initial must be within 1..maximum ({maximum}); got {initial}")
        self.maximum = maximum
        self._limit = initial
        self._period = period
        self._clock = clock
        self._in_flight = 0
        self._changed = threading.Condition()
        self._start = clock()
        self._answered = 0
        self._entries = 0
        self._last_rate: float | None = None
        self._latencies: list[float] = []  # of this period's answers
        self._one_rtt: float | None = None  # the median latency of the last period at one
        self._checking = False  # this period, at two, decides whether the server is serial
        self._hold = 0  # periods left at one before trying two again
        self._next_hold = 2  # the hold after the next serial verdict
        self._parallel = False  # two requests were answered about as fast as one
        self._sent = 0  # requests sent this period
        self._filled = 0  # of which took the last place the limit allowed
        self._full_since: float | None = None  # when in_flight last reached the limit
        self._full_time = 0.0  # seconds of this period with the limit full
        self._falls = 0  # judged periods in a row more than 10 % below _last_rate

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return self._limit

    @property
    def period_answers(self) -> int:
        """Answers the current measurement period needs before it is judged."""
        if self._checking:
            return CHECK_ANSWERS
        return max(4, 2 * self._limit)

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self._in_flight

    def acquire(self, stop: threading.Event) -> None:
        """Wait for room for one more request.

        Raises:
            Stopped: ``stop`` was set while waiting.
        """
        with self._changed:
            while self._in_flight >= self._limit:
                if stop.is_set():
                    raise Stopped
                self._changed.wait(0.05)
            self._take()

    def wait_for_room(self, stop: threading.Event, timeout: float) -> None:
        """Wait at most ``timeout`` seconds until a place is free (without taking it).

        Raises:
            Stopped: ``stop`` is set.
        """
        if stop.is_set():
            raise Stopped
        with self._changed:
            if self._in_flight >= self._limit:
                self._changed.wait(timeout)

    def try_acquire(self) -> bool:
        """Take room for one more request if there is some now."""
        with self._changed:
            if self._in_flight >= self._limit:
                return False
            self._take()
            return True

    def _take(self) -> None:
        self._in_flight += 1
        self._sent += 1
        if self._in_flight >= self._limit:
            self._filled += 1
            if self._full_since is None:
                self._full_since = self._clock()

    def release(
        self, entries: int, *, overloaded: bool = False, latency: float | None = None
    ) -> None:
        """A request was answered: it carried ``entries`` delivered entries (0 when it
        failed); ``overloaded`` when the answer says the server is overloaded; ``latency``
        is how long it took, in seconds."""
        with self._changed:
            self._in_flight -= 1
            if self._full_since is not None and self._in_flight < self._limit:
                self._full_time += self._clock() - self._full_since
                self._full_since = None
            self._observe(entries, overloaded, latency)
            self._changed.notify_all()

    def retried(self, exc: BaseException) -> None:
        """A request failed and is being retried (inside the client): halve the limit if
        the failure says the server is overloaded."""
        if overloaded(exc):
            with self._changed:
                self._observe(0, True, None)

    def _observe(self, entries: int, overload: bool, latency: float | None) -> None:
        now = self._clock()
        if overload:
            self._limit = max(1, self._limit // 2)
            self._restart(now, None)
            return
        self._answered += 1
        self._entries += entries
        if latency is not None:
            self._latencies.append(latency)
        elapsed = now - self._start
        if self._answered < self.period_answers or elapsed < self._period:
            return
        rate = self._entries / elapsed
        last = self._last_rate
        rtt = statistics.median(self._latencies) if self._latencies else None
        full = self._full_time + (now - self._full_since if self._full_since is not None else 0)
        if 2 * self._filled < self._sent or full < _FULL * elapsed:
            # Mostly fewer requests to send than allowed: the server's pace is unknown.
            self._new_period(now)
            return
        if self._limit == 1:
            self._one_rtt = rtt
            if self._hold:
                self._hold -= 1
            elif self.maximum > 1:  # try two, and check the answers' latency
                self._limit, self._checking = 2, True
        elif self._checking:
            self._checking = False
            if rtt is not None and self._one_rtt and rtt >= SERIAL * self._one_rtt:
                self._limit, self._hold = 1, self._next_hold  # one at a time: back to one
                self._next_hold = min(HOLD, 2 * self._next_hold)
                self._parallel = False
            else:
                self._parallel, self._next_hold = True, 2
        elif last is None or rate >= last * _GROW:
            self._limit = min(self.maximum, self._limit + 1)
        elif rate < last * _SHRINK:
            self._falls += 1
            if self._falls < _FALLS:  # once may be noise: judge the next period against
                self._new_period(now)  # the same rate as this one
                return
            self._limit = max(2 if self._parallel else 1, self._limit - 1)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "mlrelay: %d requests in flight allowed (%.0f entries/s, median answer %s)",
                self._limit,
                rate,
                "-" if rtt is None else f"{rtt * 1000:.0f} ms",
            )
        self._restart(now, rate)

    def _restart(self, now: float, rate: float | None) -> None:
        self._last_rate = rate
        self._falls = 0
        self._new_period(now)
        if rate is None:  # after an overload: the next period starts from scratch
            self._checking = False

    def _new_period(self, now: float) -> None:
        self._start, self._answered, self._entries = now, 0, 0
        self._latencies = []
        self._sent = self._filled = 0
        self._full_time = 0.0  # (and full from now on if it is: the limit may have changed)
        self._full_since = now if self._in_flight >= self._limit else None


class Call(Generic[T]):
    """One call handed to :class:`Workers`, and its outcome."""

    def __init__(self, fn: Callable[[], T], on_done: Callable[[Call[T]], None] | None) -> None:
        self.fn = fn
        self.on_done = on_done
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: T | None = None

    def run(self) -> None:
        """Make the call (on a worker thread)."""
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the sender, which decides
            self.error = exc
        if self.on_done is not None:
            self.on_done(self)
        self.done.set()

    def wait(self, stop: threading.Event) -> T:
        """The call's value (or its error); :class:`Stopped` as soon as ``stop`` is set."""
        while not self.done.wait(0.05):
            if stop.is_set():
                raise Stopped
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set when no error was raised


class Workers:
    """Daemon threads making calls, started on demand up to ``size`` (named ``name``).

    Unlike a ThreadPoolExecutor, the threads are never joined at interpreter exit.
    """

    def __init__(self, size: int, name: str = "mlrelay-http") -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[Call[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(
        self, fn: Callable[[], T], on_done: Callable[[Call[T]], None] | None = None
    ) -> Call[T]:
        """Run ``fn`` on a worker thread; ``on_done`` is called there once it returns."""
        call = Call(fn, on_done)
        with self._lock:
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                self._idle += 1
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            self._idle -= 1
        self._jobs.put(call)
        return call

    def close(self) -> None:
        """End the threads once the calls they are making (if any) return."""
        with self._lock:
            threads, self._threads, self._idle = self._threads, 0, 0
        for _ in range(threads):
            self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()
            with self._lock:
                self._idle += 1
