"""Lists of the API double: selectors, pages and continue tokens.

A first page (``limit`` set, no ``continue``) takes a snapshot of the matching objects at the current
resourceVersion; later pages read that snapshot through an opaque continue token, so paging returns each item
once, consistently, as etcd's revisioned reads do. The last 64 snapshots are kept; an older token is 410
Expired, as a compacted revision is on a real server.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from reconciler.testing import lifecycle, patches
from reconciler.testing.errors import ApiError
from reconciler.testing.resources import ResourceType

Obj = dict[str, Any]


def matchers(rt: ResourceType, label_selector: str, field_selector: str) -> tuple[patches.Matcher, patches.Matcher]:
    """Label and field predicates; 400 for a selector that does not parse or names an unsupported field."""
    try:
        lmatch, fmatch = patches.label_matcher(label_selector), patches.field_matcher(field_selector)
    except patches.SelectorError as e:
        raise ApiError(400, "BadRequest", str(e)) from e
    fields = [m.group(1) for part in (field_selector or "").split(",")
              if (m := re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)", part))]
    lifecycle.check_field_selector(rt, fields)
    return lmatch, fmatch


class Pager:
    """Snapshots of first pages, addressed by continue tokens."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._snapshots: OrderedDict[str, tuple[int, list[Obj]]] = OrderedDict()

    def page(self, rt: ResourceType, items: Iterable[Obj] | None, rv: int, *, limit: int, cont: str) -> Obj:
        """A ``<Kind>List`` page: of ``items`` (a first page, at ``rv``) or of the snapshot ``cont`` names."""
        if cont:
            snap_id, offset = self._decode(cont)
            rv, listed = self._snapshots[snap_id]
        else:
            listed, offset, snap_id = list(items or []), 0, uuid.uuid4().hex
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        page = listed[offset:]
        if limit and len(page) > limit:
            page = page[:limit]
            self._snapshots[snap_id] = (rv, listed)
            while len(self._snapshots) > self.keep:
                self._snapshots.popitem(last=False)
            raw = json.dumps({"s": snap_id, "o": offset + limit}).encode()
            meta["continue"] = base64.urlsafe_b64encode(raw).decode()
            meta["remainingItemCount"] = len(listed) - offset - limit
        return {"apiVersion": rt.api_version, "kind": f"{rt.kind}List", "metadata": meta, "items": page}

    def _decode(self, cont: str) -> tuple[str, int]:
        try:
            token = json.loads(base64.urlsafe_b64decode(cont.encode()))
            snap_id, offset = str(token["s"]), int(token["o"])
        except (ValueError, KeyError, TypeError) as e:
            raise ApiError(400, "BadRequest", "invalid continue token") from e
        if snap_id not in self._snapshots:
            raise ApiError(410, "Expired", "The provided continue parameter is too old to display a "
                           "consistent list result. You can start a new list without the continue parameter.")
        return snap_id, offset
