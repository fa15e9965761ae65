"""Node network → kubernetes-nmstate NodeNetworkConfigurationPolicies (pure).

Bridges, bonds and VLANs are described in nmstate's own YAML shape: bridge ports are objects
(``{name: eth1}``), bond ports are strings, and IP is disabled on L2-only devices so nmstate never
runs DHCP on an uplink that has become a port.
"""

from __future__ import annotations

from typing import Any

from reconciler import nmstate
from reconciler.model.networks import Bond, BridgeNetworkSpec, NodeNetworkSpec
from reconciler.model.repo import Entry
from reconciler.objects import Obj


def _l2_only() -> dict[str, Any]:
    """IP off on L2 devices; a fresh dict each time so rendered objects never share mutable parts."""
    return {"ipv4": {"enabled": False}, "ipv6": {"enabled": False}}


def _with_mtu(iface: dict[str, Any], mtu: int | None) -> dict[str, Any]:
    if mtu is not None:
        iface["mtu"] = mtu
    return iface


def bond_interface(bond: Bond) -> dict[str, Any]:
    aggregation = nmstate.bond_aggregation(bond.mode, bond.nics, bond.all_options)
    iface = {"name": bond.name, "type": "bond", "state": "up", **_l2_only(), "link-aggregation": aggregation}
    return _with_mtu(iface, bond.mtu)


def _nncp(name: str, selector: dict[str, str], max_unavailable: int | str | None, desired: Obj) -> Obj:
    spec: dict[str, Any] = {"desiredState": desired}
    if selector:
        spec["nodeSelector"] = dict(sorted(selector.items()))
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def bridge_policy(entry: Entry[BridgeNetworkSpec], node_interfaces: frozenset[str] = frozenset()) -> Obj:
    """The NNCP that creates a BridgeNetwork's bridge (only for networks that define it).

    ``node_interfaces`` are the bonds/VLANs that NodeNetworks create: an uplink that is one of them is
    configured there, so this policy must not redeclare it as an ethernet NIC.
    """
    spec = entry.spec
    interfaces: list[dict[str, Any]] = []
    ports: list[dict[str, Any]] = []
    if spec.uplink is not None:
        if spec.uplink.bond is not None:
            interfaces.append(bond_interface(spec.uplink.bond))
        elif spec.mtu is not None and spec.uplink.nic not in node_interfaces:
            # a port's MTU must be at least the bridge's, or the kernel clamps the bridge down
            interfaces.append({"name": spec.uplink.nic, "type": "ethernet", "state": "up", "mtu": spec.mtu})
        port: dict[str, Any] = {"name": spec.uplink.port}
        if spec.uplink.vlan is not None:
            vlan = spec.uplink.vlan
            port["vlan"] = nmstate.port_vlan(vlan.mode, vlan.ranges(), vlan.tag, vlan.enable_native)
        ports.append(port)
    bridge = {
        "name": spec.bridge,
        "type": "linux-bridge",
        "state": "up",
        **_l2_only(),
        "bridge": {"options": {"stp": {"enabled": spec.stp}}, "port": ports},
    }
    interfaces.append(_with_mtu(bridge, spec.mtu))
    return _nncp(entry.name, spec.node_selector, spec.max_unavailable, {"interfaces": interfaces})


def node_policy(entry: Entry[NodeNetworkSpec]) -> Obj:
    """The NNCP for a NodeNetwork: bonds, VLANs (optionally addressed) and OVN bridge mappings."""
    spec = entry.spec
    interfaces = [bond_interface(b) for b in spec.bonds]
    for vlan in spec.vlans:
        iface: dict[str, Any] = {
            "name": vlan.ifname,
            "type": "vlan",
            "state": "up",
            "vlan": {"base-iface": vlan.base, "id": vlan.id},
        }
        if vlan.addresses:
            v4 = [a for a in vlan.addresses if ":" not in a]
            v6 = [a for a in vlan.addresses if ":" in a]
            iface["ipv4"] = _static(v4)
            iface["ipv6"] = _static(v6)
        else:
            iface.update(_l2_only())
        interfaces.append(_with_mtu(iface, vlan.mtu))
    desired: Obj = {}
    if interfaces:
        desired["interfaces"] = interfaces
    if spec.ovn_bridge_mappings:
        desired["ovn"] = {
            "bridge-mappings": [
                {"localnet": m.localnet, "bridge": m.bridge, "state": "present"} for m in spec.ovn_bridge_mappings
            ]
        }
    return _nncp(entry.name, spec.node_selector, spec.max_unavailable, desired)


def _static(addresses: list[str]) -> dict[str, Any]:
    if not addresses:
        return {"enabled": False}
    return {
        "enabled": True,
        "dhcp": False,
        "address": [{"ip": a.split("/")[0], "prefix-length": int(a.split("/")[1])} for a in addresses],
    }
