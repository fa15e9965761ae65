"""Watch streams of the API double: newline-delimited JSON events read from the store's event log.

A watch without a ``resourceVersion`` (or with ``"0"``) starts, like the real server, with a synthetic
``ADDED`` for every current object; with a resourceVersion it replays the log from there, or ends at once
with an ``ERROR`` event carrying a 410 ``Expired`` Status when the log no longer reaches back that far (the
client's ``watch.Watch`` turns that into ``ApiException(410)``). Label/field selectors are evaluated against
both the old and the new object, so an object that stops matching is seen as ``DELETED`` and one that starts
matching as ``ADDED``. Bookmarks (``allowWatchBookmarks``) are sent every ``bookmark_interval`` seconds and
when the stream times out, carrying the resourceVersion the watcher has seen up to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from reconciler.testing import patches
from reconciler.testing.errors import ApiError
from reconciler.testing.resources import ResourceType
from reconciler.testing.store import Store


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": event_type, "object": obj}) + "\n").encode()


def _error(e: ApiError) -> bytes:
    return _line("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": e.message, "reason": e.reason, "code": e.code})


def watch_stream(store: Store, rt: ResourceType, ns: str | None, *, rv: str, label_selector: str,
                 field_selector: str, timeout: float, bookmarks: bool, bookmark_interval: float) -> Iterator[bytes]:
    """The body of a watch response (a generator; it holds no lock while waiting)."""
    try:
        lmatch, fmatch = patches.label_matcher(label_selector), patches.field_matcher(field_selector)
    except patches.SelectorError as e:
        yield _error(ApiError(400, "BadRequest", str(e)))
        return

    def matches(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        return (ns is None or obj["metadata"].get("namespace") == ns) and lmatch(obj) and fmatch(obj)

    deadline = time.monotonic() + timeout
    if rv in ("", "0"):
        with store.lock:
            initial = store.list(rt, ns, label_selector=label_selector, field_selector=field_selector)
        for obj in initial["items"]:
            yield _line("ADDED", obj)
        seen = int(initial["metadata"]["resourceVersion"])
    else:
        try:
            seen = int(rv)
        except ValueError:
            yield _error(ApiError(400, "BadRequest", f"invalid resourceVersion {rv!r}"))
            return
    next_bookmark = time.monotonic() + bookmark_interval
    while True:
        try:
            events, current = store.events.after(rt.storage_key, seen)
        except ApiError as e:
            yield _error(e)
            return
        for ev in events:
            new_match, old_match = matches(ev.obj), matches(ev.old)
            if ev.type == "DELETED":
                kind = "DELETED" if new_match else ""
            elif new_match and old_match:
                kind = ev.type
            elif new_match:
                kind = "ADDED"
            elif old_match:
                kind = "DELETED"
            else:
                kind = ""
            if kind:
                yield _line(kind, store.render(rt, ev.obj))
        seen = current
        now = time.monotonic()
        if store.events.closed or now >= deadline:
            if bookmarks:
                yield _bookmark(rt, seen)
            return
        if bookmarks and now >= next_bookmark:
            yield _bookmark(rt, seen)
            next_bookmark = now + bookmark_interval
        wait = min(deadline, next_bookmark if bookmarks else deadline) - now
        store.events.wait(seen, max(0.0, min(wait, 1.0)))


def _bookmark(rt: ResourceType, rv: int) -> bytes:
    return _line("BOOKMARK", {"apiVersion": rt.api_version, "kind": rt.kind,
                              "metadata": {"resourceVersion": str(rv)}})
