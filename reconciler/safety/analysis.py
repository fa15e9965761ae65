"""Pre-merge safety analysis of a plan: blast radius, and "would this cut a node off?" (pure).

Why: a plan says *what* objects change; reviewers also need *where it lands* — which nodes a node
policy reconfigures and in which rollout batches, which VMs sit on a network that changes and whether
they restart or hot-plug, which Services lose or gain endpoints — and whether the change is dangerous:

=================  =========  =====================================================================
check              severity   when
=================  =========  =====================================================================
``disconnect``     error      a NIC carrying the default route or node IP becomes a bridge/bond port
                              without its IP following (or is set down/absent, or loses its address)
``missing-nic``    error      a bridge/bond port or VLAN base is missing on selected nodes
``enslaved``       warning    a port is already enslaved by a bridge/bond the policy does not manage
``mtu``            error      a bridge NAD's MTU above the bridge's, or a VLAN's above its parent's
``no-nodes``       warning    a policy selects no node
``control-plane``  error      one rollout batch may take more control-plane nodes than etcd quorum allows
``in-use``         error      a network (NAD, SR-IOV network, bridge policy) is removed while running VMs
                              still use it
=================  =========  =====================================================================

Errors block ``apply`` (pipeline reason ``PlanBlocked``) and fail the PR status unless accepted, either
for one run with ``virtnet plan|apply --accept-risk`` (every check), or in the repository with the
Cluster document's annotation ``virtnet.io/accept-risk: "disconnect,mtu"`` (those checks; ``all`` for
every check) — the acceptance is then reviewed in the same pull request as the change.

:func:`analyze` takes the plan, node facts (``reconciler.pipeline.read_nodes``; ``None`` when they could
not be read), the rendered objects and the Repo (for ``file:line`` of the cause). No side effects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.plan import Action, Item, Plan
from reconciler.model import Entry
from reconciler.model.cluster import ClusterSpec
from reconciler.nmstate import absent_policy, creates, max_unavailable, policy_interfaces, port_names, selects
from reconciler.objects import Obj, display, obj_id
from reconciler.render import Origin
from reconciler.safety.checks import ERROR, WARNING, Finding, node_findings
from reconciler.safety.connectivity import ConnectivityReport
from reconciler.safety.nodes import NodeFacts
from reconciler.safety.radius import (
    NAD,
    NNCP,
    SRIOV,
    VM,
    NetworkImpact,
    PolicyImpact,
    ServiceImpact,
    VMImpact,
    batches,
    bridges_of,
    iface_changes,
    nad_config,
    nad_key,
    networks,
    running,
    services,
    vm_networks,
)
from reconciler.safety.refs import Refs
from reconciler.safety.report import ACCEPT_ANNOTATION, CHECKS, SafetyReport
from reconciler.safety.sriov import POLICY as SRIOV_POLICY
from reconciler.safety.sriov import sriov_impacts

#: the kinds whose changes the node checks look at: node policies (the nodes they select, etcd quorum), NADs (their
#: MTU against the bridge's on each node) and SR-IOV policies (the nodes they pick). A VM or SriovNetwork change
#: reads no node fact, so a one-VM commit lists neither Nodes nor NodeNetworkStates.
NODE_KINDS = frozenset({NNCP, NAD, SRIOV_POLICY})
CHANGED = (Action.CREATE, Action.UPDATE, Action.DELETE)

__all__ = [
    "ACCEPT_ANNOTATION",
    "CHECKS",
    "Finding",
    "NetworkImpact",
    "PolicyImpact",
    "SafetyReport",
    "ServiceImpact",
    "VMImpact",
    "analyze",
    "batches",
    "needs_node_facts",
]


def needs_node_facts(plan: Plan) -> bool:
    """Read Nodes/NodeNetworkStates only for plans that change what the node checks look at (``NODE_KINDS``)."""
    return any(i.action in CHANGED and i.name.split("/")[0] in NODE_KINDS for i in plan.items)


@dataclass
class _Ctx:
    plan: Plan
    nodes: list[NodeFacts]
    refs: Refs
    after: dict[str, Obj] = field(default_factory=dict)  # every object once the plan is applied
    nads: dict[str, Obj] = field(default_factory=dict)  # NADs before or after (id -> object)
    vms: list[Item] = field(default_factory=list)

    def policies_after(self) -> list[Obj]:
        return [o for o in self.after.values() if o["kind"] == NNCP]


def analyze(
    plan: Plan,
    nodes: Iterable[NodeFacts] | None,
    desired: Iterable[Obj],
    origins: Mapping[str, Origin] | None = None,
    *,
    cluster: Entry[ClusterSpec] | None = None,
    accept_risk: bool = False,
    note: str = "",
    connectivity: ConnectivityReport | None = None,
) -> SafetyReport:
    """Blast radius and danger checks of ``plan`` (see the module docstring). Pure.

    ``origins`` (from the render) lead each finding to its document's line; ``cluster`` is the Cluster
    document, whose annotation may accept named checks; ``connectivity`` (``reconciler.safety.connectivity``,
    computed from the revisions rather than the plan) joins the report with its findings."""
    ctx = _Ctx(plan, sorted(nodes or [], key=lambda n: n.name), Refs(origins))
    ctx.after = {obj_id(o): o for o in desired}
    for item in plan.items:
        for obj in (item.live, item.desired):
            if obj is not None and obj["kind"] in (NAD, SRIOV):
                ctx.nads.setdefault(obj_id(obj), obj)
    ctx.vms = [i for i in plan.items if i.name.startswith(f"{VM}/")]
    findings: list[Finding] = []
    policies = [_policy(ctx, i, findings, nodes is not None) for i in plan.changes if i.name.startswith(f"{NNCP}/")]
    findings += _nad_mtu(ctx)
    findings += _in_use(ctx)
    findings += connectivity.findings if connectivity is not None else []
    accepted, by = _acceptance(cluster, accept_risk)
    return SafetyReport(
        policies=tuple(policies),
        networks=tuple(networks(ctx.plan, ctx.nads, ctx.vms)),
        services=tuple(services(ctx.plan, ctx.vms)),
        sriov=tuple(sriov_impacts(plan.items, ctx.nodes, ctx.vms, ctx.after.values())),
        findings=tuple(_group_missing(findings)),
        accepted=accepted,
        accepted_by=by,
        nodes_read=nodes is not None,
        note=note or ("" if nodes is not None or not needs_node_facts(plan) else "node facts were not read"),
        connectivity=connectivity,
    )


def _acceptance(cluster: Entry[ClusterSpec] | None, cli: bool) -> tuple[frozenset[str], str]:
    if cli:
        return frozenset(CHECKS), "--accept-risk"
    if cluster is None:
        return frozenset(), ""
    value = cluster.meta.annotations.get(ACCEPT_ANNOTATION, "")
    names = {v.strip() for v in value.split(",") if v.strip()}
    if names & {"all", "*"}:
        names = set(CHECKS)
    ref = cluster.ref("metadata", "annotations", ACCEPT_ANNOTATION)
    return frozenset(names & set(CHECKS)), (f"{ref.file}:{ref.line}" if names else "")


def _policy(ctx: _Ctx, item: Item, findings: list[Finding], nodes_known: bool) -> PolicyImpact:
    policy = item.desired if item.action != Action.DELETE else absent_policy(item.live or {})
    assert policy is not None
    spec = policy.get("spec") or {}
    name = policy["metadata"]["name"]
    selected = [n for n in ctx.nodes if selects(spec.get("nodeSelector"), n.labels)]
    names = [n.name for n in selected]
    size = max_unavailable(spec.get("maxUnavailable"), len(selected))
    ifaces = policy_interfaces(policy)

    def ref(iface: str, what: str, nic: str | None) -> Any:
        return ctx.refs.policy(policy, iface, what, nic)

    if nodes_known and not selected and item.action != Action.DELETE:
        sel = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("nodeSelector") or {}).items())) or "(all)"
        findings.append(
            Finding(
                WARNING,
                "no-nodes",
                f"policy {name} selects no node (nodeSelector {sel})",
                "",
                "",
                ref("", "nodeSelector", None),
                item.id,
            )
        )
    _control_plane(ctx, item, name, selected, size, spec, findings, ref)
    changes: dict[str, tuple[str, ...]] = {}
    for node in selected:
        after = [p for p in ctx.policies_after() if selects((p.get("spec") or {}).get("nodeSelector"), node.labels)]
        merged: dict[str, Any] = {}
        for p in [policy, *after]:
            for i in policy_interfaces(p):
                merged.setdefault(str(i.get("name")), i)
        created = {n for n, i in merged.items() if creates(i)}
        findings += node_findings(name, ifaces, node, created=created, merged=merged, ref=ref, obj=item.id)
        if rows := iface_changes(ifaces, node):
            changes[node.name] = rows
    return PolicyImpact(
        name=name,
        id=item.id,
        action=item.action.value,
        nodes=tuple(names),
        control_plane=tuple(n.name for n in selected if n.control_plane),
        max_unavailable=str(spec.get("maxUnavailable", "50% (default)")),
        batches=tuple(tuple(b) for b in batches(names, size)),
        interfaces=changes,
    )


def _control_plane(
    ctx: _Ctx,
    item: Item,
    name: str,
    selected: list[NodeFacts],
    size: int,
    spec: dict[str, Any],
    findings: list[Finding],
    ref: Any,
) -> None:
    """etcd keeps quorum with at most floor((n-1)/2) of n members down; a batch must not take more."""
    total = sum(1 for n in ctx.nodes if n.control_plane)
    chosen = [n.name for n in selected if n.control_plane]
    if not chosen:
        return
    worst = min(size, len(chosen))
    tolerated = (total - 1) // 2
    where = ref("", "maxUnavailable" if "maxUnavailable" in spec else "nodeSelector", None)
    if total == 1:
        findings.append(
            Finding(
                WARNING,
                "control-plane",
                f"policy {name} reconfigures the only control-plane node {chosen[0]}: the API "
                "server is unreachable if it goes wrong",
                chosen[0],
                "",
                where,
                item.id,
            )
        )
    elif worst > tolerated:
        findings.append(
            Finding(
                ERROR,
                "control-plane",
                f"policy {name} may reconfigure {worst} of {total} control-plane nodes at once (maxUnavailable "
                f"{spec.get('maxUnavailable', '50%')} → batches of {size}); etcd keeps quorum with at most {tolerated} "
                f"down: set maxUnavailable: {max(tolerated, 1)} or narrow the nodeSelector",
                ", ".join(chosen),
                "",
                where,
                item.id,
            )
        )


def _bridge_mtu(ctx: _Ctx, bridge: str, node: NodeFacts) -> int | None:
    for p in ctx.policies_after():
        if not selects((p.get("spec") or {}).get("nodeSelector"), node.labels):
            continue
        for i in policy_interfaces(p):
            if i.get("name") == bridge and i.get("state") != "absent":
                if i.get("mtu"):
                    return int(i["mtu"])
                ports = [node.interfaces[n].mtu for n in port_names(i) if n in node.interfaces]
                return min((m for m in ports if m), default=None)
    cur = node.interfaces.get(bridge)
    return cur.mtu if cur else None


def _nad_mtu(ctx: _Ctx) -> list[Finding]:
    changed = {i.id for i in ctx.plan.changes}
    changed_bridges = {
        str(i.get("name"))
        for item in ctx.plan.changes
        if item.name.startswith(f"{NNCP}/") and item.desired
        for i in policy_interfaces(item.desired)
        if i.get("type") == "linux-bridge"
    }
    out = []
    # a NAD is looked at only when it or its bridge changes: without a changed bridge, only the changed NADs
    keys = sorted(ctx.after) if changed_bridges else sorted(k for k in changed if k in ctx.after)
    for key in keys:
        nad = ctx.after[key]
        config = nad_config(nad) if nad["kind"] == NAD else {}
        bridge, mtu = config.get("bridge"), config.get("mtu")
        if config.get("type") not in ("bridge", "cnv-bridge") or not mtu or not bridge:
            continue
        if key not in changed and bridge not in changed_bridges:
            continue
        low = [(n.name, m) for n in ctx.nodes if (m := _bridge_mtu(ctx, bridge, n)) is not None and m < int(mtu)]
        if low:
            where = ", ".join(f"{n} ({m})" for n, m in low)
            out.append(
                Finding(
                    ERROR,
                    "mtu",
                    f"{display(nad)} has MTU {mtu} but bridge {bridge} has a lower MTU on {where}: "
                    "VM frames above the bridge MTU are dropped",
                    ", ".join(n for n, _ in low),
                    bridge,
                    ctx.refs.network(nad, "mtu"),
                    key,
                )
            )
    return out


def _in_use(ctx: _Ctx) -> list[Finding]:
    """Networks removed by the plan that running VMs still use once the plan is applied."""
    gone_keys: dict[tuple[str, str], str] = {}
    gone_bridges: dict[str, str] = {}
    still = set().union(*(bridges_of(p) for p in ctx.policies_after()))
    for item in ctx.plan.changes:
        if item.action != Action.DELETE or item.live is None:
            continue
        if item.live["kind"] in (NAD, SRIOV):
            gone_keys[nad_key(item.live)] = item.name
        elif item.live["kind"] == NNCP:
            gone_bridges.update({b: item.name for b in bridges_of(item.live) - still})
    if not gone_keys and not gone_bridges:
        return []  # nothing removed: no VM can lose a network (and no need to look at every VM)
    # NAD -> the bridge it rides on, for bridges that go away: built once, not per VM interface
    bridge_of = {
        nad_key(n): bridge for n in ctx.nads.values() if (bridge := nad_config(n).get("bridge")) in gone_bridges
    }
    out = []
    for vm in ctx.vms:
        if vm.action == Action.DELETE or vm.desired is None or not running(vm):
            continue
        for iface, key in sorted(vm_networks(vm.desired).items()):
            removed = gone_keys.get(key)
            if removed is None:
                bridge = bridge_of.get(key)
                removed = f"{gone_bridges[bridge]} (bridge {bridge})" if bridge else None
            if removed:
                out.append(
                    Finding(
                        ERROR,
                        "in-use",
                        f"{vm.name} still uses {'/'.join(key)} through interface {iface}, but the plan "
                        f"removes {removed}: delete the VM or remove its interface in the same change",
                        "",
                        iface,
                        ctx.refs.vm(vm.desired, iface),
                        vm.id,
                    )
                )
    return out


def _group_missing(findings: list[Finding]) -> list[Finding]:
    """One ``missing-nic`` finding per policy and NIC, listing every node it is missing on."""
    out: list[Finding] = []
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        if f.check == "missing-nic":
            groups.setdefault((f.obj, f.interface, f.message.replace(f"on {f.node}:", "on {}:", 1)), []).append(f)
        else:
            out.append(f)
    for (obj, nic, template), group in groups.items():
        nodes = sorted({f.node for f in group})
        message = template.replace("on {}:", f"on {', '.join(nodes)}:", 1)
        out.append(Finding(ERROR, "missing-nic", message, ", ".join(nodes), nic, group[0].ref, obj))
    order = {c: i for i, c in enumerate(CHECKS)}
    return sorted(out, key=lambda f: (f.severity != ERROR, order.get(f.check, 99), f.obj, f.node, f.interface))
