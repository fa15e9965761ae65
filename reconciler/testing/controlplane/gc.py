"""kube-controller-manager's garbage collector and namespace controller, as far as virtnet's objects need them.

Why: the control plane runs no kube-controller-manager, and without it deletions do not finish the way they do
on a cluster. virtnet prunes with ``propagationPolicy: Foreground``, which leaves the object with a
``foregroundDeletion`` finalizer until the garbage collector has deleted its dependents; a deleted namespace
stays ``Terminating`` until the namespace controller has emptied it and removed the ``kubernetes`` finalizer.
So a second ``virtnet plan`` after a prune would keep seeing what it deleted.

What this does, every pass, for the kinds virtnet reads and writes (:data:`reconciler.objects.API_RESOURCES`):

* an object being deleted with ``foregroundDeletion`` gets its dependents (objects whose ``ownerReferences``
  name its uid) deleted; once none is left the finalizer is removed, and the apiserver deletes it;
* with ``orphan`` the dependents lose their owner reference instead, then the finalizer goes;
* an object whose owners (of these kinds) are all gone is deleted (background cascading);
* a ``Terminating`` namespace has everything in it deleted (every namespaced resource type the server lists),
  and when nothing is left, its ``kubernetes`` finalizer is removed through ``/finalize``.

``blockOwnerDeletion`` is not looked at; nothing here depends on it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from reconciler.objects import API_RESOURCES
from reconciler.testing.errors import ApiError
from reconciler.testing.kubestore import KubeStore, resource_path
from reconciler.testing.resources import ResourceType

MANAGER = "kube-controller-manager"
Item = tuple[ResourceType, dict[str, Any]]


class GarbageCollector:
    """One ``tick()`` looks at every object of the watched kinds; see the module docstring."""

    def __init__(self, store: KubeStore) -> None:
        self.store = store
        kinds = [store.registry.by_kind(r.api_version, r.kind) for r in API_RESOURCES.values()]
        self.kinds = [rt for rt in kinds if rt is not None]
        self.watched = {(rt.api_version, rt.kind) for rt in self.kinds}

    def tick(self) -> None:
        items: list[Item] = [(rt, o) for rt in self.kinds for o in self.store.objects(rt.api_version, rt.kind)]
        uids = {o["metadata"]["uid"] for _, o in items}
        dependents: dict[str, list[Item]] = defaultdict(list)
        for rt, obj in items:
            for ref in obj["metadata"].get("ownerReferences") or []:
                dependents[ref.get("uid", "")].append((rt, obj))
        for rt, obj in items:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                self._finish(rt, obj, dependents.get(meta["uid"], []))
            elif self._orphaned(obj, uids):
                self._delete(rt, obj)
        for ns in self.store.objects("v1", "Namespace"):
            if ns["metadata"].get("deletionTimestamp") and "kubernetes" in (ns.get("spec") or {}).get("finalizers",
                                                                                                         []):
                self._empty_namespace(ns)

    def _orphaned(self, obj: dict[str, Any], uids: set[str]) -> bool:
        refs = [r for r in obj["metadata"].get("ownerReferences") or []
                if (r.get("apiVersion"), r.get("kind")) in self.watched]
        return bool(refs) and all(r.get("uid") not in uids for r in refs)

    def _finish(self, rt: ResourceType, obj: dict[str, Any], deps: list[Item]) -> None:
        finalizers = obj["metadata"].get("finalizers") or []
        if "orphan" in finalizers:
            for dep_rt, dep in deps:
                self._disown(dep_rt, dep, obj["metadata"]["uid"])
            self._drop_finalizer(rt, obj, "orphan")
        elif "foregroundDeletion" in finalizers:
            for dep_rt, dep in deps:
                if not dep["metadata"].get("deletionTimestamp"):
                    self._delete(dep_rt, dep)
            if not deps:
                self._drop_finalizer(rt, obj, "foregroundDeletion")

    def _write(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.store.update(rt, meta.get("namespace", ""), meta["name"], obj, manager=MANAGER)
        except ApiError as exc:
            if exc.code not in (404, 409):  # gone or changed meanwhile: the next pass looks again
                raise

    def _drop_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        out = copy.deepcopy(obj)
        out["metadata"]["finalizers"] = [f for f in out["metadata"]["finalizers"] if f != finalizer]
        self._write(rt, out)

    def _disown(self, rt: ResourceType, obj: dict[str, Any], owner: str) -> None:
        out = copy.deepcopy(obj)
        out["metadata"]["ownerReferences"] = [r for r in out["metadata"]["ownerReferences"] if r.get("uid") != owner]
        self._write(rt, out)

    def _delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.store.delete(rt, meta.get("namespace", ""), meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _empty_namespace(self, ns: dict[str, Any]) -> None:
        name, left = ns["metadata"]["name"], 0
        for rt in self.store.registry.types:
            if not rt.namespaced or not rt.storage_version:
                continue
            status, out = self.store.rest.get(resource_path(rt, name))
            if status != 200:  # not listable (reviews, bindings) or an API that is down
                continue
            for item in out.get("items") or []:
                left += 1
                if not item["metadata"].get("deletionTimestamp"):
                    self._delete(rt, item)
        if left == 0:
            body = copy.deepcopy(ns)
            body["spec"]["finalizers"] = [f for f in body["spec"]["finalizers"] if f != "kubernetes"]
            status, out = self.store.rest.request("PUT", f"/api/v1/namespaces/{name}/finalize", body,
                                                  query={"fieldManager": MANAGER})
            if status >= 300 and status not in (404, 409):
                raise ApiError(status, "", f"finalize namespace {name}: {out}")
