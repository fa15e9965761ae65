"""Parallel writes inside a wave: bounded, ordered between waves and kinds, backing off on 429, same API calls.

A recording writer shows what overlapped (each call knows how many were in flight when it started), the API
double shows that the requests sent are the same ones a one-at-a-time apply sends, and the real client
shows that a 429 reaches the window that slows the other writers down.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from engine.conftest import EXAMPLES
from reconciler import labels
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions, apply_plan
from reconciler.engine.live import LiveState
from reconciler.engine.plan import build_plan
from reconciler.engine.window import Window
from reconciler.pipeline import reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.faults import Fault, RequestInfo
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged

OURS = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "prod"}


def obj(kind: str, name: str, namespace: str | None = "apps") -> dict[str, Any]:
    api = {"VirtualMachine": "kubevirt.io/v1", "Namespace": "v1", "ConfigMap": "v1", "Service": "v1"}[kind]
    meta: dict[str, Any] = {"name": name, "labels": OURS, **({"namespace": namespace} if namespace else {})}
    spec = {"spec": {"runStrategy": "Halted"}} if kind == "VirtualMachine" else {}
    return {"apiVersion": api, "kind": kind, "metadata": meta, **spec}


class Recording:
    """A ClusterWriter whose writes take ``seconds`` each; records (kind, name, in flight at start, start, end)."""

    def __init__(self, seconds: float = 0.01, throttle_on: str | None = None, retry_after: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[tuple[str, str, int, float, float]] = []
        self.in_flight = 0
        self.lock = threading.Lock()
        self.listeners: list[Callable[[float], None]] = []
        self.throttle_on, self.retry_after = throttle_on, retry_after

    def listen_for_throttling(self, listener: Callable[[float], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def apply(self, o: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            now, start = self.in_flight, time.monotonic()
        if o["metadata"]["name"] == self.throttle_on:  # what Kube does on a 429: tell the listeners, then wait
            for listener in self.listeners:
                listener(self.retry_after)
        time.sleep(self.seconds)
        with self.lock:
            self.in_flight -= 1
            self.calls.append((o["kind"], o["metadata"]["name"], now, start, time.monotonic()))
        return o

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return None

    def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def delete(self, o: dict[str, Any]) -> None:
        raise AssertionError("nothing is deleted")

    def restart_vm(self, namespace: str, name: str) -> None:
        raise AssertionError("nothing is restarted")


def cold(desired: list[dict[str, Any]], writer: Recording, parallel: int) -> None:
    plan = build_plan(desired, LiveState(), "prod")
    changes = apply_plan(plan, writer, ApplyOptions(poll=0, timeout=5, wait_for_vms=False, parallel=parallel))
    assert changes.ok, changes.error
    assert [r.name for r in changes.results] == [i.name for i in plan.items]  # results in plan order


def test_writes_overlap_but_never_more_than_the_limit() -> None:
    writer = Recording(seconds=0.02)
    cold([obj("Namespace", "apps", None)] + [obj("VirtualMachine", f"vm-{i:02}") for i in range(40)], writer, 5)
    peak = max(c[2] for c in writer.calls)
    assert peak == 5, f"at most 5 in flight, and the 40 VMs fill the window: {peak}"
    sequential = Recording(seconds=0.0)
    cold([obj("Namespace", "apps", None)] + [obj("VirtualMachine", f"vm-{i:02}") for i in range(10)], sequential, 1)
    assert max(c[2] for c in sequential.calls) == 1


def test_waves_and_kinds_do_not_overlap() -> None:
    desired = [obj("Namespace", f"ns-{i}", None) for i in range(6)]
    desired += [obj("ConfigMap", f"cm-{i}") for i in range(10)]
    desired += [obj("VirtualMachine", f"vm-{i}") for i in range(10)] + [obj("Service", f"svc-{i}") for i in range(10)]
    writer = Recording(seconds=0.005)
    cold(desired, writer, 8)
    order = ["Namespace", "ConfigMap", "VirtualMachine", "Service"]  # waves 0, 1, 2; Services after VMs in wave 2
    for before, after in pairwise(order):
        last_end = max(c[4] for c in writer.calls if c[0] == before)
        first_start = min(c[3] for c in writer.calls if c[0] == after)
        assert last_end <= first_start, f"a {after} was sent before every {before} had answered"
    assert Counter(c[0] for c in writer.calls) == {"Namespace": 6, "ConfigMap": 10, "VirtualMachine": 10, "Service": 10}


def test_a_429_halves_the_window_and_nothing_starts_before_retry_after() -> None:
    writer = Recording(seconds=0.01, throttle_on="vm-05", retry_after=0.3)
    cold([obj("Namespace", "apps", None)] + [obj("VirtualMachine", f"vm-{i:02}") for i in range(40)], writer, 8)
    [throttled] = [c for c in writer.calls if c[1] == "vm-05"]
    later = sorted((c for c in writer.calls if c[3] > throttled[3] + 0.05), key=lambda c: c[3])
    assert later, "writes went on after the 429"
    assert min(c[3] for c in later) >= throttled[3] + 0.3, "a write started before the Retry-After had passed"
    assert max(c[2] for c in later[:8]) <= 4, "the window did not shrink to half"


def test_window_halves_waits_and_grows_back() -> None:
    now = [0.0]
    window = Window(8, clock=lambda: now[0])
    window.throttled(2.0)
    assert (window.size, window.throttles) == (4, 1)
    started = threading.Event()

    tickets: list[int] = []

    def take() -> None:
        tickets.append(window.acquire())
        started.set()

    worker = threading.Thread(target=take)
    worker.start()
    assert not started.wait(0.1), "acquired while the server's Retry-After had not passed"
    now[0] = 2.5
    with window._cond:  # wake the waiter after moving the fake clock
        window._cond.notify_all()
    assert started.wait(2.0)
    worker.join()
    stale = window.acquire()
    window.release(tickets[0])
    window.throttled(0)
    assert window.size == 2
    window.release(stale)  # sent before the latest 429: it does not count toward growing back
    for _ in range(7):
        window.release(window.acquire())
    assert window.size == 2
    for _ in range(8):
        window.release(window.acquire(), ok=False)  # failed writes say nothing about the server's room
    assert window.size == 2
    window.release(window.acquire())  # eight successes (the limit) grow it by one
    assert window.size == 3
    window.throttled(0)
    window.throttled(0)
    window.throttled(0)
    assert window.size == 1  # never below one
    with pytest.raises(ValueError, match="at least 1"):
        Window(0)


def test_the_client_reports_a_429_with_its_retry_after() -> None:
    sent: list[str] = []

    def once(info: RequestInfo) -> Fault | None:
        sent.append(info.verb)
        return Fault("429", retry_after=0) if len(sent) == 1 else None

    with ApiDouble(faults=once) as api:
        kube = Kube(api.api_client())
        heard: list[float] = []
        stop = kube.listen_for_throttling(heard.append)
        assert kube.get("Namespace", "default") is not None
        assert heard == [0.0] and sent == ["get", "get"]
        stop()
        sent.clear()
        assert kube.get("Namespace", "default") is not None
        assert heard == [0.0] and sent == ["get", "get"]  # refused and retried again, but nobody listens now


def _requests_of_a_cold_apply(repo: Path, parallel: int, faults: Any = None) -> Counter[tuple[str, str]]:
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes()) as api:
        seed_hyperconverged(api.store)
        api.faults = faults
        kube = Kube(api.api_client())
        outcome = reconcile(repo, kube, apply_options=ApplyOptions(poll=0.02, timeout=20, parallel=parallel))
        assert outcome.ok, outcome.message
        return Counter((r.method, r.path) for r in api.requests if not r.fault and r.verb not in ("get", "list"))


class FirstWriteOfEachKind:
    """A 429 (``Retry-After: 0``) for the first write of every resource, once."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, info: RequestInfo) -> Fault | None:
        with self.lock:
            if info.verb != "apply" or info.dry_run or info.resource in self.refused:
                return None
            self.refused.add(info.resource)
            return Fault("429", retry_after=0)


def test_parallel_apply_sends_the_same_writes_as_one_at_a_time() -> None:
    one = _requests_of_a_cold_apply(EXAMPLES, 1)
    throttled = FirstWriteOfEachKind()
    many = _requests_of_a_cold_apply(EXAMPLES, 12, faults=throttled)
    assert len(throttled.refused) >= 5, throttled.refused
    assert sum(one.values()) >= 30 and one == many


def service(name: str, node_port: int | None = None) -> dict[str, Any]:
    o = obj("Service", name)
    port: dict[str, Any] = {"name": "http", "port": 80}
    if node_port is not None:
        port["nodePort"] = node_port
    o["spec"] = {"type": "LoadBalancer" if node_port is None else "NodePort", "ports": [port]}
    return o


def test_services_naming_their_node_port_are_written_before_those_the_server_picks_ports_for() -> None:
    """In parallel, a LoadBalancer may be given at random the port a later Service names: named ports go first,
    in a stage of their own that ends before the first port-picking Service starts."""
    desired = [service(f"lb{i}") for i in range(12)] + [service(f"np{i}", 30000 + i) for i in range(6)]
    writer = Recording(seconds=0.01)
    cold([obj("Namespace", "apps", None), *desired], writer, 8)  # results still in plan order
    named = [c for c in writer.calls if c[1].startswith("np")]
    picking = [c for c in writer.calls if c[1].startswith("lb")]
    assert len(named) == 6 and len(picking) == 12
    assert max(end for *_, end in named) <= min(start for *_, start, _end in picking)
    assert max(c[2] for c in picking) > 1  # the rest still goes out in parallel
