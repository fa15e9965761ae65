"""How many writes a wave keeps in flight: a window that shrinks when the API server says 429.

A cold apply of a thousand VMs one request at a time spends nearly all its time waiting on round trips,
so a wave's writes go out in parallel (``ApplyOptions.parallel``). The API server protects itself with
API Priority and Fairness: when this client's priority level is full it answers 429 with a
``Retry-After``. The client (``reconciler.clients.kube``) waits that long and sends the request again; the
window is told (:meth:`Window.throttled`) so that the *other* writers back off too: it halves the number
in flight and lets nothing new start before the ``Retry-After`` has passed, then grows back by one for
every ``limit`` writes sent after that 429 that went through (additive increase, multiplicative decrease,
as TCP does; writes already in flight when the 429 came say nothing about the server's room now).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: the most writes a wave may keep in flight (``--parallel``, ``apply.parallel``); the client's connection pool
#: (``reconciler.clients.kube``) keeps that many open, so no write at the maximum opens and drops its own
MAX_PARALLEL = 64


class Window:
    """A counting semaphore whose size adapts: ``acquire`` before a write, ``release`` after it."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"parallel writes must be at least 1, not {limit}")
        self.limit = limit
        self.size = limit  # what may be in flight now (1..limit)
        self.in_flight = 0
        self.peak = 0  # the most ever in flight at once (what tests and the bench read)
        self.throttles = 0
        self._clock = clock
        self._resume_at = 0.0
        self._successes = 0
        self._cond = threading.Condition()

    def acquire(self) -> int:
        """Wait for room; returns the ticket to give back to :meth:`release`."""
        with self._cond:
            while True:
                wait = self._resume_at - self._clock()
                if wait <= 0 and self.in_flight < self.size:
                    break
                self._cond.wait(timeout=wait if wait > 0 else None)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self.throttles

    def release(self, ticket: int, ok: bool = True) -> None:
        """A write is done; ``ok``: it went through (a refused or failed write says nothing about the
        server's room, so it does not count toward growing back)."""
        with self._cond:
            self.in_flight -= 1
            if ok and ticket == self.throttles:  # went through, sent after the latest 429
                self._successes += 1
            if self.size < self.limit and self._successes >= self.limit:
                self.size += 1
                self._successes = 0
            self._cond.notify_all()

    def throttled(self, retry_after: float) -> None:
        """The server answered 429: halve the window and start nothing new for ``retry_after`` seconds."""
        with self._cond:
            self.throttles += 1
            self.size = max(1, self.size // 2)
            self._successes = 0
            self._resume_at = max(self._resume_at, self._clock() + max(0.0, retry_after))
            self._cond.notify_all()


def bounded(window: Window, items: Sequence[T], work: Callable[[T], tuple[bool, str]]) -> list[tuple[bool, str]]:
    """``work`` (answering ``(ok, message)``) on each of ``items``, at most ``window`` at once (one at a time,
    without threads, when its limit is 1); the answers in the items' order, whatever order they came in."""
    if window.limit == 1:
        return [work(item) for item in items]

    def through(item: T) -> tuple[bool, str]:
        ticket, result = window.acquire(), (False, "")
        try:
            result = work(item)
            return result
        finally:
            window.release(ticket, ok=result[0])

    with ThreadPoolExecutor(max_workers=window.limit, thread_name_prefix="write") as pool:
        return list(pool.map(through, items))
