"""The ordered steps that take a node from its observed state to what the policies want (pure).

Why: the agent must change a node in an order the kernel accepts and that keeps it reachable as long as
possible (create lowers before uppers, lower MTUs top-down and raise them bottom-up, move addresses only
once the links exist, delete last). Keeping that logic PURE (no kernel, no clock) makes every ordering
rule unit-testable, including VLAN and bond cases this kernel cannot create.

Only interfaces a policy names are touched (plus the ports a named bridge/bond lists, and routes that
must follow an address that moves). Everything else on the node is left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler import nmstate
from reconciler.agent.desired import Wanted, observed_addrs, wanted
from reconciler.agent.state import RT_PROTO_KERNEL, interfaces_by_name
from reconciler.errors import AgentError
from reconciler.nmstate import Interface

#: nmstate types the agent can create (and therefore delete)
VIRTUAL_TYPES = frozenset({"linux-bridge", "bond", "vlan", "veth", "vxlan", "dummy", "mac-vlan"})
#: types the agent can give ports to
CONTROLLER_TYPES = frozenset({"linux-bridge", "bond"})
#: creation order: bonds, then VLANs (which may sit on bonds), then the rest, then bridges (which take
#: all of them as ports)
_CREATE_RANK = {"bond": 0, "vlan": 1, "linux-bridge": 3}


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


Ranked = list[tuple[int, Step]]


@dataclass
class _Phases:
    """Steps by phase; :meth:`ordered` is the order they run in. Ranked phases sort by (rank, target)."""

    creates: list[Step] = field(default_factory=list)
    stp: list[Step] = field(default_factory=list)
    detach: list[Step] = field(default_factory=list)
    attach: Ranked = field(default_factory=list)
    mtu_down: Ranked = field(default_factory=list)
    mtu_up: Ranked = field(default_factory=list)
    state_up: Ranked = field(default_factory=list)
    state_down: Ranked = field(default_factory=list)
    addr_del: list[Step] = field(default_factory=list)
    addr_add: list[Step] = field(default_factory=list)
    routes: list[Step] = field(default_factory=list)
    deletes: list[Step] = field(default_factory=list)

    def ordered(self) -> list[Step]:
        def by_rank(xs: Ranked) -> list[Step]:
            return [s for _, s in sorted(xs, key=lambda ks: (ks[0], ks[1].target))]

        # a port deleted by deleting its controller first would be deleted twice: drop duplicates in order
        deletes = [s for i, s in enumerate(self.deletes) if s not in self.deletes[:i]]
        return [
            *_order_creates(self.creates),
            *self.stp,
            *self.detach,
            *by_rank(self.attach),
            *by_rank(self.mtu_down),
            *by_rank(self.mtu_up),
            *by_rank(self.state_up),
            *by_rank(self.state_down),
            *self.addr_del,
            *self.addr_add,
            *self.routes,
            *deletes,
        ]


@dataclass
class _Topology:
    """The node as it will be: the controller of each port, and each link's level (0 = no lower devices)."""

    future_master: dict[str, str]
    level: dict[str, int]


def diff(desired: Mapping[str, Interface] | Iterable[Interface], observed: Mapping[str, Any]) -> list[Step]:
    """The steps that turn ``observed`` (a ``currentState``) into ``desired``, in dependency order.

    Order: create (bond, vlan, others, bridge; a VLAN after its base) → STP → detach ports that leave
    → attach ports (bond ports before bridge ports) → MTU decreases upper-first, then increases
    lower-first → state (up lower-first, down upper-first) → address deletes, adds, routes that follow a
    moved address → deletes (detach ports first, uppers first).
    """
    items = list(desired.values()) if isinstance(desired, Mapping) else list(desired)
    wants = {w.name: w for w in (wanted(i) for i in items)}
    obs = interfaces_by_name(observed)
    present = {n: w for n, w in wants.items() if w.state != "absent"}
    absent = {n: w for n, w in wants.items() if w.state == "absent"}
    _check_against_node(present, absent, obs)
    topo = _topology(present, obs)
    phases = _Phases()
    for n, w in sorted(present.items()):
        _link_steps(phases, w, obs, topo)
        _address_steps(phases, w, obs.get(n))
    _bring_up_ports(phases, present, obs, topo)
    _follow_moved_addresses(phases, observed)
    _delete_steps(phases, absent, obs, topo)
    return phases.ordered()


def _check_against_node(present: dict[str, Wanted], absent: dict[str, Wanted], obs: dict[str, Interface]) -> None:
    """Refuse what the node cannot become: a type clash, a NIC that is not there, ports of a non-controller,
    ports that do not exist and that no policy creates, a port also desired absent."""
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


def _compatible(want: str | None, have: str) -> bool:
    return want is None or want == have or (want == "ethernet" and have == "veth")


def _topology(present: dict[str, Wanted], obs: dict[str, Interface]) -> _Topology:
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
        if base := nmstate.vlan_base(o):
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
    return _Topology(future_master, _levels(lowers))


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


def _link_steps(ph: _Phases, w: Wanted, obs: dict[str, Interface], topo: _Topology) -> None:
    """Create or STP, ports leaving and joining, MTU and admin state of one present interface."""
    n, o = w.name, obs.get(w.name)
    t = w.type if w.type else (o or {}).get("type")
    lvl = topo.level.get(n, 0)
    if o is None:
        params = {"type": t, "base": w.vlan_base, "id": w.vlan_id, "mode": w.bond_mode, "stp": w.stp}
        params |= {"peer": w.peer, "vxlan_id": w.vxlan_id, "mac": w.mac}
        ph.creates.append(Step(Op.CREATE_LINK, n, params, "named by a policy, missing on the node"))
    elif t == "linux-bridge" and w.stp is not None:
        have = bool(((o.get("bridge") or {}).get("options") or {}).get("stp", {}).get("enabled"))
        if have != w.stp:
            ph.stp.append(Step(Op.SET_STP, n, {"enabled": w.stp, "actual": have}, "bridge.options.stp"))
    if w.ports is not None and o is not None:
        for p in sorted(set(nmstate.port_names(o)) - set(w.ports)):
            if p not in topo.future_master:
                ph.detach.append(Step(Op.DETACH_PORT, p, {"controller": n}, f"no longer a port of {n}"))
    for p in w.ports or []:
        have_master = obs.get(p, {}).get("controller")
        if have_master != n:
            params = {"controller": n, "controller_type": t, "actual": have_master}
            ph.attach.append((0 if t == "bond" else 1, Step(Op.ATTACH_PORT, p, params, f"port of {n}")))
    have_mtu = None if o is None else o.get("mtu")
    if w.mtu is not None and have_mtu != w.mtu:
        s = Step(Op.SET_MTU, n, {"mtu": w.mtu, "actual": have_mtu}, "mtu")
        if have_mtu is not None and w.mtu < have_mtu:
            ph.mtu_down.append((-lvl, s))
        else:
            ph.mtu_up.append((lvl, s))
    have_state = None if o is None else o.get("state")
    if have_state != w.state:
        s = Step(Op.SET_STATE, n, {"state": w.state, "actual": have_state}, "state")
        if w.state == "up":
            ph.state_up.append((lvl, s))
        else:
            ph.state_down.append((-lvl, s))


def _address_steps(ph: _Phases, w: Wanted, o: Interface | None) -> None:
    for fam in (4, 6):
        want_set = w.addrs.get(fam)
        if want_set is None:
            continue
        have_set = observed_addrs(o, fam)
        for ip, plen in sorted(have_set - want_set):
            ph.addr_del.append(Step(Op.DEL_ADDRESS, w.name, _addr(ip, plen, fam), "address"))
        for ip, plen in sorted(want_set - have_set):
            ph.addr_add.append(Step(Op.ADD_ADDRESS, w.name, _addr(ip, plen, fam), "address"))


def _addr(ip: str, plen: int, fam: int) -> dict[str, Any]:
    return {"ip": ip, "prefix-length": plen, "family": fam}


def _bring_up_ports(ph: _Phases, present: dict[str, Wanted], obs: dict[str, Interface], topo: _Topology) -> None:
    """Ports that a policy does not name themselves are brought up (a down port carries nothing)."""
    for p, m in sorted(topo.future_master.items()):
        if p not in present and obs.get(p, {}).get("state") != "up":
            step = Step(Op.SET_STATE, p, {"state": "up", "actual": obs[p]["state"]}, f"port of {m}")
            ph.state_up.append((topo.level.get(p, 0), step))


def _follow_moved_addresses(ph: _Phases, observed: Mapping[str, Any]) -> None:
    """Routes via a gateway on an address that moves to another interface move with it."""
    adds_by_ip = {(s.params["ip"], s.params["prefix-length"]): s.target for s in ph.addr_add}
    for s in ph.addr_del:
        to = adds_by_ip.get((s.params["ip"], s.params["prefix-length"]))
        if to is None:
            continue
        net = ipaddress.ip_interface(f"{s.params['ip']}/{s.params['prefix-length']}").network
        for r in observed.get("routes", {}).get("running", []):
            gw = r.get("next-hop-address")
            if r.get("next-hop-interface") != s.target or not gw or r.get("proto") == RT_PROTO_KERNEL:
                continue
            if ipaddress.ip_address(gw) in net:
                params = {"destination": r["destination"], "next-hop-address": gw}
                params |= {"table-id": r.get("table-id", 254), "metric": r.get("metric", 0), "actual": s.target}
                ph.routes.append(Step(Op.ADD_ROUTE, to, params, f"follows {s.params['ip']} from {s.target}"))


def _delete_steps(ph: _Phases, absent: dict[str, Wanted], obs: dict[str, Interface], topo: _Topology) -> None:
    """Interfaces desired absent: virtual ones are deleted (their ports detached first), uppers first; a NIC
    loses its addresses and goes down."""
    for n in sorted(absent, key=lambda k: (-topo.level.get(k, 0), k)):
        o = obs.get(n)
        if o is None:
            continue
        if o["type"] in VIRTUAL_TYPES:
            for p in sorted(nmstate.port_names(o)):
                if p not in absent and p not in topo.future_master:
                    ph.deletes.append(Step(Op.DETACH_PORT, p, {"controller": n}, f"{n} is being removed"))
            ph.deletes.append(Step(Op.DELETE_LINK, n, {"type": o["type"]}, "state: absent"))
            continue
        for fam in (4, 6):
            for ip, plen in sorted(observed_addrs(o, fam)):
                ph.deletes.append(Step(Op.DEL_ADDRESS, n, _addr(ip, plen, fam), "state: absent"))
        if o.get("state") != "down":
            ph.deletes.append(Step(Op.SET_STATE, n, {"state": "down", "actual": o.get("state")}, "state: absent"))


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
