"""Prune decisions as set arithmetic over object ids, with the guards that keep a bad commit harmless.

Pure. Flux and Argo CD users have lost namespaces to prune accidents: a typo in a path, a deleted
directory, or a render that silently produced nothing. So: only objects carrying this cluster's
ownership labels are candidates; nothing is pruned when the render is empty; a plan that would delete
more than a configured share of what we own stops unless the user says ``--allow-mass-prune``; an
object annotated ``virtnet.io/prune: disabled`` is never deleted, nor one virtnet adopted rather than
created (``virtnet.io/adopted``). A Namespace takes everything in it along, so it is deleted only with the
per-namespace opt-in ``virtnet.io/prune-namespace: allowed`` and only when nothing else is left in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler import labels
from reconciler.objects import Obj, is_owned, obj_id


@dataclass(frozen=True)
class PruneOptions:
    enabled: bool = True
    max_share: float = 0.25
    allow_mass_prune: bool = False
    max_deletions: int = 0  # an absolute cap on top of the share; 0 = none


@dataclass
class PruneDecision:
    delete: list[Obj] = field(default_factory=list)
    kept: list[tuple[Obj, str]] = field(default_factory=list)  # (object, why it is not deleted)
    going: list[Obj] = field(default_factory=list)  # already being deleted: nothing to send, nothing to count
    errors: list[str] = field(default_factory=list)


def decide_prune(
    desired: list[Obj],
    live_owned: dict[str, Obj],
    cluster: str,
    options: PruneOptions,
    namespace_contents: dict[str, set[str]] | None = None,
    desired_ids: set[str] | None = None,
) -> PruneDecision:
    """``namespace_contents``: every object id in each Namespace that may be pruned (read by observe);
    ``desired_ids``: the ids of ``desired`` when the caller has them already (the plan does)."""
    desired_ids = desired_ids if desired_ids is not None else {obj_id(o) for o in desired}
    decision = PruneDecision()
    stale: list[Obj] = []
    for key in sorted(live_owned.keys() - desired_ids):  # sorting the few left, not every object
        obj = live_owned[key]
        # a finalizer (KubeVirt's on a VM, foregroundDeletion) holds it: a second DELETE would change nothing
        (decision.going if obj["metadata"].get("deletionTimestamp") else stale).append(obj)
    if not stale:
        return decision
    if not options.enabled:
        decision.kept = [(o, "pruning is disabled") for o in stale]
        return decision
    if not desired:
        decision.errors.append(
            f"refusing to prune {len(stale)} object(s): the repository rendered no objects for cluster {cluster} "
            "(a wrong path or cluster name looks exactly like this)"
        )
        decision.kept = [(o, "empty render") for o in stale]
        return decision
    candidates = []
    for obj in stale:
        why = _kept_because(obj, cluster)
        if why:
            decision.kept.append((obj, why))
        else:
            candidates.append(obj)
    leaving = {obj_id(o) for o in candidates}
    for ns in [o for o in candidates if o["kind"] == "Namespace"]:
        left = sorted((namespace_contents or {}).get(ns["metadata"]["name"], set()) - leaving)
        if left or namespace_contents is None or ns["metadata"]["name"] not in namespace_contents:
            candidates.remove(ns)
            held = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
            decision.kept.append((ns, f"it still holds {held}" if left else "its contents could not be read"))
    owned = len(live_owned) - len(decision.going)
    share = len(candidates) / max(owned, 1)
    too_many = bool(options.max_deletions) and len(candidates) > options.max_deletions
    if candidates and (share > options.max_share or too_many) and not options.allow_mass_prune:
        decision.errors.append(
            f"refusing to prune {len(candidates)} of {owned} owned objects ({share:.0%} > "
            f"{options.max_share:.0%}"
            + (f", or more than the {options.max_deletions} allowed" if too_many else "")
            + "): check the change, then run with --allow-mass-prune"
        )
        decision.kept += [(o, "mass prune guard") for o in candidates]
        return decision
    decision.delete = candidates
    return decision


def _kept_because(obj: Obj, cluster: str) -> str:
    """Why an owned object that left the repository is not deleted ("" when it may be)."""
    annotations = obj["metadata"].get("annotations") or {}
    if not is_owned(obj, cluster):  # belt and braces: the LIST used our selector, but never trust names
        return "not labelled as owned by virtnet for this cluster"
    if annotations.get(labels.PRUNE) == "disabled":
        return f"annotated {labels.PRUNE}=disabled"
    if annotations.get(labels.ADOPTED) == "true":
        return "virtnet adopted it, it did not create it"
    if obj["kind"] == "Namespace" and annotations.get(labels.PRUNE_NAMESPACE) != "allowed":
        return f"a Namespace is deleted only with {labels.PRUNE_NAMESPACE}: allowed (it takes its VMs along)"
    return ""
