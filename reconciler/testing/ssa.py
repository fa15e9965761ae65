"""Field ownership for the API double: fieldsV1 sets, server-side apply merging, ``managedFields`` bookkeeping.

This is a pragmatic re-implementation of the ideas of structured-merge-diff, not a port:

* A *field set* is a Python ``set`` of paths; a path is a tuple of path elements spelled exactly as in
  ``fieldsV1``: ``"f:spec"`` for a map key, ``'k:{"name":"eth0"}'`` for an item of a keyed list. Every node
  of an object is in its set (maps and list items too); :func:`encode` writes ``".": {}`` for a node that is a
  member *and* has members below it, which reproduces the shape the real server writes.
* Which lists are keyed comes from the type's schema (a :class:`Shape`, see :mod:`.schemas`): a
  ``x-kubernetes-list-type: map`` list's items are ``k:{...}`` elements keyed by its ``list-map-keys``, a ``set``
  list's items are ``v:<value>`` elements, and every other list (no list type at all included, e.g. KubeVirt's
  interfaces or anything under an NNCP's free-form desiredState) is atomic: owned and replaced as a whole, its
  field set is the one path of the list. ``x-kubernetes-map-type: atomic`` maps are leaves the same way. Keyed
  items keep their live order; new items are appended.
* Apply = (1) conflicts: a leaf of the applied set whose live value differs and that another manager owns;
  (2) removal: paths this manager applied last time, omits now, and nobody else owns (or owns below) are
  deleted from the object; (3) merge of the applied config into the live object; (4) bookkeeping.
* Update (PUT, merge/JSON/strategic patch, create) = the writer takes the paths it added or whose leaf value
  it changed; those paths leave every other manager's set (that is how ``kubectl edit`` silently takes a
  field from an applier, whose next apply then conflicts).

Admission (a mutating webhook such as the simulated KubeMacPool) runs after this bookkeeping, so what it adds is
owned by nobody, as on a real server.

Known gaps against the real server: no defaulting from the schema (a missing ``protocol`` map key counts as
``TCP``), explicit ``null`` in an applied config is simply ignored, and conflicts are computed on leaves only
(changing a map to a scalar is not reported as a conflict).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Protocol

Path = tuple[str, ...]
FieldSet = set[Path]

#: metadata fields the real server strips from every managed set (plus apiVersion/kind)
_STRIPPED_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation",
                  "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


# ---- keyed lists ---------------------------------------------------------------------------------------------


class Shape(Protocol):
    """What a type's schema says about its lists and maps (see :mod:`reconciler.testing.schemas`)."""

    def list_type(self, path: Path) -> tuple[str, tuple[str, ...]]: ...

    def atomic_map(self, path: Path) -> bool: ...


def list_keys(shape: Shape, path: Path, items: list[Any]) -> tuple[str, ...] | None:
    """The merge keys of the map list at ``path``, or ``None`` when it is atomic or a set (or not all maps)."""
    kind, keys = shape.list_type(path)
    if kind != "map" or not keys or not all(isinstance(i, dict) for i in items):
        return None
    return keys


def is_set(shape: Shape, path: Path) -> bool:
    return shape.list_type(path)[0] == "set"


def item_key(keys: tuple[str, ...], item: dict[str, Any]) -> str:
    """The ``k:{...}`` path element of ``item`` (protocol defaults to TCP like the real defaulting)."""
    values = {k: item.get(k, "TCP" if k == "protocol" else None) for k in keys}
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def value_key(value: Any) -> str:
    """The ``v:<json>`` path element of a set item."""
    return "v:" + json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---- field sets ----------------------------------------------------------------------------------------------


def fieldset(value: Any, shape: Shape, path: Path = ()) -> FieldSet:
    """Every node below ``value`` as a path set (the node at ``path`` itself excluded)."""
    out: FieldSet = set()
    _walk(value, shape, path, out)
    return out


def _walk(value: Any, shape: Shape, path: Path, out: FieldSet) -> None:
    if isinstance(value, dict):
        if path and shape.atomic_map(path):
            return
        for k, sub in value.items():
            p = (*path, f"f:{k}")
            out.add(p)
            _walk(sub, shape, p, out)
    elif isinstance(value, list):
        if keys := list_keys(shape, path, value):
            for item in value:
                p = (*path, item_key(keys, item))
                out.add(p)
                _walk(item, shape, p, out)
        elif is_set(shape, path):
            out.update((*path, value_key(item)) for item in value)


def scoped(paths: FieldSet, has_status: bool, subresource: str) -> FieldSet:
    """Drop what the server never tracks, and keep only the part the endpoint may write."""
    out: FieldSet = set()
    for p in paths:
        if p[0] in ("f:apiVersion", "f:kind") or p == ("f:metadata",):
            continue
        if p[0] == "f:metadata" and p[1][2:] in _STRIPPED_META:
            continue
        if subresource == "status" and p[0] != "f:status":
            continue
        if not subresource and has_status and p[0] == "f:status":
            continue
        out.add(p)
    return out


def leaves(paths: FieldSet) -> FieldSet:
    parents = {p[:i] for p in paths for i in range(1, len(p))}
    return {p for p in paths if p not in parents}


def encode(paths: FieldSet) -> dict[str, Any]:
    """A path set as a ``fieldsV1`` document."""
    root: dict[str, Any] = {}
    for p in sorted(paths):
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
    for p in paths:
        node = root
        for pe in p:
            node = node[pe]
        if node and "." not in node:
            node["."] = {}
    return root


def decode(doc: dict[str, Any], path: Path = ()) -> FieldSet:
    out: FieldSet = set()
    for k, sub in doc.items():
        if k == ".":
            out.add(path)
        elif isinstance(sub, dict) and sub:
            out |= decode(sub, (*path, k))
        else:
            out.add((*path, k))
    return out


# ---- navigating objects by path -------------------------------------------------------------------------------

_MISSING = object()


def get_at(obj: Any, path: Path, shape: Shape) -> Any:
    """The value at ``path`` or the module's ``_MISSING`` sentinel."""
    cur = obj
    for i, pe in enumerate(path):
        if pe.startswith("f:") and isinstance(cur, dict):
            cur = cur.get(pe[2:], _MISSING)
        elif pe.startswith("k:") and isinstance(cur, list):
            keys = list_keys(shape, path[:i], cur)
            cur = next((it for it in cur if keys and item_key(keys, it) == pe), _MISSING)
        elif pe.startswith("v:") and isinstance(cur, list):
            cur = next((it for it in cur if value_key(it) == pe), _MISSING)
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def exists(obj: Any, path: Path, shape: Shape) -> bool:
    return get_at(obj, path, shape) is not _MISSING


def remove_at(obj: Any, path: Path, shape: Shape) -> None:
    parent = get_at(obj, path[:-1], shape) if len(path) > 1 else obj
    pe = path[-1]
    if pe.startswith("f:") and isinstance(parent, dict):
        parent.pop(pe[2:], None)
    elif pe.startswith("k:") and isinstance(parent, list):
        keys = list_keys(shape, path[:-1], parent)
        parent[:] = [it for it in parent if not (keys and item_key(keys, it) == pe)]
    elif pe.startswith("v:") and isinstance(parent, list):
        parent[:] = [it for it in parent if value_key(it) != pe]


def merge_applied(live: dict[str, Any], applied: dict[str, Any], shape: Shape, path: Path = ()) -> None:
    """Merge an applied configuration into ``live`` in place (maps deep, map lists by key, sets by value)."""
    for k, av in applied.items():
        if av is None:
            continue
        p = (*path, f"f:{k}")
        lv = live.get(k)
        if isinstance(av, dict) and isinstance(lv, dict) and not shape.atomic_map(p):
            merge_applied(lv, av, shape, p)
        elif isinstance(av, list) and isinstance(lv, list) and (keys := list_keys(shape, p, av)) and (
            list_keys(shape, p, lv) == keys
        ):
            by_key = {item_key(keys, it): it for it in lv}
            for item in av:
                ik = item_key(keys, item)
                if ik in by_key:
                    merge_applied(by_key[ik], item, shape, (*p, ik))
                else:
                    lv.append(_without_nulls(item))
        elif isinstance(av, list) and isinstance(lv, list) and is_set(shape, p):
            lv.extend(_without_nulls(item) for item in av if item not in lv)
        else:
            live[k] = _without_nulls(av)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return copy.deepcopy(value)


# ---- managedFields --------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One ``managedFields`` entry, with its field set decoded."""

    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    subresource: str
    fields: FieldSet

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)


def read_entries(obj: dict[str, Any]) -> list[Entry]:
    out = []
    for e in obj.get("metadata", {}).get("managedFields") or []:
        out.append(Entry(e.get("manager", ""), e.get("operation", "Update"), e.get("apiVersion", ""),
                         e.get("time", ""), e.get("subresource", ""), decode(e.get("fieldsV1") or {})))
    return out


def write_entries(obj: dict[str, Any], entries: list[Entry]) -> None:
    docs = []
    for e in entries:
        if not e.fields:
            continue
        doc: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                               "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": encode(e.fields)}
        if e.subresource:
            doc["subresource"] = e.subresource
        docs.append(doc)
    meta = obj.setdefault("metadata", {})
    if docs:
        meta["managedFields"] = docs
    else:
        meta.pop("managedFields", None)


class ApplyConflict(Exception):
    """Raised by :func:`apply`; ``conflicts`` is a list of (manager, dotted field path)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        super().__init__(conflicts)


def dotted(path: Path) -> str:
    """``.spec.template.spec.domain.devices.interfaces[name="eth1"]`` style, as the real message does."""
    out = ""
    for pe in path:
        if pe.startswith("f:"):
            out += "." + pe[2:]
        elif pe.startswith("v:"):
            out += f"[={pe[2:]}]"
        else:
            key = json.loads(pe[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(key.items())) + "]"
    return out


def _upsert(entries: list[Entry], new: Entry) -> None:
    for i, e in enumerate(entries):
        if e.key == new.key:
            entries[i] = new
            return
    entries.append(new)


def _prune(entries: list[Entry], obj: dict[str, Any], shape: Shape) -> list[Entry]:
    for e in entries:
        e.fields = {p for p in e.fields if exists(obj, p, shape)}
    return [e for e in entries if e.fields]


def apply(live: dict[str, Any], applied: dict[str, Any], *, shape: Shape, manager: str, force: bool,
          api_version: str, now: str, has_status: bool, subresource: str) -> dict[str, Any]:
    """Server-side apply ``applied`` onto ``live`` (may be ``{}``); returns the new object."""
    entries = read_entries(live)
    applied_set = scoped(fieldset(applied, shape), has_status, subresource)
    # an applier owns leaves (empty maps and atomic values included) and list items, not the maps between
    new_set = {p for p in leaves(applied_set)} | {p for p in applied_set if p[-1][:2] in ("k:", "v:")}
    mine = next((e for e in entries if e.key == (manager, "Apply", subresource)), None)
    others = [e for e in entries if e is not mine]

    conflicts: list[tuple[str, Path]] = []
    for p in sorted(leaves(new_set)):
        live_v, applied_v = get_at(live, p, shape), get_at(applied, p, shape)
        if live_v is _MISSING or live_v == applied_v or (applied_v == {} and isinstance(live_v, dict)):
            continue
        conflicts += [(e.manager, p) for e in others if p in e.fields]
    if conflicts and not force:
        raise ApplyConflict([(m, dotted(p)) for m, p in conflicts])
    for m, p in conflicts:
        for e in others:
            if e.manager == m:
                e.fields.discard(p)

    result = copy.deepcopy(live)
    if mine:
        kept = new_set.union(*(e.fields for e in others))
        kept_parents = {k[:i] for k in kept for i in range(1, len(k) + 1)}
        gone = [p for p in mine.fields - new_set if p not in kept_parents]
        removed: list[Path] = []
        for p in sorted(gone, key=len):
            if any(p[: len(r)] == r for r in removed) or _is_item_key(p):
                continue
            remove_at(result, p, shape)
            removed.append(p)
    scoped_applied = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind", "metadata")}
    if subresource == "status":
        scoped_applied = {"status": applied.get("status")} if "status" in applied else {}
    elif has_status:
        scoped_applied.pop("status", None)
    if subresource != "status":
        result.setdefault("metadata", {})
        merge_applied(result["metadata"], {k: v for k, v in applied.get("metadata", {}).items()
                                           if k not in _STRIPPED_META}, shape, ("f:metadata",))
    merge_applied(result, scoped_applied, shape)
    _upsert(others, Entry(manager, "Apply", api_version, now, subresource, new_set))
    write_entries(result, _prune(others, result, shape))
    return result


def _is_item_key(p: Path) -> bool:
    return len(p) >= 2 and p[-2].startswith("k:") and p[-1][2:] in json.loads(p[-2][2:])


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, shape: Shape, manager: str, api_version: str,
                  now: str, has_status: bool, subresource: str) -> None:
    """Attribute the changes ``old`` -> ``new`` to ``manager`` (operation Update) in ``new`` in place."""
    entries = read_entries(old) if old else []
    old_set = scoped(fieldset(old, shape), has_status, subresource) if old else set()
    new_set = scoped(fieldset(new, shape), has_status, subresource)
    lv = leaves(new_set)
    changed = {p for p in new_set
               if p not in old_set or (p in lv and get_at(old, p, shape) != get_at(new, p, shape))}
    for e in entries:
        e.fields -= changed
    mine = next((e for e in entries if e.key == (manager, "Update", subresource)), None)
    fields = (mine.fields if mine else set()) | changed
    if fields:
        _upsert(entries, Entry(manager, "Update", api_version, now, subresource, fields))
    write_entries(new, _prune(entries, new, shape))
