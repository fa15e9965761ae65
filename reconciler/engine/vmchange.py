"""How a VM update lands on the running VM (pure): a hot-plug, a restart, or nothing until its next start.

Why a module of its own: this is KubeVirt's behaviour, not planning. Adding a bridge (or SR-IOV) interface
and removing a bridge interface are hot-plugs when the repository marks the interface ``hotplug: true``;
anything else in the VM template needs a restart, which happens only when the VM allows it. Unmarked
interface changes are restart-class on purpose: the user did not ask for a live change of that network.
``reconciler.engine.plan`` pairs the objects and asks this module about each VirtualMachine.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import Any

from reconciler import labels
from reconciler.engine.diff import diff_object
from reconciler.engine.kubevirt import reported_interfaces
from reconciler.objects import Obj


class VMChange(StrEnum):
    NONE = ""
    HOTPLUG = "hot-plug"
    RESTART_REQUIRED = "restart-required"  # applied; the VM keeps running the old spec until restarted
    RESTART = "restart"  # applied, then restarted because the VM allows it


def _template(vm: Obj) -> dict[str, Any]:
    return vm.get("spec", {}).get("template", {}).get("spec", {}) or {}


def _interfaces(vm: Obj) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in _template(vm).get("domain", {}).get("devices", {}).get("interfaces", [])}


def _networks(vm: Obj) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in _template(vm).get("networks", [])}


def _without_interfaces(vm: Obj) -> Obj:
    out = copy.deepcopy(vm)
    spec = _template(out)
    spec.pop("networks", None)
    spec.get("domain", {}).get("devices", {}).pop("interfaces", None)
    return out


def _hotplug_names(vm: Obj) -> set[str]:
    """Interfaces the repository marked ``hotplug: true`` (recorded on the VM so removals know it too)."""
    value = (vm.get("metadata", {}).get("annotations") or {}).get(labels.HOTPLUG, "")
    return {n for n in value.split(",") if n}


def _running(live: Obj, vmi: Obj | None) -> bool:
    status = live.get("status") or {}
    return vmi is not None or status.get("printableStatus") == "Running" or bool(status.get("ready"))


def classify_vm(desired: Obj, live: Obj, vmi: Obj | None) -> tuple[VMChange, Obj, str]:
    """How a VM update lands on the running VM, and the object to apply (with unplug markers)."""
    kind, apply, reason, _plugs = classify(desired, live, vmi)
    return kind, apply, reason


def classify(desired: Obj, live: Obj, vmi: Obj | None) -> tuple[VMChange, Obj, str, tuple[str, ...]]:
    """:func:`classify_vm`, and the interfaces a hot-plug adds (what the item waits to see in the guest)."""
    if not _running(live, vmi):
        return VMChange.NONE, desired, "VM is not running: the change applies at its next start", ()
    want, have = _interfaces(desired), _interfaces(live)
    have_active = {n for n, i in have.items() if i.get("state") != "absent"}
    added = [n for n in want if n not in have]
    removed = [n for n in have_active if n not in want]
    changed = [n for n in want if n in have and diff_object(_as_obj(want[n]), _as_obj(have[n]))]
    other = [
        c
        for c in diff_object(_without_interfaces(desired), _without_interfaces(live))
        if c.path.startswith("spec.template")
    ]
    pluggable = _hotplug_names(desired) | _hotplug_names(live)
    restart_reasons = [f"interface {n} changed" for n in changed]
    restart_reasons += [f"interface {n} added without hotplug: true" for n in added if n not in pluggable]
    restart_reasons += [f"{c.path} changed" for c in other]
    for n in removed:
        if "sriov" in have[n]:
            restart_reasons.append(f"SR-IOV interface {n} removed")  # SR-IOV cannot be unplugged at all
        elif n not in pluggable:
            restart_reasons.append(f"interface {n} removed without hotplug: true")
    if restart_reasons:
        allowed = (desired["metadata"].get("annotations") or {}).get(labels.RESTART) == "allowed"
        kind = VMChange.RESTART if allowed else VMChange.RESTART_REQUIRED
        return kind, desired, "; ".join(restart_reasons), ()
    apply = copy.deepcopy(desired)
    pending = _pending_unplugs(live, vmi, want, have)
    unplug = sorted(set(removed) | pending)
    if unplug:
        spec = _template(apply)
        for name in unplug:
            spec["domain"]["devices"]["interfaces"].append({**have[name], "state": "absent"})
            spec["networks"].append(_networks(live)[name])
    if not added and not removed:
        return VMChange.NONE, apply, "unplug still in progress" if pending else "", ()
    parts = [f"plug {n}" for n in added] + [f"unplug {n}" for n in removed]
    return VMChange.HOTPLUG, apply, ", ".join(parts), tuple(added)


def _pending_unplugs(live: Obj, vmi: Obj | None, want: dict[str, Any], have: dict[str, Any]) -> set[str]:
    """Interfaces marked absent that the guest still has: keep the marker until KubeVirt is done."""
    if vmi is None:
        return set()
    in_guest = reported_interfaces(vmi)
    return {n for n, i in have.items() if i.get("state") == "absent" and n not in want and n in in_guest}


def _as_obj(fields: dict[str, Any]) -> Obj:
    return {"metadata": {}, **fields}
