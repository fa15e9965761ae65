"""Patch formats and selectors of the API double: pure functions over plain dicts.

* JSON merge patch (RFC 7386) exactly.
* Strategic merge patch (built-in kinds only: a real server refuses it for custom resources with 415): a merge
  patch, except that a list whose schema says ``x-kubernetes-patch-strategy: merge`` is merged item by item on
  its ``x-kubernetes-patch-merge-key``, and an item carrying ``$patch: delete`` is removed. Other directives
  (``$retainKeys``, ``$setElementOrder``) are dropped.
* JSON patch (RFC 6902) through the ``jsonpatch`` package.
* Label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and field selectors
  (``=``/``==``/``!=`` on any dotted path, ``metadata.name`` and ``metadata.namespace`` being the useful ones).

Malformed input raises :class:`PatchError`/:class:`SelectorError`; the HTTP layer turns them into 400/422.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, Protocol

import jsonpatch


class PatchError(ValueError):
    """The patch cannot be applied (422 Invalid / 400 BadRequest)."""


class SelectorError(ValueError):
    """The selector does not parse (400 BadRequest)."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class PatchShape(Protocol):
    """The schema lookup strategic merge patch needs (see :mod:`reconciler.testing.schemas`)."""

    def patch_merge_key(self, path: tuple[str, ...]) -> str | None: ...


def strategic_merge_patch(target: Any, patch: Any, shape: PatchShape, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        p = (*path, f"f:{k}")
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and (key := shape.patch_merge_key(p)):
            out[k] = _merge_list(out[k], v, key, shape, p)
        elif isinstance(v, list):
            out[k] = [i for i in copy.deepcopy(v) if not (isinstance(i, dict) and i.get("$patch") == "delete")]
        else:
            out[k] = strategic_merge_patch(out.get(k), v, shape, p)
    return out


def _merge_list(live: list[Any], patch: list[Any], key: str, shape: PatchShape, path: tuple[str, ...]) -> list[Any]:
    """New items first (in patch order), then the live items in their order, merged with their patch item."""
    item_path = (*path, "[]")
    rest = copy.deepcopy(live)
    head: list[Any] = []
    for item in patch:
        if not isinstance(item, dict):
            if item not in rest:
                head.append(copy.deepcopy(item))
            continue
        idx = next((i for i, it in enumerate(rest) if isinstance(it, dict) and it.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                rest.pop(idx)
        elif idx is None:
            head.append(strategic_merge_patch({}, item, shape, item_path))
        else:
            rest[idx] = strategic_merge_patch(rest[idx], item, shape, item_path)
    return head + rest


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        result: dict[str, Any] = jsonpatch.apply_patch(target, ops, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, TypeError) as e:
        raise PatchError(f"the JSON patch could not be applied: {e}") from e
    return result


# ---- selectors -------------------------------------------------------------------------------------------------

Matcher = Callable[[dict[str, Any]], bool]
_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\)|(==|!=|=)\s*(\S*))?\s*$")


def _split_requirements(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in (s.strip() for s in parts) if p]


LabelTest = Callable[[dict[str, str]], bool]


def _label_requirement(part: str) -> LabelTest:
    """One requirement of a label selector (``k=v``, ``k!=v``, ``k in (a,b)``, ``k notin (...)``, ``k``, ``!k``)."""
    m = _SET_RE.match(part)
    if not m:
        raise SelectorError(f"unable to parse requirement: {part!r}")
    neg, key, setop, values, op, value = m.groups()
    if neg and (setop or op):
        raise SelectorError(f"unable to parse requirement: {part!r}")
    if neg:
        return lambda labels: key not in labels
    if setop:
        vals = {v.strip() for v in values.split(",") if v.strip()}
        if setop == "in":
            return lambda labels: labels.get(key) in vals
        return lambda labels: labels.get(key) not in vals
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if op:
        return lambda labels: labels.get(key) == value
    return lambda labels: key in labels


def label_matcher(selector: str | None) -> Matcher:
    """A predicate over objects for a ``labelSelector`` string (empty selects everything)."""
    reqs = [_label_requirement(part) for part in _split_requirements(selector or "")]
    return lambda obj: all(r(obj.get("metadata", {}).get("labels") or {}) for r in reqs)


def _field_requirement(part: str) -> Matcher:
    m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$", part)
    if not m:
        raise SelectorError(f"invalid field selector: {part!r}")
    path, negate, value = m.group(1).split("."), m.group(2) == "!=", m.group(3)
    return lambda obj: (_lookup(obj, path) == value) != negate


def field_matcher(selector: str | None) -> Matcher:
    """A predicate for a ``fieldSelector`` (``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-separated)."""
    reqs = [_field_requirement(part) for part in _split_requirements(selector or "")]
    return lambda obj: all(r(obj) for r in reqs)


def _lookup(obj: Any, path: list[str]) -> str:
    for p in path:
        obj = obj.get(p) if isinstance(obj, dict) else None
    if obj is None:
        return ""
    return str(obj).lower() if isinstance(obj, bool) else str(obj)
