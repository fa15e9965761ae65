"""The writes every simulated controller makes the same way: a condition, a status through the subresource.

Why a module of its own: :mod:`.controllers`, :mod:`.migrations` and :mod:`.sriov` all write statuses; kept here,
none of them imports another for it.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.testing.objectstore import ObjectStore
from reconciler.testing.store import Obj, now
from reconciler.testing.store import ResourceType as _RT


def condition(previous: list[dict[str, Any]], ctype: str, status: bool, reason: str = "",
              message: str = "") -> dict[str, Any]:
    """A condition; keeps the old transition time when the status did not change (so re-ticks are no-ops)."""
    value = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == ctype), {})
    when = old.get("lastTransitionTime", now()) if old.get("status") == value else now()
    return {"type": ctype, "status": value, "reason": reason, "message": message, "lastTransitionTime": when}


def rt(store: ObjectStore, api_version: str, kind: str) -> _RT:
    """The served resource type of ``api_version``/``kind`` (the simulators only write kinds that exist)."""
    found = store.registry.by_kind(api_version, kind)
    assert found is not None
    return found


def set_status(store: ObjectStore, api_version: str, kind: str, obj: Obj, status: dict[str, Any],
               manager: str) -> None:
    """``Status().Update(obj)`` with the object as read (a status write is validated as a whole object), but
    unconditionally: without its resourceVersion, so a client's write in between is no conflict to retry."""
    found = rt(store, api_version, kind)
    body = {**copy.deepcopy(obj), "status": status}
    body["metadata"].pop("resourceVersion", None)
    store.update(found, body["metadata"].get("namespace", ""), body["metadata"]["name"], body, manager=manager,
                 subresource="status")
