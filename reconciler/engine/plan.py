"""Plan: pair desired and live objects, classify each pair, and order the result by wave (pure).

``build_plan`` is the dry run: printing a ``Plan`` tells exactly what ``apply`` will do and why. VM
updates are classified the way KubeVirt will treat them on a running VM (``reconciler.engine.vmchange``:
hot-plug, restart, or nothing until the next start); the cluster's VM rollout strategy only decides whether
a hot-plug needs a migration from virtnet (:func:`for_rollout`).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from reconciler import labels
from reconciler.engine.diff import Change, Conflict, conflicts, diff_object
from reconciler.engine.inventory import PruneDecision, PruneOptions, decide_prune
from reconciler.engine.kubevirt import LIVE_UPDATE, housekeeping
from reconciler.engine.live import LiveState
from reconciler.engine.memo import PairMemo
from reconciler.engine.vmchange import VMChange, classify
from reconciler.engine.vmchange import classify_vm as classify_vm  # its home until it moved to vmchange
from reconciler.objects import Obj, display, is_patch_only, obj_id, sort_key, wave, with_annotation


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"
    SKIP = "skip"


@dataclass(frozen=True)
class Item:
    action: Action
    id: str
    name: str
    wave: int
    reason: str
    desired: Obj | None = None
    live: Obj | None = None
    changes: tuple[Change, ...] = ()
    vm_change: VMChange = VMChange.NONE
    conflicts: tuple[Conflict, ...] = ()  # fields of ``changes`` another field manager owns
    waits_for: Obj | None = None  # a live object being deleted (this one, or its namespace) to wait out first
    plugs: tuple[str, ...] = ()  # interfaces hot-plugged into a running VM: healthy once its VMI reports them
    migrate: bool = False  # the plug reaches the guest only through a live migration that apply creates
    #: the conflicts were virt-controller's own rewrite of the interface lists (an unplug it finished):
    #: apply takes the lists back (``reconciler.engine.kubevirt.housekeeping``)
    take_back: tuple[Conflict, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "object": self.name,
            "id": self.id,
            "wave": self.wave,
            "reason": self.reason,
            "vmChange": self.vm_change.value,
            "changes": [c.as_dict() for c in self.changes],
            "conflicts": [{"path": c.path, "manager": c.manager} for c in self.conflicts],
            **({"waitsFor": display(self.waits_for)} if self.waits_for is not None else {}),
            **({"plugs": list(self.plugs), "migration": self.migrate} if self.plugs else {}),
        }


@dataclass(frozen=True)
class Plan:
    cluster: str
    items: tuple[Item, ...]
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @functools.cached_property
    def changes(self) -> list[Item]:
        """Asked for by every stage after the plan (7 times a run): picked from 15,000 items at L once."""
        return [i for i in self.items if i.action in (Action.CREATE, Action.UPDATE, Action.DELETE)]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for item in self.items:
            out[item.action.value] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "counts": self.counts(),
            "items": [i.as_dict() for i in self.items],
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class PlanOptions:
    prune: PruneOptions = field(default_factory=PruneOptions)
    force_conflicts: bool = False  # another manager's fields are taken over (warned), not a blocking error
    server_dry_run: bool = True  # the pipeline asks the server (schema, webhooks) about every write first
    memo: PairMemo | None = None  # the last plan's items (``reconciler.engine.memo``; ``virtnet run`` keeps one)


def build_plan(desired: list[Obj], live: LiveState, cluster: str, options: PlanOptions | None = None) -> Plan:
    """The whole plan for ``cluster``: every desired object paired with its live counterpart, prunes, and
    every warning and refusal that depends only on what was observed (node drift, another cluster's
    objects, kinds the cluster does not serve). Nothing is added to a Plan after this returns."""
    options = options or PlanOptions()
    patch_live, vmis, live_owned = live.patch_targets, live.vmis, live.owned
    terminating = {o["metadata"]["name"]: o for o in live_owned.values() if o["kind"] == "Namespace" and _deleting(o)}
    items: list[Item] = []
    errors: list[str] = []
    warnings: list[str] = []
    ids: set[str] = set()  # every desired object's: the memo and prune both need them
    for obj in sorted(desired, key=sort_key):
        key = obj_id(obj)
        ids.add(key)
        if is_patch_only(obj):
            current = patch_live.get(key)
            if current is None:
                errors.append(f"{display(obj)} does not exist; virtnet only patches it (is the operator installed?)")
                items.append(Item(Action.SKIP, key, display(obj), wave(obj), "missing, never created", obj))
                continue
        else:
            current = live_owned.get(key)
        gone = current if current is not None and _deleting(current) else None
        gone = gone or terminating.get(obj["metadata"].get("namespace") or "")
        if gone is not None:
            items.append(_recreate(obj, gone))
            continue
        if current is None and key in live.unowned:
            item, refusal = _adopt(obj, live.unowned[key])
            items.append(item)
            (warnings if refusal is None else errors).append(refusal or f"{item.name}: {item.reason}")
            continue
        items.append(for_rollout(_paired(obj, current, vmis.get(_vmi_key(obj)), options.memo, key), live.rollout))
    if options.memo is not None:
        options.memo.keep(ids)
    decision: PruneDecision = decide_prune(desired, live_owned, cluster, options.prune, live.namespace_contents, ids)
    errors += decision.errors
    for obj, why in decision.kept:
        warnings.append(f"{display(obj)} is no longer in the repository but is kept: {why}")
    for obj in decision.going:
        held = ", ".join(obj["metadata"].get("finalizers") or []) or "the garbage collector"
        warnings.append(f"{display(obj)} is no longer in the repository and is being deleted (waiting for {held})")
    for obj in sorted(decision.delete, key=sort_key, reverse=True):
        items.append(
            Item(Action.DELETE, obj_id(obj), display(obj), wave(obj), "no longer in the repository", None, obj)
        )
    for item in items:
        if item.vm_change == VMChange.RESTART_REQUIRED:
            warnings.append(
                f"{item.name}: restart required ({item.reason}); the VM does not allow virtnet to restart it"
            )
    for item in items:
        if item.take_back:
            paths = ", ".join(sorted({c.path for c in item.take_back}))
            warnings.append(
                f"{item.name}: takes back {paths} from virt-controller (it rewrote them when it finished an unplug)"
            )
        for conflict in item.conflicts:
            text = f"{item.name}: {conflict}"
            if options.force_conflicts:
                warnings.append(f"{text}; --force-conflicts takes it over")
            else:
                errors.append(f"{text}: apply would be refused (409); change it there, or --force-conflicts")
    warnings += drift_warnings(live.node_drift)
    errors += _observed_refusals(desired, live, cluster)
    return Plan(cluster, tuple(items), tuple(warnings), tuple(errors))


def drift_warnings(rows: list[dict[str, object]]) -> list[str]:
    """Node agents' drift reports as plan warnings: the node differs from its policy right now."""
    return [
        f"node drift on {r['node']}: {r.get('interface')} {r.get('field')} is {json.dumps(r.get('actual'))}, "
        f"the policy wants {json.dumps(r.get('desired'))}"
        for r in rows
    ]


def _observed_refusals(desired: list[Obj], live: LiveState, cluster: str) -> list[str]:
    """Errors that block the plan because of what the cluster holds, not because of the repository."""
    owners = {key: (o["metadata"].get("labels") or {}).get(labels.CLUSTER) for key, o in live.foreign.items()}
    refusals = (
        [
            f"{display(o)} is managed by virtnet for cluster {owners[obj_id(o)]!r}, not {cluster!r}: refusing to "
            "take it over (is this the right cluster and kubeconfig?)"
            for o in desired
            if obj_id(o) in owners
        ]
        if owners
        else []
    )
    versions = {o["kind"]: o["apiVersion"] for o in desired} if live.missing_kinds else {}
    refusals += [
        f"the cluster does not serve {kind} ({versions[kind]}): is its operator installed?"
        for kind in sorted(set(versions) & live.missing_kinds)
    ]
    return refusals


def _adopt(obj: Obj, existing: Obj) -> tuple[Item, str | None]:
    """An object that exists but that virtnet did not create: taken over only with the document's opt-in
    (``virtnet.io/adopt: "true"``, reviewed in the pull request), and then marked adopted so that prune never
    deletes it. Returns the item and, when refused, the plan error."""
    key, name = obj_id(obj), display(obj)
    if (obj["metadata"].get("annotations") or {}).get(labels.ADOPT) != "true":
        reason = "exists and was not created by virtnet"
        refusal = (
            f"{name} already exists and virtnet did not create it: refusing to take it over. Add the annotation "
            f'{labels.ADOPT}: "true" to its document to adopt it (it is then never pruned), or remove it from '
            "the repository"
        )
        return Item(Action.SKIP, key, name, wave(obj), reason, obj, existing), refusal
    marked = copy.deepcopy(obj)
    marked["metadata"].setdefault("annotations", {})[labels.ADOPTED] = "true"
    reason = f"adopting an existing object ({labels.ADOPT}); prune will never delete it"
    return replace(for_rollout(_pair(marked, existing, None), ""), reason=reason), None


def _deleting(obj: Obj) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _recreate(obj: Obj, gone: Obj) -> Item:
    """``obj`` cannot be written now: it (or its namespace) is being deleted. Apply waits until the deletion
    is over and then creates it, rather than writing into something its finalizers are taking away."""
    why = f"{display(gone)} is being deleted; created again once it is gone"
    return Item(
        Action.CREATE,
        obj_id(obj),
        display(obj),
        wave(obj),
        why,
        obj,
        None,
        tuple(diff_object(obj, None)),
        waits_for=gone,
    )


def _vmi_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _paired(obj: Obj, live: Obj | None, vmi: Obj | None, memo: PairMemo | None, key: str) -> Item:
    """The pairing of ``obj`` with ``live``, from the memo when neither changed: independent of the cluster's
    rollout strategy (:func:`for_rollout` adds that), so a plan made again for another strategy hits it."""
    if memo is None:
        return _pair(obj, live, vmi)
    item = memo.get(key, obj, live, vmi)
    if item is None:
        item = _pair(obj, live, vmi)
        memo.put(key, obj, live, vmi, item)
    return item


def _pair(obj: Obj, live: Obj | None, vmi: Obj | None) -> Item:
    key, name = obj_id(obj), display(obj)
    if live is not None and (live["metadata"].get("annotations") or {}).get(labels.ADOPTED) == "true":
        obj = copy.deepcopy(obj)  # keep the mark: an adopted object stays adopted
        obj["metadata"].setdefault("annotations", {})[labels.ADOPTED] = "true"
    if live is None:
        return Item(Action.CREATE, key, name, wave(obj), "not in the cluster", obj, None, tuple(diff_object(obj, None)))
    to_apply, vm_change, reason = obj, VMChange.NONE, ""
    plugs: tuple[str, ...] = ()
    if obj["kind"] == "VirtualMachine":
        vm_change, to_apply, reason, plugs = classify(obj, live, vmi)
    changes = tuple(diff_object(to_apply, live))
    if not changes:
        return Item(Action.NOOP, key, name, wave(obj), reason or "in sync", to_apply, live)
    why = reason or f"{len(changes)} field(s) differ"
    found = conflicts(list(changes), live)
    taken, others = housekeeping(found) if obj["kind"] == "VirtualMachine" else ([], found)
    return Item(
        Action.UPDATE,
        key,
        name,
        wave(obj),
        why,
        to_apply,
        live,
        changes,
        vm_change,
        tuple(others),
        plugs=plugs,
        take_back=tuple(taken),
    )


def _rollout_note(rollout: str) -> str:
    """What a hot-plug item's reason adds for the cluster's rollout strategy."""
    if rollout == LIVE_UPDATE:
        return "; KubeVirt migrates the VM itself (vmRolloutStrategy LiveUpdate)"
    return f"; a live migration follows (vmRolloutStrategy {rollout or 'Stage'}: virtnet migrates the VM)"


def for_rollout(item: Item, rollout: str) -> Item:
    """A paired hot-plug item for the cluster's rollout strategy: whether virtnet must migrate the VM for the
    guest to see the plugged interfaces, and the reason saying so. Without ``LiveUpdate`` nothing else moves
    the VM into a pod with the new attachment (``reconciler.engine.kubevirt``). Other items as they are."""
    if not item.plugs:
        return item
    return replace(item, migrate=rollout != LIVE_UPDATE, reason=item.reason + _rollout_note(rollout))


def with_rollout(plan: Plan, built_for: str, rollout: str) -> Plan:
    """``plan``, built for the rollout strategy ``built_for``, as :func:`build_plan` makes it for ``rollout``:
    only the hot-plug items differ (what they do and say), so this relabels them instead of planning again."""
    was = _rollout_note(built_for)
    if was == _rollout_note(rollout):
        return plan
    items = tuple(
        for_rollout(replace(i, reason=i.reason.removesuffix(was)), rollout) if i.plugs and i.reason.endswith(was) else i
        for i in plan.items
    )
    return replace(plan, items=items)


def with_revision(plan: Plan, revision: str | None) -> Plan:
    """``plan`` with the commit recorded (``virtnet.io/revision``) on each object it creates or updates, so the
    cluster says which revision last wrote an object.

    Stamped here, on the writes only, rather than by render on every object: a new commit then renders each
    unchanged VM to the very objects of the last render (``reconciler.render.RenderCache``), which the pair
    memo recognises by identity instead of comparing 15,000 objects field by field. The diff ignores the
    annotation either way (``reconciler.labels.PROVENANCE_ANNOTATIONS``)."""
    if not revision or not plan.changes:
        return plan
    items = tuple(
        replace(i, desired=with_annotation(i.desired, labels.REVISION, revision))
        if i.desired is not None and i.action in (Action.CREATE, Action.UPDATE)
        else i
        for i in plan.items
    )
    return replace(plan, items=items)
