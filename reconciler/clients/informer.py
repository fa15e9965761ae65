"""List-and-watch caches of what a reconcile reads, so a no-op run of ``virtnet run`` does not re-read the cluster.

Why: a reconcile reads every managed kind (one LIST each, with our label selector), the VMIs and the
agents' NodeNetworkStates. At 1,000 VMs those LISTs and their decoding were two thirds of a no-op run.
An :class:`Informer` (client-go's pattern) lists once, then watches from the list's resourceVersion with
bookmarks, applying each ADDED / MODIFIED / DELETED to its map; a 410 Gone (the server no longer has
history that old) or any broken stream makes it list again, and so does the resync period, which bounds
the damage of anything missed. :class:`CachedKube` is a ``Kube`` whose LISTs of the watched (kind,
selector) pairs come from these maps; every other request goes to the server as before.

Writes: an apply's answer replaces the cached object at once (a later reconcile must not plan against the
object as it was before the write); a delete marks that kind's cache stale, so the next LIST of it goes to
the server and the watch starts again from there.

Side effects: one thread and one open watch per (kind, selector, namespace) in use; :meth:`Informers.stop`
ends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from reconciler.clients.kube import Kube, Objects
from reconciler.objects import Obj

log = logging.getLogger(__name__)

Key = tuple[str, str | None, str | None]  # kind, label selector, namespace


class Gone(Exception):
    """The watch's resourceVersion is too old for the server (HTTP 410): list again."""


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace') or ''}/{meta['name']}"


def _newer(candidate: Obj, current: Obj | None) -> bool:
    """Whether ``candidate`` is not older than ``current``. resourceVersions are opaque to clients in
    general; etcd's are increasing integers, so they are compared as such when both are (else: the later
    arrival wins)."""
    if current is None:
        return True
    new, old = candidate["metadata"].get("resourceVersion", ""), current["metadata"].get("resourceVersion", "")
    if str(new).isdigit() and str(old).isdigit():
        return int(new) >= int(old)
    return True


def matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy the equality-based label ``selector`` (``k=v``, ``k==v``, ``k!=v``, ``k``,
    ``!k``, comma-joined; ``None`` or empty: everything), as the server would judge it: a write of ours
    must reach only the caches whose LIST would have returned it."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=", 1).split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class Informer:
    """The objects of one (kind, label selector, namespace), kept current by a watch in a thread of its own."""

    def __init__(
        self,
        kube: Kube,
        key: Key,
        *,
        resync: float = 300.0,
        watch_timeout: int = 240,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.key = kube, key
        self.resync, self.watch_timeout, self.clock = resync, watch_timeout, clock
        self.resource_version = ""
        self.lists = 0  # LISTs made (the first, then each relist: 410, a broken stream, resync, a stale mark)
        self.events = 0
        self.bookmarks = 0
        self._objects: dict[str, Obj] = {}
        self._lock = threading.RLock()
        self._stale = True
        self._generation = 0  # bumped by each list: a watch from before it stops
        self._listed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- reading --------------------------------------------------------------------------------------------

    def items(self) -> Objects:
        """The cached objects (listed first, or again when marked stale); starts the watch on first use."""
        with self._lock:
            if self._stale:
                self.relist()
            items = list(self._objects.values())
            if self._thread is None:  # under the lock: two first readers (the PR-plan thread, the loop) start one
                self._thread = threading.Thread(target=self._run, name=f"informer-{self.key[0]}", daemon=True)
                self._thread.start()
        return items

    def relist(self) -> None:
        kind, selector, namespace = self.key
        items, version = self.kube.list_at(kind, selector, namespace=namespace)
        with self._lock:
            self._objects = {_key(o): o for o in items}
            self.resource_version = version
            self._generation += 1
            self._stale = False
            self._listed_at = self.clock()
            self.lists += 1

    def mark_stale(self) -> None:
        with self._lock:
            self._stale = True

    def observed(self, obj: Obj) -> None:
        """An object as a write of ours returned it: newer than anything the watch delivered so far."""
        with self._lock:
            if _newer(obj, self._objects.get(_key(obj))):
                self._objects[_key(obj)] = obj

    def stop(self) -> None:
        self._stop.set()

    # ---- the watch ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if self._stale or self.clock() - self._listed_at >= self.resync:
                    self.relist()
                started = self.clock()
                self._watch()
                failures = 0
                if self.clock() - started < 0.05:  # a stream that ends at once must not become a busy loop
                    self._stop.wait(0.2)
            except Gone:
                log.info(
                    "informer %s: resourceVersion %s expired (410); listing again", self.key, self.resource_version
                )
                self.mark_stale()
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if self._stop.is_set():
                    return  # stopped while the watch waited: its stream ending now (the server going too) is no failure
                failures += 1
                log.warning("informer %s: watch failed (%s); listing again", self.key, exc)
                self.mark_stale()
                self._stop.wait(min(0.2 * 2**failures, 10.0))

    def _watch(self) -> None:
        kind, selector, namespace = self.key
        generation = self._generation
        timeout = max(1, min(self.watch_timeout, int(self.resync - (self.clock() - self._listed_at)) + 1))
        try:
            for event in self.kube.watch(kind, selector, namespace, self.resource_version, timeout):
                if self._stop.is_set() or generation != self._generation:
                    return  # stopped, or listed again meanwhile: that list is newer than this stream
                self._apply(event)
        except ApiException as exc:
            if exc.status == 410:
                raise Gone() from exc
            raise

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiException(status=int(obj.get("code") or 0), reason=str(obj.get("message") or "watch error"))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        with self._lock:
            if kind == "BOOKMARK":
                self.bookmarks += 1
            elif kind in ("ADDED", "MODIFIED"):
                self.events += 1
                obj.setdefault("kind", self.key[0])
                if _newer(obj, self._objects.get(_key(obj))):
                    self._objects[_key(obj)] = obj
            elif kind == "DELETED":
                self.events += 1
                self._objects.pop(_key(obj), None)
            if version:
                self.resource_version = version


class Informers:
    """The informers of one controller, made on first use for the (kind, selector) pairs it was told to watch."""

    def __init__(self, kube: Kube, watched: Iterable[tuple[str, str | None]], *, resync: float = 300.0) -> None:
        self.kube = kube
        self.watched = set(watched)
        self.resync = resync
        self._informers: dict[Key, Informer] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, selector: str | None, namespace: str | None) -> Informer | None:
        if (kind, selector) not in self.watched:
            return None
        with self._lock:
            key = (kind, selector, namespace)
            if key not in self._informers:
                self._informers[key] = Informer(self.kube, key, resync=self.resync)
            return self._informers[key]

    def all(self) -> list[Informer]:
        with self._lock:
            return list(self._informers.values())

    def observed(self, obj: Obj) -> None:
        labels = obj["metadata"].get("labels") or {}
        for informer in self.all():
            kind, selector, namespace = informer.key
            if (
                kind == obj["kind"]
                and namespace in (None, obj["metadata"].get("namespace"))
                and matches(selector, labels)
            ):
                informer.observed(obj)  # a selector it no longer matches: the watch removes it (DELETED)

    def mark_stale(self, kind: str) -> None:
        for informer in self.all():
            if informer.key[0] == kind:
                informer.mark_stale()

    def stop(self) -> None:
        for informer in self.all():
            informer.stop()


class CachedKube(Kube):
    """A ``Kube`` that answers LISTs of the watched (kind, selector) pairs from :class:`Informers`."""

    def __init__(self, kube: Kube, informers: Informers) -> None:
        super().__init__(kube.api, kube.field_manager, kube.attempts)
        self.timeout = kube.timeout
        self.informers = informers

    def list(
        self, kind: str, label_selector: str | None = None, page_size: int = 500, namespace: str | None = None
    ) -> Objects:
        informer = self.informers.get(kind, label_selector, namespace)
        if informer is None:
            return super().list(kind, label_selector, page_size, namespace)
        return informer.items()

    def apply(self, obj: Obj, *, force: bool = False, dry_run: bool = False, subresource: str = "") -> Obj:
        result = super().apply(obj, force=force, dry_run=dry_run, subresource=subresource)
        if not dry_run and isinstance(result, dict) and result.get("metadata"):
            result.setdefault("kind", obj["kind"])
            result.setdefault("apiVersion", obj["apiVersion"])
            self.informers.observed(result)
        return result

    def delete(self, obj: Obj) -> None:
        try:
            super().delete(obj)
        finally:  # deleted, or being deleted (finalizers): the next LIST of this kind asks the server
            self.informers.mark_stale(obj["kind"])
