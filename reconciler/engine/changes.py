"""What an apply did, object by object (data only): the typed change set that apply returns.

Kept apart from ``apply`` so that output and status code can read results without importing the part
of the engine that writes to the cluster. Like fluxcd/pkg ``ssa.ChangeSet``: one entry per object, with the
action taken and whether it worked; ``error`` says why a run stopped early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.plan import Action, Item


@dataclass(frozen=True)
class Result:
    name: str
    action: Action
    ok: bool
    message: str = ""


@dataclass
class ChangeSet:
    results: list[Result] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.ok for r in self.results)

    def add(self, item: Item, ok: bool = True, message: str = "") -> None:
        self.results.append(Result(item.name, item.action, ok, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "results": [{**r.__dict__, "action": str(r.action)} for r in self.results],
        }
