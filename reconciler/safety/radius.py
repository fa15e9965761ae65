"""Blast radius of a plan: which nodes, rollout batches, interfaces, VMs and Services a change reaches (pure).

Why: reviewers decide on a network change by where it lands. These are the facts the safety report
(``reconciler.safety.analysis``) lists next to its findings: per changed node policy the selected nodes,
the ``maxUnavailable`` batches (sized by ``reconciler.nmstate.max_unavailable``) and the interface changes
per node; per changed network (NAD, SR-IOV network, bridge-creating policy) the VMs on it and how each is
affected (from the plan items' ``vm_change``); Services whose endpoints change. No side effects.

VM impacts: ``created``/``deleted``; ``hot-plug``, ``restart``, ``restart-required`` (the VM itself changes,
see ``reconciler.engine.vmchange.classify_vm``); ``next-start`` (a NAD's config changed: it reaches the VM when its
launcher pod is recreated); ``in-place`` (the bridge under the running VM is reconfigured on its node).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reconciler.engine.plan import Action, Item, Plan, VMChange
from reconciler.nmstate import creates, listed_ports, policy_interfaces, vlan_base
from reconciler.objects import Obj, display
from reconciler.safety.nodes import NodeFacts

NNCP, NAD, SRIOV, VM, SVC = (
    "NodeNetworkConfigurationPolicy",
    "NetworkAttachmentDefinition",
    "SriovNetwork",
    "VirtualMachine",
    "Service",
)


@dataclass(frozen=True)
class PolicyImpact:
    name: str
    id: str
    action: str
    nodes: tuple[str, ...]
    control_plane: tuple[str, ...]
    max_unavailable: str
    batches: tuple[tuple[str, ...], ...]
    interfaces: dict[str, tuple[str, ...]]  # node -> what changes there

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "nodes": list(self.nodes),
            "nodeCount": len(self.nodes),
            "controlPlane": list(self.control_plane),
            "maxUnavailable": self.max_unavailable,
            "batches": [list(b) for b in self.batches],
            "interfaces": {n: list(c) for n, c in self.interfaces.items()},
        }


@dataclass(frozen=True)
class VMImpact:
    name: str  # namespace/name
    id: str
    impact: str  # created, deleted, hot-plug, restart, restart-required, next-start, in-place


@dataclass(frozen=True)
class NetworkImpact:
    name: str
    id: str
    action: str
    via: str  # what VMs reach it through: "bridge br1", "NAD apps/vlan100"
    vms: tuple[VMImpact, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "via": self.via,
            "vms": [{"name": v.name, "impact": v.impact} for v in self.vms],
        }


@dataclass(frozen=True)
class ServiceImpact:
    name: str
    vm: str
    why: str


def batches(nodes: list[str], size: int) -> list[list[str]]:
    """Rollout batches in name order (nmstate's order is arbitrary; the batch *size* is what is certain)."""
    size = max(1, size)
    return [nodes[i : i + size] for i in range(0, len(nodes), size)]


def iface_changes(ifaces: list[dict[str, Any]], node: NodeFacts) -> tuple[str, ...]:
    out = []
    for d in ifaces:
        name, kind = str(d.get("name")), str(d.get("type") or "interface")
        cur = node.interfaces.get(name)
        if d.get("state") == "absent":
            if cur is not None or not node.has_state:
                out.append(f"remove {kind} {name}")
            continue
        listed = listed_ports(d)
        ports = listed or []
        if cur is None and node.has_state and not creates(d):
            out.append(f"{name}: missing on the node ({kind} is not created by a policy)")
            continue
        if cur is None:
            extra = f" with ports {', '.join(ports)}" if ports else ""
            extra += f" on {base}" if (base := vlan_base(d)) else ""
            extra += f", mtu {d['mtu']}" if d.get("mtu") else ""
            out.append(f"create {kind} {name}{extra}")
            continue
        diffs = []
        if d.get("mtu") and cur.mtu != d["mtu"]:
            diffs.append(f"mtu {cur.mtu} → {d['mtu']}")
        if listed is not None:  # without a port list nmstate leaves the ports as they are
            added, removed = sorted(set(ports) - set(cur.ports)), sorted(set(cur.ports) - set(ports))
            diffs += [f"+port {p}" for p in added] + [f"-port {p}" for p in removed]
        if d.get("state") and d["state"] != cur.state:
            diffs.append(f"state {cur.state} → {d['state']}")
        if diffs:
            out.append(f"{name}: {', '.join(diffs)}")
    return tuple(out)


def nad_key(obj: Obj) -> tuple[str, str]:
    """(namespace, name) as a VM's multus networkName reaches it."""
    if obj["kind"] == SRIOV:
        return ((obj.get("spec") or {}).get("networkNamespace", ""), obj["metadata"]["name"])
    return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def nad_config(obj: Obj) -> dict[str, Any]:
    try:
        config = json.loads((obj.get("spec") or {}).get("config") or "{}")
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def vm_networks(vm: Obj | None) -> dict[str, tuple[str, str]]:
    """Active multus interfaces of a VM: interface name -> (namespace, network)."""
    if vm is None:
        return {}
    spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    absent = {
        i.get("name")
        for i in (spec.get("domain") or {}).get("devices", {}).get("interfaces") or []
        if i.get("state") == "absent"
    }
    out = {}
    for net in spec.get("networks") or []:
        target = (net.get("multus") or {}).get("networkName")
        if target and net.get("name") not in absent:
            ns, _, name = str(target).rpartition("/")
            out[str(net["name"])] = (ns or vm["metadata"].get("namespace", ""), name)
    return out


def running(item: Item) -> bool:
    status = (item.live or {}).get("status") or {}
    spec = (item.desired or item.live or {}).get("spec") or {}
    return (
        status.get("printableStatus") == "Running"
        or bool(status.get("ready"))
        or spec.get("runStrategy") in ("Always", "RerunOnFailure")
        or spec.get("running") is True
    )


def vm_impact(item: Item, default: str) -> str:
    if item.action in (Action.CREATE, Action.DELETE):
        return f"{item.action.value}d"
    return item.vm_change.value or default


def bridges_of(policy: Obj | None) -> set[str]:
    return {str(i.get("name")) for i in policy_interfaces(policy or {}) if i.get("type") == "linux-bridge"}


def users_by_network(vms: list[Item]) -> dict[tuple[str, str], list[Item]]:
    """Network key -> the VMs attached to it, before or after the change (one pass over the VMs, so a plan
    that changes many networks does not walk every VM once per network)."""
    users: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for vm in vms:
        for key in set(vm_networks(vm.desired).values()) | set(vm_networks(vm.live).values()):
            users[key].append(vm)
    return users


def networks(plan: Plan, nads: dict[str, Obj], vms: list[Item]) -> list[NetworkImpact]:
    out = []
    users: dict[tuple[str, str], list[Item]] | None = None  # built when a network changes (most plans: none)
    for item in plan.changes:
        kind = item.name.split("/")[0]
        obj = item.desired or item.live
        if obj is None:
            continue
        if kind in (NAD, SRIOV):
            config = nad_config(obj)
            if kind == NAD and config.get("type") not in ("bridge", "cnv-bridge", "ovn-k8s-cni-overlay"):
                continue
            keys = {nad_key(obj)}
            via = f"NAD {'/'.join(nad_key(obj))}"
            default = "next-start"
        elif kind == NNCP:
            bridges = bridges_of(item.desired) | bridges_of(item.live)
            if not bridges:
                continue
            keys = {nad_key(n) for n in nads.values() if nad_config(n).get("bridge") in bridges}
            via = f"bridge {', '.join(sorted(bridges))}"
            default = "in-place"
        else:
            continue
        attached = []
        users = users_by_network(vms) if users is None else users
        for vm in {vm.id: vm for key in keys for vm in users.get(key, ())}.values():
            meta = (vm.desired or vm.live or {}).get("metadata") or {}
            attached.append(VMImpact(f"{meta.get('namespace')}/{meta.get('name')}", vm.id, vm_impact(vm, default)))
        out.append(
            NetworkImpact(item.name, item.id, item.action.value, via, tuple(sorted(attached, key=lambda v: v.name)))
        )
    return out


def services(plan: Plan, vms: list[Item]) -> list[ServiceImpact]:
    moving = {}
    for vm in vms:
        if vm.action in (Action.CREATE, Action.DELETE):
            moving[vm.id] = (vm, f"VM {vm.action.value}d")
        elif vm.vm_change == VMChange.RESTART:
            moving[vm.id] = (vm, "VM restarts")
        elif vm.vm_change == VMChange.RESTART_REQUIRED:
            moving[vm.id] = (vm, "VM needs a restart (endpoints drop when it happens)")
    in_namespace: dict[str, list[tuple[Obj, str]]] = defaultdict(list)  # a Service selects in its namespace only
    for vm, why in moving.values():
        obj = vm.desired or vm.live or {}
        in_namespace[obj.get("metadata", {}).get("namespace", "")].append((obj, why))
    out = []
    for item in plan.items:
        svc = item.desired or item.live
        if svc is None or svc["kind"] != SVC:
            continue
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        for obj, why in in_namespace.get(svc["metadata"].get("namespace", ""), ()):
            labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                vm_name = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
                out.append(ServiceImpact(display(svc), vm_name, why))
    return out
