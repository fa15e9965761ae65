"""What the simulated controllers need from wherever the objects live: the API double's Store or a real server.

Why a Protocol: :mod:`.controllers` (nmstate, KubeVirt) is written once against this subset of
:class:`~reconciler.testing.store.Store` and runs unchanged in-process over the double's store and, through
:class:`~reconciler.testing.kubestore.KubeStore`, against a real kube-apiserver as a separate process. The
Store satisfies it structurally, so the double needs no change to keep passing its own store in.
"""

from __future__ import annotations

from typing import Any, Protocol

from reconciler.testing.resources import Registry, ResourceType

Obj = dict[str, Any]


class ObjectStore(Protocol):
    """Reads by apiVersion/kind, writes with a field manager; status writes go to the status subresource."""

    @property
    def registry(self) -> Registry:
        """The resource types (``by_kind``) the writes are addressed with."""
        ...

    def objects(self, api_version: str, kind: str, ns: str | None = None) -> list[Obj]:
        """Every object of the kind (in ``ns`` when given), sorted by namespace and name."""
        ...

    def find(self, api_version: str, kind: str, name: str, ns: str = "") -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        ...

    def heads(self, api_version: str, kind: str) -> list[tuple[str, int, dict[str, str]]]:
        """(name, generation, labels) of every object of the kind, in ``objects`` order: what a controller
        scans on every tick (the API double answers without copying the objects)."""
        ...

    def put(self, obj: Obj, *, manager: str = ...) -> Obj:
        """Create ``obj`` or replace the live one, status included (the status as the same manager)."""
        ...

    def update(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str,
               subresource: str = "") -> Obj:
        """Replace the object, or with ``subresource="status"`` only its status."""
        ...

    def delete(self, rt: ResourceType, ns: str, name: str) -> Obj:
        """Delete the object (404 is an error: callers delete what they just listed)."""
        ...


def head(meta: dict[str, Any]) -> tuple[str, int, dict[str, str]]:
    """One object's (name, generation, labels) from its metadata: what ``ObjectStore.heads`` lists."""
    return meta["name"], int(meta.get("generation", 1)), dict(meta.get("labels") or {})
