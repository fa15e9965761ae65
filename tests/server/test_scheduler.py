"""Single-flight and coalescing of reconciles, with an injected slow reconcile function."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from reconciler.server.metrics import Metrics
from reconciler.server.scheduler import RunRecord, Scheduler


class SlowReconcile:
    """A reconcile that blocks until released, counting calls and peak concurrency."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.active = 0
        self.peak = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.block = True
        self.fail_next = False

    def __call__(self, reason: str) -> None:
        with self.lock:
            self.calls.append(reason)
            self.active += 1
            self.peak = max(self.peak, self.active)
            fail, self.fail_next = self.fail_next, False
        self.started.release()
        try:
            if self.block:
                assert self.release.acquire(timeout=10), "test never released the reconcile"
            if fail:
                raise RuntimeError("cluster unreachable")
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def slow() -> SlowReconcile:
    return SlowReconcile()


@pytest.fixture
def sched(slow: SlowReconcile) -> Iterator[Scheduler]:
    s = Scheduler(slow, interval=3600, jitter=0, run_on_start=False)
    s.start()
    try:
        yield s
    finally:
        slow.block = False
        for _ in range(10):
            slow.release.release()
        s.stop(timeout=10)


def test_triggers_during_a_run_coalesce_into_one_follow_up(slow: SlowReconcile, sched: Scheduler) -> None:
    assert sched.trigger("webhook") is True
    assert slow.started.acquire(timeout=5)
    assert sched.running
    results = [sched.trigger(f"webhook-{i}") for i in range(25)]
    assert results[0] is True and not any(results[1:])  # one new run queued, the rest coalesced
    slow.release.release()  # finish run 1
    assert slow.started.acquire(timeout=5)  # run 2 (the follow-up) starts
    slow.release.release()
    assert sched.wait_idle(5)
    assert len(slow.calls) == 2
    runs = sched.runs
    assert [r.triggers for r in runs] == [1, 25]
    assert runs[1].reasons[0] == "webhook-0" and len(runs[1].reasons) <= 8
    assert all(r.ok for r in runs)
    assert slow.peak == 1


def test_concurrent_triggers_from_many_threads_never_overlap(slow: SlowReconcile, sched: Scheduler) -> None:
    slow.block = False
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait(timeout=5)
        for _ in range(50):
            sched.trigger("burst")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sched.wait_idle(10)
    assert slow.peak == 1
    assert 1 <= len(slow.calls) <= 400
    assert sum(r.triggers for r in sched.runs) == 400  # no trigger lost


def test_trigger_when_idle_runs_once(slow: SlowReconcile, sched: Scheduler) -> None:
    slow.block = False
    sched.trigger("manual")
    assert sched.wait_idle(5)
    assert slow.calls == ["manual"]


def test_failure_is_recorded_and_loop_survives(slow: SlowReconcile, sched: Scheduler) -> None:
    slow.block = False
    slow.fail_next = True
    sched.trigger("a")
    assert sched.wait_idle(5)
    sched.trigger("b")
    assert sched.wait_idle(5)
    first, second = sched.runs
    assert first.ok is False and "cluster unreachable" in (first.error or "")
    assert second.ok is True


def test_polling_calls_reconcile() -> None:
    calls: list[str] = []
    done = threading.Event()

    def reconcile(reason: str) -> None:
        calls.append(reason)
        if len(calls) >= 3:
            done.set()

    s = Scheduler(reconcile, interval=0.05, jitter=0.01, run_on_start=True)
    s.start()
    try:
        assert done.wait(10)
    finally:
        s.stop(timeout=5)
    assert calls[0] == "startup"
    assert "poll" in calls


def test_latency_hooks_and_metrics() -> None:
    started: list[RunRecord] = []
    finished: list[RunRecord] = []
    metrics = Metrics()
    s = Scheduler(
        lambda reason: None,
        interval=3600,
        run_on_start=False,
        metrics=metrics,
        on_start=started.append,
        on_finish=finished.append,
    )
    s.start()
    try:
        for i in range(5):
            s.trigger(f"t{i}")
            assert s.wait_idle(5)
    finally:
        s.stop(timeout=5)
    assert len(started) == len(finished) == 5
    for rec in finished:
        assert rec.latency >= 0 and rec.duration is not None and rec.duration >= 0
        assert rec.finished is not None and rec.started >= rec.triggered
    lat = sorted(r.latency for r in finished)
    print(f"trigger->start latency: min {lat[0] * 1e3:.3f} ms, max {lat[-1] * 1e3:.3f} ms")
    text = metrics.render().decode()
    assert "virtnet_trigger_to_start_seconds_count 5.0" in text
    # successful runs are counted by the reconcile function itself, not twice by the scheduler
    assert "virtnet_reconcile_results_total{" not in text


def test_crashing_reconcile_is_counted_as_error() -> None:
    metrics = Metrics()

    def boom(reason: str) -> None:
        raise RuntimeError("kaput")

    s = Scheduler(boom, interval=3600, run_on_start=False, metrics=metrics)
    s.start()
    try:
        s.trigger("x")
        assert s.wait_idle(5)
    finally:
        s.stop(timeout=5)
    assert metrics.registry.get_sample_value("virtnet_reconcile_results_total", {"result": "error"}) == 1.0


def test_stop_drops_queue_and_refuses_new_triggers(slow: SlowReconcile) -> None:
    s = Scheduler(slow, interval=3600, run_on_start=False)
    s.start()
    s.trigger("a")
    assert slow.started.acquire(timeout=5)
    s.trigger("b")  # queued behind the running one
    slow.block = False
    slow.release.release()
    assert s.stop(timeout=5)
    assert s.trigger("late") is False
    assert len(slow.calls) <= 2


def test_bad_interval() -> None:
    with pytest.raises(ValueError):
        Scheduler(lambda r: None, interval=0)
