"""What the engine must know about KubeVirt to carry a hot-plug through to the guest (pure).

Why: a plugged bridge interface reaches the guest only once the VM runs in a new launcher pod that has the
new Multus attachment, i.e. after a live migration. A cluster that rolls VM changes out live (KubeVirt's
``spec.configuration.vmRolloutStrategy: LiveUpdate``, which the HyperConverged operator sets on the KubeVirt CR
it owns) migrates by itself; any other cluster leaves the VMI running the old pod, so virtnet creates the
VirtualMachineInstanceMigration (what ``virtctl migrate`` does). Either way the change is done only when the
VMI's ``status.interfaces`` (reported by virt-handler / the guest agent) lists the interface: a Ready VM says
nothing about the guest.

After an unplug (``state: absent``) virt-controller removes the interface and its network from the VM spec
with an update of its own, which makes it the owner of those atomic lists on a real API server; virtnet's next
change of the lists would then be refused as a conflict with it. That rewrite is KubeVirt finishing what
virtnet asked for, so :func:`housekeeping` names those conflicts and the engine takes the lists back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from reconciler import labels
from reconciler.engine.diff import Conflict
from reconciler.objects import Obj

LIVE_UPDATE = "LiveUpdate"
#: the field manager of KubeVirt's controller on a VM (its spec rewrites after an unplug, its status)
VIRT_CONTROLLER = "virt-controller"
#: the atomic lists of a VM that virt-controller rewrites when an unplug completes
HOUSEKEPT_LISTS = ("spec.template.spec.domain.devices.interfaces", "spec.template.spec.networks")
MIGRATION_KIND = "VirtualMachineInstanceMigration"


def rollout_strategy(kubevirts: Iterable[Obj]) -> str:
    """The cluster's VM rollout strategy, from its KubeVirt CR (one per cluster): ``LiveUpdate`` or ``Stage``.

    Unset is KubeVirt's ``Stage``: template changes wait for a restart or a migration. No KubeVirt CR to read
    (not served, or not readable) counts as ``Stage`` too: a migration virtnet asks for is harmless where one
    was not needed, a missing one leaves the interface out of the guest.
    """
    for kv in kubevirts:
        config = (kv.get("spec") or {}).get("configuration") or {}
        return LIVE_UPDATE if config.get("vmRolloutStrategy") == LIVE_UPDATE else "Stage"
    return "Stage"


def reported_interfaces(vmi: Obj | None) -> set[str]:
    """Interfaces the VMI's status lists (what virt-handler sees in the guest's domain or agent)."""
    if vmi is None:
        return set()
    return {str(i.get("name")) for i in (vmi.get("status") or {}).get("interfaces") or [] if i.get("name")}


def spec_interfaces(vmi: Obj | None) -> set[str]:
    """Interfaces in the VMI's spec that are not being unplugged (virt-controller has propagated the plug)."""
    if vmi is None:
        return set()
    devices = ((vmi.get("spec") or {}).get("domain") or {}).get("devices") or {}
    return {str(i.get("name")) for i in devices.get("interfaces") or [] if i.get("state") != "absent"}


def migration(vm: Obj, generation: int | None, plugs: Iterable[str]) -> Obj:
    """The VirtualMachineInstanceMigration that moves ``vm`` into a launcher pod with its plugged interfaces.

    Named after the VM generation it carries, so asking twice for the same change creates it once (a second
    apply of the same object is a no-op), and a later change gets a migration of its own.
    """
    meta = vm["metadata"]
    digest = hashlib.sha256(f"{generation}:{','.join(sorted(plugs))}".encode()).hexdigest()[:8]
    name = f"{meta['name'][:40]}-hotplug-{digest}"
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": MIGRATION_KIND,
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": {labels.VM: meta["name"][:63]}},
        "spec": {"vmiName": meta["name"]},
    }


def migration_phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def housekeeping(found: Iterable[Conflict]) -> tuple[list[Conflict], list[Conflict]]:
    """Split conflicts into (virt-controller's rewrites of the interface/network lists, the rest)."""
    ours: list[Conflict] = []
    rest: list[Conflict] = []
    for c in found:
        kept = c.manager == VIRT_CONTROLLER and any(c.path.startswith(p) for p in HOUSEKEPT_LISTS)
        (ours if kept else rest).append(c)
    return ours, rest
