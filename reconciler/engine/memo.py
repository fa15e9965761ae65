"""The items of the last plan, for the next: a no-op run on an unchanged commit does not diff again.

Why: pairing every desired object with its live one (``reconciler.engine.diff``) is most of a no-op plan,
and between two runs of ``virtnet run`` on the same commit almost nothing changes: the render is cached
(the same desired objects), the informers keep every live object that did not change (the same
resourceVersion). An item is reused only when the live object and the VMI are at the same uid and
resourceVersion (or are the very objects paired last time) and its desired object is the very same object
(the render cache hands back an unchanged VM's), or, after a render made every object anew, an equal one
apart from the provenance annotations (the source line moves when a file grows above a document) for an
item that changes nothing (the item then carries the new object). Anything else is paired again.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from reconciler.labels import PROVENANCE_ANNOTATIONS
from reconciler.objects import Obj

#: ``reconciler.engine.plan.Item``: named loosely, since plan imports this module (no import cycle)
Item = Any


Version = tuple[str, str] | None


def _version(obj: Obj | None) -> Version:
    if obj is None:
        return None
    meta = obj["metadata"]
    return str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))


class PairMemo:
    """Items by object id, with what they were computed from (see the module docstring)."""

    def __init__(self) -> None:
        # desired, live and VMI versions, item, and the live and VMI objects themselves (an informer hands out
        # the same object until it changes: the same objects need no version compared)
        self._items: dict[str, tuple[Obj, Version, Version, Item, Obj | None, Obj | None]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str, desired: Obj, live: Obj | None, vmi: Obj | None) -> Item | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            if found[0] is desired and found[4] is live and found[5] is vmi:
                # the very objects of the last plan (the render cache's, the informers'): nothing to compare
                self.hits += 1
                return found[3]
            if found[1:3] != (_version(live), _version(vmi)):
                self.misses += 1
                return None
            seen, item = found[0], found[3]
            if seen is desired:
                self.hits += 1
                self._items[key] = (desired, *found[1:4], live, vmi)
                return item
            # "no-op" is Action.NOOP's value (plan imports this module, not the other way round)
            if item.action == "no-op" and item.desired is seen and _same(seen, desired):
                item = replace(item, desired=desired)
                self._items[key] = (desired, *found[1:3], item, live, vmi)
                self.hits += 1
                return item
            self.misses += 1
            return None

    def put(self, key: str, desired: Obj, live: Obj | None, vmi: Obj | None, item: Item) -> None:
        with self._lock:
            self._items[key] = (desired, _version(live), _version(vmi), item, live, vmi)

    def keep(self, keys: set[str]) -> None:
        """Forget the objects the last plan did not have."""
        with self._lock:
            if not self._items.keys() <= keys:  # a set comparison in C; rebuilding 15,000 entries is not
                self._items = {k: v for k, v in self._items.items() if k in keys}


def _same(a: Obj, b: Obj) -> bool:
    """Equal but for the provenance annotations (``virtnet render --revision`` and a moved source line)."""
    if a.keys() != b.keys() or any(a[k] != b[k] for k in a if k != "metadata"):
        return False
    ma, mb = a["metadata"], b["metadata"]
    if ma.keys() != mb.keys() or any(ma[k] != mb[k] for k in ma if k != "annotations"):
        return False
    return _plain(ma.get("annotations")) == _plain(mb.get("annotations"))


def _plain(annotations: Any) -> Any:
    if not isinstance(annotations, dict):
        return annotations
    return {k: v for k, v in annotations.items() if k not in PROVENANCE_ANNOTATIONS}
