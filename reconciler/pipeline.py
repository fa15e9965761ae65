"""One reconcile, top to bottom: load → render → observe → plan → apply. The only place stages meet I/O.

Each stage names its own failure reason (like Flux's kustomize-controller), so a status commit or PR
comment can say *where* a run stopped: ``ValidationFailed`` (nothing was sent to the cluster),
``ObserveFailed``, ``PlanBlocked`` (a guard refused, nothing applied), ``ApplyFailed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from reconciler import labels
from reconciler.clients.kube import MANAGED_KINDS, RESOURCES, Kube
from reconciler.engine.apply import ApplyOptions, apply_plan
from reconciler.engine.changes import ChangeSet
from reconciler.engine.dryrun import dry_run
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.kubevirt import rollout_strategy
from reconciler.engine.live import LiveState
from reconciler.engine.plan import Plan, PlanOptions, build_plan, with_revision, with_rollout
from reconciler.errors import ModelError, Problem
from reconciler.model import ParseCache, Repo, load_repo
from reconciler.model.basedomain import ClusterDomain
from reconciler.model.sops import KeySource, keys_from_env
from reconciler.objects import Obj, is_owned, is_patch_only, obj_id
from reconciler.render import Origin, RenderCache, Rendered, render
from reconciler.safety import SafetyReport, analyze, needs_node_facts
from reconciler.safety.connectivity import compare
from reconciler.safety.nodes import NodeFacts, build_nodes


@dataclass
class Outcome:
    cluster: str | None = None
    revision: str | None = None
    desired: list[Obj] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)  # the document behind each desired object
    plan: Plan | None = None
    changes: ChangeSet | None = None
    problems: list[Problem] = field(default_factory=list)
    repo: Repo | None = None
    live: LiveState | None = None
    safety: SafetyReport | None = None  # blast radius and danger checks of the plan (reconciler/safety/)
    failed: str | None = None  # the stage's reason, None when everything went through
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.failed is None


def list_scoped(kube: Kube, kind: str, selector: str | None, namespaces: tuple[str, ...] = ()) -> list[Obj]:
    """A cluster-wide LIST, or one per namespace when the controller is confined to ``namespaces``
    (the Helm chart's ``rbac.namespaces``: per-namespace Roles cannot list across namespaces)."""
    if not namespaces or not RESOURCES[kind].namespaced:
        return kube.list(kind, selector)
    return [obj for ns in namespaces for obj in kube.list(kind, selector, namespace=ns)]


def observe(
    kube: Kube,
    cluster: str,
    desired: list[Obj],
    kinds: tuple[str, ...] = MANAGED_KINDS,
    namespaces: tuple[str, ...] = (),
) -> LiveState:
    """One LIST per managed kind (our label selector), GETs for patch-only objects, one VMI LIST."""
    state = LiveState()
    for kind in kinds:
        try:
            # everything virtnet manages, in one LIST: ours by the cluster label, the rest only to refuse
            # taking over another cluster's objects (two Clusters pointed at one API server by mistake)
            for obj in list_scoped(kube, kind, labels.ANY_CLUSTER, namespaces):
                (state.owned if is_owned(obj, cluster) else state.foreign)[obj_id(obj)] = obj
        except ApiException as exc:
            if exc.status != 404:
                raise
            state.missing_kinds.add(kind)  # the cluster does not serve it (operator not installed)
    for obj in desired:
        if is_patch_only(obj):
            meta = obj["metadata"]
            state.patch_targets[obj_id(obj)] = kube.get(obj["kind"], meta["name"], meta.get("namespace"))
    state.unowned = _existing_unowned(kube, desired, state, namespaces)
    state.namespace_contents = _namespace_contents(kube, desired, state)
    state.node_drift = read_node_drift(kube, namespaces)
    if any(o["kind"] == "VirtualMachine" for o in desired):
        try:
            for vmi in list_scoped(kube, "VirtualMachineInstance", labels.VM, namespaces):
                state.vmis[f"{vmi['metadata']['namespace']}/{vmi['metadata']['name']}"] = vmi
        except ApiException as exc:
            if exc.status != 404:
                raise
    return state


def _existing_unowned(kube: Kube, desired: list[Obj], state: LiveState, scope: tuple[str, ...]) -> dict[str, Obj]:
    """Desired objects that exist although virtnet did not create them (adoption must be asked for).

    One GET per object the plan would create, skipping what cannot exist yet: objects in a namespace that is
    itself about to be created. A no-op reconcile creates nothing, so it makes none of these requests.
    """
    seen = state.owned.keys() | state.foreign.keys()
    found: dict[str, Obj] = {}
    missing_namespaces: set[str] = set()
    unseen = [(key, o) for o in desired if (key := obj_id(o)) not in seen]
    ordered = sorted(unseen, key=lambda pair: pair[1]["kind"] != "Namespace")  # namespaces first
    for key, obj in ordered:
        meta = obj["metadata"]
        if is_patch_only(obj) or obj["kind"] in state.missing_kinds:
            continue
        namespace = meta.get("namespace")
        if namespace in missing_namespaces or (scope and namespace and namespace not in scope):
            continue
        try:
            live = kube.get(obj["kind"], meta["name"], namespace)
        except ApiException as exc:
            if exc.status != 403:
                raise
            continue  # not ours to read (a namespace-confined controller): nor to write, as apply will say
        if live is not None:
            found[key] = live
        elif obj["kind"] == "Namespace":
            missing_namespaces.add(meta["name"])
    return found


def _namespace_contents(kube: Kube, desired: list[Obj], state: LiveState) -> dict[str, set[str]]:
    """What deleting each prunable Namespace would take along: every object of every namespaced kind virtnet
    can list, ours or not (no label selector). Read only for an owned, opted-in Namespace that left the
    repository, so ordinary reconciles make none of these requests."""
    wanted = {obj_id(o) for o in desired if o["kind"] == "Namespace"}
    leaving = [
        o["metadata"]["name"]
        for key, o in state.owned.items()
        if o["kind"] == "Namespace"
        and key not in wanted
        and (o["metadata"].get("annotations") or {}).get(labels.PRUNE_NAMESPACE) == "allowed"
    ]
    contents: dict[str, set[str]] = {}
    for ns in leaving:
        ids: set[str] = set()
        for kind in sorted(k for k, res in RESOURCES.items() if res.namespaced):
            try:
                ids |= {obj_id(o) for o in kube.list(kind, None, namespace=ns)}
            except ApiException as exc:
                if exc.status not in (403, 404):
                    raise
                break  # a kind we may not or cannot read: the contents are unknown, so the namespace stays
        else:
            contents[ns] = ids
    return contents


def read_node_drift(kube: Kube, namespaces: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """Drift the node agents found (each publishes a ConfigMap of its own with the report as JSON): one LIST,
    no agent, no drift. A controller confined to ``namespaces`` (``rbac.namespaces``) reads only the reports
    in those namespaces."""
    rows: list[dict[str, object]] = []
    try:
        reports = list_scoped(kube, "ConfigMap", labels.AGENT_SELECTOR, namespaces)
    except ApiException as exc:
        if exc.status in (403, 404):
            return rows
        raise
    for cm in sorted(reports, key=lambda o: (o["metadata"].get("labels") or {}).get(labels.AGENT_NODE, "")):
        # the data holds the whole name; the label may be shortened (a label value has 63 characters at most)
        node = (cm.get("data") or {}).get("node") or (cm["metadata"].get("labels") or {}).get(labels.AGENT_NODE)
        raw = (cm.get("data") or {}).get(labels.AGENT_DRIFT_KEY)
        try:
            report = json.loads(raw) if raw else {}
        except ValueError:
            continue
        items = report.get("drift") if isinstance(report, dict) else None
        rows += [{"node": node, **item} for item in items or [] if isinstance(item, dict)]
    return rows


def read_nodes(kube: Kube) -> list[NodeFacts]:
    """Node facts for the safety analysis: one LIST of Nodes and one of NodeNetworkStates (none when
    kubernetes-nmstate is not installed)."""
    nodes = kube.list("Node")
    try:
        states = kube.list("NodeNetworkState")
    except ApiException as exc:
        if exc.status != 404:
            raise
        states = []
    return build_nodes(nodes, states)


def read_rollout(kube: Kube) -> str:
    """The cluster's VM rollout strategy from its KubeVirt CR (``Stage`` where none can be read)."""
    try:
        return rollout_strategy(kube.list("KubeVirt"))
    except ApiException as exc:
        if exc.status not in (403, 404):
            raise
        return rollout_strategy(())


def read_base_domain(kube: Kube) -> ClusterDomain:
    """The cluster's base domain from OpenShift's DNS config (``dnses.config.openshift.io/cluster``): one GET.

    A 404, whether the group is not served or the object is absent, means the cluster is not OpenShift and
    has no base domain to give; any other error (403: the chart's RBAC is older than this code) is raised,
    so the run stops as ObserveFailed instead of rendering with a domain nobody checked.
    """
    dns = kube.get("DNS", "cluster")
    if dns is None:
        return ClusterDomain(None, openshift=False)
    value = (dns.get("spec") or {}).get("baseDomain")
    return ClusterDomain(str(value) if value else None, openshift=True)


def plan_cluster(
    desired: list[Obj], cluster: str, kube: Kube, options: PlanOptions, live: LiveState | None = None
) -> Plan:
    """Observe (unless ``live`` was read already) and plan. The rollout strategy is read only for a plan that
    hot-plugs an interface (it decides whether apply migrates the VM), so other reconciles never ask."""
    live = live if live is not None else observe(kube, cluster, desired)
    plan = build_plan(desired, live, cluster, options)
    if any(item.plugs for item in plan.items):
        built_for, live.rollout = live.rollout, read_rollout(kube)
        plan = with_rollout(plan, built_for, live.rollout)
    return plan


def _plan_options(repo: Repo, given: PlanOptions | None, force_conflicts: bool) -> PlanOptions:
    """The operator's prune settings (command line, controller config), tightened by the repository.

    The operator's settings are a ceiling: the Cluster document may turn pruning off or lower the share
    guard, never raise it (a commit that says ``maxShare: 1`` cannot let itself delete everything). Only
    the operator may accept a mass prune for one run or add an absolute cap.
    """
    mine = repo.cluster.spec.prune
    theirs = (given or PlanOptions()).prune
    return PlanOptions(
        prune=PruneOptions(
            enabled=mine.enabled and theirs.enabled,
            # the operator's share is a ceiling: a commit may tighten the guard, never loosen it
            max_share=min(mine.max_share, theirs.max_share),
            allow_mass_prune=theirs.allow_mass_prune,
            max_deletions=theirs.max_deletions,
        ),
        # an apply that will force takes other managers' fields over: the plan warns instead of blocking
        force_conflicts=force_conflicts or (given or PlanOptions()).force_conflicts,
        server_dry_run=(given or PlanOptions()).server_dry_run,
        memo=(given or PlanOptions()).memo,
    )


def _dry_run(plan: Plan, kube: Kube, force: bool, parallel: int) -> list[str]:
    try:
        return dry_run(plan, kube, force, parallel)
    except (ApiException, OSError) as exc:  # the server did not answer: say so rather than guess
        return [f"the server-side dry run could not be made: {exc}"]


def _load_and_render(
    path: Path,
    cluster: str | None,
    keys: KeySource = keys_from_env,
    kube: Kube | None = None,
    cache: ParseCache | None = None,
    render_cache: RenderCache | None = None,
) -> tuple[Repo, Rendered]:
    """Load (checking ``baseDomain`` against the cluster's through ``kube`` when secondary DNS is on) and render.

    Rendered without the revision: it goes on the objects the plan writes (``with_revision``), so a cached VM's
    objects are the last render's very objects."""
    domains = (lambda: read_base_domain(kube)) if kube is not None else None
    repo = load_repo(path, cluster, keys, domains, cache)
    return repo, render(repo, None, render_cache)


def _safety(outcome: Outcome, plan: Plan, kube: Kube, repo: Repo, accept_risk: bool, base: Repo | None) -> SafetyReport:
    """Safety hook (reconciler/safety/): Nodes + NodeNetworkStates are read only for a plan that changes node
    policies, networks or VMs, so a no-op reconcile stays at one LIST/GET per kind; the connectivity diff
    needs no cluster at all (the current revision ``base`` against ``repo``)."""
    facts, unread = None, ""
    if needs_node_facts(plan):
        try:
            facts = read_nodes(kube)
        except (ApiException, OSError) as exc:
            unread = f"node facts could not be read, node checks skipped: {exc}"
    return analyze(
        plan,
        facts,
        outcome.desired,
        outcome.origins,
        cluster=repo.cluster,
        accept_risk=accept_risk,
        note=unread,
        connectivity=compare(base, repo),
    )


def reconcile(
    path: Path,
    kube: Kube,
    *,
    cluster: str | None = None,
    revision: str | None = None,
    apply: bool = True,
    plan_options: PlanOptions | None = None,
    apply_options: ApplyOptions | None = None,
    progress: object = None,
    rendered: tuple[Repo, Rendered] | None = None,
    accept_risk: bool = False,
    kinds: tuple[str, ...] = MANAGED_KINDS,
    namespaces: tuple[str, ...] = (),
    base: Repo | None = None,
    keys: KeySource = keys_from_env,
    parse_cache: ParseCache | None = None,
    render_cache: RenderCache | None = None,
) -> Outcome:
    """One reconcile of the repository at ``path``; ``rendered`` skips load+render for an unchanged revision,
    ``parse_cache`` the parsing of files that did not change, ``render_cache`` the render of VMs that did not.

    ``base`` is the current revision (the last one reconciled, a pull request's target, ``plan --base``):
    the plan then says which VMs gain or lose reachability (``reconciler.safety.connectivity``). ``keys``
    gives the age identities for SOPS-encrypted Secrets (``reconciler.model.sops``)."""
    outcome = Outcome(cluster=cluster, revision=revision)
    try:
        repo, result = (
            rendered if rendered is not None else _load_and_render(path, cluster, keys, kube, parse_cache, render_cache)
        )
        outcome.desired, outcome.origins = result.objects, result.origins
        outcome.repo, outcome.cluster = repo, repo.cluster.name
    except ModelError as exc:
        outcome.problems, outcome.failed = exc.problems, "ValidationFailed"
        outcome.message = str(exc)
        return outcome
    except ApiException as exc:  # the cluster's base domain could not be read (the GET in load_repo)
        outcome.failed, outcome.message = "ObserveFailed", f"reading the cluster's base domain failed: {exc}"
        return outcome
    options = _plan_options(repo, plan_options, bool(apply_options and apply_options.force_conflicts))
    if "Secret" not in kinds and any(o["kind"] == "Secret" for o in outcome.desired):
        outcome.failed = "PlanBlocked"
        outcome.message = "the repository renders Secrets (SSH keys, manifests) but Secret management is off"
        return outcome
    outside = sorted(
        {o["metadata"]["namespace"] for o in outcome.desired if o["metadata"].get("namespace")} - set(namespaces)
    )
    if namespaces and outside:
        outcome.failed = "PlanBlocked"
        outcome.message = f"objects in namespaces outside the controller's scope: {', '.join(outside)}"
        return outcome
    try:
        outcome.live = observe(kube, repo.cluster.name, outcome.desired, kinds, namespaces)
        outcome.plan = with_revision(
            plan_cluster(outcome.desired, repo.cluster.name, kube, options, outcome.live), revision
        )
    except (ApiException, OSError) as exc:
        outcome.failed, outcome.message = "ObserveFailed", f"reading the cluster failed: {exc}"
        return outcome
    outcome.safety = _safety(outcome, outcome.plan, kube, repo, accept_risk, base)
    if outcome.plan.errors:
        outcome.failed, outcome.message = "PlanBlocked", "; ".join(outcome.plan.errors)
        return outcome
    if outcome.safety.blocking:  # unaccepted safety errors stop here, before any write
        outcome.failed, outcome.message = "PlanBlocked", outcome.safety.blocked_message()
        return outcome
    if options.server_dry_run and outcome.plan.has_changes:
        parallel = (apply_options or ApplyOptions()).parallel
        refused = _dry_run(outcome.plan, kube, options.force_conflicts, parallel)
        if refused:
            outcome.failed, outcome.message = "PlanBlocked", "; ".join(refused)
            return outcome
    if apply and outcome.plan.has_changes:
        say = progress if callable(progress) else None
        outcome.changes = apply_plan(outcome.plan, kube, apply_options, say)
        if not outcome.changes.ok:
            outcome.failed, outcome.message = "ApplyFailed", outcome.changes.error or "some objects failed"
    return outcome
