"""The informer cache (clients/informer.py) on both API servers: list, then follow the watch; list again on 410.

On the double and on a real kube-apiserver (``backend``, tests/backends.py), because resourceVersions,
bookmarks and the 410 a too-old resourceVersion gets are exactly where a double could be kinder than the
real thing. The controller test shows what the cache is for: a no-op reconcile that sends no LIST at all,
and drift made meanwhile still seen and corrected.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from backends import DOUBLE, REAL, Backend, backend_fixture, eventually
from gitutil import isolate_git, make_remote, push_commit
from repos import BASE, VM

from reconciler.clients.informer import CachedKube, Informer, Informers
from reconciler.clients.kube import Kube
from reconciler.labels import ANY_CLUSTER
from reconciler.objects import display
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.controlplane import ControlPlane, ControlPlaneUnavailable
from reconciler.testing.nodes import demo_nodes

backend = backend_fixture()
#: the controller's tests: the BASE repository's node policies fit two workers and no control-plane node
workers = backend_fixture(demo_nodes(workers=2, control_plane=0), name="workers")
NS = "informer-test"
SELECTOR = "app.kubernetes.io/part-of=informer-test"


def cm(name: str, value: str = "1") -> dict[str, object]:
    labels = {"app.kubernetes.io/part-of": "informer-test"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {"v": value},
    }


def names(informer: Informer) -> dict[str, str]:
    return {o["metadata"]["name"]: o["data"]["v"] for o in informer.items()}


@contextlib.contextmanager
def running(informer: Informer) -> Iterator[Informer]:
    try:
        yield informer
    finally:
        informer.stop()


def test_the_informer_lists_once_then_follows_the_watch(backend: Backend) -> None:
    admin = backend.admin
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    admin.apply(cm("a"))
    admin.apply(cm("b"))
    # kube-apiserver sends a bookmark a little before a watch's timeoutSeconds; the double each second
    timeout = 8 if backend.real else 2
    with running(Informer(backend.kube, ("ConfigMap", SELECTOR, NS), watch_timeout=timeout)) as informer:
        assert names(informer) == {"a": "1", "b": "1"}
        admin.apply(cm("c"))
        admin.apply(cm("a", "2"))
        admin.delete(cm("b"))
        assert eventually(lambda: names(informer) == {"a": "2", "c": "1"}, timeout=20), names(informer)
        assert informer.lists == 1 and informer.events >= 3  # no LIST after the first: the watch said it all
        # bookmarks keep the resourceVersion current while nothing matches
        assert eventually(lambda: informer.bookmarks > 0, timeout=30)
        assert informer.lists == 1


@contextlib.contextmanager
def server_with_history_limits(name: str, tmp: Path) -> Iterator[tuple[Kube, Callable[[], None]]]:
    """A client of ``name``'s server, and a function that makes every older resourceVersion expire.

    The real server gets a control plane of its own without the watch cache (with it, kube-apiserver 1.37
    answers a too-old watch with the current state instead of 410), whose etcd history is then compacted;
    the double remembers the last 1,000 writes, so 1,001 writes the informer does not watch do it."""
    if name == DOUBLE:
        with ApiDouble() as api:

            def flood() -> None:
                for i in range(1001):
                    api.store.put(
                        {
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {"name": f"f{i % 3}", "namespace": NS},
                            "data": {"v": str(i)},
                        }
                    )

            yield Kube(api.api_client()), flood
        return
    try:
        plane = ControlPlane.start(
            tmp / "cp", install_crds=False, seed_objects=False, apiserver_flags=["--watch-cache=false"]
        )
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)
    with plane:
        kube = Kube.from_kubeconfig(str(plane.kubeconfig))

        def compact() -> None:
            kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f", "namespace": NS}})
            kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "f", "namespace": NS},
                    "data": {"v": "2"},
                }
            )
            plane.compact_etcd()  # history up to the last write is gone: a watch from before it gets 410

        yield kube, compact


@pytest.mark.parametrize("name", [DOUBLE, pytest.param(REAL, marks=pytest.mark.realapi)])
def test_a_410_gone_makes_the_informer_list_again(name: str, tmp_path: Path) -> None:
    with server_with_history_limits(name, tmp_path) as (kube, expire):
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        kube.apply(cm("a"))
        informer = Informer(kube, ("ConfigMap", SELECTOR, NS), watch_timeout=1)
        informer.relist()  # listed, and no watch yet: nothing moves its resourceVersion on
        listed_at = informer.resource_version
        kube.apply(cm("late", "9"))
        expire()
        with running(informer):
            assert names(informer) == {"a": "1"}  # the watch starts here, from the expired resourceVersion
            assert eventually(lambda: informer.lists >= 2, timeout=30), "no relist after the 410"
            assert eventually(lambda: names(informer) == {"a": "1", "late": "9"}, timeout=20)
            assert informer.resource_version != listed_at


def test_resync_lists_again_after_the_period(backend: Backend) -> None:
    admin = backend.admin
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    with running(Informer(backend.kube, ("ConfigMap", SELECTOR, NS), resync=1.0, watch_timeout=1)) as informer:
        informer.items()
        assert eventually(lambda: informer.lists >= 3, timeout=20)


# ---- the controller ------------------------------------------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch, tmp_path / "home")
    return make_remote(tmp_path, dict(BASE))


def controller_on(backend: Backend, remote: Path, tmp: Path) -> Controller:
    settings = Settings(
        repo_url=remote.as_uri(),
        cache_root=tmp / "cache",
        apply=backend.options(),
        status_branch=None,
        events=False,
        informers=True,
    )
    return Controller(settings, backend.client(), Metrics())


def settled(backend: Backend, controller: Controller) -> None:
    assert controller.reconcile("first").ok
    backend.quiesce()
    assert controller.reconcile("settle").ok  # status written by the simulated controllers since
    backend.log.reset()


def test_a_no_op_reconcile_reads_the_cluster_from_the_cache(workers: Backend, tmp_path: Path, remote: Path) -> None:
    backend = workers
    controller = controller_on(backend, remote, tmp_path)
    try:
        settled(backend, controller)
        again = controller.reconcile("poll")
        assert again.ok and not again.plan.has_changes  # type: ignore[union-attr]
        lists = [c for c in backend.log.calls if c.verb == "list"]
        assert lists == [] and backend.log.writes() == 0, [(c.verb, c.path) for c in backend.log.calls]
        # drift made meanwhile (an owned object deleted) reaches the cache through the watch and is undone
        victim = next(o for o in again.desired if o["kind"] == "NetworkAttachmentDefinition")
        backend.admin.delete(victim)
        assert eventually(lambda: not _cached(controller, victim), timeout=20)
        fixed = controller.reconcile("poll")
        assert fixed.ok and fixed.changes is not None
        assert [r.name for r in fixed.changes.results] == [display(victim)]
        # a new commit parses only the file that changed
        before = controller.parse_cache.misses
        push_commit(remote, {"vms/web.yaml": VM.replace("192.168.100.10/24", "192.168.100.11/24")}, "new address")
        pushed = controller.reconcile("push")
        assert pushed.ok and pushed.changes is not None, pushed.message
        assert controller.parse_cache.misses - before == 1
    finally:
        controller.close()


def test_an_apply_through_the_cache_is_seen_at_once(backend: Backend) -> None:
    """Write-through: the object an apply returned is in the cache when the apply returns, not when (or if) the
    watch brings it; the watch is stopped first, so only the write can have put it there."""
    backend.admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    informers = Informers(backend.client(), {("ConfigMap", SELECTOR)})
    cached = CachedKube(backend.client(), informers)
    try:
        assert cached.list("ConfigMap", SELECTOR, namespace=NS) == []
        informers.stop()
        backend.log.reset()
        written = cached.apply(cm("a", "2"))
        [seen] = cached.list("ConfigMap", SELECTOR, namespace=NS)
        assert seen["data"] == {"v": "2"}
        assert seen["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
        assert [c.verb for c in backend.log.calls] == ["apply"]  # the list after it asked nothing
    finally:
        informers.stop()


def test_a_delete_through_the_cache_costs_one_list_on_the_next_reconcile(
    workers: Backend, tmp_path: Path, remote: Path
) -> None:
    backend = workers
    controller = controller_on(backend, remote, tmp_path)
    try:
        settled(backend, controller)
        victim = next(o for o in controller.last.desired if o["kind"] == "NetworkAttachmentDefinition")  # type: ignore[union-attr]
        # the reads of a reconcile that re-creates an object deleted by someone else (the watch told the cache)
        backend.admin.delete(victim)
        assert eventually(lambda: not _cached(controller, victim), timeout=20)
        backend.log.reset()
        assert controller.reconcile("poll").ok
        baseline = Counter(c.resource for c in backend.log.calls if c.verb == "list")
        # the same, deleted through the cache (as prune does): its kind is listed again, once
        controller.reader.delete(victim)
        backend.log.reset()
        again = controller.reconcile("poll")
        assert again.ok and again.changes is not None, again.message
        lists = Counter(c.resource for c in backend.log.calls if c.verb == "list")
        assert lists == baseline + Counter({"k8s.cni.cncf.io/network-attachment-definitions": 1}), (lists, baseline)
    finally:
        controller.close()


def _cached(controller: Controller, obj: dict[str, Any]) -> bool:
    assert controller.informers is not None
    informer = controller.informers.get(obj["kind"], ANY_CLUSTER, None)
    assert informer is not None
    return any(o["metadata"]["name"] == obj["metadata"]["name"] for o in informer.items())


class DroppingWatch:
    """A server whose watch stream breaks when ``drop`` is set (as when the server goes away)."""

    def __init__(self) -> None:
        self.drop = threading.Event()
        self.watches = 0

    def list_at(self, kind: str, selector: str | None, namespace: str | None = None) -> tuple[list[Any], str]:
        return [], "1"

    def watch(self, kind: str, selector: str | None, namespace: str | None, version: str, timeout: int) -> Any:
        self.watches += 1
        self.drop.wait(30)
        raise urllib3.exceptions.ProtocolError("Response ended prematurely")
        yield  # a generator, as Kube.watch is


@pytest.mark.parametrize("stopped", [False, True])
def test_a_stream_that_breaks_after_stop_is_no_failure(stopped: bool, caplog: pytest.LogCaptureFixture) -> None:
    """Stopping the informers and then the server (a replica shutting down) logged 'watch failed; listing
    again' for every kind; a stream that breaks while the informer runs is still a warning."""
    server = DroppingWatch()
    informer = Informer(server, ("ConfigMap", SELECTOR, NS), watch_timeout=1)  # type: ignore[arg-type]
    informer.items()
    assert eventually(lambda: server.watches == 1, timeout=10)
    with caplog.at_level(logging.WARNING, logger="reconciler.clients.informer"):
        if stopped:
            informer.stop()
        server.drop.set()
        thread = informer._thread
        assert thread is not None
        if stopped:
            thread.join(10)
            assert not thread.is_alive()
        else:
            assert eventually(lambda: "watch failed" in caplog.text, timeout=10)
            informer.stop()
            thread.join(10)
    assert ("watch failed" in caplog.text) is not stopped
