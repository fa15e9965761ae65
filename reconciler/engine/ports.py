"""What the engine needs from a cluster, as a Protocol: ``apply`` writes through it, nothing else.

The engine is below the clients in the layering (import-linter holds it), so it names the verbs it uses
instead of importing ``reconciler.clients.kube.Kube``, which satisfies this structurally; tests may pass
any object with these methods. Errors: ``apply``/``delete`` raise ``reconciler.errors.ApplyError``.
"""

from __future__ import annotations

from typing import Protocol

from reconciler.objects import Obj


class ClusterWriter(Protocol):
    def list(
        self, kind: str, label_selector: str | None = None, page_size: int = 500, namespace: str | None = None
    ) -> list[Obj]: ...

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None: ...

    def apply(self, obj: Obj, *, force: bool = False, dry_run: bool = False) -> Obj: ...

    def delete(self, obj: Obj) -> None: ...

    def restart_vm(self, namespace: str, name: str) -> None: ...
