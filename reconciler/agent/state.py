"""Kernel dumps → the nmstate ``currentState`` shape.

Why: the controller, the diff and the reports all speak nmstate (the same shape a NodeNetworkState
carries), while the kernel speaks rtnetlink. This module is the one translation between them.

It is PURE: it never talks to the kernel. ``rtnl.py`` decodes the kernel's messages into the plain
records of :class:`Dumps` (one dump per kind: links, addresses, routes), and :func:`current_state`
maps those records to nmstate. Recorded dumps (JSON) therefore make it unit-testable.

Record shapes (plain dicts, all keys present, ``None`` when the kernel did not say):

* link: ``index, name, kind`` (rtnetlink ``IFLA_INFO_KIND`` or ``None`` for a plain NIC),
  ``link_type`` (``ether``/``loopback``/...), ``mtu, up`` (``IFF_UP``), ``mac, master`` (ifindex),
  ``link`` (``IFLA_LINK`` ifindex: the vlan base or the veth peer), ``stp`` (bridge ``stp_state``),
  ``vlan_id, bond_mode, vxlan_id``.
* address: ``index, family`` (4|6), ``ip, prefixlen, scope`` (0 global, 253 link, 254 host).
* route: ``family, dst, dst_len, gateway, oif, table, proto, scope, type, priority``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

#: rtnetlink kind → nmstate interface type
KIND_TO_TYPE: dict[str, str] = {
    "bridge": "linux-bridge",
    "bond": "bond",
    "vlan": "vlan",
    "veth": "veth",
    "vxlan": "vxlan",
    "dummy": "dummy",
    "macvlan": "mac-vlan",
    "tun": "tun",
}
TYPE_TO_KIND: dict[str, str] = {v: k for k, v in KIND_TO_TYPE.items()}

#: nmstate bond modes by kernel number (IFLA_BOND_MODE)
BOND_MODES = [
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
]

LOCAL_TABLE = 255
RT_SCOPE_LINK = 253
#: rtnetlink ``RTPROT_KERNEL``: a route the kernel made for an address (it follows the address by itself)
RT_PROTO_KERNEL = 2


@dataclass(frozen=True)
class Dumps:
    """One dump per kind, already reduced to plain records (see the module docstring)."""

    links: list[Record] = field(default_factory=list)
    addresses: list[Record] = field(default_factory=list)
    routes: list[Record] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[Record]]:
        return {"links": self.links, "addresses": self.addresses, "routes": self.routes}

    @classmethod
    def from_dict(cls, data: dict[str, list[Record]]) -> Dumps:
        return cls(list(data.get("links", [])), list(data.get("addresses", [])), list(data.get("routes", [])))


def iface_type(link: Record) -> str:
    """The nmstate type of one link record."""
    kind = link.get("kind")
    if kind:
        return KIND_TO_TYPE.get(str(kind), str(kind))
    if link.get("link_type") == "loopback" or link.get("name") == "lo":
        return "loopback"
    return "ethernet"


def _is_kernel_managed_address(addr: Record) -> bool:
    # IPv6 link-local (and anything scoped to the link) is created by the kernel, never by a policy.
    return addr.get("family") == 6 and addr.get("scope") == RT_SCOPE_LINK


def _ip_block(addrs: list[Record]) -> dict[str, Any]:
    entries = sorted(
        ({"ip": a["ip"], "prefix-length": int(a["prefixlen"])} for a in addrs),
        key=lambda e: (e["ip"], e["prefix-length"]),
    )
    return {"enabled": bool(entries), "dhcp": False, "address": entries}


def current_state(dumps: Dumps) -> dict[str, Any]:
    """Map kernel dumps to ``{"interfaces": [...], "routes": {"running": [...]}}`` (nmstate shape).

    Interfaces are sorted by name; addresses by ip; IPv6 link-local addresses are left out (the kernel
    makes them). Routes of the ``local`` table and IPv6 link-local/multicast routes are left out.
    """
    by_index = {int(link["index"]): link for link in dumps.links}
    names: dict[int, str] = {idx: link["name"] for idx, link in by_index.items()}
    addrs: dict[int, dict[int, list[Record]]] = {}
    for a in dumps.addresses:
        if _is_kernel_managed_address(a):
            continue
        addrs.setdefault(int(a["index"]), {}).setdefault(int(a["family"]), []).append(a)
    ports: dict[int, list[str]] = {}
    for link in dumps.links:
        if link.get("master") is not None:
            ports.setdefault(int(link["master"]), []).append(link["name"])
    interfaces = [
        _interface(link, names, addrs.get(idx, {}), sorted(ports.get(idx, []))) for idx, link in by_index.items()
    ]
    interfaces.sort(key=lambda i: i["name"])
    return {"interfaces": interfaces, "routes": {"running": _routes(dumps.routes, names)}}


def _interface(link: Record, names: dict[int, str], fams: dict[int, list[Record]], ports: list[str]) -> dict[str, Any]:
    """One link record as an nmstate interface; ``names`` resolves ifindexes (master, VLAN base, veth peer)."""
    itype = iface_type(link)
    iface: dict[str, Any] = {
        "name": link["name"],
        "type": itype,
        "state": "up" if link.get("up") else "down",
        "mtu": link.get("mtu"),
        "mac-address": (link.get("mac") or "").upper() or None,
        "ipv4": _ip_block(fams.get(4, [])),
        "ipv6": _ip_block(fams.get(6, [])),
    }
    master = link.get("master")
    if master is not None and master in names:
        iface["controller"] = names[master]
    lower = link.get("link")
    if itype == "linux-bridge":
        iface["bridge"] = {
            "options": {"stp": {"enabled": bool(link.get("stp"))}},
            "port": [{"name": p} for p in ports],
        }
    elif itype == "bond":
        mode = link.get("bond_mode")
        if isinstance(mode, int) and 0 <= mode < len(BOND_MODES):
            mode = BOND_MODES[mode]
        iface["link-aggregation"] = {"mode": mode, "port": ports}
    elif itype == "vlan":
        iface["vlan"] = {"base-iface": names.get(lower) if lower is not None else None, "id": link.get("vlan_id")}
    elif itype == "veth":
        iface["veth"] = {"peer": names.get(lower) if lower is not None else None}
    elif itype == "vxlan":
        iface["vxlan"] = {"id": link.get("vxlan_id")}
    return iface


def _routes(routes: list[Record], names: dict[int, str]) -> list[dict[str, Any]]:
    """Route records as nmstate ``routes.running`` entries, without the local table and IPv6 link-local or
    multicast routes, sorted by table, destination and interface."""
    running: list[dict[str, Any]] = []
    for r in routes:
        if r.get("table") == LOCAL_TABLE or r.get("type") not in (None, 1):  # 1 = RTN_UNICAST
            continue
        dst = r.get("dst")
        fam = r.get("family")
        if dst is None:
            dst = "0.0.0.0" if fam == 4 else "::"
        if fam == 6 and (dst.startswith("fe80:") or dst.startswith("ff")):
            continue
        oif = r.get("oif")
        running.append(
            {
                "destination": f"{dst}/{int(r.get('dst_len') or 0)}",
                "next-hop-address": r.get("gateway") or "",
                "next-hop-interface": names.get(oif) if oif is not None else None,
                "table-id": int(r.get("table") or 254),
                "metric": int(r.get("priority") or 0),
                "proto": r.get("proto"),
            }
        )
    running.sort(key=lambda r: (r["table-id"], r["destination"], r["next-hop-interface"] or ""))
    return running


def interfaces_by_name(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``currentState`` interfaces keyed by name."""
    return {i["name"]: i for i in state.get("interfaces", [])}


def default_gateways(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Default routes (main table, with a next hop) of a ``currentState``."""
    return [
        r
        for r in state.get("routes", {}).get("running", [])
        if r["destination"] in ("0.0.0.0/0", "::/0") and r["next-hop-address"] and r["table-id"] == 254
    ]
