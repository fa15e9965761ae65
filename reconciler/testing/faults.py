"""Fault injection for the API double: what may go wrong with a request, decided before it is served.

A fault hook is any callable ``(RequestInfo) -> Fault | None``; :class:`FaultPlan` is the ready-made one: with
probability ``rate`` an eligible request gets one of ``kinds``, drawn from its own ``random.Random(seed)``, so
the same sequence of eligible requests meets the same faults on every run. Only requests for resources
(not discovery, health or version) are offered to the hook, which keeps client construction stable.

Kinds: ``"500"``, ``"503"``, ``"429"`` (with ``Retry-After``), ``"409"`` (writes only), ``"drop"`` (the
connection is closed without a response), ``"delay"`` (the request is served after ``delay_seconds``), and
``"watch_end"`` (watches only: the stream ends right after its initial events). Error and drop faults are
decided before the store is touched, so they never change it; a delayed request is served normally.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WRITE_VERBS = ("create", "update", "patch", "apply", "delete")
ALL_KINDS = ("500", "503", "429", "409", "drop", "delay", "watch_end")


@dataclass(frozen=True)
class RequestInfo:
    """What a fault hook sees about a request."""

    method: str
    path: str
    verb: str  # get | list | watch | create | update | patch | apply | delete
    resource: str  # "group/plural[/subresource]" ("plural" for the core group)
    namespace: str
    name: str
    user: str
    dry_run: bool = False  # ``dryRun=All``: served, but nothing is stored

    @property
    def is_write(self) -> bool:
        """A request that would change what the server stores (a dry run does not)."""
        return self.verb in WRITE_VERBS and not self.dry_run


@dataclass(frozen=True)
class Fault:
    """``kind`` is one of :data:`ALL_KINDS`; ``retry_after`` for 429, ``delay`` in seconds for ``delay``."""

    kind: str
    retry_after: int = 1
    delay: float = 0.0


FaultHook = Callable[[RequestInfo], "Fault | None"]


@dataclass
class FaultPlan:
    """Random but seeded faults: ``FaultPlan(rate=0.2, seed=7, kinds=["503", "drop"])``."""

    rate: float = 0.1
    seed: int = 0
    kinds: Sequence[str] = ALL_KINDS
    verbs: Sequence[str] | None = None  # only these verbs are eligible (default: all)
    resources: Sequence[str] | None = None  # only these resources are eligible (default: all)
    dry_runs: bool = True  # whether server-side dry runs (plan time) are eligible too
    delay_seconds: float = 0.05
    retry_after: int = 1
    decisions: list[tuple[RequestInfo, Fault | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(ALL_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_KINDS}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __call__(self, info: RequestInfo) -> Fault | None:
        if (self.verbs is not None and info.verb not in self.verbs) or (
            self.resources is not None and info.resource not in self.resources
        ) or (info.dry_run and not self.dry_runs):
            return None
        with self._lock:
            roll, pick = self._rng.random(), self._rng.random()
            fault: Fault | None = None
            possible = [k for k in self.kinds if (k != "409" or info.verb in WRITE_VERBS)
                        and (k != "watch_end" or info.verb == "watch")]
            if roll < self.rate and possible:
                kind = possible[int(pick * len(possible))]
                fault = Fault(kind, retry_after=self.retry_after, delay=self.delay_seconds)
            self.decisions.append((info, fault))
            return fault
