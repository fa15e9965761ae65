"""The node agent's probes and metrics: ``/healthz``, ``/readyz`` and ``/metrics`` on a small HTTP server.

Why: the DaemonSet runs one agent per node with the power to change the node's network; a wedged loop (a
netlink call that never returns, a node lock never released) must restart the pod rather than sit silent,
and an agent that fails its passes must show in Prometheus like the controller does. ``/healthz`` is
healthy while passes keep ending (failed ones included: a failing pass is reported, not a reason to
restart); ``/readyz`` once the first pass ended.

Side effects: :func:`serve` starts waitress on a daemon thread (the DaemonSet binds it on the node's
network, hence its own port, ``agent.httpPort``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: a loop is wedged when no pass ended for this many intervals (plus the node lock's wait)
STALE_INTERVALS = 3


class AgentHealth:
    """Counts the agent's passes and answers the probes; thread-safe (the loop writes, the server reads)."""

    def __init__(self, interval: float, lock_wait: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.interval, self.lock_wait, self.clock = interval, lock_wait, clock
        self.started = clock()
        self.last_pass: float | None = None
        self._lock = threading.Lock()
        self.registry = r = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.passes = Counter(
            "virtnet_agent_passes", "Agent passes by result (ok, failed, error)", ["result"], registry=r
        )
        self.duration = Histogram(
            "virtnet_agent_pass_duration_seconds",
            "Wall time of one agent pass",
            buckets=(0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.last_pass_gauge = Gauge(
            "virtnet_agent_last_pass_timestamp_seconds", "Unix time the last pass ended (any result)", registry=r
        )
        self.drift = Gauge("virtnet_agent_drift_items", "Differences between the node and its policies", registry=r)
        self.writes = Counter("virtnet_agent_writes", "Changes the agent made to the node's network", registry=r)

    def observe(self, result: str, drift: int = 0, writes: int = 0, *, seconds: float = 0.0) -> None:
        """One pass ended: ``ok``, ``failed`` (a policy failed) or ``error`` (the pass itself raised)."""
        now = self.clock()
        with self._lock:
            self.last_pass = now
        self.passes.labels(result=result if result in ("ok", "failed", "error") else "error").inc()
        self.duration.observe(max(0.0, seconds))
        self.last_pass_gauge.set(now)
        if result != "error":
            self.drift.set(max(0, drift))
        if writes > 0:
            self.writes.inc(writes)

    def healthy(self) -> bool:
        with self._lock:
            last = self.last_pass if self.last_pass is not None else self.started
        return self.clock() - last <= STALE_INTERVALS * self.interval + self.lock_wait

    def ready(self) -> bool:
        with self._lock:
            return self.last_pass is not None

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """WSGI: the three endpoints, GET only."""
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return [b"method not allowed\n"]
        if path == "/metrics":
            body = generate_latest(self.registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        checks = {"/healthz": self.healthy, "/readyz": self.ready}
        if path not in checks:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        ok = checks[path]()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else b"no agent pass ended recently\n"]


def serve(health: AgentHealth, host: str, port: int) -> Callable[[], None]:
    """Serve ``health`` on ``host:port`` in a daemon thread; returns a function that stops it."""
    from waitress.server import create_server

    server = create_server(health.app, host=host, port=port, threads=2, channel_timeout=10)
    thread = threading.Thread(target=server.run, name="agent-http", daemon=True)
    thread.start()
    return server.close
