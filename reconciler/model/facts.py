"""The network facts the cross-document rules need, read in one place from virtnet documents *and* plain
manifests (pure), so a rule holds however an object is written.

A plain VirtualMachine's MACs and Multus references, a plain NNCP's bridges, bonds, ports and VLAN bases, a
plain SriovNetworkNodePolicy's PFs and a plain SriovNetwork's target namespace are the same facts as those
of a ``VM``, ``BridgeNetwork``, ``NodeNetwork`` or ``SriovNetwork`` document; ``reconciler.model.rules``
checks the facts, never the documents' shapes. Plain manifests are the user's data, not a schema: a field
of the wrong type is skipped here (the render checks report it), never trusted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.errors import SourceRef
from reconciler.model.loader import Document, Path_
from reconciler.model.repo import Raw, Repo
from reconciler.model.segments import pf_name

#: a bridge or bond port belongs to one master; a VLAN base or an SR-IOV PF may carry several users
Use = Literal["port", "base", "pf"]


@dataclass(frozen=True)
class Created:
    """An interface a node policy creates (a bridge, bond or VLAN), on the nodes its selector picks."""

    name: str
    type: str  # nmstate's type: linux-bridge, bond, vlan, ...
    selector: dict[str, str]
    ref: SourceRef
    from_bridge_network: bool = False  # a BridgeNetwork's bridge (rule_bridges reports those created twice)


@dataclass(frozen=True)
class Claim:
    """An existing interface used by a node policy or SR-IOV policy: as a port, a VLAN base or a PF."""

    iface: str
    use: Use
    what: str
    selector: dict[str, str]
    ref: SourceRef

    @property
    def exclusive(self) -> bool:
        return self.use == "port"


@dataclass(frozen=True)
class Port:
    """``port`` is enslaved to the bridge ``bridge`` (a BridgeNetwork uplink or a plain NNCP bridge port)."""

    bridge: str
    port: str
    selector: dict[str, str]
    ref: SourceRef


@dataclass(frozen=True)
class Mac:
    """``doc`` and ``path`` rather than a SourceRef: its line is looked up only for a problem (12,400 eager
    look-ups were a fifth of reading the facts of 10,000 VMs)."""

    mac: str
    doc: Document
    path: Path_
    namespace: str | None = None  # the VM's: a namespace that opts out of KubeMacPool is outside its pool

    @property
    def ref(self) -> SourceRef:
        return self.doc.ref(self.path)


@dataclass(frozen=True)
class Attachment:
    """A plain VirtualMachine's Multus network: ``namespace/name`` or ``name`` (the VM's own namespace)."""

    vm_namespace: str
    namespace: str
    name: str
    ref: SourceRef


@dataclass
class Facts:
    created: list[Created] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)
    macs: list[Mac] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    sriov_targets: list[tuple[str, SourceRef]] = field(default_factory=list)  # namespaces SriovNetworks feed


def facts_of(repo: Repo) -> Facts:
    facts = Facts()
    _from_documents(repo, facts)
    for raw in repo.raw:
        reader = _RAW_READERS.get(raw.obj.get("kind", ""))
        if reader is not None:
            reader(raw, facts)
    return facts


def _from_documents(repo: Repo, facts: Facts) -> None:
    """Bridges first, then node networks, SR-IOV and VMs: the order the messages have always named them in."""
    for b in repo.of("BridgeNetwork"):
        spec, sel = b.spec, b.spec.node_selector
        if spec.defines_bridge:
            facts.created.append(Created(spec.bridge, "linux-bridge", sel, b.ref("spec", "bridge"), True))
        up = spec.uplink
        if up is not None:
            where = b.ref("spec", "uplink", "nic") if up.nic is not None else b.ref("spec", "uplink", "bond", "name")
            facts.ports.append(Port(spec.bridge, up.port, sel, where))
            if up.nic is not None:
                facts.claims.append(Claim(up.nic, "port", f"port of bridge {spec.bridge}", sel, where))
            else:
                facts.created.append(Created(up.bond.name, "bond", sel, where))
                for k, nic in enumerate(up.bond.nics):
                    ref = b.ref("spec", "uplink", "bond", "nics", k)
                    facts.claims.append(Claim(nic, "port", f"port of bond {up.bond.name}", sel, ref))
    for nn in repo.of("NodeNetwork"):
        sel = nn.spec.node_selector
        for i, bond in enumerate(nn.spec.bonds):
            facts.created.append(Created(bond.name, "bond", sel, nn.ref("spec", "bonds", i, "name")))
            for k, nic in enumerate(bond.nics):
                ref = nn.ref("spec", "bonds", i, "nics", k)
                facts.claims.append(Claim(nic, "port", f"port of bond {bond.name}", sel, ref))
        for i, vlan in enumerate(nn.spec.vlans):
            named = nn.ref("spec", "vlans", i, "name" if vlan.name else "base")
            facts.created.append(Created(vlan.ifname, "vlan", sel, named))
            ref = nn.ref("spec", "vlans", i, "base")
            facts.claims.append(Claim(vlan.base, "base", f"base of VLAN {vlan.ifname}", sel, ref))
    for net in repo.of("SriovNetwork"):
        for k, pf in enumerate(net.spec.pf_names):
            ref = net.ref("spec", "pfNames", k)
            facts.claims.append(Claim(pf_name(pf), "pf", f"SR-IOV PF of {net.name}", net.spec.node_selector, ref))
    for vm in repo.of("VM"):
        ns = vm.meta.namespace
        if vm.spec.pod_mac is not None:
            facts.macs.append(Mac(vm.spec.pod_mac, vm.doc, ("spec", "podMac"), ns))
        for i, iface in enumerate(vm.spec.interfaces):
            if iface.mac is not None:
                facts.macs.append(Mac(iface.mac, vm.doc, ("spec", "interfaces", i, "mac"), ns))


# ---- plain manifests -----------------------------------------------------------------------------------


def _dig(data: Any, *path: str | int) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _items(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list) else iter(())


def _selector(value: Any) -> dict[str, str]:
    """A plain manifest's nodeSelector; anything but a string map selects every node (the safe reading)."""
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value
    return {}


def _raw_nncp(raw: Raw, facts: Facts) -> None:
    sel = _selector(_dig(raw.obj, "spec", "nodeSelector"))
    at: tuple[str | int, ...] = ("spec", "desiredState", "interfaces")
    for i, iface in _items(_dig(raw.obj, *at)):
        name, kind = (iface.get("name"), iface.get("type")) if isinstance(iface, dict) else (None, None)
        if not isinstance(name, str) or iface.get("state") == "absent":
            continue
        if kind in ("linux-bridge", "bond", "vlan", "ovs-bridge"):
            facts.created.append(Created(name, str(kind), sel, raw.ref(*at, i, "name")))
        for k, port in _items(_dig(iface, "bridge", "port")):
            port_name = port.get("name") if isinstance(port, dict) else None
            if isinstance(port_name, str):
                ref = raw.ref(*at, i, "bridge", "port", k, "name")
                facts.claims.append(Claim(port_name, "port", f"port of bridge {name}", sel, ref))
                if kind == "linux-bridge":
                    facts.ports.append(Port(name, port_name, sel, ref))
        for k, port in _items(_dig(iface, "link-aggregation", "port")):
            if isinstance(port, str):
                ref = raw.ref(*at, i, "link-aggregation", "port", k)
                facts.claims.append(Claim(port, "port", f"port of bond {name}", sel, ref))
        base = _dig(iface, "vlan", "base-iface")
        if isinstance(base, str):
            ref = raw.ref(*at, i, "vlan", "base-iface")
            facts.claims.append(Claim(base, "base", f"base of VLAN {name}", sel, ref))


def _raw_sriov_policy(raw: Raw, facts: Facts) -> None:
    sel = _selector(_dig(raw.obj, "spec", "nodeSelector"))
    name = raw.obj["metadata"]["name"]
    for k, pf in _items(_dig(raw.obj, "spec", "nicSelector", "pfNames")):
        if isinstance(pf, str):
            ref = raw.ref("spec", "nicSelector", "pfNames", k)
            facts.claims.append(Claim(pf_name(pf), "pf", f"SR-IOV PF of {name}", sel, ref))


def _raw_sriov_network(raw: Raw, facts: Facts) -> None:
    target = _dig(raw.obj, "spec", "networkNamespace")
    where = ("spec", "networkNamespace") if target is not None else ("metadata", "namespace")
    target = target if target is not None else raw.obj["metadata"].get("namespace")
    if isinstance(target, str):
        facts.sriov_targets.append((target, raw.ref(*where)))


def _raw_vm(raw: Raw, facts: Facts) -> None:
    vmi: tuple[str, ...] = ("spec", "template", "spec")
    ns = raw.obj["metadata"].get("namespace")
    for i, iface in _items(_dig(raw.obj, *vmi, "domain", "devices", "interfaces")):
        mac = iface.get("macAddress") if isinstance(iface, dict) else None
        if isinstance(mac, str):
            path: Path_ = (*vmi, "domain", "devices", "interfaces", i, "macAddress")
            facts.macs.append(Mac(mac.lower(), raw.doc, path, ns if isinstance(ns, str) else None))
    for i, net in _items(_dig(raw.obj, *vmi, "networks")):
        name = _dig(net, "multus", "networkName")
        if isinstance(name, str) and isinstance(ns, str):
            target, _, nad = name.rpartition("/")
            ref = raw.ref(*vmi, "networks", i, "multus", "networkName")
            facts.attachments.append(Attachment(ns, target or ns, nad, ref))


_RAW_READERS = {
    "NodeNetworkConfigurationPolicy": _raw_nncp,
    "SriovNetworkNodePolicy": _raw_sriov_policy,
    "SriovNetwork": _raw_sriov_network,
    "VirtualMachine": _raw_vm,
}
