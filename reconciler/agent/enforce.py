"""Enforce mode: apply steps with a checkpoint, probe, and roll back exactly on any failure.

Why: a wrong network change can cut a node off from the cluster that would have to repair it. So
before touching anything we run pre-checks (refuse changes that obviously disconnect the node, and
changes the kernel cannot do), take a checkpoint of everything the steps touch, apply, probe, and on
any failure (a netlink error mid-apply, a failing probe, the deadline) restore the checkpoint: delete
links we created, re-create links we deleted (bridges, VLANs, bonds, veth pairs), restore masters,
MTUs, admin state, MACs, STP, addresses and routes, then verify the restore by observing again.

Side effects: writes to the node's network namespace through :class:`~reconciler.agent.netlink.Netlink`
only, and whatever the probes send. A refused change makes zero writes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.agent.capabilities import Capabilities
from reconciler.agent.desired import VIRTUAL_TYPES, Op, Step
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import Probe, ProbeResult
from reconciler.agent.state import TYPE_TO_KIND, current_state, default_gateways, interfaces_by_name
from reconciler.errors import AgentError

Precheck = Callable[[dict[str, Any], list[Step]], list[str]]
RT_PROTO_KERNEL = 2


@dataclass
class EnforceResult:
    """``status`` is ``Available`` or ``Failing``; ``reason`` is the NNCE condition reason."""

    status: str
    reason: str
    message: str
    applied: list[Step] = field(default_factory=list)
    rolled_back: bool = False
    writes: int = 0
    rollback_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "Available"


# --------------------------------------------------------------------------- pre-checks
def precheck_default_route(observed: dict[str, Any], steps: list[Step]) -> list[str]:
    """Refuse moving, downing or deleting a link that carries a default route or the address used to
    reach the default gateway, unless that address moves along (to the bridge/bond)."""
    ifaces = interfaces_by_name(observed)
    moved_ips = {s.params["ip"] for s in steps if s.op == Op.ADD_ADDRESS}
    problems: list[str] = []
    for route in default_gateways(observed):
        gw = ipaddress.ip_address(route["next-hop-address"])
        carriers: dict[str, list[str]] = {}
        if route.get("next-hop-interface"):
            carriers.setdefault(route["next-hop-interface"], [])
        for name, iface in ifaces.items():
            for a in (iface.get(f"ipv{gw.version}") or {}).get("address") or []:
                if gw in ipaddress.ip_interface(f"{a['ip']}/{a['prefix-length']}").network:
                    carriers.setdefault(name, []).append(a["ip"])
        for name, ips in sorted(carriers.items()):
            for s in steps:
                if s.target != name:
                    continue
                action = {
                    Op.ATTACH_PORT: f"attaching {name} to {s.params.get('controller')}",
                    Op.DELETE_LINK: f"deleting {name}",
                }.get(s.op)
                if s.op == Op.SET_STATE and s.params.get("state") != "up":
                    action = f"setting {name} down"
                if action is None:
                    continue
                stays = [ip for ip in ips if ip not in moved_ips]
                if ips and not stays and s.op == Op.ATTACH_PORT:
                    continue  # its address moves with it (to the controller)
                what = f"its address {', '.join(stays)}" if stays else "the route"
                problems.append(
                    f"{action} would cut the node off: {name} carries the default route via {gw} "
                    f"and {what} does not move with it"
                )
    return sorted(set(problems))


def precheck_capabilities(caps: Capabilities) -> Precheck:
    """Refuse steps that create a link kind the kernel lacks (the standard capability message)."""

    def check(observed: dict[str, Any], steps: list[Step]) -> list[str]:
        out = []
        for s in steps:
            if s.op == Op.CREATE_LINK:
                try:
                    caps.require(TYPE_TO_KIND.get(s.params["type"], s.params["type"]), s.target)
                except AgentError as e:
                    out.append(str(e))
        return out

    return check


DEFAULT_PRECHECKS: tuple[Precheck, ...] = (precheck_default_route,)


# --------------------------------------------------------------------------- apply
def apply_step(nl: Netlink, step: Step, current: dict[str, dict[str, Any]] | None = None) -> None:
    p = step.params
    if step.op == Op.CREATE_LINK:
        nl.create_link(
            step.target,
            p["type"],
            base=p.get("base"),
            vlan_id=p.get("id"),
            bond_mode=p.get("mode"),
            stp=p.get("stp"),
            peer=p.get("peer"),
            vxlan_id=p.get("vxlan_id"),
            mac=p.get("mac"),
        )
    elif step.op == Op.SET_STP:
        nl.set_stp(step.target, bool(p["enabled"]))
    elif step.op == Op.DETACH_PORT:
        nl.set_master(step.target, None)
    elif step.op == Op.ATTACH_PORT:
        if p.get("controller_type") == "bond" and (current or {}).get(step.target, {}).get("state") == "up":
            nl.set_state(step.target, False)  # the bonding driver enslaves only ports that are down
        nl.set_master(step.target, p["controller"])
    elif step.op == Op.SET_MTU:
        nl.set_mtu(step.target, int(p["mtu"]))
    elif step.op == Op.SET_STATE:
        nl.set_state(step.target, p["state"] == "up")
    elif step.op == Op.ADD_ADDRESS:
        nl.add_address(step.target, p["ip"], int(p["prefix-length"]))
    elif step.op == Op.DEL_ADDRESS:
        nl.del_address(step.target, p["ip"], int(p["prefix-length"]))
    elif step.op == Op.ADD_ROUTE:
        nl.replace_route(p["destination"], p["next-hop-address"], step.target, p["table-id"], p["metric"])
    elif step.op == Op.DELETE_LINK:
        nl.delete_link(step.target)
    else:  # pragma: no cover - exhaustive over Op
        raise AgentError(f"{step.target}: unknown step {step.op}")


# --------------------------------------------------------------------------- checkpoint
@dataclass
class Checkpoint:
    """What the touched part of the node looked like before: interfaces (currentState entries) of
    links that existed, links the steps create, and every non-kernel route."""

    interfaces: dict[str, dict[str, Any]]
    created: set[str]
    touched: set[str]
    routes: list[dict[str, Any]]

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
            touched.update(p["name"] for p in (iface.get("bridge") or {}).get("port") or [])
            touched.update((iface.get("link-aggregation") or {}).get("port") or [])
            peer = (iface.get("veth") or {}).get("peer")
            if peer:
                touched.add(peer)
        created = {s.target for s in steps if s.op == Op.CREATE_LINK and s.target not in ifaces}
        routes = [r for r in observed.get("routes", {}).get("running", []) if r.get("proto") != RT_PROTO_KERNEL]
        return cls({n: ifaces[n] for n in sorted(touched) if n in ifaces}, created, touched, routes)


_COMPARED = ("type", "state", "mtu", "mac-address", "controller", "ipv4", "ipv6")


def _key(iface: dict[str, Any]) -> dict[str, Any]:
    out = {k: iface.get(k) for k in _COMPARED}
    out["stp"] = ((iface.get("bridge") or {}).get("options") or {}).get("stp")
    return out


def _route_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["destination"], r["next-hop-address"], r["next-hop-interface"], r["table-id"], r["metric"])


def compare(cp: Checkpoint, observed: dict[str, Any]) -> list[str]:
    """Differences between the checkpoint and ``observed`` (empty = exactly restored)."""
    now = interfaces_by_name(observed)
    problems = []
    for name in sorted(cp.touched | cp.created):
        before, after = cp.interfaces.get(name), now.get(name)
        if before is None and after is not None:
            problems.append(f"{name}: still exists")
        elif before is not None and after is None:
            problems.append(f"{name}: missing")
        elif before is not None and after is not None:
            kb, ka = _key(before), _key(after)
            problems += [f"{name}: {k} {kb[k]!r} != {ka[k]!r}" for k in kb if kb[k] != ka[k]]
    have = {_route_key(r) for r in observed.get("routes", {}).get("running", []) if r.get("proto") != RT_PROTO_KERNEL}
    want = {_route_key(r) for r in cp.routes}
    problems += [f"route {r[0]} via {r[1]} dev {r[2]}: missing" for r in sorted(want - have, key=str)]
    problems += [f"route {r[0]} via {r[1]} dev {r[2]}: extra" for r in sorted(have - want, key=str)]
    return problems


def _try(problems: list[str], fn: Callable[[], None]) -> bool:
    try:
        fn()
        return True
    except AgentError as e:
        problems.append(str(e))
        return False


def restore(nl: Netlink, cp: Checkpoint) -> list[str]:
    """Put every touched link back as the checkpoint says; returns what could not be restored."""
    problems: list[str] = []

    def now() -> dict[str, dict[str, Any]]:
        return interfaces_by_name(current_state(nl.observe()))

    cur = now()
    for name in sorted(cp.created):
        if name in cur and name not in cp.interfaces:
            _try(problems, lambda n=name: nl.delete_link(n))
    cur = now()
    for name, before in cp.interfaces.items():
        if name in cur or before["type"] not in VIRTUAL_TYPES:
            continue
        t = before["type"]
        peer = (before.get("veth") or {}).get("peer")
        if t == "veth" and (not peer or peer in cur):
            problems.append(f"{name}: cannot re-create a veth without its peer")
            continue
        _try(
            problems,
            lambda n=name, b=before, t=t, peer=peer: nl.create_link(
                n,
                t,
                base=(b.get("vlan") or {}).get("base-iface"),
                vlan_id=(b.get("vlan") or {}).get("id"),
                bond_mode=(b.get("link-aggregation") or {}).get("mode"),
                stp=((b.get("bridge") or {}).get("options") or {}).get("stp", {}).get("enabled"),
                peer=peer,
                vxlan_id=(b.get("vxlan") or {}).get("id"),
                mac=b.get("mac-address"),
            ),
        )
    cur = now()
    # masters: detach first, then attach
    for name, before in cp.interfaces.items():
        if name in cur and cur[name].get("controller") and cur[name].get("controller") != before.get("controller"):
            _try(problems, lambda n=name: nl.set_master(n, None))
    for name, before in cp.interfaces.items():
        if name in cur and before.get("controller") and cur[name].get("controller") != before["controller"]:
            _try(problems, lambda n=name, m=before["controller"]: nl.set_master(n, m))
    # MTU: lowering an upper may need its lower first and vice versa; a few rounds settle it
    for _ in range(3):
        cur = now()
        pending = [(n, b["mtu"]) for n, b in cp.interfaces.items() if n in cur and cur[n].get("mtu") != b["mtu"]]
        if not pending:
            break
        for name, mtu in pending:
            with contextlib.suppress(AgentError):
                nl.set_mtu(name, mtu)
    cur = now()
    for name, before in cp.interfaces.items():
        if name not in cur:
            continue
        c = cur[name]
        if c.get("mtu") != before.get("mtu"):
            problems.append(f"{name}: cannot restore mtu {before.get('mtu')}")
        stp = ((before.get("bridge") or {}).get("options") or {}).get("stp")
        if stp is not None and ((c.get("bridge") or {}).get("options") or {}).get("stp") != stp:
            _try(problems, lambda n=name, e=stp["enabled"]: nl.set_stp(n, bool(e)))
        if c.get("state") != before.get("state"):
            want_up = before.get("state") == "up"
            _try(problems, lambda n=name, up=want_up: nl.set_state(n, up))
    cur = now()
    for name, before in cp.interfaces.items():
        if name not in cur:
            continue
        c = cur[name]
        if before.get("mac-address") and c.get("mac-address") != before["mac-address"]:
            _try(problems, lambda n=name, m=before["mac-address"]: nl.set_mac(n, m))
        for fam in ("ipv4", "ipv6"):
            want = {(a["ip"], a["prefix-length"]) for a in before[fam]["address"]}
            have = {(a["ip"], a["prefix-length"]) for a in c[fam]["address"]}
            for ip, plen in sorted(have - want):
                _try(problems, lambda n=name, ip=ip, plen=plen: nl.del_address(n, ip, plen))
            for ip, plen in sorted(want - have):
                _try(problems, lambda n=name, ip=ip, plen=plen: nl.add_address(n, ip, plen))
    state = current_state(nl.observe())
    have_routes = {_route_key(r): r for r in state["routes"]["running"] if r.get("proto") != RT_PROTO_KERNEL}
    want_routes = {_route_key(r): r for r in cp.routes}
    for key, r in sorted(have_routes.items(), key=lambda kv: str(kv[0])):
        if key not in want_routes and r["next-hop-interface"] in (cp.touched | cp.created):
            _try(problems, lambda r=r: nl.del_route(*_route_args(r)))
    for key, r in sorted(want_routes.items(), key=lambda kv: str(kv[0])):
        if key not in have_routes:
            _try(problems, lambda r=r: nl.replace_route(*_route_args(r)))
    return problems + compare(cp, current_state(nl.observe()))


def _route_args(r: dict[str, Any]) -> tuple[str, str | None, str | None, int, int]:
    return (r["destination"], r["next-hop-address"] or None, r["next-hop-interface"], r["table-id"], r["metric"])


# --------------------------------------------------------------------------- enforce
def enforce(
    nl: Netlink,
    steps: list[Step],
    *,
    probes: Sequence[Probe] = (),
    prechecks: Sequence[Precheck] = DEFAULT_PRECHECKS,
    timeout: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
) -> EnforceResult:
    """Apply ``steps`` safely. Never raises for a node-side failure: the result says Failing and why."""
    start_writes = nl.writes

    def result(status: str, reason: str, message: str, **kw: Any) -> EnforceResult:
        return EnforceResult(status, reason, message, writes=nl.writes - start_writes, **kw)

    if not steps:
        return result("Available", "SuccessfullyConfigured", "nothing to change")
    observed = current_state(nl.observe())
    refusals = [m for check in prechecks for m in check(observed, steps)]
    if refusals:
        return result("Failing", "FailedToConfigure", "refused before any change: " + "; ".join(refusals))

    cp = Checkpoint.take(observed, steps)
    deadline = clock() + timeout
    baseline = {p.name: p.run().ok for p in probes if p.only_if_ok_before}
    applied: list[Step] = []
    failure: str | None = None
    cur = interfaces_by_name(observed)
    for i, step in enumerate(steps, 1):
        if clock() > deadline:
            failure = f"timed out after {timeout:g}s at step {i}/{len(steps)} ({step})"
            break
        try:
            apply_step(nl, step, cur)
            applied.append(step)
        except AgentError as e:
            failure = f"step {i}/{len(steps)} ({step}) failed: {e}"
            break
        except Exception as e:  # an injected or unexpected error still must not leave the node half-done
            failure = f"step {i}/{len(steps)} ({step}) failed: {type(e).__name__}: {e}"
            break
    if failure is None:
        for probe in probes:
            if probe.only_if_ok_before and not baseline.get(probe.name):
                continue
            try:
                res = probe.run()
            except Exception as e:  # a crashing probe proves nothing: roll back as for a failing one
                res = ProbeResult(probe.name, False, f"{type(e).__name__}: {e}")
            if not res.ok:
                failure = f"probe {res.name} failed: {res.detail}"
                break
            if clock() > deadline:
                failure = f"timed out after {timeout:g}s while probing"
                break
    if failure is None:
        return result("Available", "SuccessfullyConfigured", f"applied {len(applied)} step(s)", applied=applied)
    problems = restore(nl, cp)
    msg = f"{failure}; rolled back"
    if problems:
        msg += "; rollback incomplete: " + "; ".join(problems)
    return result("Failing", "FailedToConfigure", msg, applied=applied, rolled_back=True, rollback_problems=problems)
