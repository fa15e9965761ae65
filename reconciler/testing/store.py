"""In-memory object store of the API double: the behaviour of etcd plus the generic apiserver registry.

One :class:`Store` holds every object, keyed by ``(group, plural)`` then ``(namespace, name)``, under a
single re-entrant lock, so every operation is atomic and the global ``resourceVersion`` counter is
strictly increasing across all kinds (as with etcd's revision; :mod:`.eventlog` keeps it with the watch
history). Writes go through :meth:`Store._commit`, which is the one place that decides no-op vs change (a
write that changes nothing keeps the old object, its resourceVersion and emits no watch event), bumps
``generation`` when anything outside ``metadata`` and ``status`` changed, and appends to the bounded watch
event log. ``dryRun`` runs the same code path and stops right before the commit.

What a real server checks first is checked here too: names per kind and the schema (:mod:`.validation`, with
``fieldValidation`` Strict/Warn/Ignore; writes made from Python, seeding and controllers, prune silently), the
namespace and finalizer lifecycle (:mod:`.lifecycle`), an unconditional PUT of a custom resource (422).
Admission ``mutators`` (KubeMacPool) run after the managedFields bookkeeping, so what they add is owned by
nobody; ``observers`` see every committed write (``new`` is None for a removal).

Objects are stored version-less; :meth:`Store.render` stamps ``apiVersion``/``kind`` of the resource type
a caller asked through. Every method returns copies. Errors are :class:`~reconciler.testing.errors.ApiError`.
"""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reconciler.testing import lifecycle, patches, ssa
from reconciler.testing.errors import ApiError, already_exists, apply_conflict, conflict, not_found
from reconciler.testing.eventlog import EventLog, WatchEvent
from reconciler.testing.listing import Pager, matchers
from reconciler.testing.objectstore import head
from reconciler.testing.resources import Registry, ResourceType
from reconciler.testing.schemas import shape_of
from reconciler.testing.validation import check_applied, check_fields, check_name, invalid, request_body

Obj = dict[str, Any]
Mutator = Callable[[ResourceType, Obj, Obj | None], None]
Observer = Callable[[ResourceType, Obj | None, Obj | None], None]
Warnings = list[str]  # the Warning headers a write earns (the class below has a method named list)
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_NS = lifecycle.NAMESPACES


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_op_view(obj: Obj) -> Obj:
    """The object without what a no-op may legitimately differ in (managedFields timestamps)."""
    out = copy.deepcopy(obj)
    for e in out.get("metadata", {}).get("managedFields") or []:
        e.pop("time", None)
    return out


def _spec_view(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    """All objects of the double. Thread-safe; every public method takes the lock."""

    def __init__(self, registry: Registry | None = None, *, event_log_size: int = 1000,
                 require_namespaces: bool = True, seed: int = 0) -> None:
        self.registry = registry or Registry()
        self.lock = threading.RLock()
        self.events = EventLog(self.lock, event_log_size)  # resourceVersions and the watch history
        self.require_namespaces = require_namespaces
        self.mutators: list[Mutator] = []  # admission-like hooks (e.g. KubeMacPool), may raise ApiError
        self.observers: list[Observer] = []  # told of every committed write, after it
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._pager = Pager()
        self._rng = random.Random(seed)
        self._sweeping: set[str] = set()

    @property
    def rv(self) -> int:
        """The current (global) resourceVersion."""
        return self.events.rv

    # ---- reading -------------------------------------------------------------------------------------------

    def render(self, rt: ResourceType, obj: Obj) -> Obj:
        out = {"apiVersion": rt.api_version, "kind": rt.kind}
        out.update({k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")})
        return out

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(rt.storage_key, {})

    def _current(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self._bucket(rt).get((ns if rt.namespaced else "", name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self.lock:
            return self.render(rt, self._current(rt, ns, name))

    def find(self, api_version: str, kind: str, name: str, ns: str = "") -> Obj | None:
        """Convenience for tests and controllers: the object or ``None``."""
        rt = self._type(api_version, kind)
        with self.lock:
            obj = self._bucket(rt).get((ns if rt.namespaced else "", name))
            return self.render(rt, obj) if obj else None

    def objects(self, api_version: str, kind: str, ns: str | None = None) -> list[Obj]:
        rt = self._type(api_version, kind)
        with self.lock:
            return [self.render(rt, o) for (n, _), o in sorted(self._bucket(rt).items()) if ns in (None, n)]

    def heads(self, api_version: str, kind: str) -> list[tuple[str, int, dict[str, str]]]:
        """(name, generation, labels) of every object of a kind, in the order of ``objects``, without copying
        the objects: what a simulated controller looks at on every tick to find the few it must act on.
        Copying every policy and enactment every 20 ms took half a CPU at 10,000 VMs, in the process whose
        CPU the benchmark counts as the server's."""
        rt = self._type(api_version, kind)
        with self.lock:
            metas = [o["metadata"] for _, o in sorted(self._bucket(rt).items())]
            return [head(m) for m in metas]

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"{api_version} {kind} is not served by the double")
        return rt

    def list(self, rt: ResourceType, ns: str | None, *, label_selector: str = "", field_selector: str = "",
             limit: int = 0, cont: str = "") -> Obj:
        """A ``<Kind>List``; ``limit``/``cont`` page through a snapshot taken by the first page."""
        lmatch, fmatch = matchers(rt, label_selector, field_selector)
        with self.lock:
            items = None
            if not cont:
                items = []
                for (n, _), o in sorted(self._bucket(rt).items()):
                    if (ns is None or n == ns) and lmatch(o):
                        rendered = self.render(rt, o)  # one copy per listed object
                        if fmatch(rendered):
                            items.append(rendered)
            return self._pager.page(rt, items, self.rv, limit=limit, cont=cont)

    # ---- writing -------------------------------------------------------------------------------------------

    def create(self, rt: ResourceType, ns: str, body: Any, *, manager: str, dry_run: bool = False,
               keep_status: bool = False, validation: str = "Ignore", warnings: Warnings | None = None) -> Obj:
        with self.lock:
            obj = request_body(rt, ns, body)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(self._rng.choice(_GEN_CHARS) for _ in range(5))
            check_name(rt, meta.get("name", ""))
            obj, warned = check_fields(rt, obj, validation)
            (warnings if warnings is not None else []).extend(warned)
            if rt.has_status and not keep_status:
                obj.pop("status", None)
            return self._create(rt, obj, manager, "Update", dry_run)

    def _create(self, rt: ResourceType, obj: Obj, manager: str, operation: str, dry_run: bool) -> Obj:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._bucket(rt):
            raise already_exists(rt, meta["name"])
        if self.require_namespaces:
            lifecycle.creation_gate(rt, obj, self._objects.get(_NS, {}).get(("", key[0])))
        dropped = ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "generation") + (
            ("managedFields",) if operation == "Update" else ())
        for k in dropped:
            meta.pop(k, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if lifecycle.has_generation(rt):
            meta["generation"] = 1
        if operation == "Update":
            ssa.record_update(None, obj, shape=shape_of(rt), manager=manager, api_version=rt.api_version,
                              now=now(), has_status=rt.has_status, subresource="")
        if rt.storage_key == _NS:
            lifecycle.namespace_defaults(obj)
        for m in self.mutators:
            m(rt, obj, None)
        return self._commit(rt, key, None, obj, dry_run)

    def update(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str, subresource: str = "",
               dry_run: bool = False, validation: str = "Ignore", warnings: Warnings | None = None,
               require_rv: bool = False) -> Obj:
        """PUT; ``require_rv``: refuse an unconditional update (no resourceVersion), as for custom resources."""
        with self.lock:
            old = self._current(rt, ns, name)
            new = request_body(rt, ns, body, name)
            rv = new["metadata"].get("resourceVersion")
            if require_rv and not rv:
                raise invalid(rt, name, [("metadata.resourceVersion",
                                          "Invalid value: 0: must be specified for an update")])
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            if subresource == "status":  # the server validates the object the write makes: old, new status
                new = {**copy.deepcopy(old), "status": new["status"]} if "status" in new else old
            new, warned = check_fields(rt, new, validation)
            (warnings if warnings is not None else []).extend(warned)
            return self._update(rt, old, new, manager, subresource, dry_run)

    def _update(self, rt: ResourceType, old: Obj, new: Obj, manager: str, subresource: str, dry_run: bool) -> Obj:
        """Replace ``old`` by ``new`` keeping system metadata and the status/main split."""
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new.pop("status", None)
            if status is not None:
                new["status"] = status
        else:
            keep = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")
            new["metadata"].update({k: copy.deepcopy(old["metadata"][k]) for k in keep if k in old["metadata"]})
            for k in keep:
                if k not in old["metadata"]:
                    new["metadata"].pop(k, None)
            if rt.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            lifecycle.finalizer_guard(rt, old, new)
        ssa.record_update(old, new, shape=shape_of(rt), manager=manager, api_version=rt.api_version, now=now(),
                          has_status=rt.has_status, subresource=subresource)
        if subresource != "status":
            for m in self.mutators:
                m(rt, new, old)
        key = (new["metadata"].get("namespace", ""), new["metadata"]["name"])
        return self._commit(rt, key, old, new, dry_run)

    def patch(self, rt: ResourceType, ns: str, name: str, patch_type: str, patch: Any, *, manager: str,
              subresource: str = "", dry_run: bool = False, validation: str = "Ignore",
              warnings: Warnings | None = None) -> Obj:
        """A merge / strategic merge / JSON patch (``patch_type`` is ``merge``, ``strategic`` or ``json``)."""
        with self.lock:
            old = self._current(rt, ns, name)
            current = self.render(rt, old)
            try:
                if patch_type == "json":
                    new = patches.json_patch(current, patch)
                elif not isinstance(patch, dict):
                    raise patches.PatchError("a merge patch must be a JSON object")
                elif patch_type == "strategic":
                    new = patches.strategic_merge_patch(current, patch, shape_of(rt))
                else:
                    new = patches.merge_patch(current, patch)
            except patches.PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            new = request_body(rt, ns, new, name)
            new, warned = check_fields(rt, new, validation, patch=True)
            (warnings if warnings is not None else []).extend(warned)
            return self._update(rt, old, new, manager, subresource, dry_run)

    def apply(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str, force: bool = False,
              subresource: str = "", dry_run: bool = False) -> Obj:
        """Server-side apply; creates the object when absent."""
        with self.lock:
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the applied configuration must be an object")
            if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
                raise ApiError(400, "BadRequest", f"apiVersion/kind of the applied configuration "
                               f"({body.get('apiVersion')}/{body.get('kind')}) do not match the URL "
                               f"({rt.api_version}/{rt.kind})")
            applied = request_body(rt, ns, body, name)
            check_applied(rt, applied, name)
            rv = applied["metadata"].get("resourceVersion")
            existing = self._bucket(rt).get((ns if rt.namespaced else "", name))
            if rv and (existing is None or rv != existing["metadata"]["resourceVersion"]):
                raise conflict(rt, name)
            base = copy.deepcopy(existing) if existing else {"metadata": {}}
            try:
                new = ssa.apply(base, applied, shape=shape_of(rt), manager=manager, force=force,
                                api_version=rt.api_version, now=now(), has_status=rt.has_status,
                                subresource=subresource)
            except ssa.ApplyConflict as e:
                raise apply_conflict(rt, name, e.conflicts) from e
            new["metadata"].update(name=name, **({"namespace": ns} if rt.namespaced else {}))
            check_fields(rt, new, "Ignore")
            if existing is None:
                if subresource:
                    self._current(rt, ns, name)  # raises NotFound: a subresource cannot create
                check_name(rt, name)
                return self._create(rt, new, manager, "Apply", dry_run)
            lifecycle.finalizer_guard(rt, existing, new)
            for m in self.mutators if subresource != "status" else ():
                m(rt, new, existing)
            return self._commit(rt, (ns if rt.namespaced else "", name), existing, new, dry_run)

    # ---- deleting ------------------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, ns: str, name: str, *, dry_run: bool = False,
               preconditions: dict[str, Any] | None = None) -> Obj:
        """DELETE: the object stamped for deletion when finalizers hold it, else a ``Status`` (it is gone)."""
        with self.lock:
            old = self._current(rt, ns, name)
            pre = preconditions or {}
            if pre.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]) or pre.get(
                    "uid") not in (None, old["metadata"]["uid"]):
                raise conflict(rt, name)
            out = self._delete(rt, (ns if rt.namespaced else "", name), dry_run)
            if rt.storage_key == _NS and not dry_run:
                self._sweep(name)
            return out

    def _delete(self, rt: ResourceType, key: tuple[str, str], dry_run: bool) -> Obj:
        old = self._bucket(rt)[key]
        if old["metadata"].get("deletionTimestamp"):
            return self.render(rt, old)
        held = old["metadata"].get("finalizers") or (rt.storage_key == _NS)
        if not held:
            out = lifecycle.deleted_status(rt, old)
            if not dry_run:
                self._remove(rt, key)
            return out
        new = copy.deepcopy(old)
        new["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        if lifecycle.has_generation(rt):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if rt.storage_key == _NS:
            new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
        return self._commit(rt, key, old, new, dry_run)

    def _sweep(self, ns: str) -> None:
        """The namespace controller: empty a Terminating namespace, then remove it."""
        namespace = self._objects.get(_NS, {}).get(("", ns))
        if namespace is None or not namespace["metadata"].get("deletionTimestamp") or ns in self._sweeping:
            return
        self._sweeping.add(ns)
        try:
            remaining = 0
            for storage_key, bucket in list(self._objects.items()):
                rt = self.registry.by_storage_key(storage_key)
                for key in [k for k in bucket if k[0] == ns]:
                    if rt is not None:
                        self._delete(rt, key, dry_run=False)
                    remaining += key in bucket
            if not remaining:
                ns_rt = self.registry.by_storage_key(_NS)
                assert ns_rt is not None
                self._remove(ns_rt, ("", ns))
        finally:
            self._sweeping.discard(ns)

    def _remove(self, rt: ResourceType, key: tuple[str, str]) -> Obj:
        obj = copy.deepcopy(self._objects[rt.storage_key].pop(key))
        rv = self.events.next_revision()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.events.append(WatchEvent(rv, rt.storage_key, "DELETED", obj, obj))
        for o in self.observers:
            o(rt, obj, None)
        if key[0] and rt.storage_key != _NS:
            self._sweep(key[0])
        return obj

    def _commit(self, rt: ResourceType, key: tuple[str, str], old: Obj | None, new: Obj, dry_run: bool) -> Obj:
        if old is not None and _no_op_view(old) == _no_op_view(new):
            return self.render(rt, old)
        if old is not None and lifecycle.has_generation(rt) and _spec_view(old) != _spec_view(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if dry_run:
            return self.render(rt, new)
        if new["metadata"].get("deletionTimestamp") and not (new["metadata"].get("finalizers") or (
                rt.storage_key == _NS and (new.get("spec") or {}).get("finalizers"))):
            self._remove(rt, key)  # the last finalizer is gone: so is the object
            return self.render(rt, new)
        rv = self.events.next_revision()
        new["metadata"]["resourceVersion"] = str(rv)
        self._bucket(rt)[key] = new
        self.events.append(WatchEvent(rv, rt.storage_key, "MODIFIED" if old else "ADDED", copy.deepcopy(new),
                                      copy.deepcopy(old) if old else None))
        for o in self.observers:
            o(rt, old, new)
        return self.render(rt, new)

    # ---- seeding (tests) -----------------------------------------------------------------------------------

    def put(self, obj: Obj, *, manager: str = "test-seed") -> Obj:
        """Create or replace ``obj`` (status included) without going through HTTP: for seeding tests.

        A namespaced object's namespace is created first when missing (seeding is not a client).
        """
        rt = self._type(obj["apiVersion"], obj["kind"])
        ns = obj.get("metadata", {}).get("namespace", "") if rt.namespaced else ""
        name = obj["metadata"]["name"]
        with self.lock:
            if ns and ("", ns) not in self._objects.get(_NS, {}):
                self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, manager=manager)
            if (ns, name) not in self._bucket(rt):
                return self.create(rt, ns, obj, manager=manager, keep_status=True)
            out = self.update(rt, ns, name, {**obj, "metadata": {**obj["metadata"], "resourceVersion": ""}},
                              manager=manager)
            if rt.has_status and "status" in obj:
                out = self.update(rt, ns, name, obj | {"metadata": {"name": name}}, manager=manager,
                                  subresource="status")
            return out
