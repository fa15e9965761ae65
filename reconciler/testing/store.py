"""In-memory object store of the API double: the behaviour of etcd plus the generic apiserver registry.

One :class:`Store` holds every object, keyed by ``(group, plural)`` then ``(namespace, name)``, under a
single re-entrant lock, so every operation is atomic and the global ``resourceVersion`` counter is
strictly increasing across all kinds (as with etcd's revision; :mod:`.eventlog` keeps it with the watch
history). Writes go through :meth:`Store._commit`, which is the one place that decides no-op vs change (a
write that changes nothing keeps the old object, its resourceVersion and emits no watch event), bumps
``generation`` when anything outside ``metadata`` and ``status`` changed, and appends to the bounded watch
event log. ``dryRun`` runs the same code path and stops right before the commit.

Objects are stored version-less; :meth:`Store.render` stamps ``apiVersion``/``kind`` of the resource type
a caller asked through. Every method returns copies, so callers can never alias stored state.
Errors are :class:`~reconciler.testing.errors.ApiError` carrying the HTTP code and the Kubernetes
``reason``; the HTTP layer turns them into ``Status`` objects.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reconciler.testing import patches, ssa
from reconciler.testing.errors import ApiError, already_exists, apply_conflict, conflict, invalid_name, not_found
from reconciler.testing.eventlog import EventLog, WatchEvent
from reconciler.testing.resources import Registry, ResourceType

Obj = dict[str, Any]
Mutator = Callable[[ResourceType, Obj, Obj | None], None]
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"


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
                 require_namespaces: bool = False, seed: int = 0) -> None:
        self.registry = registry or Registry()
        self.lock = threading.RLock()
        self.events = EventLog(self.lock, event_log_size)  # resourceVersions and the watch history
        self.require_namespaces = require_namespaces
        self.mutators: list[Mutator] = []  # admission-like hooks (e.g. KubeMacPool), run before a commit
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._snapshots: OrderedDict[str, tuple[int, list[Obj]]] = OrderedDict()
        self._rng = random.Random(seed)

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

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"{api_version} {kind} is not served by the double")
        return rt

    def list(self, rt: ResourceType, ns: str | None, *, label_selector: str = "", field_selector: str = "",
             limit: int = 0, cont: str = "") -> Obj:
        """A ``<Kind>List``; ``limit``/``cont`` page through a snapshot taken by the first page."""
        try:
            lmatch, fmatch = patches.label_matcher(label_selector), patches.field_matcher(field_selector)
        except patches.SelectorError as e:
            raise ApiError(400, "BadRequest", str(e)) from e
        with self.lock:
            if cont:
                snap_id, offset = self._decode_continue(cont)
                rv, items = self._snapshots[snap_id]
            else:
                items = []
                for (n, _), o in sorted(self._bucket(rt).items()):
                    if (ns is None or n == ns) and lmatch(o):
                        rendered = self.render(rt, o)  # one copy per listed object (was two)
                        if fmatch(rendered):
                            items.append(rendered)
                rv, offset, snap_id = self.rv, 0, uuid.uuid4().hex
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            page = items[offset:]
            if limit and len(page) > limit:
                page = page[:limit]
                self._snapshots[snap_id] = (rv, items)
                while len(self._snapshots) > 64:
                    self._snapshots.popitem(last=False)
                raw = json.dumps({"s": snap_id, "o": offset + limit}).encode()
                meta["continue"] = base64.urlsafe_b64encode(raw).decode()
                meta["remainingItemCount"] = len(items) - offset - limit
            return {"apiVersion": rt.api_version, "kind": f"{rt.kind}List", "metadata": meta, "items": page}

    def _decode_continue(self, cont: str) -> tuple[str, int]:
        try:
            token = json.loads(base64.urlsafe_b64decode(cont.encode()))
            snap_id, offset = str(token["s"]), int(token["o"])
        except (ValueError, KeyError, TypeError) as e:
            raise ApiError(400, "BadRequest", "invalid continue token") from e
        if snap_id not in self._snapshots:
            raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                           "consistent list result. You can start a new list without the continue parameter.")
        return snap_id, offset

    # ---- writing -------------------------------------------------------------------------------------------

    def _check_body(self, rt: ResourceType, ns: str, body: Any, name: str = "") -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON or YAML object")
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                               "namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if name and meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if name:
            meta["name"] = name
        body.pop("apiVersion", None)
        body.pop("kind", None)
        return body

    def _validate(self, rt: ResourceType, obj: Obj) -> None:
        name = obj["metadata"].get("name", "")
        if not name or len(name) > 253 or not _NAME_RE.match(name):
            raise invalid_name(rt, name)
        ns = obj["metadata"].get("namespace", "")
        if rt.namespaced and self.require_namespaces and ("", ns) not in self._objects.get(("", "namespaces"), {}):
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found')

    def create(self, rt: ResourceType, ns: str, body: Any, *, manager: str, dry_run: bool = False,
               keep_status: bool = False) -> Obj:
        with self.lock:
            obj = self._check_body(rt, ns, body)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(self._rng.choice(_GEN_CHARS) for _ in range(5))
            self._validate(rt, obj)
            if rt.has_status and not keep_status:
                obj.pop("status", None)
            return self._create(rt, obj, manager, "Update", dry_run)

    def _create(self, rt: ResourceType, obj: Obj, manager: str, operation: str, dry_run: bool) -> Obj:
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._bucket(rt):
            raise already_exists(rt, meta["name"])
        dropped = ("resourceVersion", "deletionTimestamp") + (("managedFields",) if operation == "Update" else ())
        for k in dropped:
            meta.pop(k, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        before = copy.deepcopy(obj)
        for m in self.mutators:
            m(rt, obj, None)
        if operation == "Update":
            ssa.record_update(None, obj, manager=manager, api_version=rt.api_version, now=now(),
                              has_status=rt.has_status, subresource="")
        else:
            ssa.attribute_mutation(before, obj, manager=manager, operation="Apply", subresource="")
        return self._commit(rt, key, None, obj, dry_run)

    def update(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str, subresource: str = "",
               dry_run: bool = False) -> Obj:
        with self.lock:
            old = self._current(rt, ns, name)
            new = self._check_body(rt, ns, body, name)
            rv = new["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
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
            self._validate(rt, new)
            for m in self.mutators:
                m(rt, new, old)
        ssa.record_update(old, new, manager=manager, api_version=rt.api_version, now=now(),
                          has_status=rt.has_status, subresource=subresource)
        key = (new["metadata"].get("namespace", ""), new["metadata"]["name"])
        return self._commit(rt, key, old, new, dry_run)

    def patch(self, rt: ResourceType, ns: str, name: str, patch_type: str, patch: Any, *, manager: str,
              subresource: str = "", dry_run: bool = False) -> Obj:
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
                    new = patches.strategic_merge_patch(current, patch)
                else:
                    new = patches.merge_patch(current, patch)
            except patches.PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            new = self._check_body(rt, ns, new, name)
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
            applied = self._check_body(rt, ns, body, name)
            rv = applied["metadata"].get("resourceVersion")
            existing = self._bucket(rt).get((ns if rt.namespaced else "", name))
            if rv and (existing is None or rv != existing["metadata"]["resourceVersion"]):
                raise conflict(rt, name)
            base = copy.deepcopy(existing) if existing else {"metadata": {}}
            try:
                new = ssa.apply(base, applied, manager=manager, force=force, api_version=rt.api_version,
                                now=now(), has_status=rt.has_status, subresource=subresource)
            except ssa.ApplyConflict as e:
                raise apply_conflict(rt, name, e.conflicts) from e
            new["metadata"].update(name=name, **({"namespace": ns} if rt.namespaced else {}))
            if existing is None:
                if subresource:
                    self._current(rt, ns, name)  # raises NotFound: a subresource cannot create
                self._validate(rt, new)
                return self._create(rt, new, manager, "Apply", dry_run)
            before = copy.deepcopy(new)
            for m in self.mutators:
                m(rt, new, existing)
            ssa.attribute_mutation(before, new, manager=manager, operation="Apply", subresource=subresource)
            return self._commit(rt, (ns if rt.namespaced else "", name), existing, new, dry_run)

    def delete(self, rt: ResourceType, ns: str, name: str, *, dry_run: bool = False,
               preconditions: dict[str, Any] | None = None) -> Obj:
        with self.lock:
            old = self._current(rt, ns, name)
            pre = preconditions or {}
            if pre.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]) or pre.get(
                    "uid") not in (None, old["metadata"]["uid"]):
                raise conflict(rt, name)
            if dry_run:
                return self.render(rt, old)
            if rt.storage_key == ("", "namespaces"):
                for bucket_key, bucket in self._objects.items():
                    for okey in [k for k in bucket if k[0] == name]:
                        self._remove(bucket_key, okey)
            return self.render(rt, self._remove(rt.storage_key, (ns if rt.namespaced else "", name)))

    def _remove(self, bucket_key: tuple[str, str], key: tuple[str, str]) -> Obj:
        obj = copy.deepcopy(self._objects[bucket_key].pop(key))
        rv = self.events.next_revision()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.events.append(WatchEvent(rv, bucket_key, "DELETED", obj, obj))
        return obj

    def _commit(self, rt: ResourceType, key: tuple[str, str], old: Obj | None, new: Obj, dry_run: bool) -> Obj:
        if old is not None and _no_op_view(old) == _no_op_view(new):
            return self.render(rt, old)
        if old is not None and _spec_view(old) != _spec_view(new):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if dry_run:
            return self.render(rt, new)
        rv = self.events.next_revision()
        new["metadata"]["resourceVersion"] = str(rv)
        self._bucket(rt)[key] = new
        self.events.append(WatchEvent(rv, rt.storage_key, "MODIFIED" if old else "ADDED", copy.deepcopy(new),
                                      copy.deepcopy(old) if old else None))
        return self.render(rt, new)

    # ---- seeding (tests) -----------------------------------------------------------------------------------

    def put(self, obj: Obj, *, manager: str = "test-seed") -> Obj:
        """Create or replace ``obj`` (status included) without going through HTTP: for seeding tests."""
        rt = self._type(obj["apiVersion"], obj["kind"])
        ns = obj.get("metadata", {}).get("namespace", "") if rt.namespaced else ""
        name = obj["metadata"]["name"]
        with self.lock:
            if (ns, name) not in self._bucket(rt):
                return self.create(rt, ns, obj, manager=manager, keep_status=True)
            out = self.update(rt, ns, name, {**obj, "metadata": {**obj["metadata"], "resourceVersion": ""}},
                              manager=manager)
            if rt.has_status and "status" in obj:
                out = self.update(rt, ns, name, obj | {"metadata": {"name": name}}, manager=manager,
                                  subresource="status")
            return out
