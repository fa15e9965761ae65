"""What the policies that select this node ask of it, as the agent reads them (pure).

* :func:`select_policies` — the NNCPs whose ``spec.nodeSelector`` picks this node;
* :func:`merge_desired` — the interfaces those policies name, merged by name (a disagreement is an error);
* :func:`wanted` — one desired interface normalised to a :class:`Wanted`: type, state, MTU, MAC, the
  ports it lists, STP, bond mode, VLAN base and id, veth peer, VXLAN id and the exact static addresses.

What a policy *means* (its interfaces, ports, VLAN base, selector) comes from :mod:`reconciler.nmstate`,
shared with the controller; this module adds what the agent needs to change a node: a normalised target
per interface. ``reconciler.agent.steps`` turns those targets into ordered changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import nmstate
from reconciler.errors import AgentError
from reconciler.nmstate import Interface

#: a static address set: (ip, prefix length); ``None`` where the policy leaves addresses alone
Addresses = set[tuple[str, int]]


# --------------------------------------------------------------------------- policies
def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def select_policies(policies: Iterable[Mapping[str, Any]], node_labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The NNCPs whose ``spec.nodeSelector`` matches ``node_labels`` (``reconciler.nmstate.selects``), by name."""
    chosen = [dict(p) for p in policies if nmstate.selects((p.get("spec") or {}).get("nodeSelector"), node_labels)]
    return sorted(chosen, key=_name)


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any], where: str, conflicts: list[str]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v, f"{where}.{k}", conflicts)
        else:
            if k in into and into[k] != v:
                conflicts.append(f"{where}.{k}: {into[k]!r} vs {v!r}")
            into[k] = v if not isinstance(v, Mapping) else dict(v)


def _copy(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


def merge_desired(policies: Iterable[Mapping[str, Any]]) -> dict[str, Interface]:
    """Interfaces named by ``policies`` keyed by name. Two policies that disagree on a field are an error."""
    merged: dict[str, Interface] = {}
    owner: dict[str, str] = {}
    for p in sorted(policies, key=_name):
        for iface in nmstate.policy_interfaces(p):
            name = iface.get("name")
            if not name:
                raise AgentError(f"NodeNetworkConfigurationPolicy/{_name(p)}: an interface has no name")
            if name not in merged:
                merged[name] = _copy(iface)
                owner[name] = _name(p)
                continue
            conflicts: list[str] = []
            _deep_merge(merged[name], iface, name, conflicts)
            if conflicts:
                raise AgentError(
                    f"NodeNetworkConfigurationPolicy/{owner[name]} and /{_name(p)} disagree on " + "; ".join(conflicts)
                )
    return merged


# --------------------------------------------------------------------------- one interface, normalised
@dataclass
class Wanted:
    """One desired interface. ``None`` fields are left as the node has them; ``ports`` is None when the
    interface lists none (ports stay), ``addrs[family]`` is None when addresses are left alone (no block, or
    DHCP/autoconf) and otherwise the exact static set (IPv6 link-local left out: the kernel makes those)."""

    name: str
    type: str | None
    state: str
    mtu: int | None = None
    mac: str | None = None
    ports: list[str] | None = None
    stp: bool | None = None
    bond_mode: str | None = None
    vlan_base: str | None = None
    vlan_id: int | None = None
    peer: str | None = None
    vxlan_id: int | None = None
    addrs: dict[int, Addresses | None] = field(default_factory=dict)


def _addr_set(block: Any, fam: int, name: str) -> Addresses | None:
    """``None`` = leave addresses alone (block absent or DHCP); otherwise the exact static set."""
    if not isinstance(block, Mapping):
        return None
    if block.get("enabled") is False:
        return set()
    if block.get("dhcp") or block.get("autoconf"):
        return None
    out: Addresses = set()
    for a in block.get("address") or []:
        try:
            ip = ipaddress.ip_address(str(a["ip"]))
            plen = int(a["prefix-length"])
        except (KeyError, TypeError, ValueError) as e:
            raise AgentError(f"{name}: ipv{fam}.address entry {a!r} is not {{ip, prefix-length}}") from e
        if ip.version != fam:
            raise AgentError(f"{name}: {ip} is not an IPv{fam} address")
        if fam == 6 and ip.is_link_local:
            continue
        out.add((str(ip), plen))
    return out


def wanted(iface: Mapping[str, Any]) -> Wanted:
    """Normalise one desired interface; an unknown ``state`` or a malformed address is an :class:`AgentError`."""
    name = str(iface["name"])
    w = Wanted(name=name, type=iface.get("type"), state=str(iface.get("state") or "up"))
    if w.state not in ("up", "down", "absent"):
        raise AgentError(f"{name}: state {w.state!r} is not up, down or absent")
    if iface.get("mtu") is not None:
        w.mtu = int(iface["mtu"])
    w.mac = str(iface["mac-address"]).upper() if iface.get("mac-address") else None
    w.ports = nmstate.listed_ports(iface)
    stp = (((iface.get("bridge") or {}).get("options") or {}).get("stp") or {}).get("enabled")
    w.stp = None if stp is None else bool(stp)
    w.bond_mode = (iface.get("link-aggregation") or {}).get("mode")
    w.vlan_base, w.vlan_id = nmstate.vlan_base(iface), (iface.get("vlan") or {}).get("id")
    w.peer = (iface.get("veth") or {}).get("peer")
    w.vxlan_id = (iface.get("vxlan") or {}).get("id")
    w.addrs = {4: _addr_set(iface.get("ipv4"), 4, name), 6: _addr_set(iface.get("ipv6"), 6, name)}
    return w


def observed_addrs(o: Mapping[str, Any] | None, fam: int) -> Addresses:
    """The addresses of family ``fam`` an observed (``currentState``) interface has."""
    if o is None:
        return set()
    return {(a["ip"], int(a["prefix-length"])) for a in (o.get(f"ipv{fam}") or {}).get("address") or []}
