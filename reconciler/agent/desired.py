"""Desired node network state from NNCPs, and the ordered steps that get a node there.

Why: the agent must change a node in an order the kernel accepts and that keeps it reachable as
long as possible (create lowers before uppers, lower MTUs top-down and raise them bottom-up, move
addresses only once the links exist, delete last). Keeping that logic PURE (no kernel, no clock)
makes every ordering rule unit-testable, including VLAN and bond cases this kernel cannot create.

* :func:`select_policies` — which NNCPs select a node (``spec.nodeSelector`` label equality).
* :func:`merge_desired` — the interfaces those policies name (``spec.desiredState.interfaces``).
* :func:`diff` — ``list[Step]`` from desired interfaces and an observed ``currentState``.
* :func:`drift` — the same comparison as rows ``(interface, field, desired, actual)``.

Only interfaces a policy names are touched (plus the ports a named bridge/bond lists, and routes
that must follow an address that moves). Everything else on the node is left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.agent.state import interfaces_by_name
from reconciler.errors import AgentError

Iface = dict[str, Any]

#: nmstate types the agent can create (and therefore delete)
VIRTUAL_TYPES = frozenset({"linux-bridge", "bond", "vlan", "veth", "vxlan", "dummy", "mac-vlan"})
CONTROLLER_TYPES = frozenset({"linux-bridge", "bond"})
#: creation order: bonds, then VLANs (which may sit on bonds), then the rest, then bridges (which take
#: all of them as ports)
_CREATE_RANK = {"bond": 0, "vlan": 1, "linux-bridge": 3}
RT_PROTO_KERNEL = 2


class Op(StrEnum):
    CREATE_LINK = "create_link"
    SET_STP = "set_stp"
    DETACH_PORT = "detach_port"
    ATTACH_PORT = "attach_port"
    SET_MTU = "set_mtu"
    SET_STATE = "set_state"
    DEL_ADDRESS = "del_address"
    ADD_ADDRESS = "add_address"
    ADD_ROUTE = "add_route"
    DELETE_LINK = "delete_link"


@dataclass(frozen=True)
class Step:
    """One change to one interface. ``params`` depend on ``op`` (see :func:`diff`)."""

    op: Op
    target: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    reason: str = ""

    def __str__(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)
        return f"{self.op.value} {self.target} {args}".rstrip() + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class DriftItem:
    interface: str
    field: str
    desired: Any
    actual: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "field": self.field,
            "desired": self.desired,
            "actual": self.actual,
        }


# --------------------------------------------------------------------------- policies
def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def select_policies(policies: Iterable[Mapping[str, Any]], node_labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The NNCPs whose ``spec.nodeSelector`` (label equality; empty or absent = all) matches, by name."""
    chosen = []
    for p in policies:
        sel = (p.get("spec") or {}).get("nodeSelector") or {}
        if all(node_labels.get(k) == str(v) for k, v in sel.items()):
            chosen.append(dict(p))
    return sorted(chosen, key=_name)


def policy_interfaces(policy: Mapping[str, Any]) -> list[Iface]:
    return list(((policy.get("spec") or {}).get("desiredState") or {}).get("interfaces") or [])


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any], where: str, conflicts: list[str]) -> None:
    for k, v in new.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v, f"{where}.{k}", conflicts)
        else:
            if k in into and into[k] != v:
                conflicts.append(f"{where}.{k}: {into[k]!r} vs {v!r}")
            into[k] = v if not isinstance(v, Mapping) else dict(v)


def merge_desired(policies: Iterable[Mapping[str, Any]]) -> dict[str, Iface]:
    """Interfaces named by ``policies`` keyed by name. Two policies that disagree on a field are an error."""
    merged: dict[str, Iface] = {}
    owner: dict[str, str] = {}
    for p in sorted(policies, key=_name):
        for iface in policy_interfaces(p):
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


def _copy(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- normalisation
@dataclass
class _Want:
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
    addrs: dict[int, set[tuple[str, int]] | None] = field(default_factory=dict)


def _addr_set(block: Any, fam: int, name: str) -> set[tuple[str, int]] | None:
    """``None`` = leave addresses alone (block absent or DHCP); otherwise the exact static set."""
    if not isinstance(block, Mapping):
        return None
    if block.get("enabled") is False:
        return set()
    if block.get("dhcp") or block.get("autoconf"):
        return None
    out: set[tuple[str, int]] = set()
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


def _want(iface: Mapping[str, Any]) -> _Want:
    name = str(iface["name"])
    w = _Want(name=name, type=iface.get("type"), state=str(iface.get("state") or "up"))
    if w.state not in ("up", "down", "absent"):
        raise AgentError(f"{name}: state {w.state!r} is not up, down or absent")
    if iface.get("mtu") is not None:
        w.mtu = int(iface["mtu"])
    w.mac = str(iface["mac-address"]).upper() if iface.get("mac-address") else None
    bridge = iface.get("bridge") or {}
    if "port" in bridge:
        w.ports = [str(p["name"] if isinstance(p, Mapping) else p) for p in bridge.get("port") or []]
    stp = ((bridge.get("options") or {}).get("stp") or {}).get("enabled")
    w.stp = None if stp is None else bool(stp)
    la = iface.get("link-aggregation") or {}
    if "port" in la:
        w.ports = [str(p["name"] if isinstance(p, Mapping) else p) for p in la.get("port") or []]
    w.bond_mode = la.get("mode")
    vlan = iface.get("vlan") or {}
    w.vlan_base, w.vlan_id = vlan.get("base-iface"), vlan.get("id")
    w.peer = (iface.get("veth") or {}).get("peer")
    w.vxlan_id = (iface.get("vxlan") or {}).get("id")
    w.addrs = {4: _addr_set(iface.get("ipv4"), 4, name), 6: _addr_set(iface.get("ipv6"), 6, name)}
    return w


def _compatible(want: str | None, have: str) -> bool:
    return want is None or want == have or (want == "ethernet" and have == "veth")


def _observed_addrs(o: Iface | None, fam: int) -> set[tuple[str, int]]:
    if o is None:
        return set()
    return {(a["ip"], int(a["prefix-length"])) for a in (o.get(f"ipv{fam}") or {}).get("address") or []}


# --------------------------------------------------------------------------- diff
def _levels(lowers: Mapping[str, set[str]]) -> dict[str, int]:
    """0 for a link with no lower devices, else 1 + the highest level below it."""
    memo: dict[str, int] = {}

    def level(n: str, seen: frozenset[str]) -> int:
        if n in memo:
            return memo[n]
        if n in seen:
            raise AgentError(f"{n}: interfaces form a loop of ports/base-ifaces")
        below = lowers.get(n, set())
        memo[n] = 0 if not below else 1 + max(level(b, seen | {n}) for b in below)
        return memo[n]

    for n in list(lowers):
        level(n, frozenset())
    return memo


def diff(desired: Mapping[str, Iface] | Iterable[Iface], observed: Mapping[str, Any]) -> list[Step]:
    """The steps that turn ``observed`` (a ``currentState``) into ``desired``, in dependency order.

    Order: create (bond, vlan, others, bridge; a VLAN after its base) → STP → detach ports that leave
    → attach ports (bond ports before bridge ports) → MTU decreases upper-first, then increases
    lower-first → state (up lower-first, down upper-first) → address deletes, adds, routes that follow a
    moved address → deletes (detach ports first, uppers first).
    """
    items = list(desired.values()) if isinstance(desired, Mapping) else list(desired)
    wants = {w.name: w for w in (_want(i) for i in items)}
    obs = interfaces_by_name(observed)
    present = {n: w for n, w in wants.items() if w.state != "absent"}
    absent = {n: w for n, w in wants.items() if w.state == "absent"}

    # validate against the node
    for n, w in present.items():
        o = obs.get(n)
        if o is not None:
            if not _compatible(w.type, o["type"]):
                raise AgentError(f"{n}: desired type {w.type} but the node has a {o['type']} of that name")
        elif w.type not in VIRTUAL_TYPES:
            raise AgentError(f"{n}: no such interface on the node, and type {w.type} cannot be created")
        elif w.type == "vlan" and (w.vlan_base is None or w.vlan_id is None):
            raise AgentError(f"{n}: a vlan needs vlan.base-iface and vlan.id")
        if w.ports is not None:
            ctype = w.type or (o or {}).get("type")
            if ctype not in CONTROLLER_TYPES:
                raise AgentError(f"{n}: only a linux-bridge or bond can have ports")
            for p in w.ports:
                if p not in obs and p not in present:
                    raise AgentError(f"{n}: port {p} does not exist on the node and no policy creates it")
                if p in absent:
                    raise AgentError(f"{n}: port {p} is also desired absent")
    typeof = {n: (w.type if w.type else obs.get(n, {}).get("type")) for n, w in present.items()}

    # future topology: controller of each port, and the lower devices of each link
    future_master: dict[str, str] = {}
    for n, w in present.items():
        for p in w.ports or []:
            if p in future_master and future_master[p] != n:
                raise AgentError(f"{p}: port of both {future_master[p]} and {n}")
            future_master[p] = n
    lowers: dict[str, set[str]] = {}
    for n, o in obs.items():
        lowers.setdefault(n, set())
        if o.get("controller"):
            lowers.setdefault(o["controller"], set()).add(n)
        base = (o.get("vlan") or {}).get("base-iface")
        if base:
            lowers[n].add(base)
    for n, w in present.items():
        lowers.setdefault(n, set())
        if w.ports is not None:
            lowers[n] = {p for p in lowers[n] if obs.get(p, {}).get("controller") != n} | set(w.ports)
        if w.vlan_base:
            lowers[n].add(w.vlan_base)
    for p, m in future_master.items():
        old = obs.get(p, {}).get("controller")
        if old and old != m and old in lowers:
            lowers[old].discard(p)
        lowers.setdefault(p, set())
    level = _levels(lowers)

    creates: list[Step] = []
    stp: list[Step] = []
    detach: list[Step] = []
    attach: list[tuple[int, Step]] = []
    mtu_down: list[tuple[int, Step]] = []
    mtu_up: list[tuple[int, Step]] = []
    state_up: list[tuple[int, Step]] = []
    state_down: list[tuple[int, Step]] = []
    addr_del: list[Step] = []
    addr_add: list[Step] = []
    routes: list[Step] = []
    deletes: list[Step] = []

    for n, w in sorted(present.items()):
        o = obs.get(n)
        t = typeof[n]
        if o is None:
            creates.append(
                Step(
                    Op.CREATE_LINK,
                    n,
                    {
                        "type": t,
                        "base": w.vlan_base,
                        "id": w.vlan_id,
                        "mode": w.bond_mode,
                        "stp": w.stp,
                        "peer": w.peer,
                        "vxlan_id": w.vxlan_id,
                        "mac": w.mac,
                    },
                    "named by a policy, missing on the node",
                )
            )
        elif t == "linux-bridge" and w.stp is not None:
            have = bool(((o.get("bridge") or {}).get("options") or {}).get("stp", {}).get("enabled"))
            if have != w.stp:
                stp.append(Step(Op.SET_STP, n, {"enabled": w.stp, "actual": have}, "bridge.options.stp"))
        if w.ports is not None and o is not None:
            have_ports = [p["name"] if isinstance(p, Mapping) else p for p in _ports_of(o)]
            for p in sorted(set(have_ports) - set(w.ports)):
                if p not in future_master:
                    detach.append(Step(Op.DETACH_PORT, p, {"controller": n}, f"no longer a port of {n}"))
        for p in w.ports or []:
            have = obs.get(p, {}).get("controller")
            if have != n:
                rank = 0 if t == "bond" else 1
                attach.append(
                    (
                        rank,
                        Step(
                            Op.ATTACH_PORT,
                            p,
                            {"controller": n, "controller_type": t, "actual": have},
                            f"port of {n}",
                        ),
                    )
                )
        if w.mtu is not None and (o is None or o.get("mtu") != w.mtu):
            have_mtu = None if o is None else o.get("mtu")
            s = Step(Op.SET_MTU, n, {"mtu": w.mtu, "actual": have_mtu}, "mtu")
            if have_mtu is not None and w.mtu < have_mtu:
                mtu_down.append((-level.get(n, 0), s))
            else:
                mtu_up.append((level.get(n, 0), s))
        have_state = None if o is None else o.get("state")
        if have_state != w.state:
            s = Step(Op.SET_STATE, n, {"state": w.state, "actual": have_state}, "state")
            (state_up if w.state == "up" else state_down).append(
                (level.get(n, 0) if w.state == "up" else -level.get(n, 0), s)
            )
        for fam in (4, 6):
            want_set = w.addrs.get(fam)
            if want_set is None:
                continue
            have_set = _observed_addrs(o, fam)
            for ip, plen in sorted(have_set - want_set):
                addr_del.append(Step(Op.DEL_ADDRESS, n, {"ip": ip, "prefix-length": plen, "family": fam}, "address"))
            for ip, plen in sorted(want_set - have_set):
                addr_add.append(Step(Op.ADD_ADDRESS, n, {"ip": ip, "prefix-length": plen, "family": fam}, "address"))

    # ports that a policy does not name themselves are brought up (a down port carries nothing)
    for p, m in sorted(future_master.items()):
        if p not in present and obs.get(p, {}).get("state") != "up":
            state_up.append(
                (
                    level.get(p, 0),
                    Step(Op.SET_STATE, p, {"state": "up", "actual": obs[p]["state"]}, f"port of {m}"),
                )
            )

    # routes follow an address that moves from one interface to another
    adds_by_ip = {(s.params["ip"], s.params["prefix-length"]): s.target for s in addr_add}
    for s in addr_del:
        to = adds_by_ip.get((s.params["ip"], s.params["prefix-length"]))
        if to is None:
            continue
        net = ipaddress.ip_interface(f"{s.params['ip']}/{s.params['prefix-length']}").network
        for r in observed.get("routes", {}).get("running", []):
            gw = r.get("next-hop-address")
            if r.get("next-hop-interface") != s.target or not gw or r.get("proto") == RT_PROTO_KERNEL:
                continue
            if ipaddress.ip_address(gw) in net:
                routes.append(
                    Step(
                        Op.ADD_ROUTE,
                        to,
                        {
                            "destination": r["destination"],
                            "next-hop-address": gw,
                            "table-id": r.get("table-id", 254),
                            "metric": r.get("metric", 0),
                            "actual": s.target,
                        },
                        f"follows {s.params['ip']} from {s.target}",
                    )
                )

    # deletes: detach ports first, then delete uppers before lowers
    for n, _w in sorted(absent.items(), key=lambda kv: (-level.get(kv[0], 0), kv[0])):
        o = obs.get(n)
        if o is None:
            continue
        if o["type"] in VIRTUAL_TYPES:
            for p in sorted(_port_names(o)):
                if p not in absent and p not in future_master:
                    deletes.append(Step(Op.DETACH_PORT, p, {"controller": n}, f"{n} is being removed"))
            deletes.append(Step(Op.DELETE_LINK, n, {"type": o["type"]}, "state: absent"))
        else:
            for fam in (4, 6):
                for ip, plen in sorted(_observed_addrs(o, fam)):
                    deletes.append(
                        Step(
                            Op.DEL_ADDRESS,
                            n,
                            {"ip": ip, "prefix-length": plen, "family": fam},
                            "state: absent",
                        )
                    )
            if o.get("state") != "down":
                deletes.append(Step(Op.SET_STATE, n, {"state": "down", "actual": o.get("state")}, "state: absent"))
    # a port deleted by deleting its controller first would be deleted twice: drop duplicates in order
    deletes = [s for i, s in enumerate(deletes) if s not in deletes[:i]]

    creates = _order_creates(creates)

    def by_key(xs: list[tuple[int, Step]]) -> list[Step]:
        return [s for _, s in sorted(xs, key=lambda ks: (ks[0], ks[1].target))]

    return [
        *creates,
        *stp,
        *detach,
        *by_key(attach),
        *by_key(mtu_down),
        *by_key(mtu_up),
        *by_key(state_up),
        *by_key(state_down),
        *addr_del,
        *addr_add,
        *routes,
        *deletes,
    ]


def _ports_of(o: Iface) -> list[Any]:
    if o.get("type") == "linux-bridge":
        return list((o.get("bridge") or {}).get("port") or [])
    if o.get("type") == "bond":
        return list((o.get("link-aggregation") or {}).get("port") or [])
    return []


def _port_names(o: Iface) -> list[str]:
    return [p["name"] if isinstance(p, Mapping) else p for p in _ports_of(o)]


def _order_creates(creates: list[Step]) -> list[Step]:
    """Bonds, then VLANs (each after a VLAN it sits on), then other kinds, then bridges."""
    pending = sorted(creates, key=lambda s: (_CREATE_RANK.get(s.params["type"], 2), s.target))
    names = {s.target for s in creates}
    done: set[str] = set()
    out: list[Step] = []
    while pending:
        for i, s in enumerate(pending):
            base = s.params.get("base")
            if base is None or base not in names or base in done:
                out.append(pending.pop(i))
                done.add(s.target)
                break
        else:  # a loop of bases: keep the rank order and let the kernel refuse
            out.extend(pending)
            break
    return out


# --------------------------------------------------------------------------- drift
_FIELD = {
    Op.CREATE_LINK: "exists",
    Op.SET_STP: "bridge.options.stp.enabled",
    Op.DETACH_PORT: "controller",
    Op.ATTACH_PORT: "controller",
    Op.SET_MTU: "mtu",
    Op.SET_STATE: "state",
    Op.DELETE_LINK: "exists",
}


def drift(desired: Mapping[str, Iface] | Iterable[Iface], observed: Mapping[str, Any]) -> list[DriftItem]:
    """Where the node differs from the policies: one row per interface and field (addresses as sets)."""
    desired = list(desired.values()) if isinstance(desired, Mapping) else list(desired)
    items: list[DriftItem] = []
    addr_ifaces: set[tuple[str, int]] = set()
    obs = interfaces_by_name(observed)
    for s in diff(desired, observed):
        p = s.params
        if s.op in (Op.ADD_ADDRESS, Op.DEL_ADDRESS):
            addr_ifaces.add((s.target, p["family"]))
        elif s.op == Op.ADD_ROUTE:
            items.append(DriftItem(s.target, f"route {p['destination']}", p["next-hop-address"], p["actual"]))
        elif s.op == Op.CREATE_LINK:
            items.append(DriftItem(s.target, "exists", True, False))
        elif s.op == Op.DELETE_LINK:
            items.append(DriftItem(s.target, "exists", False, True))
        elif s.op == Op.DETACH_PORT:
            items.append(DriftItem(s.target, "controller", None, p["controller"]))
        elif s.op == Op.ATTACH_PORT:
            items.append(DriftItem(s.target, "controller", p["controller"], p["actual"]))
        elif s.op == Op.SET_MTU:
            items.append(DriftItem(s.target, "mtu", p["mtu"], p["actual"]))
        elif s.op == Op.SET_STATE:
            items.append(DriftItem(s.target, "state", p["state"], p["actual"]))
        elif s.op == Op.SET_STP:
            items.append(DriftItem(s.target, _FIELD[s.op], p["enabled"], p["actual"]))
    if addr_ifaces:
        wants = {w.name: w for w in (_want(i) for i in desired)}
        for name, fam in sorted(addr_ifaces):
            w = wants.get(name)
            want_set = (w.addrs.get(fam) if w and w.state != "absent" else set()) or set()
            fmt = sorted(f"{ip}/{plen}" for ip, plen in want_set)
            have = sorted(f"{ip}/{plen}" for ip, plen in _observed_addrs(obs.get(name), fam))
            items.append(DriftItem(name, f"ipv{fam}.address", fmt, have))
    return sorted(items, key=lambda d: (d.interface, d.field))
