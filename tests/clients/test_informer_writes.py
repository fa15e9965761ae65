"""What reaches an informer's cache besides its watch: our own writes (``Informers.observed``), and the start of
the watch thread when two readers share one informer. Server-free: a stub ``Kube`` answers LIST and WATCH."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.clients import informer as informer_module
from reconciler.clients.informer import Informers, matches
from reconciler.labels import AGENT_SELECTOR, ANY_CLUSTER, MANAGED_BY, MANAGER


class StubKube:
    """Lists nothing, watches nothing (a stream that ends at once)."""

    def __init__(self) -> None:
        self.lists = 0

    def list_at(self, kind: str, selector: str | None, namespace: str | None = None) -> tuple[list[Any], str]:
        self.lists += 1
        return [], "1"

    def watch(self, *args: Any) -> Iterator[dict[str, Any]]:
        return iter(())


def configmap(name: str, labels: dict[str, str]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "virtnet", "labels": labels, "resourceVersion": "5"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_an_applied_object_reaches_only_the_caches_whose_selector_it_matches() -> None:
    informers = Informers(StubKube(), {("ConfigMap", ANY_CLUSTER), ("ConfigMap", AGENT_SELECTOR)})  # type: ignore[arg-type]
    ours, agents = informers.get("ConfigMap", ANY_CLUSTER, None), informers.get("ConfigMap", AGENT_SELECTOR, None)
    assert ours is not None and agents is not None
    try:
        ours.items(), agents.items()
        informers.observed(configmap("virtnet-owned", {MANAGED_BY: MANAGER}))
        assert [o["metadata"]["name"] for o in ours.items()] == ["virtnet-owned"]
        assert agents.items() == []  # not a node agent's drift report
    finally:
        informers.stop()


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a==b", {"a": "b"}, True),
        ("a", {"a": "x"}, True),
        ("a", {}, False),
        ("!a", {"a": "x"}, False),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),
        ("a=b,c=d", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b"}, False),
    ],
)
def test_selector_matching_follows_the_servers_equality_rules(
    selector: str | None, labels: dict[str, str], expected: bool
) -> None:
    assert matches(selector, labels) is expected


def test_two_first_readers_start_one_watch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    class SlowThread(threading.Thread):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.2)  # widens the gap between the check and the assignment for the other reader
            super().__init__(*args, **kwargs)

        def start(self) -> None:
            started.append(self.name)
            super().start()

    informers = Informers(StubKube(), {("ConfigMap", ANY_CLUSTER)})  # type: ignore[arg-type]
    informer = informers.get("ConfigMap", ANY_CLUSTER, None)
    assert informer is not None
    readers = [threading.Thread(target=informer.items) for _ in range(2)]
    monkeypatch.setattr(informer_module.threading, "Thread", SlowThread)  # the informer's threads only
    try:
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        assert len(started) == 1, started
    finally:
        informers.stop()
