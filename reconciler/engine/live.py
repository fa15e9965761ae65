"""What the cluster holds, as ``observe`` read it (data only): the input of ``build_plan`` besides the render.

Kept apart from the reading (``reconciler.pipeline.observe``) so that planning stays a pure function of
two values, desired and live, and tests can build a ``LiveState`` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.objects import Obj


@dataclass
class LiveState:
    owned: dict[str, Obj] = field(default_factory=dict)  # ours, by object id
    patch_targets: dict[str, Obj | None] = field(default_factory=dict)  # objects virtnet only patches (None: absent)
    vmis: dict[str, Obj] = field(default_factory=dict)  # running VMIs by "namespace/name"
    missing_kinds: set[str] = field(default_factory=set)  # kinds the cluster does not serve
    node_drift: list[dict[str, object]] = field(default_factory=list)  # what our node agents report
    foreign: dict[str, Obj] = field(default_factory=dict)  # managed by virtnet for another cluster
    unowned: dict[str, Obj] = field(default_factory=dict)  # desired objects that exist, not created by virtnet
    #: for each Namespace prune may delete: the ids of every object in it (what deleting it would take along)
    namespace_contents: dict[str, set[str]] = field(default_factory=dict)
    #: the cluster's VM rollout strategy (``reconciler.engine.kubevirt.rollout_strategy``): whether a hot-plug
    #: reaches the guest by itself (LiveUpdate) or through a migration virtnet creates
    rollout: str = "Stage"
