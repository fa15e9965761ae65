"""Which webhook deliveries were accepted already: a replayed delivery is refused (pure, in memory).

Kept apart from ``webhooks`` (parsing and verification) so each stays one concern; ``webhooks`` re-exports
:class:`DeliveryLog` where callers have always found it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class DeliveryLog:
    """A bounded, thread-safe LRU of delivery ids already accepted, per provider.

    ``add`` returns False for a replay. ``forget`` lets a delivery whose handling failed be redelivered.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, provider: str, delivery: str) -> bool:
        key = (provider, delivery)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            while len(self._seen) > self.maxsize:
                self._seen.popitem(last=False)
            return True

    def forget(self, provider: str, delivery: str) -> None:
        with self._lock:
            self._seen.pop((provider, delivery), None)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._seen

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
