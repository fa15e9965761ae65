"""What the engine needs from a cluster, as a Protocol: ``apply`` writes through it, nothing else.

The engine is below the clients in the layering (import-linter holds it), so it names the verbs it uses
instead of importing ``reconciler.clients.kube.Kube``, which satisfies this structurally; tests may pass
any object with these methods. Errors: ``apply``/``delete`` raise ``reconciler.errors.ApplyError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from reconciler.objects import Obj


class ClusterWriter(Protocol):
    def list(
        self, kind: str, label_selector: str | None = None, page_size: int = 500, namespace: str | None = None
    ) -> list[Obj]: ...

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None: ...

    def apply(self, obj: Obj, *, force: bool = False, dry_run: bool = False) -> Obj: ...

    def delete(self, obj: Obj) -> None: ...

    def restart_vm(self, namespace: str, name: str) -> None: ...


@runtime_checkable
class ReportsThrottling(Protocol):
    """A writer that says when the API server answered 429 (``reconciler.engine.window``): ``listen`` adds a
    listener called with the ``Retry-After`` in seconds, and returns the function that removes it again.
    Optional: a writer without it is simply never told to slow down."""

    def listen_for_throttling(self, listener: Callable[[float], None]) -> Callable[[], None]: ...
