"""Exact rollback: a checkpoint of everything a change touches, and the restore that puts it back.

Why: enforce mode must be able to undo any change it started (a netlink error mid-apply, a failing
probe, the deadline). :meth:`Checkpoint.take` records the touched part of the node before the first
write; :func:`restore` deletes links the steps created, re-creates links they deleted (bridges, VLANs,
bonds, veth pairs), restores masters, MTUs, admin state, STP, MACs, addresses and routes, then observes
again and reports whatever still differs (:func:`compare`).

"Links the steps created" are the ones whose create *succeeded*, by the ifindex the kernel's reply named
(:meth:`Checkpoint.record_created`), never by name: a create that failed with "File exists" because
someone else made a link of that name between our diff and our create leaves that link alone, and so does
everything else in the restore (it only restores links that existed at the checkpoint or that we made).

Side effects: :func:`restore` writes to the node through :class:`~reconciler.agent.netlink.Netlink`;
the rest is pure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler import nmstate
from reconciler.agent.netlink import Netlink
from reconciler.agent.state import RT_PROTO_KERNEL, current_state, interfaces_by_name
from reconciler.agent.steps import VIRTUAL_TYPES, Op, Step
from reconciler.errors import AgentError
from reconciler.nmstate import Interface

Interfaces = dict[str, Interface]


@dataclass
class Checkpoint:
    """What the touched part of the node looked like before: interfaces (currentState entries) of
    links that existed, the names the steps will create (``planned``; not ours until the create succeeds),
    every non-kernel route, and -- filled while applying -- ``created``: ifindex -> name of each link this
    pass did create."""

    interfaces: Interfaces
    planned: set[str]
    touched: set[str]
    routes: list[dict[str, Any]]
    created: dict[int, str] = field(default_factory=dict)

    def record_created(self, index: int, name: str) -> None:
        """``name`` was created as ``index`` by this pass (called only after the create succeeded)."""
        self.created[index] = name

    def owned(self) -> set[str]:
        """Links the restore may change: the touched ones that existed, and the ones this pass created."""
        return set(self.interfaces) | set(self.created.values())

    @classmethod
    def take(cls, observed: dict[str, Any], steps: list[Step]) -> Checkpoint:
        ifaces = interfaces_by_name(observed)
        touched: set[str] = set()
        for s in steps:
            touched.add(s.target)
            for key in ("controller", "base", "actual_interface"):
                v = s.params.get(key)
                if isinstance(v, str):
                    touched.add(v)
            if s.op == Op.ATTACH_PORT and isinstance(s.params.get("actual"), str):
                touched.add(s.params["actual"])  # the old controller loses a port
            if s.op == Op.ADD_ROUTE and isinstance(s.params.get("actual"), str):
                touched.add(s.params["actual"])
        for name in list(touched):  # ports and veth peers of touched links change with them
            iface = ifaces.get(name, {})
            touched.update(nmstate.port_names(iface))
            peer = (iface.get("veth") or {}).get("peer")
            if peer:
                touched.add(peer)
        planned = {s.target for s in steps if s.op == Op.CREATE_LINK and s.target not in ifaces}
        routes = [r for r in observed.get("routes", {}).get("running", []) if r.get("proto") != RT_PROTO_KERNEL]
        return cls({n: ifaces[n] for n in sorted(touched) if n in ifaces}, planned, touched, routes)


_COMPARED = ("type", "state", "mtu", "mac-address", "controller", "ipv4", "ipv6")


def _key(iface: Interface) -> dict[str, Any]:
    out = {k: iface.get(k) for k in _COMPARED}
    out["stp"] = ((iface.get("bridge") or {}).get("options") or {}).get("stp")
    return out


def _route_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["destination"], r["next-hop-address"], r["next-hop-interface"], r["table-id"], r["metric"])


def compare(cp: Checkpoint, observed: dict[str, Any], indexes: set[int]) -> list[str]:
    """Differences between the checkpoint and ``observed`` (empty = exactly restored). ``indexes``: the
    ifindexes present now (a link this pass created must be gone; a same-named one is someone else's)."""
    now = interfaces_by_name(observed)
    problems = [f"{name}: still exists (ifindex {i})" for i, name in sorted(cp.created.items()) if i in indexes]
    for name, before in sorted(cp.interfaces.items()):
        after = now.get(name)
        if after is None:
            problems.append(f"{name}: missing")
        else:
            kb, ka = _key(before), _key(after)
            problems += [f"{name}: {k} {kb[k]!r} != {ka[k]!r}" for k in kb if kb[k] != ka[k]]
    have = {_route_key(r) for r in observed.get("routes", {}).get("running", []) if r.get("proto") != RT_PROTO_KERNEL}
    want = {_route_key(r) for r in cp.routes}
    problems += [f"route {r[0]} via {r[1]} dev {r[2]}: missing" for r in sorted(want - have, key=str)]
    problems += [f"route {r[0]} via {r[1]} dev {r[2]}: extra" for r in sorted(have - want, key=str)]
    return problems


# --------------------------------------------------------------------------- restore
class _Restore:
    """One restore: the netlink session, the checkpoint, and what could not be put back."""

    def __init__(self, nl: Netlink, cp: Checkpoint) -> None:
        self.nl = nl
        self.cp = cp
        self.problems: list[str] = []

    def now(self) -> Interfaces:
        return interfaces_by_name(current_state(self.nl.observe()))

    def attempt(self, write: Callable[..., object], *args: Any) -> None:
        """One write; a refusal is recorded and the restore goes on."""
        try:
            write(*args)
        except AgentError as e:
            self.problems.append(str(e))


def restore(nl: Netlink, cp: Checkpoint) -> list[str]:
    """Put every touched link back as the checkpoint says; returns what could not be restored."""
    r = _Restore(nl, cp)
    _restore_links(r)
    _restore_masters(r)
    _restore_mtus(r)
    _restore_link_settings(r)
    _restore_addresses(r)
    _restore_routes(r)
    dumps = nl.observe()
    return r.problems + compare(cp, current_state(dumps), {int(link["index"]) for link in dumps.links})


def _restore_links(r: _Restore) -> None:
    """Delete the links this pass created (by ifindex); re-create virtual links the steps deleted (a veth
    needs its peer gone too)."""
    for index, name in sorted(r.cp.created.items()):
        r.attempt(r.nl.delete_created, index, name)
    cur = r.now()
    for name, before in r.cp.interfaces.items():
        if name in cur or before["type"] not in VIRTUAL_TYPES:
            continue
        peer = (before.get("veth") or {}).get("peer")
        if before["type"] == "veth" and (not peer or peer in cur):
            r.problems.append(f"{name}: cannot re-create a veth without its peer")
            continue
        r.attempt(_recreate, r.nl, name, before)


def _recreate(nl: Netlink, name: str, before: Interface) -> None:
    vlan = before.get("vlan") or {}
    nl.create_link(
        name,
        before["type"],
        base=vlan.get("base-iface"),
        vlan_id=vlan.get("id"),
        bond_mode=(before.get("link-aggregation") or {}).get("mode"),
        stp=((before.get("bridge") or {}).get("options") or {}).get("stp", {}).get("enabled"),
        peer=(before.get("veth") or {}).get("peer"),
        vxlan_id=(before.get("vxlan") or {}).get("id"),
        mac=before.get("mac-address"),
    )


def _restore_masters(r: _Restore) -> None:
    """Detach ports from a wrong controller first, then attach them to the one they had."""
    cur = r.now()
    for name, before in r.cp.interfaces.items():
        if name in cur and cur[name].get("controller") and cur[name].get("controller") != before.get("controller"):
            r.attempt(r.nl.set_master, name, None)
    for name, before in r.cp.interfaces.items():
        if name in cur and before.get("controller") and cur[name].get("controller") != before["controller"]:
            r.attempt(r.nl.set_master, name, before["controller"])


def _restore_mtus(r: _Restore) -> None:
    """Lowering an upper may need its lower first and vice versa; a few rounds settle it."""
    for _ in range(3):
        cur = r.now()
        pending = [(n, b["mtu"]) for n, b in r.cp.interfaces.items() if n in cur and cur[n].get("mtu") != b["mtu"]]
        if not pending:
            break
        for name, mtu in pending:
            with contextlib.suppress(AgentError):
                r.nl.set_mtu(name, mtu)


def _restore_link_settings(r: _Restore) -> None:
    """Report an MTU that would not go back; restore STP and admin state."""
    cur = r.now()
    for name, before in r.cp.interfaces.items():
        if name not in cur:
            continue
        c = cur[name]
        if c.get("mtu") != before.get("mtu"):
            r.problems.append(f"{name}: cannot restore mtu {before.get('mtu')}")
        stp = ((before.get("bridge") or {}).get("options") or {}).get("stp")
        if stp is not None and ((c.get("bridge") or {}).get("options") or {}).get("stp") != stp:
            r.attempt(r.nl.set_stp, name, bool(stp["enabled"]))
        if c.get("state") != before.get("state"):
            r.attempt(r.nl.set_state, name, before.get("state") == "up")


def _restore_addresses(r: _Restore) -> None:
    """MACs, then addresses: the ones added go, the ones removed come back."""
    cur = r.now()
    for name, before in r.cp.interfaces.items():
        if name not in cur:
            continue
        c = cur[name]
        if before.get("mac-address") and c.get("mac-address") != before["mac-address"]:
            r.attempt(r.nl.set_mac, name, before["mac-address"])
        for fam in ("ipv4", "ipv6"):
            want = {(a["ip"], a["prefix-length"]) for a in before[fam]["address"]}
            have = {(a["ip"], a["prefix-length"]) for a in c[fam]["address"]}
            for ip, plen in sorted(have - want):
                r.attempt(r.nl.del_address, name, ip, plen)
            for ip, plen in sorted(want - have):
                r.attempt(r.nl.add_address, name, ip, plen)


def _restore_routes(r: _Restore) -> None:
    """Routes the change added on touched links go; routes it lost come back."""
    state = current_state(r.nl.observe())
    have_routes = {_route_key(x): x for x in state["routes"]["running"] if x.get("proto") != RT_PROTO_KERNEL}
    want_routes = {_route_key(x): x for x in r.cp.routes}
    for key, route in sorted(have_routes.items(), key=lambda kv: str(kv[0])):
        if key not in want_routes and route["next-hop-interface"] in r.cp.owned():
            r.attempt(r.nl.del_route, *_route_args(route))
    for key, route in sorted(want_routes.items(), key=lambda kv: str(kv[0])):
        if key not in have_routes:
            r.attempt(r.nl.replace_route, *_route_args(route))


def _route_args(r: dict[str, Any]) -> tuple[str, str | None, str | None, int, int]:
    return (r["destination"], r["next-hop-address"] or None, r["next-hop-interface"], r["table-id"], r["metric"])
