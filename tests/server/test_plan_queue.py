"""Pull-request plans: bounded workers, one waiting plan per PR, the newest head wins (issue #14, class 11).

Before: one thread per delivery (300 deliveries → 304 threads), every head planned. Now: 300 signed
deliveries over HTTP (30 pull requests, 10 pushes each, interleaved, while the first plans are held)
leave the thread count at the server's fixed set plus ``plan_workers``, plan each head at most once and
the newest head of every pull request exactly once, and plan far fewer than 300 heads.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from kubernetes import client

from reconciler.clients.kube import Kube
from reconciler.pipeline import Outcome
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.planqueue import PlanQueue
from reconciler.server.run import start
from reconciler.server.webhooks import Busy, PullRequestEvent

SECRET = "plan-queue-secret"
PRS, PUSHES, WORKERS = 30, 10, 2


def head(pr: int, push: int) -> str:
    return hashlib.sha1(f"{pr}-{push}".encode()).hexdigest()


def event(pr: int, push: int, provider: str = "github") -> PullRequestEvent:
    return PullRequestEvent(
        provider, "synchronize", pr, head(pr, push), "f", "https://f.test/o/r.git", "main", "o/r", ""
    )


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def post_pr(port: int, pr: int, push: int) -> int:
    payload = {
        "action": "synchronize",
        "number": pr,
        "pull_request": {
            "head": {"sha": head(pr, push), "ref": f"f{pr}", "repo": {"clone_url": "https://f.test/o/r.git"}},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "o/r"},
    }
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": f"d-{pr}-{push}",
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", "/webhooks/github", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_300_deliveries_keep_threads_bounded_and_plan_each_head_once(tmp_path: Path) -> None:
    settings = Settings(repo_url=(tmp_path / "unused.git").as_uri(), cache_root=tmp_path / "cache", status_branch=None)
    ctl = Controller(settings, Kube(client.ApiClient()), Metrics())
    planned: list[tuple[int, str]] = []
    gate = threading.Event()
    lock = threading.Lock()

    def plan(e: PullRequestEvent) -> Outcome:
        gate.wait(30)  # the first plans are held while the burst arrives
        with lock:
            planned.append((e.number, e.head_sha))
        time.sleep(0.002)
        return Outcome(cluster="test")

    ctl.reconcile = lambda reason="manual": Outcome(cluster="test")  # type: ignore[method-assign]
    ctl.plan_pull_request = plan  # type: ignore[method-assign]
    runtime = start(ctl, interval=3600, http_port=0, webhook_secret=SECRET, plan_workers=WORKERS)
    try:
        assert runtime.server is not None and runtime.plans is not None
        port = runtime.server.port
        assert post_pr(port, 999, 0) == 202  # warm up: the server's own threads and the plan workers exist
        gate.set()
        assert runtime.plans.wait_idle(30)
        gate.clear()
        planned.clear()
        baseline = threading.active_count()
        peak = baseline
        statuses = []
        for push in range(PUSHES):
            for pr in range(1, PRS + 1):
                statuses.append(post_pr(port, pr, push))
                peak = max(peak, threading.active_count())
        assert statuses == [202] * (PRS * PUSHES)
        gate.set()
        assert runtime.plans.wait_idle(60)
    finally:
        gate.set()
        runtime.stop()
    assert peak <= baseline  # no thread per delivery: the workers existed before the burst
    assert runtime.plans.threads == WORKERS
    counts = Counter(planned)
    assert max(counts.values()) == 1  # each head planned at most once
    latest = {(pr, head(pr, PUSHES - 1)) for pr in range(1, PRS + 1)}
    assert latest <= set(counts)  # the newest head of every pull request was planned
    assert len(planned) <= PRS + WORKERS  # older heads waiting behind a newer one were superseded
    assert runtime.plans.superseded >= PRS * PUSHES - len(planned) - WORKERS


def test_queue_rules() -> None:
    release = threading.Event()
    seen: list[str] = []

    def plan(e: PullRequestEvent) -> None:
        release.wait(10)
        seen.append(e.head_sha)
        if e.number == 3:
            raise RuntimeError("a plan that fails does not stop its worker")

    queue = PlanQueue(plan, workers=1, max_pending=2)
    try:
        assert queue.submit(event(1, 0)) == "queued"
        wait_for(lambda: queue.pending == 0)  # being planned (held)
        assert queue.submit(event(1, 0)) == "duplicate"  # the head being planned
        assert queue.submit(event(1, 1)) == "queued"  # waits: the same PR is never planned twice at once
        assert queue.submit(event(1, 1)) == "duplicate"
        assert queue.submit(event(1, 2)) == "superseded"
        assert queue.submit(event(3, 0)) == "queued"
        with pytest.raises(Busy):
            queue.submit(event(4, 0))  # two pull requests wait already
        assert queue.submit(event(3, 1)) == "superseded"  # a waiting PR may still move on
        release.set()
        assert queue.wait_idle(10)
        assert seen == [head(1, 0), head(1, 2), head(3, 1)]
        assert queue.submit(event(5, 0)) == "queued"  # the worker survived the failing plan
        assert queue.wait_idle(10) and seen[-1] == head(5, 0)
    finally:
        release.set()
        assert queue.stop(10)
    with pytest.raises(Busy):
        queue.submit(event(6, 0))
