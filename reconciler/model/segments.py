"""Which layer-2 segment a network puts its VMs on, and which subnets it declares (pure).

One home for this knowledge: the cross-document rules (``reconciler.model.rules``: one address per segment)
and the connectivity analysis (``reconciler.safety.dataplane``: who can reach whom) must agree on what a
broadcast domain is, or a plan would call two networks apart that validation calls one.

Two network names on one Linux bridge and VLAN are one segment; so are two localnet networks on one
physical network and VLAN, and two SR-IOV networks whose VFs sit on the same physical function(s) and VLAN
(the PF's embedded switch forwards between its VFs, and tags them alike on the wire). An OVN layer-2
network is a segment of its own.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from reconciler.model.repo import Entry

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def pf_name(pf: str) -> str:
    """``ens1f0#0-7`` → ``ens1f0``: a VF range selects VFs of the PF, the PF is the switch."""
    return pf.partition("#")[0]


def segment(net: Entry[Any] | None, name: str) -> tuple[Any, ...]:
    """The key of the layer-2 segment network ``name`` (its document ``net``, None when undefined) is on."""
    if net is None:
        return ("network", name)
    if net.kind == "BridgeNetwork":
        return ("bridge", net.spec.bridge, net.spec.vlan)
    if net.kind == "OvnNetwork" and net.spec.topology == "localnet":
        return ("localnet", net.spec.physical_network_name or net.name, net.spec.vlan)
    if net.kind == "SriovNetwork":
        pfs = tuple(sorted({pf_name(p) for p in net.spec.pf_names} | set(net.spec.root_devices)))
        if not pfs:  # selected by vendor/device id: which PF is not known here, only that the resource's VFs are
            return ("sriov-resource", net.spec.resource_name, net.spec.vlan or None)
        return ("sriov", pfs, net.spec.vlan or None)
    return ("network", name)


#: the spec fields :func:`segment` reads, per kind, in the order a moved segment is blamed on them (the safety
#: analysis names the field that moved a network to another segment); keep the two together
SEGMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "BridgeNetwork": ("bridge", "vlan"),
    "OvnNetwork": ("topology", "physical_network_name", "vlan"),
    "SriovNetwork": ("pf_names", "root_devices", "vlan", "resource_name"),
}


def segment_text(net: Entry[Any] | None) -> str:
    """What makes two networks one segment, in words (for messages naming a second network)."""
    if net is None or (net.kind == "OvnNetwork" and net.spec.topology == "layer2"):
        return "network"
    if net.kind == "BridgeNetwork":
        vlan = f"VLAN {net.spec.vlan}" if net.spec.vlan is not None else "no VLAN"
        return f"bridge {net.spec.bridge} and {vlan}"
    return "localnet and VLAN" if net.kind == "OvnNetwork" else "SR-IOV PF and VLAN"


def segment_label(key: tuple[Any, ...]) -> str:
    """A segment key as people read it: ``bridge br1 VLAN 100``, ``localnet physnet-dc VLAN 50``."""
    kind = key[0]
    if kind == "bridge":
        return f"bridge {key[1]} " + (f"VLAN {key[2]}" if key[2] is not None else "untagged")
    if kind == "localnet":
        return f"localnet {key[1]} " + (f"VLAN {key[2]}" if key[2] is not None else "untagged")
    if kind == "sriov":
        return f"SR-IOV PF {'+'.join(key[1])} " + (f"VLAN {key[2]}" if key[2] is not None else "untagged")
    if kind == "sriov-resource":
        return f"SR-IOV resource {key[1]} " + (f"VLAN {key[2]}" if key[2] is not None else "untagged")
    if kind == "pod":
        return "pod network"
    return f"network {key[1]}"


def subnets(net: Entry[Any]) -> list[Subnet]:
    """The subnets a network declares: a BridgeNetwork's ``subnet`` (for checks, not IPAM), an OvnNetwork's
    ``subnets`` (its IPAM ranges); none for SR-IOV."""
    if net.kind == "BridgeNetwork" and net.spec.subnet:
        return [ipaddress.ip_network(net.spec.subnet)]
    if net.kind == "OvnNetwork":
        return [ipaddress.ip_network(s) for s in net.spec.subnets]
    return []
