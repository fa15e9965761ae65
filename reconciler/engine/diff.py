"""Normalized diff of one desired object against its live counterpart, with server-side-apply semantics.

Pure. Only the fields virtnet sets can differ: a field the server defaulted, a status, or a field another
manager owns (KubeMacPool's MAC on an interface the repo left without one) is not a difference. Two
kinds of change exist:

* ``set``: a field in the desired object whose live value is missing or different;
* ``remove``: a field virtnet applied before (recorded in the live object's ``managedFields`` for the
  ``virtnet`` manager) that the desired object no longer has. Server-side apply removes it, so the plan
  must show it.

Lists of objects whose items all have a ``name`` are matched by name (containers, interfaces, networks,
ports), other lists by position; a list of scalars is compared whole.

List semantics come from the schema, and the server records them in ``managedFields``: a list without
``x-kubernetes-list-type`` (KubeVirt's interfaces, networks, disks; every list in an NNCP's desiredState) is
*atomic* and shows as ``f:interfaces: {}``, a ``map`` list as ``k:{...}`` entries, a ``set`` as ``v:``
entries. An atomic list is replaced whole by an apply, whoever owned it, so an item the live list has and
the desired list lacks is a ``remove`` even though no ``k:`` entry of ours names it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler import labels

_MISSING = object()
IGNORED_TOP = frozenset({"status"})
#: fields the cluster fills in *inside our own apply* (mutating webhooks), so they land in our managedFields
#: although the repository never set them: removing them from the desired object is not a change.
#: KubeMacPool assigns MACs to interfaces left without one and keeps them for the VM's life.
CLUSTER_ASSIGNED = (re.compile(r"^spec\.template\.spec\.domain\.devices\.interfaces\[name=[^]]+\]\.macAddress$"),)
IGNORED_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink", "finalizers"}
)


@dataclass(frozen=True)
class Change:
    """One field that differs. ``path`` reads like ``spec.template.spec.networks[name=eth1].multus``."""

    op: str  # "set" or "remove"
    path: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.op == "remove":
            return f"- {self.path}: {_short(self.old)}"
        if self.old is None:
            return f"+ {self.path}: {_short(self.new)}"
        return f"~ {self.path}: {_short(self.old)} → {_short(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "old": self.old, "new": self.new}


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":")) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(path: tuple[str, ...]) -> str:
    return ".".join(path).replace(".[", "[")


def _keyed(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _compare(desired: Any, live: Any, path: tuple[str, ...], atomic: frozenset[tuple[str, ...]]) -> Iterator[Change]:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            yield Change("set", _fmt(path), None if live is _MISSING else live, desired)
            return
        for key, value in desired.items():
            yield from _compare(value, live.get(key, _MISSING), (*path, str(key)), atomic)
        return
    if path in atomic and isinstance(desired, list) and isinstance(live, list):
        yield from _dropped_items(desired, live, path)
    if isinstance(desired, list) and _keyed(desired) and isinstance(live, list):
        by_name = {i.get("name"): i for i in live if isinstance(i, dict)}
        for item in desired:
            yield from _compare(item, by_name.get(item["name"], _MISSING), (*path, f"[name={item['name']}]"), atomic)
        return
    if isinstance(desired, list) and desired and all(isinstance(i, dict) for i in desired) and isinstance(live, list):
        if len(live) < len(desired):
            yield Change("set", _fmt(path), live, desired)
            return
        for i, item in enumerate(desired):
            yield from _compare(item, live[i], (*path, f"[{i}]"), atomic)
        return
    if live is _MISSING or desired != live or type(desired) is not type(live):
        if live is not _MISSING and _same_number(desired, live):
            return
        yield Change("set", _fmt(path), None if live is _MISSING else live, desired)


def _dropped_items(desired: list[Any], live: list[Any], path: tuple[str, ...]) -> Iterator[Change]:
    """Items of an atomic live list that the desired list no longer has: the apply drops them.

    Items are matched by ``name`` when every desired item has one; otherwise a live item is kept when a
    desired item is contained in it (the server may have added defaults to the item), and a scalar by value.
    """
    if _keyed(desired):
        names = {i["name"] for i in desired}
        for item in live:
            if isinstance(item, dict) and item.get("name") not in names:
                yield Change("remove", _fmt((*path, f"[name={item.get('name')}]")), old=item)
        return
    for item in live:
        if not any(_contains(item, want) for want in desired):
            yield Change("remove", _fmt((*path, f"[{_short(item, 60)}]")), old=item)


def _contains(have: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    return have == want or _same_number(have, want)


def atomic_lists(live: dict[str, Any]) -> frozenset[tuple[str, ...]]:
    """Paths (field names from the top) of lists the server treats as atomic, read from ``managedFields``.

    Any manager's entry will do: the server writes ``f:<list>: {}`` for an atomic list whoever applied it,
    and ``k:``/``v:`` children for map and set lists. Only lists reached through fields (not through the
    items of another list) are found, which covers every atomic list virtnet renders.
    """
    found: set[tuple[str, ...]] = set()
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        _walk_atomic(entry.get("fieldsV1") or {}, live, (), found)
    return frozenset(found)


def _walk_atomic(fields: dict[str, Any], value: Any, path: tuple[str, ...], found: set[tuple[str, ...]]) -> None:
    if not isinstance(value, dict):
        return
    for key, sub in fields.items():
        if not key.startswith("f:"):
            continue
        name = key[2:]
        child = value.get(name)
        if isinstance(child, list) and sub == {}:
            found.add((*path, name))
        elif isinstance(sub, dict) and sub:
            _walk_atomic(sub, child, (*path, name), found)


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool)
    ) and a == b


def _without_provenance(obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in IGNORED_TOP}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in IGNORED_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in labels.PROVENANCE_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def _owned_fields(live: dict[str, Any], manager: str) -> dict[str, Any]:
    """The fieldsV1 tree of ``manager``'s Apply entries in the live object (merged across apiVersions).

    Read-only result: with a single entry (the usual case) it *is* the live object's tree, because
    deep-copying it for every object was a third of a no-op plan. Callers copy what they change.
    """
    entries = [
        entry.get("fieldsV1") or {}
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if entry.get("manager") == manager and entry.get("operation") == "Apply"
    ]
    if len(entries) == 1:
        return entries[0]
    merged: dict[str, Any] = {}
    for fields in entries:
        _merge(merged, copy.deepcopy(fields))
    return merged


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


_PROVENANCE_FIELDS = frozenset(f"f:{key}" for key in labels.PROVENANCE_ANNOTATIONS)

#: list-key fields the API server defaults before it records the key (Service and container ports)
KEY_DEFAULTS = {"protocol": "TCP"}


def _item_matches(item: Any, key: dict[str, Any]) -> bool:
    """Whether ``item`` is the one a ``k:`` path names; a key field left out gets the server's default."""
    return isinstance(item, dict) and all(item.get(k, KEY_DEFAULTS.get(k)) == v for k, v in key.items())


def _removed(fields: dict[str, Any], desired: Any, live: Any, path: tuple[str, ...]) -> Iterator[Change]:
    """Fields in our previous apply (``fields``) that the desired object no longer sets."""
    for key, sub in fields.items():
        if key == ".":
            continue
        kind, _, raw = key.partition(":")
        if kind == "f":
            here = (*path, raw)
            if not isinstance(desired, dict) or raw not in desired:
                old = live.get(raw) if isinstance(live, dict) else None
                if old is not None:
                    yield Change("remove", _fmt(here), old=old)
                continue
            if isinstance(sub, dict) and sub:
                yield from _removed(sub, desired[raw], live.get(raw) if isinstance(live, dict) else None, here)
        elif kind == "k":
            item_key = json.loads(raw)
            label = ",".join(f"{k}={v}" for k, v in item_key.items())
            here = (*path, f"[{label}]")
            want = next((i for i in desired or [] if _item_matches(i, item_key)), None)
            have = next((i for i in live or [] if _item_matches(i, item_key)), None)
            if want is None:
                if have is not None:
                    yield Change("remove", _fmt(here), old=have)
                continue
            if isinstance(sub, dict):
                yield from _removed(sub, want, have, here)
        elif kind == "v":
            value = json.loads(raw)
            if isinstance(desired, list) and value not in desired and isinstance(live, list) and value in live:
                yield Change("remove", _fmt((*path, f"[{raw}]")), old=value)


@dataclass(frozen=True)
class Conflict:
    """A field virtnet would change that another field manager owns: the server answers 409 unless forced."""

    path: str
    manager: str

    def __str__(self) -> str:
        return f"{self.path} is owned by field manager {self.manager!r}"


_SEGMENT = re.compile(r"([^.\[]+)|\[([^\]]*)\]")


def _segments(path: str) -> list[str | dict[str, str]]:
    """``a.b[name=x].c`` → ``["a", "b", {"name": "x"}, "c"]``; a positional ``[3]`` becomes ``{}`` (unknown)."""
    out: list[str | dict[str, str]] = []
    for field_name, key in _SEGMENT.findall(path):
        if field_name:
            out.append(field_name)
        else:
            pairs = [p.partition("=") for p in key.split(",")]
            out.append({k: v for k, sep, v in pairs if sep})
    return out


def _owns(fields: dict[str, Any], segments: list[str | dict[str, str]], live: Any) -> bool:
    """Whether a fieldsV1 tree covers the path: it reaches the path's end, or an owned atomic list above it
    (``f:interfaces: {}`` with a list there). An empty struct (``f:spec: {}``) owns none of its children."""
    node: Any = fields
    value: Any = live
    for seg in segments:
        if not isinstance(node, dict):
            return False
        if node == {} and isinstance(value, list):
            return True  # an atomic list: whoever owns it owns every item
        if isinstance(seg, str):
            node = node.get(f"f:{seg}")
            value = value.get(seg) if isinstance(value, dict) else None
            continue
        if not seg:
            return False  # positional item: no key to follow
        node = next((sub for key, sub in node.items() if key.startswith("k:") and _key_of(key) == seg), None)
        value = next((i for i in value or [] if isinstance(i, dict) and _key_matches(i, seg)), None)
    return node is not None and not (node == {} and isinstance(value, dict) and value)


def _key_of(key: str) -> dict[str, str]:
    return {k: str(v) for k, v in json.loads(key[2:]).items()}


def _key_matches(item: dict[str, Any], key: dict[str, str]) -> bool:
    return all(str(item.get(k, KEY_DEFAULTS.get(k))) == v for k, v in key.items())


def conflicts(changes: list[Change], live: dict[str, Any], manager: str = labels.FIELD_MANAGER) -> list[Conflict]:
    """Fields among ``changes`` that another manager owns with a different value (the change says so).

    Server-side apply refuses to change such a field without ``force``: naming them at plan time means a
    run stops before its first write instead of failing half way. Status writers never conflict with a
    spec apply, so status subresource entries are skipped.
    """
    others = [
        (entry.get("manager") or "?", entry.get("fieldsV1") or {})
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if entry.get("manager") != manager and entry.get("subresource") in (None, "")
    ]
    found: list[Conflict] = []
    for change in changes:
        if not change.path:
            continue  # a create: nobody owns anything yet
        segments = _segments(change.path)
        found += [Conflict(change.path, who) for who, fields in others if _owns(fields, segments, live)]
    return found


def diff_object(
    desired: dict[str, Any], live: dict[str, Any] | None, manager: str = labels.FIELD_MANAGER
) -> list[Change]:
    """Changes that applying ``desired`` would make to ``live`` (every field set when ``live`` is None)."""
    want = _without_provenance(desired)
    if live is None:
        return [Change("set", "", None, want)]
    have = _without_provenance(live)
    changes = list(_compare(want, have, (), atomic_lists(live)))
    owned = _owned_fields(live, manager)
    if owned:
        owned = {k: v for k, v in owned.items() if k != "f:status"}
        meta = owned.get("f:metadata", {})
        annotations = meta.get("f:annotations") if isinstance(meta, dict) else None
        if isinstance(annotations, dict):  # copy-on-write: ``owned`` may share the live object's tree
            annotations = {k: v for k, v in annotations.items() if k not in _PROVENANCE_FIELDS}
            owned["f:metadata"] = {**meta, "f:annotations": annotations}
        changes += [c for c in _removed(owned, want, have, ()) if not any(p.match(c.path) for p in CLUSTER_ASSIGNED)]
    return changes
