"""Push-webhook → reconcile-start latency through the real HTTP app and scheduler, over loopback.

Why end to end: the figure users feel is "I pushed, how long until virtnet starts working". It is the
waitress server, HMAC verification, parsing, the delivery log, ``Scheduler.trigger`` and the worker
thread waking up. The reconcile function only records when it started, so the figure excludes the
reconcile itself. Deliveries are sent one at a time, each after the previous run finished, so every
POST opens a fresh run (no coalescing).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import statistics
import threading
import time
from typing import Any

SECRET = "bench-secret"  # a throwaway secret for a loopback-only server


def available() -> str | None:
    """None when ``reconciler.server`` provides the app and scheduler, else why not."""
    try:
        from reconciler.server.app import build_app, serve  # noqa: F401
        from reconciler.server.scheduler import Scheduler  # noqa: F401
    except ImportError as exc:
        return f"reconciler.server is not available: {exc}"
    return None


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def webhook_latency(deliveries: int = 20, timeout: float = 10.0) -> dict[str, Any]:
    """Median/p95/max of POST-sent → reconcile-started (client clock) over ``deliveries`` pushes."""
    from reconciler.server.app import build_app, serve
    from reconciler.server.scheduler import Scheduler

    started: list[float] = []
    run_started = threading.Event()

    def reconcile(reason: str) -> None:
        started.append(time.monotonic())
        run_started.set()

    scheduler = Scheduler(reconcile, interval=3600.0, jitter=0.0, run_on_start=False)
    app = build_app(
        secrets={"github": SECRET},
        branch="main",
        on_push=lambda event: scheduler.trigger(f"push:{event.after[:12]}"),
        on_pull_request=lambda event: None,
    )
    scheduler.start()
    server = serve(app, "127.0.0.1", 0)
    latencies: list[float] = []
    server_side: list[float] = []
    try:
        for i in range(deliveries):
            body = json.dumps(
                {
                    "ref": "refs/heads/main",
                    "after": hashlib.sha1(f"bench-{i}".encode()).hexdigest(),  # never the all-zero sha
                    "repository": {"clone_url": "https://git.example.invalid/bench.git"},
                }
            ).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"bench-{i}",
                "X-Hub-Signature-256": signature,
            }
            run_started.clear()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
            sent = time.monotonic()
            conn.request("POST", "/webhooks/github", body=body, headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read() or b"{}")
            conn.close()
            if response.status != 202 or answer.get("status") != "triggered":
                raise RuntimeError(f"webhook answered {response.status} {answer}")
            if not run_started.wait(timeout):
                raise TimeoutError("the reconcile did not start")
            latencies.append(started[-1] - sent)
            if not scheduler.wait_idle(timeout):
                raise TimeoutError("the reconcile did not finish")
            last = scheduler.last_run
            if last is not None:
                server_side.append(last.latency)
    finally:
        server.stop()
        scheduler.stop()
    ms = [x * 1000 for x in latencies]
    return {
        "deliveries": deliveries,
        "median_ms": statistics.median(ms),
        "p95_ms": _percentile(ms, 95),
        "max_ms": max(ms),
        "trigger_to_start_median_ms": statistics.median(x * 1000 for x in server_side) if server_side else None,
    }
