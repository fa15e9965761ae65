"""When reconciles run: interval polling with jitter plus instant triggers, never two at once.

Why: webhooks and the poll timer can fire at any moment and in bursts, but two reconciles of the same
cluster running concurrently would race on the same objects. So one worker thread runs the injected
reconcile function (single-flight); every trigger that arrives while a run is in progress (or queued) is
coalesced into exactly one follow-up run, which then sees everything those triggers were about.

APScheduler's ``BackgroundScheduler`` only provides the jittered poll clock: its job calls ``trigger``.

Side effects: starts two threads (APScheduler's and the worker) in ``start``; calls the reconcile function
on the worker thread; records a bounded history of ``RunRecord`` (trigger -> start latency, duration,
outcome) for the latency benchmark. With ``Metrics`` it records the trigger->start latency, and a
reconcile result ``error`` only when the reconcile function raised (otherwise the function records its
own duration and result; recording here too would count every run twice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.server.metrics import Metrics

log = logging.getLogger(__name__)

_MAX_REASONS = 8
_MAX_REASON_LEN = 120


@dataclass(frozen=True)
class RunRecord:
    """One reconcile run. Times are ``time.monotonic()`` seconds; ``finished``/``ok`` unset while running."""

    seq: int
    reasons: tuple[str, ...]
    triggers: int
    triggered: float
    started: float
    finished: float | None = None
    ok: bool | None = None
    error: str | None = None

    @property
    def latency(self) -> float:
        """Seconds from the first trigger of this run to its start."""
        return self.started - self.triggered

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


class Scheduler:
    """Single-flight, coalescing reconcile scheduler.

    ``reconcile(reason)`` gets a comma-joined list of the (deduplicated) reasons of the triggers it serves.
    ``on_start``/``on_finish`` hooks receive the ``RunRecord`` (exceptions in hooks are logged, ignored).
    """

    def __init__(
        self,
        reconcile: Callable[[str], object],
        *,
        interval: float = 300.0,
        jitter: float = 30.0,
        run_on_start: bool = True,
        metrics: Metrics | None = None,
        on_start: Callable[[RunRecord], None] | None = None,
        on_finish: Callable[[RunRecord], None] | None = None,
        history: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._reconcile = reconcile
        self.interval = interval
        self.jitter = max(0.0, jitter)
        self.run_on_start = run_on_start
        self._metrics = metrics
        self._on_start = on_start
        self._on_finish = on_finish
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._pending_count = 0
        self._pending_since: float | None = None
        self._running = False
        self._stopping = False
        self._seq = 0
        self._runs: deque[RunRecord] = deque(maxlen=history)
        self._worker: threading.Thread | None = None
        self._aps: BackgroundScheduler | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._worker is not None:
                raise RuntimeError("scheduler already started")
            self._stopping = False
            self._worker = threading.Thread(target=self._loop, name="virtnet-reconcile", daemon=True)
            self._worker.start()
        aps = BackgroundScheduler(daemon=True)
        aps.add_job(
            self.trigger,
            IntervalTrigger(seconds=self.interval, jitter=self.jitter or None),
            args=["poll"],
            id="virtnet-poll",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        aps.start()
        self._aps = aps
        if self.run_on_start:
            self.trigger("startup")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop polling, let a running reconcile finish (up to ``timeout``); drop queued triggers.

        Returns False when the worker did not finish in time (it is a daemon thread and will not block exit).
        """
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            worker, self._worker = self._worker, None
        if worker is None:
            return True
        worker.join(timeout)
        return not worker.is_alive()

    def __enter__(self) -> Scheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- triggering ------------------------------------------------------------------------------------
    def trigger(self, reason: str) -> bool:
        """Ask for a reconcile. Returns True when this opened a new queued run, False when coalesced."""
        reason = (reason or "unknown")[:_MAX_REASON_LEN]
        with self._cond:
            if self._stopping:
                return False
            fresh = self._pending_since is None
            if fresh:
                self._pending_since = self._clock()
            self._pending_count += 1
            if reason not in self._pending and len(self._pending) < _MAX_REASONS:
                self._pending.append(reason)
            self._cond.notify_all()
        log.debug("reconcile trigger %s (%s)", reason, "queued" if fresh else "coalesced")
        return fresh

    # -- introspection ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        with self._cond:
            return self._running

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._pending_since is not None

    @property
    def runs(self) -> list[RunRecord]:
        """Finished and in-progress runs, oldest first (bounded by ``history``)."""
        with self._cond:
            return list(self._runs)

    @property
    def last_run(self) -> RunRecord | None:
        with self._cond:
            return self._runs[-1] if self._runs else None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing runs and nothing is queued (or ``timeout``). True when idle."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running or self._pending_since is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- worker ----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending_since is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                self._seq += 1
                assert self._pending_since is not None
                record = RunRecord(
                    seq=self._seq,
                    reasons=tuple(self._pending),
                    triggers=self._pending_count,
                    triggered=self._pending_since,
                    started=self._clock(),
                )
                self._pending, self._pending_count, self._pending_since = [], 0, None
                self._running = True
                self._runs.append(record)
            self._run(record)

    def _run(self, record: RunRecord) -> None:
        self._hook(self._on_start, record)
        if self._metrics is not None:
            self._metrics.trigger_latency.observe(max(0.0, record.latency))
        ok, error = True, None
        try:
            self._reconcile(",".join(record.reasons))
        except Exception as exc:  # the loop must survive any reconcile failure
            ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
            log.exception("reconcile run %d failed", record.seq)
        done = RunRecord(**{**record.__dict__, "finished": self._clock(), "ok": ok, "error": error})
        if not ok and self._metrics is not None and done.duration is not None:
            # the reconcile function records its own results; a crash never got the chance to
            self._metrics.observe_reconcile(done.duration, "error")
        with self._cond:
            for i in range(len(self._runs) - 1, -1, -1):
                if self._runs[i].seq == done.seq:
                    self._runs[i] = done
                    break
            self._running = False
            self._cond.notify_all()
        self._hook(self._on_finish, done)

    @staticmethod
    def _hook(hook: Callable[[RunRecord], None] | None, record: RunRecord) -> None:
        if hook is None:
            return
        try:
            hook(record)
        except Exception:
            log.exception("scheduler hook failed")
