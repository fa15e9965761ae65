"""Pull-request plans in the background: a fixed number of workers, at most one queued plan per PR.

Why: a plan fetches, loads, renders and diffs a whole repository. One thread per delivery let a burst
(300 pushes to open pull requests) start 300 plans at once. Here at most ``workers`` plans run; each pull
request has at most one plan waiting, and a newer push of the same PR replaces the waiting older one (its
head is the one reviewers look at); a head already waiting or being planned is not queued again. A PR
being planned gets its newer head planned after, never alongside (its comment is edited in order). Past
``max_pending`` waiting pull requests a delivery is refused with :class:`Busy` (HTTP 503), so the forge
delivers it again later instead of virtnet buffering without bound.

Side effects: starts ``workers`` daemon threads at the first ``submit``; calls ``plan`` on them. A plan
that raises is logged and the worker goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from reconciler.server.webhooks import Busy, PlanCommand, PullRequestEvent

log = logging.getLogger(__name__)

Key = tuple[str, str, int]  # provider, repository, PR number
Job = PullRequestEvent | PlanCommand  # a head to plan, or a request to plan the PR's head as it is now


def _key(event: Job) -> Key:
    return (event.provider, event.repo, event.number)


class PlanQueue:
    """Bounded, coalescing pull-request plan workers. ``submit`` returns at once."""

    def __init__(self, plan: Callable[[Job], object], *, workers: int = 2, max_pending: int = 256) -> None:
        if workers < 1 or max_pending < 1:
            raise ValueError("workers and max_pending must be positive")
        self._plan = plan
        self.workers = workers
        self.max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: OrderedDict[Key, Job] = OrderedDict()  # oldest first
        self._running: dict[Key, Job] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self.superseded = 0  # queued plans replaced by a newer head before they ran

    def submit(self, event: Job) -> str:
        """Queue a plan of ``event``'s head: ``queued``, ``superseded`` (replaced an older waiting head)
        or ``duplicate`` (that head already waits or is being planned). Raises :class:`Busy` when full."""
        key = _key(event)
        with self._cond:
            if self._stopping:
                raise Busy("the server is stopping")
            waiting, running = self._pending.get(key), self._running.get(key)
            if event.head_sha in (getattr(waiting, "head_sha", None), getattr(running, "head_sha", None)):
                return "duplicate"
            if waiting is None and len(self._pending) >= self.max_pending:
                raise Busy(f"{len(self._pending)} pull requests are waiting for a plan")
            self._pending[key] = event  # a replaced head keeps its place in the line
            if waiting is not None:
                self.superseded += 1
            self._start_workers()
            self._cond.notify()
        outcome = "superseded" if waiting is not None else "queued"
        log.debug("pull request #%d head %s: %s", event.number, event.head_sha[:12], outcome)
        return outcome

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._loop, name=f"virtnet-plan-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _take(self) -> tuple[Key, Job] | None:
        """The oldest waiting PR that is not being planned (called with the lock held)."""
        for key, event in self._pending.items():
            if key not in self._running:
                del self._pending[key]
                self._running[key] = event
                return key, event
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                job = None
                while not self._stopping and (job := self._take()) is None:
                    self._cond.wait()
                if job is None:
                    return
            key, event = job
            try:
                self._plan(event)
            except Exception:
                log.exception("plan of pull request #%d failed", event.number)
            finally:
                with self._cond:
                    del self._running[key]
                    self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def threads(self) -> int:
        """Worker threads started (never more than ``workers``)."""
        with self._cond:
            return len(self._threads)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing waits and nothing runs (or ``timeout``). True when idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 30.0) -> bool:
        """Drop waiting plans, let running ones finish (up to ``timeout``). False if a worker is still busy."""
        with self._cond:
            self._stopping = True
            dropped = len(self._pending)
            self._pending.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        if dropped:
            log.info("stopping: %d waiting pull-request plan(s) dropped", dropped)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)
