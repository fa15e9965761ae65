"""One agent pass, and the loop around it.

Why: ties the pieces together the way the DaemonSet runs them — get the policies that select this
node (from the Kubernetes API, or a list the caller gives), observe the kernel, diff, and then either
only report drift (observe mode: never a single netlink write) or enforce each policy in turn, taking
a ``maxUnavailable`` slot first so that no more than that many nodes change a policy at once.

Side effects: netlink writes in enforce mode (through ``enforce``); API writes when a ``Cluster`` is
given: server-side apply of NodeNetworkState / NNCE objects (field manager ``virtnet-agent``) and
``coordination.k8s.io/v1`` Leases ``virtnet-nncp-<policy>-<i>`` as slots. :class:`KubeCluster` is the
real ``Cluster``; tests use a fake with the same five methods.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler import labels
from reconciler.agent import capabilities, report
from reconciler.agent import desired as d
from reconciler.agent import safety as node_safety
from reconciler.agent.enforce import DEFAULT_PRECHECKS, EnforceResult, Precheck, enforce, precheck_capabilities
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import Probe, default_probes
from reconciler.agent.state import current_state
from reconciler.errors import AgentError

log = logging.getLogger(__name__)
FIELD_MANAGER = labels.AGENT
DEFAULT_MAX_UNAVAILABLE = "50%"


class Cluster(Protocol):
    def list_policies(self) -> list[dict[str, Any]]: ...
    def node_labels(self, node: str) -> dict[str, str]: ...
    def count_nodes(self, selector: Mapping[str, str]) -> int: ...
    def apply(self, obj: dict[str, Any]) -> None: ...
    def try_lease(self, name: str, holder: str, ttl: int) -> bool: ...
    def release_lease(self, name: str, holder: str) -> None: ...


def max_unavailable(value: int | str | None, nodes: int) -> int:
    """``spec.maxUnavailable`` (int or "N%", default 50%) over ``nodes`` matching nodes; at least 1."""
    value = DEFAULT_MAX_UNAVAILABLE if value is None else value
    if isinstance(value, str) and value.strip().endswith("%"):
        n = math.ceil(nodes * float(value.strip()[:-1]) / 100)
    else:
        n = int(value)
    return max(1, n)


def lease_name(policy: str, i: int) -> str:
    return f"virtnet-nncp-{policy}-{i}"


def acquire_slot(cluster: Cluster, policy: str, node: str, limit: int, ttl: int = 300) -> str | None:
    """The name of a slot lease this node now holds for ``policy``, or None when all ``limit`` are taken."""
    for i in range(limit):
        name = lease_name(policy, i)
        if cluster.try_lease(name, node, ttl):
            return name
    return None


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


@dataclass
class PassResult:
    node: str
    mode: str
    policies: list[str]
    drift: list[d.DriftItem]
    steps: dict[str, list[d.Step]]
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
    cluster: Cluster | None = None,
    now: Callable[[], str] = report.rfc3339,
) -> PassResult:
    """One pass. ``policies``/``node_labels`` default to what ``cluster`` says. Observe mode never writes."""
    if cfg.mode not in ("observe", "enforce"):
        raise AgentError(f"mode must be observe or enforce, not {cfg.mode!r}")
    start = nl.writes
    if policies is None:
        if cluster is None:
            raise AgentError("no policies given and no cluster to read them from")
        policies = cluster.list_policies()
    if node_labels is None:
        node_labels = cluster.node_labels(cfg.node) if cluster is not None else {}
    selected = d.select_policies(policies, node_labels)
    names = [_pname(p) for p in selected]
    observed = current_state(nl.observe())
    error: str | None = None
    try:
        drift_items = d.drift(d.merge_desired(selected), observed)
    except AgentError as e:
        drift_items, error = [], str(e)

    nnces: list[dict[str, Any]] = []
    steps: dict[str, list[d.Step]] = {}
    outcomes: dict[str, EnforceResult] = {}
    for policy in selected:
        pname = _pname(policy)
        try:
            steps[pname] = d.diff(d.policy_interfaces(policy), observed)
        except AgentError as e:
            nnces.append(report.enactment(cfg.node, policy, "Failing", str(e), now()))
            outcomes[pname] = EnforceResult("Failing", "FailedToConfigure", str(e))
            continue
        if not steps[pname]:
            nnces.append(report.enactment(cfg.node, policy, "Available", "node matches the policy", now()))
            continue
        if cfg.mode == "observe":
            msg = f"observe mode: {len(steps[pname])} change(s) needed, not enforced"
            nnces.append(report.enactment(cfg.node, policy, "Pending", msg, now(), reason="ObserveOnly"))
            continue
        nnce, outcome = _enforce_policy(cfg, nl, policy, cluster, now)
        nnces.append(nnce)
        outcomes[pname] = outcome
        observed = current_state(nl.observe())  # later policies diff against what this one left

    final = current_state(nl.observe()) if cfg.mode == "enforce" else observed
    if cfg.mode == "enforce":
        try:
            drift_items = d.drift(d.merge_desired(selected), final)
        except AgentError as e:
            error = str(e)
    stamp = now()
    nns = report.node_network_state(cfg.node, final, stamp)
    drep = report.drift_report(cfg.node, drift_items, names, stamp, cfg.mode)
    if error:
        drep["error"] = error
    # the controller reads drift from here: one LIST of NodeNetworkStates shows it in plans and status
    nns["metadata"].setdefault("annotations", {})[labels.DRIFT] = json.dumps(drep, sort_keys=True)
    if cluster is not None:
        for obj in [nns, *nnces]:
            try:
                cluster.apply(obj)
            except Exception as e:  # publishing must not undo a node change; say so and go on
                log.warning("publishing %s/%s failed: %s", obj["kind"], obj["metadata"]["name"], e)
    return PassResult(
        cfg.node, cfg.mode, names, drift_items, steps, outcomes, nns, nnces, drep, nl.writes - start, error
    )


def _enforce_policy(
    cfg: AgentConfig,
    nl: Netlink,
    policy: dict[str, Any],
    cluster: Cluster | None,
    now: Callable[[], str],
) -> tuple[dict[str, Any], EnforceResult]:
    pname = _pname(policy)
    observed = current_state(nl.observe())
    steps = d.diff(d.policy_interfaces(policy), observed)
    slot: str | None = None
    if cluster is not None:
        spec = policy.get("spec") or {}
        limit = max_unavailable(spec.get("maxUnavailable"), cluster.count_nodes(spec.get("nodeSelector") or {}))
        slot = acquire_slot(cluster, pname, cfg.node, limit, cfg.lease_ttl)
        if slot is None:
            msg = f"maxUnavailable {limit} reached for {pname}; will retry"
            pending = EnforceResult("Pending", "MaxUnavailableLimitReached", msg)
            return report.enactment(cfg.node, policy, "Pending", msg, now()), pending
        cluster.apply(report.enactment(cfg.node, policy, "Progressing", f"applying {len(steps)} step(s)", now()))
    try:
        probes = cfg.probes
        if probes is None:
            probes = default_probes(
                observed, netns=cfg.netns, api_server=cfg.api_server, targets=cfg.targets, timeout=cfg.probe_timeout
            )
        prechecks = list(cfg.prechecks)
        if cfg.safety_checks:  # reconciler/agent/safety.py: the controller's danger checks on the live node
            prechecks.append(node_safety.precheck_for(policy, cfg.node))
        if cfg.check_capabilities and any(s.op == d.Op.CREATE_LINK for s in steps):
            prechecks.append(precheck_capabilities(capabilities.detect()))
        outcome = enforce(nl, steps, probes=probes, prechecks=prechecks, timeout=cfg.timeout)
    finally:
        if cluster is not None and slot is not None:
            cluster.release_lease(slot, cfg.node)
    active = "Available" if outcome.ok else "Failing"
    return report.enactment(cfg.node, policy, active, outcome.message, now(), reason=outcome.reason), outcome


def run_loop(
    cfg: AgentConfig,
    make_netlink: Callable[[], Netlink],
    *,
    interval: float,
    cluster: Cluster | None = None,
    policies: Callable[[], list[dict[str, Any]]] | None = None,
    node_labels: Mapping[str, str] | None = None,
    on_pass: Callable[[PassResult], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run passes every ``interval`` seconds until ``stop()``; one failed pass does not end the loop."""
    while not stop():
        try:
            with make_netlink() as nl:
                res = run_once(
                    cfg, nl, policies=policies() if policies else None, node_labels=node_labels, cluster=cluster
                )
            if on_pass is not None:
                on_pass(res)
        except Exception as e:
            log.error("agent pass failed: %s", e)
        if stop():
            break
        sleep(interval)


class KubeCluster:
    """The real :class:`Cluster` over the ``kubernetes`` client (not exercised by the unit tests)."""

    def __init__(self, api_client: Any = None, lease_namespace: str = "virtnet-system") -> None:
        from kubernetes import client, dynamic

        self.api = api_client or client.ApiClient()
        self.dyn = dynamic.DynamicClient(self.api)
        self.core = client.CoreV1Api(self.api)
        self.coord = client.CoordinationV1Api(self.api)
        self.ns = lease_namespace

    def list_policies(self) -> list[dict[str, Any]]:
        res = self.dyn.resources.get(api_version="nmstate.io/v1", kind="NodeNetworkConfigurationPolicy")
        return [item.to_dict() for item in res.get().items]

    def node_labels(self, node: str) -> dict[str, str]:
        return dict(self.core.read_node(node).metadata.labels or {})

    def count_nodes(self, selector: Mapping[str, str]) -> int:
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return len(self.core.list_node(label_selector=sel or None).items)

    def apply(self, obj: dict[str, Any]) -> None:
        res = self.dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        body = {k: v for k, v in obj.items() if k != "status"}
        name = obj["metadata"]["name"]
        self.dyn.server_side_apply(res, body=body, name=name, field_manager=FIELD_MANAGER, force_conflicts=True)
        if "status" in obj:
            status = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": name}}
            status["status"] = obj["status"]
            self.dyn.server_side_apply(
                res.subresources["status"], body=status, name=name, field_manager=FIELD_MANAGER, force_conflicts=True
            )

    def try_lease(self, name: str, holder: str, ttl: int) -> bool:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        now = datetime.now(UTC)
        spec = client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=ttl, acquire_time=now, renew_time=now)
        body = client.V1Lease(metadata=client.V1ObjectMeta(name=name), spec=spec)
        try:
            self.coord.create_namespaced_lease(self.ns, body)
            return True
        except ApiException as e:
            if e.status != 409:
                raise
        cur = self.coord.read_namespaced_lease(name, self.ns)
        renew = cur.spec.renew_time or cur.spec.acquire_time
        expired = renew is None or (now - renew).total_seconds() > (cur.spec.lease_duration_seconds or ttl)
        if cur.spec.holder_identity != holder and not expired:
            return False
        body.metadata.resource_version = cur.metadata.resource_version
        try:
            self.coord.replace_namespaced_lease(name, self.ns, body)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    def release_lease(self, name: str, holder: str) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            cur = self.coord.read_namespaced_lease(name, self.ns)
            if cur.spec.holder_identity == holder:
                pre = client.V1Preconditions(resource_version=cur.metadata.resource_version)
                self.coord.delete_namespaced_lease(name, self.ns, body=client.V1DeleteOptions(preconditions=pre))
        except ApiException as e:
            if e.status not in (404, 409):
                raise
