"""/healthz and /metrics keep answering while slow, unauthenticated clients hold connections (issue #14, class 10).

Before: 110 connections trickling a webhook request made /healthz fail 17 of 19 probes (waitress stopped
accepting at its connection limit of 100, so the chart's liveness probe would have restarted the pod).
Here: the server with the settings ``serve`` uses in production, 110 slow connections on 127.0.0.1 that
send a few header bytes each round (never idle, never complete; any the server cuts are opened again),
and 19 rounds of probes, each answered within 1 s or counted as failed. Bounded: 19 rounds of about
0.4 s, at most 110 + 110 * 3 connections opened.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest

from reconciler.server.app import ServerHandle, build_app, serve

SLOW, ROUNDS, REOPENS = 110, 19, 3 * 110


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    app = build_app(secrets={"github": "slow-secret"}, branch="main", on_push=print, on_pull_request=print)
    handle = serve(app, "127.0.0.1", 0)  # the production defaults
    try:
        yield handle
    finally:
        handle.stop()


def _slow(port: int) -> socket.socket | None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
        s.setblocking(False)
        s.send(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
        return s
    except OSError:
        return None  # the server (or its backlog) is full: the round simply has one fewer


def _trickle(s: socket.socket) -> bool:
    """One more header byte; False when the server has closed the connection."""
    try:
        if s.recv(1024) == b"":
            return False
    except BlockingIOError:
        pass
    except OSError:
        return False
    try:
        s.send(b"X")
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True


def _probe(port: int, path: str) -> bool:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status == 200 and time.monotonic() - started <= 1.0
    except OSError:
        return False
    finally:
        conn.close()


def test_probes_answer_while_110_slow_connections_are_held(server: ServerHandle) -> None:
    port = server.port
    slow = [s for s in (_slow(port) for _ in range(SLOW)) if s is not None]
    assert len(slow) >= SLOW - 10
    reopens = 0
    health: list[bool] = []
    metrics: list[bool] = []
    try:
        for _ in range(ROUNDS):
            alive = [s for s in slow if _trickle(s)]
            for s in set(slow) - set(alive):
                s.close()
            while len(alive) < SLOW and reopens < REOPENS:  # whatever the server cut comes back at once
                reopens += 1
                if (s := _slow(port)) is not None:
                    alive.append(s)
            slow = alive
            health.append(_probe(port, "/healthz"))
            metrics.append(_probe(port, "/metrics"))
            time.sleep(0.4)
        held = len(slow)
    finally:
        for s in slow:
            s.close()
    assert held >= SLOW - 10  # the slow clients really were there to the end
    assert sum(health) >= ROUNDS - 1, f"/healthz answered {sum(health)} of {ROUNDS} probes within 1 s"
    assert sum(metrics) >= ROUNDS - 1, f"/metrics answered {sum(metrics)} of {ROUNDS} probes within 1 s"
