"""Enforce mode: apply steps with a checkpoint, probe, and roll back exactly on any failure.

Why: a wrong network change can cut a node off from the cluster that would have to repair it. So
before touching anything we run pre-checks (refuse changes that obviously disconnect the node, and
changes the kernel cannot do), take a checkpoint of everything the steps touch, apply, probe, and on
any failure (a netlink error mid-apply, a failing probe, the deadline) restore the checkpoint exactly
(``reconciler.agent.rollback``): delete links we created (by the ifindex their create returned, never a
same-named link someone else made), re-create links we deleted, restore masters,
MTUs, admin state, MACs, STP, addresses and routes, then verify the restore by observing again.

Pre-checks here: the default route must survive, no step touches the loopback interface; the runner adds
the controller's danger checks on the live node (``reconciler.agent.safety``: MTUs below the floor IPv6 or
IPv4 needs, among others) and the kernel's capabilities. Probes: :class:`~reconciler.agent.probes.AddressesKept`
always runs first (an address the change did not remove is gone: IPv6 after a too-small MTU), then the
caller's (gateways over IPv4 and IPv6, the API server).

Side effects: writes to the node's network namespace through :class:`~reconciler.agent.netlink.Netlink`
only, and whatever the probes send. A refused change makes zero writes.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.agent.capabilities import Capabilities
from reconciler.agent.netlink import Netlink, WriteError
from reconciler.agent.probes import AddressesKept, Probe, ProbeResult, kept_addresses
from reconciler.agent.rollback import Checkpoint, restore
from reconciler.agent.state import TYPE_TO_KIND, current_state, default_gateways, interfaces_by_name
from reconciler.agent.steps import Op, Step
from reconciler.errors import AgentError

Precheck = Callable[[dict[str, Any], list[Step]], list[str]]


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


def precheck_loopback(observed: dict[str, Any], steps: list[Step]) -> list[str]:
    """Refuse any step on the loopback interface (``lo`` or a link the kernel reports as loopback), or that
    makes it a port: the node's own traffic runs over it, and no probe of the uplink notices it is gone.
    (A policy naming ``lo`` is refused earlier, by ``reconciler.agent.validate``; this is for any other way a
    step could get there.)"""
    loopbacks = {n for n, i in interfaces_by_name(observed).items() if i.get("type") == "loopback"} | {"lo"}
    return sorted(
        {
            f"{s} would change the loopback interface {s.target if s.target in loopbacks else s.params['controller']}"
            ": the node's own traffic runs over it"
            for s in steps
            if s.target in loopbacks or s.params.get("controller") in loopbacks
        }
    )


DEFAULT_PRECHECKS: tuple[Precheck, ...] = (precheck_default_route, precheck_loopback)


# --------------------------------------------------------------------------- apply
def apply_step(nl: Netlink, step: Step, current: dict[str, dict[str, Any]] | None = None) -> int | None:
    """Apply one step; for a link create, the ifindex of the link it made (else None)."""
    p = step.params
    if step.op == Op.CREATE_LINK:
        return nl.create_link(
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
    return None


def _apply_steps(
    nl: Netlink,
    steps: list[Step],
    cp: Checkpoint,
    cur: dict[str, dict[str, Any]],
    deadline: float,
    timeout: float,
    clock: Callable[[], float],
) -> tuple[list[Step], str | None]:
    """Apply ``steps`` in order, their writes batched (``Netlink.batch``: the kernel still answers each one);
    returns the steps applied and the first failure. Every link a create made, even in the batch after a
    refused write, is recorded in ``cp`` so the rollback deletes it."""
    applied: list[Step] = []
    failure: str | None = None
    made = len(nl.created)

    def failed(i: int, e: BaseException) -> str:
        if isinstance(e, WriteError) and isinstance(e.tag, int):  # refused when its batch went out
            i = e.tag
            del applied[i - 1 :]
        what = str(e) if isinstance(e, AgentError) else f"{type(e).__name__}: {e}"
        return f"step {i}/{len(steps)} ({steps[i - 1]}) failed: {what}"

    try:
        with nl.batch():
            for i, step in enumerate(steps, 1):
                if clock() > deadline:
                    failure = f"timed out after {timeout:g}s at step {i}/{len(steps)} ({step})"
                    break
                nl.tag = i
                try:
                    apply_step(nl, step, cur)
                    applied.append(step)
                except Exception as e:  # an injected or unexpected error still must not leave the node half-done
                    failure = failed(i, e)
                    break
    except Exception as e:  # the batch sent as the block ended: its writes came before any step that broke the loop
        failure = failed(len(steps), e) if failure is None or isinstance(e, WriteError) else failure
    finally:
        nl.tag = None
        for index, name in nl.created[made:]:  # only a create that succeeded makes a link ours to roll back
            cp.record_created(index, name)
    return applied, failure


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
    # always first: the addresses the change did not mean to remove are still there (IPv6 included)
    probes = [AddressesKept(kept_addresses(observed, steps), lambda: current_state(nl.observe())), *probes]
    applied, failure = _apply_steps(nl, steps, cp, interfaces_by_name(observed), deadline, timeout, clock)
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
