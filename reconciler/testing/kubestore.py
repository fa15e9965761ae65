""":class:`KubeStore`: the simulated controllers' :class:`~reconciler.testing.objectstore.ObjectStore` over HTTP.

Why: the nmstate and KubeVirt simulations in :mod:`.controllers` should run against a real kube-apiserver
exactly as they run in the double, so the engine meets the same controller behaviour on both tiers, while the
real server contributes its own semantics (schemas, managedFields, admission, generation). Writes are made
the way the real controllers make them, so managedFields look like a real cluster's:

* create is ``POST`` and replace is ``PUT`` with the live ``resourceVersion`` (operation ``Update``, never
  server-side apply, as controller-runtime and client-go controllers do);
* status goes to the ``/status`` subresource when the type has one (a ``POST``/``PUT`` of the main resource
  drops it there), as a JSON patch of ``/status`` with the controller's own field manager;
* a write whose result is already what the server holds is not sent (an informer-backed controller compares
  before it updates), so a polling loop does not hammer the server with no-op requests.

Resource types come from the server's discovery, not from the double's registry: plurals, scope and which
types have a status subresource are the real CRDs'. Errors are :class:`~reconciler.testing.errors.ApiError`,
as from the in-memory Store.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.testing.controlplane.rest import Rest, message
from reconciler.testing.errors import ApiError
from reconciler.testing.objectstore import Obj, head
from reconciler.testing.resources import Registry, ResourceType

JSON_PATCH = "application/json-patch+json"
_Key = tuple[str, str, str, str]  # group, plural, namespace, name


def discover(rest: Rest) -> Registry:
    """Every resource type the server serves (core and all groups), with scope and subresources.

    A group whose server does not answer (an aggregated API that is down) is left out rather than failing.
    """
    lists: list[tuple[str, dict[str, Any], bool]] = []
    status, core = rest.get("/api/v1")
    if status == 200:
        lists.append(("v1", core, True))
    status, groups = rest.get("/apis")
    for group in (groups.get("groups") or []) if status == 200 else []:
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        for version in group.get("versions") or []:
            gv = version["groupVersion"]
            status, resources = rest.get(f"/apis/{gv}")
            if status == 200:
                lists.append((gv, resources, gv == preferred))
    types: list[ResourceType] = []
    for gv, resources, preferred in lists:
        group, _, version = gv.rpartition("/")
        entries = resources.get("resources") or []
        subs: dict[str, list[str]] = {}
        for entry in entries:
            base, _, sub = entry["name"].partition("/")
            if sub:
                subs.setdefault(base, []).append(sub)
        for entry in entries:
            if "/" in entry["name"]:
                continue
            types.append(ResourceType(group=group, version=version, kind=entry["kind"], plural=entry["name"],
                                      namespaced=bool(entry.get("namespaced")),
                                      short_names=tuple(entry.get("shortNames") or ()),
                                      subresources=tuple(subs.get(entry["name"], ())), storage_version=preferred))
    return Registry(types)


def resource_path(rt: ResourceType, ns: str = "", name: str = "", subresource: str = "") -> str:
    """``/api[s]/<gv>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
    base = f"/apis/{rt.api_version}" if rt.group else f"/api/{rt.version}"
    if rt.namespaced and ns:
        base += f"/namespaces/{ns}"
    base += f"/{rt.plural}"
    if name:
        base += f"/{name}" + (f"/{subresource}" if subresource else "")
    return base


def _raise(status: int, out: Any, what: str) -> None:
    if status >= 300:
        reason = out.get("reason", "") if isinstance(out, dict) else ""
        raise ApiError(status, reason or "Unknown", f"{what}: {message(out)}",
                       out.get("details") if isinstance(out, dict) else None)


def _status_patch(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON patch ops from the status as last seen to ``after``: each key set, each key of ``before`` that
    ``after`` drops removed; keys neither names are left as the server has them."""
    def at(key: str) -> str:
        return "/status/" + key.replace("~", "~0").replace("/", "~1")

    ops: list[dict[str, Any]] = [{"op": "add", "path": at(k), "value": v} for k, v in after.items()]
    ops += [{"op": "remove", "path": at(k)} for k in before if k not in after]
    return ops or [{"op": "add", "path": "/status", "value": {}}]


def _main_view(obj: Obj) -> Obj:
    """What a replace of the main resource changes: everything but status and server-kept metadata."""
    meta = obj.get("metadata") or {}
    kept = {k: meta.get(k) or None for k in ("labels", "annotations", "ownerReferences", "finalizers")}
    return {"metadata": kept, **{k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion",
                                                                            "kind")}}


class KubeStore:
    """An :class:`~reconciler.testing.objectstore.ObjectStore` backed by a real kube-apiserver."""

    def __init__(self, rest: Rest, registry: Registry | None = None) -> None:
        self.rest = rest
        self._registry = registry or discover(rest)
        self._seen: dict[_Key, Obj] = {}  # the last state read or written per object, to skip no-op writes

    @property
    def registry(self) -> Registry:
        return self._registry

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self._registry.by_kind(api_version, kind)
        if rt is None:
            raise KeyError(f"{api_version} {kind} is not served by {self.rest.host}:{self.rest.port}")
        return rt

    @staticmethod
    def _key(rt: ResourceType, ns: str, name: str) -> _Key:
        return (rt.group, rt.plural, ns if rt.namespaced else "", name)

    def _remember(self, rt: ResourceType, obj: Obj) -> Obj:
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        meta = obj.get("metadata") or {}
        self._seen[self._key(rt, meta.get("namespace", ""), meta.get("name", ""))] = copy.deepcopy(obj)
        return obj

    # ---- reading -------------------------------------------------------------------------------------------

    def objects(self, api_version: str, kind: str, ns: str | None = None) -> list[Obj]:
        rt = self._type(api_version, kind)
        status, out = self.rest.get(resource_path(rt, ns or ""))
        _raise(status, out, f"list {rt.resource_name}")
        items = [self._remember(rt, item) for item in out.get("items") or []]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def heads(self, api_version: str, kind: str) -> list[tuple[str, int, dict[str, str]]]:
        metas = [o["metadata"] for o in self.objects(api_version, kind)]  # one LIST, as the tick always made
        return [head(m) for m in metas]

    def find(self, api_version: str, kind: str, name: str, ns: str = "") -> Obj | None:
        rt = self._type(api_version, kind)
        status, out = self.rest.get(resource_path(rt, ns, name))
        if status == 404:
            self._seen.pop(self._key(rt, ns, name), None)
            return None
        _raise(status, out, f"get {rt.resource_name} {name}")
        return self._remember(rt, out)

    # ---- writing -------------------------------------------------------------------------------------------

    def put(self, obj: Obj, *, manager: str = "virtnet-simulate") -> Obj:
        """Create or replace ``obj``; its status (if any) then goes through ``/status`` as the same manager."""
        rt = self._type(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        ns, name = meta.get("namespace", "") if rt.namespaced else "", meta["name"]
        body = copy.deepcopy(obj)
        status = body.pop("status", None) if rt.has_status else None
        live = self.find(rt.api_version, rt.kind, name, ns)
        query = {"fieldManager": manager}
        if live is None:
            code, out = self.rest.request("POST", resource_path(rt, ns), body, query=query)
            _raise(code, out, f"create {rt.resource_name} {name}")
            live = self._remember(rt, out)
        elif _main_view(live) != _main_view(body):
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            code, out = self.rest.request("PUT", resource_path(rt, ns, name), body, query=query)
            _raise(code, out, f"replace {rt.resource_name} {name}")
            live = self._remember(rt, out)
        if status is not None:
            return self.update(rt, ns, name, {"metadata": {"name": name}, "status": status}, manager=manager,
                               subresource="status")
        return live

    def update(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str,
               subresource: str = "") -> Obj:
        """A status write is a JSON patch of ``/status`` on the subresource; anything else a ``PUT``."""
        ns = ns if rt.namespaced else ""
        query = {"fieldManager": manager}
        if subresource == "status":
            seen = self._seen.get(self._key(rt, ns, name))
            if seen is not None and (seen.get("status") or {}) == (body.get("status") or {}):
                return copy.deepcopy(seen)
            status = body.get("status") or {}
            sub = "status" if rt.has_status else ""
            path = resource_path(rt, ns, name, sub)
            code: int = 422
            out: Any = None
            if seen is not None and isinstance(seen.get("status"), dict):
                # key by key, so a field someone else added since this controller's read stays (virt-api's
                # stateChangeRequests: replacing the whole status lost a restart asked for mid-tick)
                code, out = self.rest.request("PATCH", path, _status_patch(seen["status"], status),
                                              content_type=JSON_PATCH, query=query)
            if code == 422:  # no status to patch into (or it was removed meanwhile): write it whole
                whole = [{"op": "add", "path": "/status", "value": status}]
                code, out = self.rest.request("PATCH", path, whole, content_type=JSON_PATCH, query=query)
            _raise(code, out, f"update {rt.resource_name} {name} status")
            return self._remember(rt, out)
        if subresource:
            raise ValueError(f"KubeStore writes the main resource or its status, not {subresource!r}")
        body = copy.deepcopy(body)
        if not (body.get("metadata") or {}).get("resourceVersion"):
            live = self.find(rt.api_version, rt.kind, name, ns)
            if live is None:
                raise ApiError(404, "NotFound", f'{rt.resource_name} "{name}" not found')
            body.setdefault("metadata", {})["resourceVersion"] = live["metadata"]["resourceVersion"]
        body.update(apiVersion=rt.api_version, kind=rt.kind)
        code, out = self.rest.request("PUT", resource_path(rt, ns, name), body, query=query)
        _raise(code, out, f"replace {rt.resource_name} {name}")
        return self._remember(rt, out)

    def delete(self, rt: ResourceType, ns: str, name: str) -> Obj:
        ns = ns if rt.namespaced else ""
        code, out = self.rest.request("DELETE", resource_path(rt, ns, name))
        _raise(code, out, f"delete {rt.resource_name} {name}")
        self._seen.pop(self._key(rt, ns, name), None)
        return out if isinstance(out, dict) else {}
