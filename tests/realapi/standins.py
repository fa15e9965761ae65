"""Stand-ins for the controllers a real cluster runs, as far as virtnet looks, against a real kube-apiserver.

Why: the test control plane runs no kubelet, controller-manager, kubernetes-nmstate or KubeVirt, so nothing
would ever mark a node policy Available, a VM Ready, or finish a Foreground delete, and every apply would
wait out its timeout. :class:`StandIns` is a thread that does exactly those three things and nothing more
(no VMIs, no enactments, no node changes, no Degraded policies): tests that need more of the simulation stay
on the API double and say so. It is a stop-gap until ``reconciler.testing``'s simulated controllers run
against the real server too.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from reconciler.clients.kube import MANAGED_KINDS, RESOURCES
from reconciler.objects import Obj
from reconciler.testing.controlplane import ControlPlaneError
from reconciler.testing.controlplane.rest import Rest

REVISION = "/api/v1/namespaces?limit=1"


def revision(rest: Rest) -> str:
    """The cluster's current resourceVersion (etcd's revision): it moves with every write, anywhere."""
    _, head = rest.get(REVISION)
    return str(head["metadata"]["resourceVersion"])


class StandIns:
    """kubernetes-nmstate, KubeVirt and the garbage collector, as a thread; use as a context manager.

    Every policy generation it has not seen becomes ``Available``; every VM generation Ready (``runStrategy:
    Halted``: Stopped), through ``/status`` with the managers the real ones use. Objects deleted with
    ``propagationPolicy: Foreground`` (virtnet's prune) keep a ``foregroundDeletion`` finalizer until the
    garbage collector of kube-controller-manager removes it: with ``collect`` on, this does (none of our
    objects has dependents here). A tick is skipped while the cluster's revision has not moved.
    """

    def __init__(self, rest: Rest, period: float = 0.05) -> None:
        self.rest, self.period = rest, period
        self.seen: dict[str, int] = {}
        self.collect = True  # a test may pause the garbage collector
        self.revision = ""
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="realapi-stand-ins", daemon=True)

    def __enter__(self) -> StandIns:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop.wait(self.period):
            with contextlib.suppress(OSError, ControlPlaneError, KeyError, TypeError):
                self.tick()

    def idle(self) -> bool:
        """Whether the last tick saw the cluster as it is now (and so had nothing left to write)."""
        return bool(self.revision) and revision(self.rest) == self.revision

    def _items(self, path: str) -> list[Obj]:
        status, out = self.rest.get(path)
        return (out.get("items") or []) if status == 200 else []

    def tick(self) -> None:
        with self.lock:
            now = revision(self.rest)
            if now == self.revision:
                return
            for p in self._items("/apis/nmstate.io/v1/nodenetworkconfigurationpolicies"):
                self._status(p, "nmstate", {"conditions": [
                    {"type": "Available", "status": "True", "reason": "SuccessfullyConfigured",
                     "message": "stand-in", "lastTransitionTime": "2030-01-01T00:00:00Z"}]})
            for vm in self._items("/apis/kubevirt.io/v1/virtualmachines"):
                self._status(vm, "virt-controller", _vm_status(vm))
            if self.collect:
                for kind in MANAGED_KINDS:
                    for obj in self._items(RESOURCES[kind].path()):
                        self._collect(kind, obj)
            self.revision = now  # our own writes move it once more: the next tick looks again and finds nothing

    def _status(self, obj: Obj, manager: str, status: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key, generation = meta["uid"], meta.get("generation", 1)
        if self.seen.get(key) == generation or meta.get("deletionTimestamp"):
            return
        ref = {k: meta[k] for k in ("name", "namespace") if k in meta}
        body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": ref, "status": status}
        path = RESOURCES[obj["kind"]].path(meta.get("namespace"), meta["name"], "status")
        code, _ = self.rest.request("PATCH", path, body, content_type="application/apply-patch+yaml",
                                    query={"fieldManager": manager, "force": "true"})
        if code == 200:
            self.seen[key] = generation

    def _collect(self, kind: str, obj: Obj) -> None:
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and "foregroundDeletion" in finalizers:
            release(self.rest, kind, obj, "foregroundDeletion")


def release(rest: Rest, kind: str, obj: Obj, *finalizers: str) -> None:
    """Drop ``finalizers`` (all when none are named) from ``obj``: what their controller does when it is done."""
    meta = obj["metadata"]
    left = [f for f in meta.get("finalizers") or [] if finalizers and f not in finalizers]
    body = {"metadata": {"finalizers": left or None, "resourceVersion": meta["resourceVersion"]}}
    rest.request("PATCH", RESOURCES[kind].path(meta.get("namespace"), meta["name"]), body,
                 content_type="application/merge-patch+json")


def _vm_status(vm: Obj) -> dict[str, Any]:
    generation = vm["metadata"].get("generation", 1)
    if (vm.get("spec") or {}).get("runStrategy") == "Halted":
        return {"printableStatus": "Stopped", "observedGeneration": generation}
    return {"printableStatus": "Running", "ready": True, "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True"}]}
