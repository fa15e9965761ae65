"""The API double's revisions and watch history: what etcd's revision counter and watch window are to it.

Why apart from the objects: the :class:`~reconciler.testing.store.Store` decides *what* a write does; this
log only numbers the writes and remembers the last ``size`` of them, which is all a watch needs to replay
from a resourceVersion, or to learn (410 Expired) that it asked for more history than is kept.

The revision is global and strictly increasing across all kinds. The log shares the store's lock (its
``changed`` condition is built on it), so a revision is taken and its event appended in the same atomic
write, and a watcher waiting in :meth:`EventLog.wait` wakes on every commit.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from reconciler.testing.errors import ApiError

Obj = dict[str, Any]


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    key: tuple[str, str]
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


class EventLog:
    """The last ``size`` committed writes and the current revision (``rv``)."""

    def __init__(self, lock: threading.RLock, size: int) -> None:
        self.changed = threading.Condition(lock)
        self.rv = 1
        self.compacted_rv = 1  # watches from a resourceVersion older than this get 410 Gone
        self.closed = False
        self._events: deque[WatchEvent] = deque(maxlen=size)

    def next_revision(self) -> int:
        """Take the revision of the write being committed (the caller holds the store's lock)."""
        self.rv += 1
        return self.rv

    def append(self, event: WatchEvent) -> None:
        """Remember a committed write and wake the watchers; the oldest event falls out when full."""
        with self.changed:
            if len(self._events) == self._events.maxlen:
                self.compacted_rv = self._events[0].rv
            self._events.append(event)
            self.changed.notify_all()

    def compact(self) -> None:
        """Forget every event so far: watches from an older resourceVersion now get 410 Gone."""
        with self.changed:
            self._events.clear()
            self.compacted_rv = self.rv

    def after(self, key: tuple[str, str], rv: int) -> tuple[list[WatchEvent], int]:
        """Events of ``key`` newer than ``rv`` and the current revision; 410 Expired if compacted."""
        with self.changed:
            if rv < self.compacted_rv:
                raise ApiError(410, "Expired", f"too old resource version: {rv} ({self.compacted_rv})")
            return [e for e in self._events if e.rv > rv and e.key == key], self.rv

    def wait(self, rv: int, timeout: float) -> None:
        """Block until something newer than ``rv`` was written, the log closed, or ``timeout`` passed."""
        with self.changed:
            self.changed.wait_for(lambda: self.rv > rv or self.closed, timeout)

    def close(self) -> None:
        """End every waiting watch (the server is stopping)."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
