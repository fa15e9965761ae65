"""Blast radius of SR-IOV node policy changes: which nodes the SR-IOV operator drains or reboots, and the VMs on
them (pure).

Why: the operator's config daemon applies a SriovNetworkNodePolicy node by node, and for most changes it first
cordons and drains the node (VFs cannot be re-created under running pods), sometimes reboots it. An SR-IOV VM
cannot live-migrate (its VF is host hardware), so a drain stops it and starts it again elsewhere. Which fields
do what, from the operator's documentation:

* drain: a new or deleted policy, ``numVfs``, ``deviceType``, ``mtu`` (of the PF and all its VFs), ``isRdma``,
  ``linkType``, ``eSwitchMode``, ``nicSelector`` (which PFs), ``needVhostNet``;
* reboot as well: ``isRdma`` (RDMA mode), ``linkType`` and ``eSwitchMode`` (NIC firmware), and more VFs on a
  Mellanox NIC (``nicSelector.vendor`` ``15b3``, mlx5 firmware); a first ``vfio-pci`` policy on a node whose
  kernel lacks ``intel_iommu=on iommu=pt`` reboots too, which only the node knows (said, not decided);
* nothing: ``resourceName`` and ``priority`` (the device plugin is restarted), ``nodeSelector`` only moves
  which nodes are affected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.engine.plan import Action, Item
from reconciler.engine.sriov import NETWORK, POLICY, network_resources, vm_sriov_networks
from reconciler.nmstate import selects
from reconciler.objects import Obj
from reconciler.safety.nodes import NodeFacts

DRAIN_FIELDS = ("numVfs", "deviceType", "mtu", "isRdma", "linkType", "eSwitchMode", "nicSelector", "needVhostNet")
REBOOT_FIELDS = ("isRdma", "linkType", "eSwitchMode")
MELLANOX = "15b3"


@dataclass(frozen=True)
class SriovImpact:
    name: str
    id: str
    action: str
    disruption: str  # "reboot", "drain" or "none"
    why: tuple[str, ...]
    nodes: tuple[str, ...]
    vms: tuple[str, ...]  # namespace/name of the VMs on the policy's VFs: stopped and started elsewhere

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "disruption": self.disruption,
            "why": list(self.why),
            "nodes": list(self.nodes),
            "vms": list(self.vms),
        }

    def __str__(self) -> str:
        nodes = ", ".join(self.nodes) or "no node known"
        vms = f"; SR-IOV VMs stopped and started elsewhere: {', '.join(self.vms)}" if self.vms else ""
        return f"{self.name}: {self.disruption} of {nodes} ({'; '.join(self.why)}){vms}"


def disruption(before: Obj | None, after: Obj | None) -> tuple[str, tuple[str, ...]]:
    """What applying ``after`` over ``before`` does to the selected nodes: ("reboot"|"drain"|"none", why)."""
    if before is None or after is None:
        what = "new policy: VFs are created" if before is None else "policy deleted: its VFs are removed"
        return "drain", (what,)
    old, new = before.get("spec") or {}, after.get("spec") or {}
    changed = [f for f in DRAIN_FIELDS if old.get(f) != new.get(f)]
    if not changed:
        return "none", ()
    why = [f"{f} {_show(old.get(f))} → {_show(new.get(f))}" for f in changed]
    reboot = [f for f in changed if f in REBOOT_FIELDS]
    vendor = str((new.get("nicSelector") or {}).get("vendor") or "").lower()
    if vendor == MELLANOX and int(new.get("numVfs") or 0) > int(old.get("numVfs") or 0):
        reboot.append("numVfs")
        why.append("more VFs on a Mellanox NIC (mlx5) need a firmware reset")
    return ("reboot" if reboot else "drain"), tuple(why)


def _show(value: Any) -> str:
    return "unset" if value is None else str(value)


def sriov_impacts(
    items: Iterable[Item], nodes: list[NodeFacts], vms: list[Item], after: Iterable[Obj]
) -> list[SriovImpact]:
    """Per changed SR-IOV node policy: the disruption, its nodes, and the VMs on the networks it provides."""
    networks = [o for o in after if o["kind"] == NETWORK]
    out = []
    for item in items:
        if item.action not in (Action.CREATE, Action.UPDATE, Action.DELETE) or not item.name.startswith(f"{POLICY}/"):
            continue
        kind, why = disruption(item.live, item.desired)
        if kind == "none":
            continue
        spec = (item.desired or item.live or {}).get("spec") or {}
        picked = tuple(n.name for n in nodes if selects(spec.get("nodeSelector"), n.labels))
        out.append(SriovImpact(item.name, item.id, item.action.value, kind, why, picked, _vms_on(spec, networks, vms)))
    return out


def _vms_on(policy_spec: dict[str, Any], networks: list[Obj], vms: list[Item]) -> tuple[str, ...]:
    """VMs with an interface on a SriovNetwork of the policy's resource (they run where its VFs are)."""
    resource = policy_spec.get("resourceName")
    keys = {key for key, provides in network_resources(networks).items() if provides == resource}
    found = set()
    for vm in vms:
        obj = vm.desired or vm.live or {}
        if vm_sriov_networks(obj) & keys:
            found.add(f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}")
    return tuple(sorted(found))
