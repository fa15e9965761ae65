"""The items of the last plan, for the next: a no-op run on an unchanged commit does not diff again.

Why: pairing every desired object with its live one (``reconciler.engine.diff``) is most of a no-op plan,
and between two runs of ``virtnet run`` on the same commit almost nothing changes: the render is cached
(the same desired objects), the informers keep every live object that did not change (the same
resourceVersion). An item is reused only when its desired object is the very same object and the live
object and the VMI are at the same uid and resourceVersion; anything else is paired again. The memo keeps
references to the objects it saw, so their identity cannot be taken by new ones.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from reconciler.objects import Obj

if TYPE_CHECKING:
    from reconciler.engine.plan import Item


def _version(obj: Obj | None) -> tuple[str, str] | None:
    if obj is None:
        return None
    meta = obj["metadata"]
    return str(meta.get("uid", "")), str(meta.get("resourceVersion", ""))


class PairMemo:
    """Items by object id, with what they were computed from (see the module docstring)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Obj, tuple[str, str] | None, tuple[str, str] | None, Item]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str, desired: Obj, live: Obj | None, vmi: Obj | None) -> Item | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] is desired and found[1:3] == (_version(live), _version(vmi)):
                self.hits += 1
                return found[3]
            self.misses += 1
            return None

    def put(self, key: str, desired: Obj, live: Obj | None, vmi: Obj | None, item: Item) -> None:
        with self._lock:
            self._items[key] = (desired, _version(live), _version(vmi), item)

    def keep(self, keys: set[str]) -> None:
        """Forget the objects the last plan did not have."""
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if k in keys}
