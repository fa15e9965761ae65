"""Danger checks of one node policy against one node (pure), shared by the controller and the node agent.

Why: the worst network change is one that cuts a node off from the cluster that would have to repair it.
These checks look at a policy's ``desiredState.interfaces`` next to the node's facts
(:class:`~reconciler.safety.nodes.NodeFacts`) and say, before anything is applied, when a change would
disconnect the node, go Degraded on a missing NIC, steal a port from a bridge/bond the policy does not
manage, or exceed a parent's MTU. ``reconciler.safety.analysis`` runs them over every selected node of every changed
NNCP at plan time; ``reconciler.agent.safety`` runs them on the agent's own observed state before the
first netlink write. No side effects.

Check names (also what ``virtnet.io/accept-risk`` lists): ``disconnect``, ``missing-nic``, ``enslaved``,
``mtu`` (here: VLAN above its parent, and an MTU below the floor the node's own traffic needs -- see
:func:`mtu_floors`); ``disconnect`` also covers a policy that touches the loopback interface.
``reconciler.safety.analysis`` adds ``mtu`` (NAD above bridge), ``no-nodes``, ``control-plane`` and ``in-use``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceRef
from reconciler.nmstate import port_names, vlan_base
from reconciler.safety.nodes import Iface, NodeFacts

ERROR, WARNING = "error", "warning"
#: RFC 8200 section 5: every link that carries IPv6 has an MTU of at least 1280; below it Linux disables IPv6 on
#: the interface and drops every IPv6 address it has, silently (IPv4 keeps working, so IPv4 probes pass)
IPV6_MIN_MTU = 1280
#: RFC 791 / RFC 1122 section 3.3.2: every IPv4 host accepts 576-octet datagrams (the default TCP MSS of 536
#: and DNS over UDP assume it); Linux itself only drops IPv4 below 68, the RFC 791 minimum
IPV4_MIN_MTU = 576
CONTROLLER_TYPES = ("linux-bridge", "bond", "ovs-bridge")
#: (interface, what, nic) -> where in the repository this part of the policy comes from
RefFn = Callable[[str, str, str | None], SourceRef | None]


@dataclass(frozen=True)
class Finding:
    """One danger: ``check`` names the rule, ``node``/``interface`` where, ``ref`` the line that causes it."""

    severity: str
    check: str
    message: str
    node: str = ""
    interface: str = ""
    ref: SourceRef | None = None
    obj: str = ""  # object id of the policy/network/VM concerned (for pictures and grouping)

    def __str__(self) -> str:
        where = (
            f"{self.ref.file}:{self.ref.line}" if self.ref and self.ref.line else (self.ref.file if self.ref else "")
        )
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "check": self.check,
            "message": self.message,
            "node": self.node,
            "interface": self.interface,
            "file": self.ref.file if self.ref else "",
            "line": self.ref.line if self.ref else 0,
            "field": self.ref.field if self.ref else "",
            "object": self.obj,
        }


def missing_message(policy: str, nodes: list[str], nic: str, role: str) -> str:
    return (
        f"would go Degraded on {', '.join(nodes)}: {nic} missing ({role} in policy {policy}; "
        "it neither exists on the node nor is created by any policy)"
    )


def _family(addr: str) -> int:
    return ipaddress.ip_interface(addr).version


def _routable(addr: str) -> bool:
    return not ipaddress.ip_interface(addr).ip.is_link_local


def ip_follows(carrier: Iface, controller: Mapping[str, Any]) -> bool:
    """Does the controller (bridge/bond) take over the carrier's IP configuration?"""
    have = [a for a in carrier.addresses if _routable(a)]
    blocks = {4: controller.get("ipv4") or {}, 6: controller.get("ipv6") or {}}
    if not have:
        return any(
            b.get("enabled") and (b.get("dhcp") or b.get("autoconf") or b.get("address")) for b in blocks.values()
        )
    for version in (4, 6):
        mine = {a.split("/")[0] for a in have if _family(a) == version}
        if not mine:
            continue
        block = blocks[version]
        if not block.get("enabled"):
            return False
        if block.get("dhcp") or block.get("autoconf"):
            continue
        if not mine <= {str(a.get("ip")) for a in block.get("address") or []}:
            return False
    return True


def _keeps_address(carrier: Iface, desired: Mapping[str, Any]) -> bool:
    """A carrier the policy names itself: does its own IP configuration survive?"""
    for version, fam in ((4, "ipv4"), (6, "ipv6")):
        mine = {a.split("/")[0] for a in carrier.addresses if _routable(a) and _family(a) == version}
        block = desired.get(fam)
        if not mine or block is None:
            continue
        if not block.get("enabled"):
            return False
        if block.get("dhcp") or block.get("autoconf"):
            continue
        if "address" in block and not mine <= {str(a.get("ip")) for a in block.get("address") or []}:
            return False
    return True


def node_findings(
    policy: str,
    interfaces: Sequence[Mapping[str, Any]],
    node: NodeFacts,
    *,
    created: set[str],
    merged: Mapping[str, Mapping[str, Any]],
    ref: RefFn,
    obj: str = "",
) -> list[Finding]:
    """Checks a to d of one policy on one node.

    ``created``: interfaces any policy selecting this node creates (they count as existing);
    ``merged``: desired interfaces of all those policies by name (for a VLAN parent's future MTU).
    """
    desired = {str(i["name"]): i for i in interfaces if i.get("name")}
    on = _PolicyOnNode(policy, node, desired, created, merged, ref, obj)
    _loopback_findings(on)  # needs no node state: lo is lo everywhere
    if not node.has_state:
        return on.out
    for name, iface in desired.items():
        if iface.get("state") == "absent":
            continue
        _port_findings(on, name, iface)
        _vlan_findings(on, name, iface)
    _carrier_findings(on)
    _mtu_floor_findings(on)
    return on.out


@dataclass
class _PolicyOnNode:
    """One policy's interfaces next to one node's facts, and the findings so far."""

    policy: str
    node: NodeFacts
    desired: dict[str, Mapping[str, Any]]
    created: set[str]
    merged: Mapping[str, Mapping[str, Any]]
    ref: RefFn
    obj: str
    out: list[Finding] = field(default_factory=list)

    def finding(self, severity: str, check: str, message: str, iface: str, what: str, nic: str | None = None) -> None:
        ref = self.ref(iface, what, nic)
        self.out.append(Finding(severity, check, message, self.node.name, nic or iface, ref, self.obj))

    def future_controllers(self) -> dict[str, str]:
        """port -> the bridge or bond it will be a port of once the policy is applied."""
        return {
            port: name
            for name, iface in self.desired.items()
            if iface.get("state") != "absent"
            for port in port_names(iface)
        }


def _port_findings(on: _PolicyOnNode, name: str, iface: Mapping[str, Any]) -> None:
    """missing-nic, disconnect and enslaved for the ports a bridge or bond of the policy takes."""
    node, policy = on.node, on.policy
    ctype = iface.get("type") or (node.interfaces[name].type if name in node.interfaces else "")
    kind = "bridge" if "bridge" in str(ctype) else str(ctype or "controller")
    carriers = node.carriers()
    for port in port_names(iface):
        cur = node.interfaces.get(port)
        if cur is None:
            if port not in on.created:
                message = missing_message(policy, [node.name], port, f"port of {kind} {name}")
                on.finding(ERROR, "missing-nic", message, name, "port", port)
            continue
        if cur.controller == name:
            continue  # already its port: nothing moves
        if port in carriers and not ip_follows(cur, iface):
            on.finding(
                ERROR,
                "disconnect",
                f"would disconnect node {node.name}: {port} carries {carriers[port]} and would become a port "
                f"of {kind} {name} (policy {policy}), but {name} gets no matching address or DHCP; "
                f"move the IP configuration to {name} or use another NIC",
                name,
                "port",
                port,
            )
        if cur.controller and cur.controller not in on.desired:
            on.finding(
                WARNING,
                "enslaved",
                f"{port} on {node.name} is already a port of {cur.controller}, which policy {policy} does not "
                f"manage: nmstate would move it to {name} and {cur.controller} loses it",
                name,
                "port",
                port,
            )


def _vlan_findings(on: _PolicyOnNode, name: str, iface: Mapping[str, Any]) -> None:
    """missing-nic for a VLAN's base, and mtu for a VLAN above its parent's MTU."""
    base = vlan_base(iface)
    if not base:
        return
    node = on.node
    parent = node.interfaces.get(base)
    if parent is None and base not in on.created:
        message = missing_message(on.policy, [node.name], base, f"base of VLAN {name}")
        on.finding(ERROR, "missing-nic", message, name, "base", base)
    mtu = iface.get("mtu")
    parent_mtu = (on.merged.get(base) or {}).get("mtu") or (parent.mtu if parent else None)
    if mtu and parent_mtu and int(mtu) > int(parent_mtu):
        on.finding(
            ERROR,
            "mtu",
            f"VLAN {name} MTU {mtu} is above its parent {base}'s MTU {parent_mtu} on {node.name} "
            f"(policy {on.policy}): the kernel refuses it and the policy goes Degraded",
            name,
            "mtu",
        )


def _carrier_findings(on: _PolicyOnNode) -> None:
    """disconnect for the interfaces that carry the default route or node IP: set down or absent, stripped
    of their address, or (a bond) losing every port."""
    node, policy = on.node, on.policy
    future = on.future_controllers()
    for name, what in sorted(node.carriers().items()):
        cur = node.interfaces.get(name)
        mine = on.desired.get(name)
        if mine is not None and mine.get("state") in ("absent", "down"):
            on.finding(
                ERROR,
                "disconnect",
                f"would disconnect node {node.name}: {name} carries {what} and policy {policy} sets it "
                f"{mine.get('state')}",
                name,
                "iface",
            )
        elif mine is not None and cur is not None and not _keeps_address(cur, mine):
            on.finding(
                ERROR,
                "disconnect",
                f"would disconnect node {node.name}: {name} carries {what} and policy {policy} removes its address",
                name,
                "iface",
            )
        if cur is not None and cur.type == "bond" and cur.ports:
            moved = [p for p in cur.ports if future.get(p, name) != name]
            if len(moved) == len(cur.ports):
                on.finding(
                    ERROR,
                    "disconnect",
                    f"would disconnect node {node.name}: bond {name} carries {what} and policy {policy} moves "
                    f"all its ports ({', '.join(moved)}) elsewhere",
                    future[moved[0]],
                    "port",
                    moved[0],
                )


def _loopback_findings(on: _PolicyOnNode) -> None:
    """disconnect for a policy that names the loopback interface (``lo``, ``type: loopback``) or makes it a port:
    the node's own traffic (kubelet to a local API server, etcd, health checks on 127.0.0.1 and ::1) runs over
    it, and setting it down or absent or stripping its addresses breaks the node while its uplink looks fine."""
    node = on.node

    def loopback(name: str, iface: Mapping[str, Any] | None) -> bool:
        known = node.interfaces.get(name)
        return (
            name == "lo"
            or (known is not None and known.type == "loopback")
            or bool(iface and iface.get("type") == "loopback")
        )

    for name, iface in on.desired.items():
        for lo in [n for n in (name, *port_names(iface)) if loopback(n, iface if n == name else None)]:
            on.finding(
                ERROR,
                "disconnect",
                f"would break node {node.name or '(every node)'}: policy {on.policy} changes the loopback interface "
                f"{lo}; the node's own traffic (kubelet, a local API server and etcd, 127.0.0.1 and ::1) runs over "
                "it, and no policy may touch it",
                name,
                "iface",
            )


def _families(addresses: Iterable[str]) -> set[int]:
    return {ipaddress.ip_interface(a).version for a in addresses if _routable(a)}


def _desired_families(iface: Mapping[str, Any]) -> set[int]:
    out = set()
    for version in (4, 6):
        block = iface.get(f"ipv{version}")
        dynamic = isinstance(block, Mapping) and bool(block.get("dhcp") or block.get("autoconf"))
        if isinstance(block, Mapping) and block.get("enabled") is not False and (block.get("address") or dynamic):
            out.add(version)
    return out


def mtu_floors(node: NodeFacts, desired: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[int, str]]:
    """interface -> (the least MTU it may have once ``desired`` is applied, why).

    :data:`IPV6_MIN_MTU` for an interface with an IPv6 address (now or desired) or a default route (its
    IPv6 link-local and any IPv6 default route live there too); :data:`IPV4_MIN_MTU` for one with IPv4
    addresses only; and the same for every link beneath one -- its bridge or bond ports and its VLAN base --
    because a bridge's or VLAN's MTU cannot exceed what sits under it."""
    floors: dict[str, tuple[int, str]] = {}
    for name in sorted(set(node.interfaces) | set(desired)):
        cur, want = node.interfaces.get(name), desired.get(name) or {}
        if want.get("state") == "absent":
            continue
        fams = _families(cur.addresses if cur else ()) | _desired_families(want)
        if name in node.default_route:
            floors[name] = (IPV6_MIN_MTU, "carries the default route")
        elif 6 in fams:
            floors[name] = (IPV6_MIN_MTU, "carries IPv6 addresses")
        elif 4 in fams:
            floors[name] = (IPV4_MIN_MTU, "carries IPv4 addresses")
    lowers: dict[str, list[tuple[str, str]]] = {}
    for name in set(node.interfaces) | set(desired):
        cur, want = node.interfaces.get(name), desired.get(name) or {}
        ports = port_names(want) if "bridge" in want or "link-aggregation" in want else list(cur.ports if cur else ())
        base = vlan_base(want) or (cur.vlan_base if cur else None)
        lowers[name] = [(p, f"is a port of {name}") for p in ports] + (
            [(base, f"is the base of VLAN {name}")] if base else []
        )
    pending = sorted(floors)
    while pending:  # push each floor down to the links beneath (ports of ports, the base of a VLAN on a bond)
        upper = pending.pop()
        floor, why = floors[upper]
        for lower, how in lowers.get(upper, []):
            if floor > floors.get(lower, (0, ""))[0]:
                floors[lower] = (floor, f"{how}, and {upper} {why}")
                pending.append(lower)
    return floors


def floor_message(node: str, name: str, mtu: int, floor: int, why: str) -> str:
    """The words both sides use for an MTU below its floor."""
    rule = (
        "RFC 8200: IPv6 needs 1280, and below it Linux drops the interface's IPv6 addresses"
        if floor >= IPV6_MIN_MTU
        else "RFC 791/1122: IPv4 hosts must take 576-octet datagrams"
    )
    return f"MTU {mtu} on {name} would break node {node}'s own traffic: {name} {why}, so at least {floor} ({rule})"


def _mtu_floor_findings(on: _PolicyOnNode) -> None:
    """mtu for an MTU the policy sets (or a port it attaches) below the floor of :func:`mtu_floors`; an MTU the
    node already has is not a change and is left to the other checks."""
    node = on.node
    future = on.future_controllers()
    for name, (floor, why) in sorted(mtu_floors(node, on.desired).items()):
        cur, want = node.interfaces.get(name), on.desired.get(name) or {}
        mtu = want.get("mtu") if isinstance(want.get("mtu"), int) else (cur.mtu if cur else None)
        changes = isinstance(want.get("mtu"), int) and (cur is None or cur.mtu != mtu)
        joins = name in future and (cur is None or cur.controller != future[name])
        if mtu is None or mtu >= floor or not (changes or joins):
            continue
        on.finding(ERROR, "mtu", floor_message(node.name, name, int(mtu), floor, why), name, "mtu")
