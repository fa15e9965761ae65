"""One agent pass, and the loop around it.

Why: ties the pieces together the way the DaemonSet runs them — get the policies that select this
node (from the Kubernetes API, or a list the caller gives), observe the kernel, diff, and then either
only report drift (observe mode: never a single netlink write) or enforce each policy in turn, taking
a ``maxUnavailable`` slot first so that no more than that many nodes change a policy at once. An
enforce pass holds the node's writer lock (``reconciler.agent.nodelock``) from its first observation to
its last write, so two agents on one node never interleave; a pass that cannot get it changes nothing.

Side effects: netlink writes in enforce mode (through ``enforce``); API writes when an
:class:`~reconciler.agent.api.AgentApi` is given: server-side apply of NodeNetworkState / NNCE objects
(field manager ``virtnet-agent``) and slot Leases (``reconciler.agent.api``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import nmstate
from reconciler.agent import nodelock
from reconciler.agent.api import AgentApi, acquire_slot
from reconciler.agent.capabilities import detect
from reconciler.agent.desired import merge_desired
from reconciler.agent.drift import DriftItem, drift
from reconciler.agent.enforce import DEFAULT_PRECHECKS, EnforceResult, Precheck, enforce, precheck_capabilities
from reconciler.agent.netlink import Netlink
from reconciler.agent.nodelock import LockBusy, NodeLock
from reconciler.agent.probes import Probe, default_probes
from reconciler.agent.publish import drift_report, enactment, node_network_state, rfc3339
from reconciler.agent.safety import precheck_for
from reconciler.agent.state import current_state
from reconciler.agent.steps import Op, Step, diff
from reconciler.agent.validate import screen
from reconciler.errors import AgentError

log = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    node: str
    mode: str = "observe"  # or "enforce"
    netns: str | None = None
    probes: Sequence[Probe] | None = None  # None = gateway + api_server + targets
    api_server: tuple[str, int] | None = None
    targets: list[tuple[str, int]] = field(default_factory=list)
    prechecks: Sequence[Precheck] = DEFAULT_PRECHECKS
    probe_timeout: float = 10.0
    timeout: float = 120.0
    lease_ttl: int = 300
    #: refuse creating a link kind the kernel lacks before any write (probes the kernel once, cached)
    check_capabilities: bool = True
    #: refuse what the plan-time safety checks call an error (disconnect, missing NIC, VLAN MTU) before any write
    safety_checks: bool = True
    #: where the node's writer lock lives (shared by every agent on the node); None: no lock (tests only).
    #: Read from ``nodelock.LOCK_DIR`` when the config is made, so a test session can point it elsewhere.
    lock_dir: str | None = field(default_factory=lambda: nodelock.LOCK_DIR)
    #: seconds an enforce pass waits for another agent's pass on this node before it gives up
    lock_wait: float = 30.0


@dataclass
class PassResult:
    node: str
    mode: str
    policies: list[str]
    drift: list[DriftItem]
    steps: dict[str, list[Step]]
    outcomes: dict[str, EnforceResult]
    nns: dict[str, Any]
    nnces: list[dict[str, Any]]
    drift_report: dict[str, Any]
    writes: int
    error: str | None = None


def _pname(p: Mapping[str, Any]) -> str:
    return str((p.get("metadata") or {}).get("name", ""))


def run_once(
    cfg: AgentConfig,
    nl: Netlink,
    *,
    policies: list[dict[str, Any]] | None = None,
    node_labels: Mapping[str, str] | None = None,
    api: AgentApi | None = None,
    now: Callable[[], str] = rfc3339,
) -> PassResult:
    """One pass. ``policies``/``node_labels`` default to what ``api`` says. Observe mode never writes; an
    enforce pass runs under the node's writer lock and, when another agent holds it past ``cfg.lock_wait``,
    returns with ``error`` saying so, zero writes and nothing published."""
    if cfg.mode not in ("observe", "enforce"):
        raise AgentError(f"mode must be observe or enforce, not {cfg.mode!r}")
    if policies is None:
        if api is None:
            raise AgentError("no policies given and no cluster to read them from")
        policies = api.list_policies()
    if node_labels is None:
        node_labels = api.node_labels(cfg.node) if api is not None else {}
    if cfg.mode != "enforce" or cfg.lock_dir is None:
        return _pass(cfg, nl, policies, node_labels, api, now)
    lock = NodeLock(cfg.lock_dir, cfg.node, cfg.netns)
    try:
        lock.acquire(cfg.lock_wait)
    except LockBusy as e:
        log.warning("%s", e)
        report = {"node": cfg.node, "mode": cfg.mode, "time": now(), "error": str(e)}  # no drift known
        return PassResult(cfg.node, cfg.mode, [], [], {}, {}, {}, [], report, 0, str(e))
    try:
        return _pass(cfg, nl, policies, node_labels, api, now)
    finally:
        lock.release()


def _pass(
    cfg: AgentConfig,
    nl: Netlink,
    policies: list[dict[str, Any]],
    node_labels: Mapping[str, str],
    api: AgentApi | None,
    now: Callable[[], str],
) -> PassResult:
    """Screen the policies, then each well-formed one on its own: whatever one policy does wrong (malformed,
    refused, or an error nobody foresaw) makes *that* policy Failing, never the pass."""
    start = nl.writes
    screened = screen(policies, node_labels)
    errors = list(screened.unnamed)
    for message in errors:
        log.error("%s", message)
    nnces: list[dict[str, Any]] = []
    steps: dict[str, list[Step]] = {}
    outcomes: dict[str, EnforceResult] = {}

    def fail(policy: dict[str, Any], message: str) -> None:
        nnces.append(enactment(cfg.node, policy, "Failing", message, now()))
        outcomes[_pname(policy)] = EnforceResult("Failing", "FailedToConfigure", message)

    for policy, why in screened.failing:
        log.warning("policy %s: %s", _pname(policy), why)
        fail(policy, why)
    observed = current_state(nl.observe())
    for policy in screened.selected:
        try:
            changed = _one_policy(cfg, nl, policy, observed, api, now, nnces, steps, outcomes)
        except Exception as e:  # a shape the screen missed or a bug: this policy fails, the others go on
            log.exception("policy %s failed unexpectedly", _pname(policy))
            fail(policy, f"not applied: unexpected {type(e).__name__}: {e}")
            changed = cfg.mode == "enforce"
        if changed:
            observed = current_state(nl.observe())  # later policies diff against what this one left
    try:
        drift_items = drift(merge_desired(screened.selected), observed)
    except Exception as e:  # two policies disagree (AgentError) or worse: no drift rows, say why
        drift_items = []
        errors.append(str(e) if isinstance(e, AgentError) else f"drift: {type(e).__name__}: {e}")
    names = sorted([_pname(p) for p in screened.selected] + [_pname(p) for p, _ in screened.failing])
    stamp = now()
    error = "; ".join(errors) or None
    drep = drift_report(cfg.node, drift_items, names, stamp, cfg.mode)
    if error:
        drep["error"] = error
    nns = node_network_state(cfg.node, observed, stamp, drep)
    if api is not None:
        _publish(api, [nns, *nnces])
    return PassResult(
        cfg.node, cfg.mode, names, drift_items, steps, outcomes, nns, nnces, drep, nl.writes - start, error
    )


def _one_policy(
    cfg: AgentConfig,
    nl: Netlink,
    policy: dict[str, Any],
    observed: dict[str, Any],
    api: AgentApi | None,
    now: Callable[[], str],
    nnces: list[dict[str, Any]],
    steps: dict[str, list[Step]],
    outcomes: dict[str, EnforceResult],
) -> bool:
    """Diff one policy and report or enforce it; True when it may have changed the node."""
    pname = _pname(policy)
    try:
        steps[pname] = diff(nmstate.policy_interfaces(policy), observed)
    except AgentError as e:
        nnces.append(enactment(cfg.node, policy, "Failing", str(e), now()))
        outcomes[pname] = EnforceResult("Failing", "FailedToConfigure", str(e))
        return False
    if not steps[pname]:
        nnces.append(enactment(cfg.node, policy, "Available", "node matches the policy", now()))
        return False
    if cfg.mode == "observe":
        msg = f"observe mode: {len(steps[pname])} change(s) needed, not enforced"
        nnces.append(enactment(cfg.node, policy, "Pending", msg, now(), reason="ObserveOnly"))
        return False
    nnce, outcome = _enforce_policy(cfg, nl, policy, api, now)
    nnces.append(nnce)
    outcomes[pname] = outcome
    return True


def _publish(api: AgentApi, objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        try:
            api.apply(obj)
        except Exception as e:  # publishing must not undo a node change; say so and go on
            log.warning("publishing %s/%s failed: %s", obj["kind"], obj["metadata"]["name"], e)


def _enforce_policy(
    cfg: AgentConfig,
    nl: Netlink,
    policy: dict[str, Any],
    api: AgentApi | None,
    now: Callable[[], str],
) -> tuple[dict[str, Any], EnforceResult]:
    """Enforce one policy while holding one of its ``maxUnavailable`` slots (when there is an API)."""
    pname = _pname(policy)
    observed = current_state(nl.observe())
    steps = diff(nmstate.policy_interfaces(policy), observed)
    slot: str | None = None
    if api is not None:
        spec = policy.get("spec") or {}
        try:
            limit = nmstate.max_unavailable(spec.get("maxUnavailable"), api.count_nodes(spec.get("nodeSelector") or {}))
        except nmstate.PolicyError as e:
            failing = EnforceResult("Failing", "FailedToConfigure", f"{pname}: {e}")
            return enactment(cfg.node, policy, "Failing", failing.message, now()), failing
        slot = acquire_slot(api, pname, cfg.node, limit, cfg.lease_ttl)
        if slot is None:
            msg = f"maxUnavailable {limit} reached for {pname}; will retry"
            pending = EnforceResult("Pending", "MaxUnavailableLimitReached", msg)
            return enactment(cfg.node, policy, "Pending", msg, now()), pending
    try:
        if api is not None:
            _publish(api, [enactment(cfg.node, policy, "Progressing", f"applying {len(steps)} step(s)", now())])
        probes, prechecks = _probes(cfg, observed), _prechecks(cfg, policy, steps)
        outcome = enforce(nl, steps, probes=probes, prechecks=prechecks, timeout=cfg.timeout)
    finally:
        if api is not None and slot is not None:
            api.release_lease(slot, cfg.node)
    active = "Available" if outcome.ok else "Failing"
    return enactment(cfg.node, policy, active, outcome.message, now(), reason=outcome.reason), outcome


def _probes(cfg: AgentConfig, observed: dict[str, Any]) -> Sequence[Probe]:
    if cfg.probes is not None:
        return cfg.probes
    return default_probes(
        observed, netns=cfg.netns, api_server=cfg.api_server, targets=cfg.targets, timeout=cfg.probe_timeout
    )


def _prechecks(cfg: AgentConfig, policy: dict[str, Any], steps: list[Step]) -> list[Precheck]:
    prechecks = list(cfg.prechecks)
    if cfg.safety_checks:  # reconciler/agent/safety.py: the controller's danger checks on the live node
        prechecks.append(precheck_for(policy, cfg.node))
    if cfg.check_capabilities and any(s.op == Op.CREATE_LINK for s in steps):
        prechecks.append(precheck_capabilities(detect()))
    return prechecks


def run_loop(
    cfg: AgentConfig,
    make_netlink: Callable[[], Netlink],
    *,
    interval: float,
    api: AgentApi | None = None,
    policies: Callable[[], list[dict[str, Any]]] | None = None,
    node_labels: Mapping[str, str] | None = None,
    on_pass: Callable[[PassResult], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    on_done: Callable[[PassResult | None, float], None] | None = None,
) -> None:
    """Run passes every ``interval`` seconds until ``stop()``; one failed pass does not end the loop.
    ``on_done`` hears of every pass, the ones that raised included (``None``), with its seconds (probes)."""
    while not stop():
        started = time.monotonic()
        res: PassResult | None = None
        try:
            with make_netlink() as nl:
                res = run_once(cfg, nl, policies=policies() if policies else None, node_labels=node_labels, api=api)
            if on_pass is not None:
                on_pass(res)
        except Exception as e:
            log.error("agent pass failed: %s", e)
        if on_done is not None:
            on_done(res, time.monotonic() - started)
        if stop():
            break
        sleep(interval)
