"""Node facts: what each node's network looks like now, as the safety analysis needs it.

Why: "would this change cut a node off?" can only be answered against the node as it is: which NIC
carries the default route and the node IP, which NICs are already ports of a bridge or bond, which
MTUs the parents of a VLAN have, the labels a ``nodeSelector`` picks by (``reconciler.nmstate.selects``)
and which nodes run the control plane. The controller reads that from ``Node`` and ``NodeNetworkState``
objects; the node agent builds the same facts from its own observed ``currentState``
(:func:`facts_from_state`), so both sides run the same checks (``reconciler.safety.checks``).

Pure: the pipeline reads the objects (``reconciler.pipeline.read_nodes``) and hands them to
:func:`build_nodes`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.nmstate import port_names, vlan_base
from reconciler.objects import Obj

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
DEFAULT_DESTINATIONS = ("0.0.0.0/0", "::/0")
MAIN_TABLE = 254


@dataclass(frozen=True)
class Iface:
    """One interface of a node (nmstate ``currentState`` entry, reduced)."""

    name: str
    type: str
    mtu: int | None = None
    state: str = "up"
    addresses: tuple[str, ...] = ()  # "ip/prefix", both families
    dhcp: bool = False  # DHCP or IPv6 autoconf is on: the address follows whatever the interface becomes
    controller: str | None = None  # the bridge or bond this interface is a port of
    ports: tuple[str, ...] = ()  # for a bridge or bond
    vlan_base: str | None = None

    @property
    def ips(self) -> set[str]:
        return {a.split("/")[0] for a in self.addresses}


@dataclass(frozen=True)
class NodeFacts:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    interfaces: Mapping[str, Iface] = field(default_factory=dict)
    default_route: tuple[str, ...] = ()  # interfaces a default route leaves through
    gateways: tuple[str, ...] = ()
    node_ip: str | None = None
    node_ip_iface: str | None = None
    control_plane: bool = False
    has_state: bool = True  # False: no NodeNetworkState (interface checks are skipped for this node)

    def carriers(self) -> dict[str, str]:
        """Interfaces whose loss disconnects the node, with what they carry (for messages)."""
        out: dict[str, list[str]] = {}
        for name in self.default_route:
            via = f" via {', '.join(self.gateways)}" if self.gateways else ""
            out.setdefault(name, []).append(f"the default route{via}")
        if self.node_ip_iface:
            out.setdefault(self.node_ip_iface, []).append(f"the node IP {self.node_ip}")
        return {name: " and ".join(what) for name, what in out.items()}


def is_control_plane(labels: Mapping[str, str]) -> bool:
    return any(k in labels for k in CONTROL_PLANE_LABELS)


def _addresses(iface: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    out: list[str] = []
    dynamic = False
    for fam in ("ipv4", "ipv6"):
        block = iface.get(fam) or {}
        if not block.get("enabled"):
            continue
        dynamic = dynamic or bool(block.get("dhcp") or block.get("autoconf"))
        out += [f"{a['ip']}/{a.get('prefix-length', 32 if fam == 'ipv4' else 128)}" for a in block.get("address") or []]
    return tuple(out), dynamic


def interfaces_of(state: Mapping[str, Any]) -> dict[str, Iface]:
    """``currentState.interfaces`` → :class:`Iface` by name; a port's controller comes from either side
    (the port's ``controller``/``master`` field or the bridge's/bond's port list)."""
    raw = [i for i in state.get("interfaces") or [] if isinstance(i, dict) and i.get("name")]
    controller_of: dict[str, str] = {}
    for iface in raw:
        for port in port_names(iface):
            controller_of[port] = iface["name"]
    out: dict[str, Iface] = {}
    for iface in raw:
        name = iface["name"]
        addrs, dynamic = _addresses(iface)
        out[name] = Iface(
            name=name,
            type=str(iface.get("type") or "ethernet"),
            mtu=int(iface["mtu"]) if iface.get("mtu") is not None else None,
            state=str(iface.get("state") or "up"),
            addresses=addrs,
            dhcp=dynamic,
            controller=iface.get("controller") or iface.get("master") or controller_of.get(name),
            ports=tuple(port_names(iface)),
            vlan_base=vlan_base(iface),
        )
    return out


def default_routes(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Default routes of the main table with an outgoing interface."""
    routes = (state.get("routes") or {}).get("running") or []
    return [
        r
        for r in routes
        if r.get("destination") in DEFAULT_DESTINATIONS
        and r.get("next-hop-interface")
        and int(r.get("table-id") or MAIN_TABLE) == MAIN_TABLE
    ]


def _holder(interfaces: Mapping[str, Iface], ip: str) -> str | None:
    for name, iface in sorted(interfaces.items()):
        if ip in iface.ips:
            return name
    return None


def _gateway_holder(interfaces: Mapping[str, Iface], gateways: Iterable[str]) -> str | None:
    """The interface whose address is on the default gateway's subnet (the address used to reach it)."""
    for gw in gateways:
        try:
            gw_ip = ipaddress.ip_address(gw)
        except ValueError:
            continue
        for name, iface in sorted(interfaces.items()):
            for addr in iface.addresses:
                net = ipaddress.ip_interface(addr).network
                if net.version == gw_ip.version and gw_ip in net and net.prefixlen < net.max_prefixlen:
                    return name
    return None


def facts_from_state(
    name: str, labels: Mapping[str, str], state: Mapping[str, Any] | None, node_ip: str | None = None
) -> NodeFacts:
    """Facts of one node from its nmstate ``currentState`` (a NodeNetworkState's or the agent's own).

    The node IP is ``node_ip`` when known (Node ``InternalIP``); otherwise the first address of the
    interface the default route leaves through (or that reaches the default gateway).
    """
    if state is None:
        return NodeFacts(name, dict(labels), {}, control_plane=is_control_plane(labels), has_state=False)
    interfaces = interfaces_of(state)
    routes = default_routes(state)
    via = tuple(dict.fromkeys(str(r["next-hop-interface"]) for r in routes))
    gateways = tuple(dict.fromkeys(str(r["next-hop-address"]) for r in routes if r.get("next-hop-address")))
    holder = _holder(interfaces, node_ip) if node_ip else None
    if holder is None:
        holder = next((v for v in via if v in interfaces and interfaces[v].addresses), None)
        holder = holder or _gateway_holder(interfaces, gateways)
        if holder is not None and not node_ip:
            node_ip = interfaces[holder].addresses[0].split("/")[0]
    return NodeFacts(
        name=name,
        labels=dict(labels),
        interfaces=interfaces,
        default_route=via,
        gateways=gateways,
        node_ip=node_ip,
        node_ip_iface=holder,
        control_plane=is_control_plane(labels),
    )


def _internal_ip(node: Obj) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and addr.get("address"):
            return str(addr["address"])
    return None


def build_nodes(nodes: Iterable[Obj], states: Iterable[Obj]) -> list[NodeFacts]:
    """Join Node objects with NodeNetworkStates by name; a Node without a state keeps labels only."""
    by_name = {s["metadata"]["name"]: (s.get("status") or {}).get("currentState") for s in states}
    out = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = meta["name"]
        out.append(facts_from_state(name, meta.get("labels") or {}, by_name.get(name), _internal_ip(node)))
    return sorted(out, key=lambda n: n.name)
