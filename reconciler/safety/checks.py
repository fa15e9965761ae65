"""Danger checks of one node policy against one node (pure), shared by the controller and the node agent.

Why: the worst network change is one that cuts a node off from the cluster that would have to repair it.
These checks look at a policy's ``desiredState.interfaces`` next to the node's facts
(:class:`~reconciler.safety.nodes.NodeFacts`) and say, before anything is applied, when a change would
disconnect the node, go Degraded on a missing NIC, steal a port from a bridge/bond the policy does not
manage, or exceed a parent's MTU. ``reconciler.safety.analysis`` runs them over every selected node of every changed
NNCP at plan time; ``reconciler.agent.safety`` runs them on the agent's own observed state before the
first netlink write. No side effects.

Check names (also what ``virtnet.io/accept-risk`` lists): ``disconnect``, ``missing-nic``, ``enslaved``,
``mtu`` (here: VLAN above its parent); ``reconciler.safety.analysis`` adds ``mtu`` (NAD above bridge),
``no-nodes``, ``control-plane`` and ``in-use``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceRef
from reconciler.nmstate import port_names, vlan_base
from reconciler.safety.nodes import Iface, NodeFacts

ERROR, WARNING = "error", "warning"
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
    if not node.has_state:
        return []
    desired = {str(i["name"]): i for i in interfaces if i.get("name")}
    on = _PolicyOnNode(policy, node, desired, created, merged, ref, obj)
    for name, iface in desired.items():
        if iface.get("state") == "absent":
            continue
        _port_findings(on, name, iface)
        _vlan_findings(on, name, iface)
    _carrier_findings(on)
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
