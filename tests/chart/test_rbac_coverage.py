"""The chart's RBAC against what the code really asks the API server for, both ways.

Why: a missing grant only shows on a real cluster (a 403 in the middle of a sync, or an agent that cannot
publish), and a grant nothing uses is attack surface. So the real flows run against the API double, each
component as its own ServiceAccount user, and every recorded request is judged by the chart's rendered
Roles/ClusterRoles and bindings with Kubernetes' RBAC rules:

* the controller: a full ``Controller.reconcile`` of ``examples/repo`` (create everything, Events
  included), a change (hot-pluggable MAC, restart-class CPU), a prune of a VM, a prune of a BridgeNetwork
  (its NNCP ``state: absent`` step, then the delete), a decommission that prunes one object of each other
  kind, a pull-request plan, and leader election (acquire, renew, take over, release) on the Lease the
  rendered ConfigMap names;
* the node agent: ``run_once`` with ``KubeAgentApi`` in a scratch network namespace, in observe mode and
  then in enforce mode (node count, maxUnavailable slot Leases, a stale slot taken over, released).

Every request must be allowed (the first denied one is printed), and every (verb, resource) the chart
grants must be used by some request, except :data:`UNUSED_GRANTS_ALLOWED` (empty: grants the code does
not use were removed from the chart instead).

RBAC semantics encoded here (Kubernetes ``rbac/v1``): a ClusterRoleBinding grants its ClusterRole in every
namespace and for cluster-scoped objects; a RoleBinding only inside its namespace, never for
cluster-scoped objects or a LIST across all namespaces; a rule with ``resourceNames`` never matches a
request without a name (a POST create, a LIST); server-side apply (PATCH) that creates the object is also
authorized as ``create`` (the apiserver's patch handler checks ``create`` before creating); subresources
are separate resources (``nodenetworkstates/status``). Discovery (``/api``, ``/apis/...`` without a
resource) is allowed to every authenticated user by the default ``system:discovery`` ClusterRole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from gitutil import git, isolate_git, make_remote, push_commit

from reconciler.agent.api import KubeAgentApi, lease_name
from reconciler.agent.netlink import Netlink
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.server.config import load_config
from reconciler.server.controller import Controller, Settings
from reconciler.server.leader import LeaderElector
from reconciler.server.metrics import Metrics
from reconciler.server.webhooks import PullRequestEvent
from reconciler.testing import ApiDouble
from reconciler.testing.handler import RequestRecord
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from reconciler.testing.resources import REGISTRY
from tests.chart import CI_VALUES, NAMESPACE, Manifest, config_map, find, one, render
from tests.tools import repo_root

DEFAULT = CI_VALUES / "default-values.yaml"
ENFORCE = CI_VALUES / "enforce-values.yaml"  # sshKeys.manageSecrets: false
EXAMPLE = repo_root() / "examples" / "repo"

#: (component, apiGroup, resource, verb) the chart may grant although no recorded request uses it, and why.
#: Empty on purpose: grants the code does not use are removed from the chart rather than listed here.
UNUSED_GRANTS_ALLOWED: dict[tuple[str, str, str, str], str] = {}

#: namespaced (group, plural) served by the double, to tell a LIST across all namespaces from a cluster-scoped one
NAMESPACED = {(t.group, t.plural) for t in REGISTRY if t.namespaced} | {("subresources.kubevirt.io", "virtualmachines")}


# ---------------------------------------------------------------------------------------------- RBAC model


@dataclass(frozen=True)
class Attrs:
    """Authorization attributes of one request, as the apiserver builds them."""

    user: str
    verb: str
    group: str
    resource: str  # plural, with "/subresource" appended
    namespace: str  # "" for cluster-scoped objects and for LISTs across all namespaces
    name: str
    path: str = ""

    def __str__(self) -> str:
        return (
            f"user={self.user} verb={self.verb} resource={self.group or 'core'}/{self.resource} "
            f"namespace={self.namespace or '-'} name={self.name or '-'} ({self.path})"
        )

    @property
    def across_namespaces(self) -> bool:
        return not self.namespace and (self.group, self.resource.split("/")[0]) in NAMESPACED


def request_attributes(rec: RequestRecord) -> list[Attrs]:
    """The RBAC checks one recorded request needs ([] for discovery and health endpoints).

    Parsed from method and path, not from the double's own classification, so a request the double does not
    route (a 404 for a subresource it does not serve) is still judged.
    """
    parts = [p for p in rec.path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return []  # /api, /apis, /apis/<group>, /version, /healthz: non-resource URLs
    if not rest:
        return []  # /api/v1, /apis/<group>/<version>: discovery
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")
    name = rest[1] if len(rest) >= 2 else ""
    method = rec.method.upper()
    if method == "GET":
        verb = "get" if name else ("watch" if rec.query.get("watch") in ("1", "true") else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        raise AssertionError(f"unexpected method in {rec}")
    out = [Attrs(rec.user, verb, group, resource, namespace, name, rec.path)]
    if rec.verb == "apply" and rec.status == 201:  # server-side apply that created the object
        out.append(replace(out[0], verb="create"))
    return out


@dataclass(frozen=True)
class Grant:
    """One rule of a Role/ClusterRole as bound to one user; ``namespace`` None = cluster-wide."""

    role: str  # "ClusterRole/<name>" or "Role/<namespace>/<name>"
    component: str
    namespace: str | None
    rule: Mapping[str, Any]

    def allows(self, a: Attrs) -> bool:
        if self.namespace is not None and a.namespace != self.namespace:
            return False
        names = self.rule.get("resourceNames") or []
        return (
            a.group in self.rule.get("apiGroups", [])
            and a.resource in self.rule.get("resources", [])
            and a.verb in self.rule.get("verbs", [])
            and (not names or (bool(a.name) and a.name in names))
        )

    def triples(self) -> Iterator[tuple[str, str, str]]:
        for g in self.rule.get("apiGroups", []):
            for r in self.rule.get("resources", []):
                for v in self.rule.get("verbs", []):
                    yield g, r, v


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def grants(docs: Sequence[Manifest]) -> dict[str, list[Grant]]:
    """Every rule each ServiceAccount user gets through the rendered bindings."""
    roles = {
        (d["kind"], d["metadata"].get("namespace") if d["kind"] == "Role" else None, d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    out: dict[str, list[Grant]] = {}
    for b in find(docs, "ClusterRoleBinding") + find(docs, "RoleBinding"):
        scope = b["metadata"]["namespace"] if b["kind"] == "RoleBinding" else None
        ref = b["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        label = f"{ref['kind']}/{scope + '/' if ref['kind'] == 'Role' else ''}{ref['name']}"
        component = role["metadata"]["labels"]["virtnet.io/rbac"]
        for s in b["subjects"]:
            assert s["kind"] == "ServiceAccount"
            user = service_account_user(s["namespace"], s["name"])
            out.setdefault(user, []).extend(Grant(label, component, scope, r) for r in role.get("rules", []))
    return out


def denied(attrs: Iterable[Attrs], by_user: Mapping[str, list[Grant]]) -> list[Attrs]:
    return [a for a in attrs if not any(g.allows(a) for g in by_user.get(a.user, []))]


def users(docs: Sequence[Manifest]) -> tuple[str, str]:
    """(controller user, agent user): the ServiceAccounts the Deployment and the DaemonSet run as."""
    ns = one(docs, "Deployment")["metadata"]["namespace"]
    controller = one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    agent = one(docs, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"]
    return service_account_user(ns, controller), service_account_user(ns, agent)


# ---------------------------------------------------------------------------------------------- the flows


@dataclass
class Recording:
    controller_user: str
    agent_user: str
    attrs: list[Attrs]
    agent_skipped: str | None  # why the agent half did not run, or None


def _example_files() -> dict[str, str]:
    return {str(p.relative_to(EXAMPLE)): p.read_text() for p in sorted(EXAMPLE.rglob("*.yaml"))}


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"examples/repo changed: {old!r} not found"
    return text.replace(old, new)


EXTRA_OBJECTS = """apiVersion: v1
kind: ConfigMap
metadata: {name: extra, namespace: apps}
data: {A: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: extra, namespace: apps, annotations: {virtnet.io/plaintext-secret: "true"}}
stringData: {token: not-a-secret}
---
apiVersion: v1
kind: Service
metadata: {name: extra, namespace: apps}
spec:
  ports: [{port: 80}]
"""


def controller_flows(api: ApiDouble, tmp: Path, user: str, lease: tuple[str, str, int, int, int]) -> None:
    """What the controller does in production, as ``user``: sync, change, prune, PR plan, leader election."""
    files = _example_files()
    remote = make_remote(tmp, files)
    settings = Settings(
        repo_url=remote.as_uri(),
        cache_root=tmp / "cache",
        apply=ApplyOptions(poll=0.02, timeout=30),
        sync_namespace=NAMESPACE,  # the ClusterSync object (switches and report) beside the controller
        informers=True,
    )
    kube = Kube(api.api_client(user=user))
    ctl = Controller(settings, kube, Metrics())

    first = ctl.reconcile("create everything")
    assert first.ok and first.changes is not None, first.message

    # a change: web-1's MAC (applied in place) and vrouter-1's CPU count (restart class; restart: allowed).
    # The double does not serve subresources.kubevirt.io, so the restart PUT is answered 404: the request
    # is still recorded and judged, only the outcome is not asserted.
    web = _edit(files["vms/web.yaml"], '"02:00:00:00:01:01"', '"02:00:00:00:01:11"')
    push_commit(
        remote,
        {"vms/web.yaml": web, "vms/vrouter.yaml": _edit(files["vms/vrouter.yaml"], "cpu: 4", "cpu: 6")},
        "change",
    )
    ctl.reconcile("change")
    assert any(a.resource == "virtualmachines/restart" for a in _attrs(api)), "the restart-class change restarted"

    # a hot-plug into a running VM on a cluster without LiveUpdate: the rollout strategy is read (the KubeVirt
    # CR), the VM is migrated (a VirtualMachineInstanceMigration), and its VMI read until it reports the interface
    extra = "      name: front\n    - network: vlan100\n      name: extra\n      hotplug: true\n"
    web = _edit(web, "      name: front\n", extra)
    push_commit(remote, {"vms/web.yaml": web}, "hot-plug")
    plugged = ctl.reconcile("hot-plug")
    assert plugged.ok, plugged.message
    assert any(a.resource == "virtualmachineinstancemigrations" for a in _attrs(api)), "the plug migrated the VM"

    # new objects in a namespace that exists: each is looked up first (get), so an object that exists but
    # that virtnet did not create is never taken over silently
    push_commit(remote, {"manifests/extra.yaml": EXTRA_OBJECTS}, "add objects to an existing namespace")
    added = ctl.reconcile("add objects")
    assert added.ok, added.message

    # prune a VM (db-1: its VM, Service and SSH key Secret), then the BridgeNetwork only it used
    push_commit(remote, {"vms/db.yaml": None}, "remove db-1")
    pruned_vm = ctl.reconcile("prune a VM")
    assert pruned_vm.ok, pruned_vm.message
    push_commit(remote, {"networks/storage.yaml": None}, "remove the storage network")
    pruned_net = ctl.reconcile("prune a BridgeNetwork")
    assert pruned_net.ok, pruned_net.message
    assert pruned_net.changes is not None
    assert {r.action for r in pruned_net.changes.results} >= {"delete"}

    # decommission one object of every other kind: SR-IOV (and the VM on it), the pass-through ConfigMap,
    # the MetalLB pool (and the LoadBalancer Service on it)
    pool = '    - name: public\n      addresses: ["192.0.2.100-192.0.2.120"]\n'  # the dns pool stays
    cluster = _edit(files["clusters/prod.yaml"], pool, "")
    http = "    - name: http\n      port: 80\n      targetPort: 8080\n      type: LoadBalancer\n      pool: public\n"
    web = _edit(web, http, "")
    push_commit(
        remote,
        {
            "vms/vrouter.yaml": None,
            "networks/sriov.yaml": None,
            "manifests/web-config.yaml": None,
            "clusters/prod.yaml": cluster,
            "vms/web.yaml": web,
        },
        "decommission",
    )
    settings.prune = PruneOptions(allow_mass_prune=True)  # virtnet run --allow-mass-prune
    decommissioned = ctl.reconcile("decommission")
    assert decommissioned.ok, decommissioned.message

    # a pull-request plan (never applies; no forge configured)
    main = git("rev-parse", "refs/heads/main", cwd=remote)
    git("update-ref", "refs/heads/pr-1", main, cwd=remote)
    head = push_commit(remote, {"vms/web.yaml": _edit(web, "cpu: 2", "cpu: 3")}, "a PR", branch="pr-1")
    event = PullRequestEvent("github", "opened", 1, head, "pr-1", remote.as_uri(), "main", "infra/net", "d1")
    before = api.writes()
    planned = ctl.plan_pull_request(event)
    assert planned.plan is not None and api.writes() == before, planned.message
    ctl.close()  # the informers' watches (virtnet run observes through them) were judged like every request

    # leader election in the release namespace, on the lease the ConfigMap names, as `virtnet run` builds it
    name, namespace, duration, deadline, period = lease
    now = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    a = LeaderElector(kube.api, name, namespace, "pod-a", duration, deadline, period, clock=lambda: now[0])
    b = LeaderElector(kube.api, name, namespace, "pod-b", duration, deadline, period, clock=lambda: now[0])
    assert a.step()  # acquire: GET 404, POST
    now[0] += dt.timedelta(seconds=period)
    assert a.step() and not b.step()  # renew: GET, PUT; the standby only reads
    now[0] += dt.timedelta(seconds=duration + 1)
    assert b.step()  # take over an expired lease: GET, PUT
    assert b.release()  # GET, PUT


def _agent_policy(name: str, bridge: str) -> dict[str, Any]:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"virtnet.io/rbac-test": "yes"},
            "maxUnavailable": 1,
            "desiredState": {
                "interfaces": [
                    {
                        "name": bridge,
                        "type": "linux-bridge",
                        "state": "up",
                        "bridge": {"options": {"stp": {"enabled": False}}, "port": []},
                    }
                ]
            },
        },
    }


def agent_flows(api: ApiDouble, user: str, namespace: str, netns: str) -> None:
    """``run_once`` as the DaemonSet runs it (``KubeAgentApi``), observe then enforce, in ``netns``."""
    node = "node-a"
    api.store.put(
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"virtnet.io/rbac-test": "yes"}}}
    )
    api.store.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-b"}})
    api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for policy in (_agent_policy("rbac-a", "br-rbac-a"), _agent_policy("rbac-b", "br-rbac-b")):
        api.store.put(policy)
    # a slot Lease left behind by an agent that crashed long ago: taken over with an update
    api.store.put(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name("rbac-b", 0), "namespace": namespace},
            "spec": {
                "holderIdentity": "node-gone",
                "leaseDurationSeconds": 60,
                "acquireTime": "2020-01-01T00:00:00.000000Z",
                "renewTime": "2020-01-01T00:00:00.000000Z",
            },
        }
    )
    agent_api = KubeAgentApi(api.api_client(user=user), lease_namespace=namespace)
    observed = run_once(AgentConfig(node=node, mode="observe", netns=netns), Netlink(netns), api=agent_api)
    assert observed.writes == 0 and observed.policies == ["rbac-a", "rbac-b"], observed
    enforced = run_once(
        AgentConfig(node=node, mode="enforce", netns=netns, probes=[], check_capabilities=False),
        Netlink(netns),
        api=agent_api,
    )
    assert enforced.error is None and all(o.ok for o in enforced.outcomes.values()), enforced.outcomes
    assert enforced.writes > 0


def _attrs(api: ApiDouble) -> list[Attrs]:
    return [a for rec in list(api.requests) for a in request_attributes(rec)]


def _netns_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the agent half needs root (a scratch network namespace)"
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    return None


@contextlib.contextmanager
def _ticking(api: ApiDouble, period: float = 0.02) -> Iterator[None]:
    """Run the simulated controllers in the background, surviving a tick that races a delete.

    (The double's own tick thread dies on the first exception, e.g. the KubeVirt simulation updating the
    status of a VM that a prune just deleted; every later health wait would then time out.)
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period):
            with contextlib.suppress(Exception):
                api.tick()

    thread = threading.Thread(target=loop, name="rbac-ticks", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    docs = render([DEFAULT])
    controller_user, agent_user = users(docs)
    cfg_file = tmp_path_factory.mktemp("config") / "config.yaml"
    cfg_file.write_text(config_map(docs)["data"]["config.yaml"])
    le = load_config(cfg_file).leader_election
    lease = (le.lease_name, NAMESPACE, le.lease_duration_seconds, le.renew_deadline_seconds, le.retry_period_seconds)
    tmp = tmp_path_factory.mktemp("rbac")
    with pytest.MonkeyPatch.context() as mp:
        isolate_git(mp, tmp / "home")
        api = ApiDouble(
            controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=1), tick_interval=None
        )
        with api, _ticking(api):
            seed_hyperconverged(api.store)
            api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})  # the release's
            controller_flows(api, tmp, controller_user, lease)
            skipped = _netns_skip_reason()
            if skipped is None:
                netns = f"vnt-rbac-{os.getpid() % 100000}"
                result = subprocess.run(["ip", "netns", "add", netns], capture_output=True, text=True)
                if result.returncode != 0:
                    skipped = f"`ip netns add` does not work here: {result.stderr.strip()}"
                else:
                    try:
                        agent_flows(api, agent_user, NAMESPACE, netns)
                    finally:
                        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
            attrs = _attrs(api)
    yield Recording(controller_user, agent_user, attrs, skipped)


def _summary(attrs: Iterable[Attrs]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for a in attrs:
        key = (a.verb, f"{a.group or 'core'}/{a.resource}")
        counts[key] = counts.get(key, 0) + 1
    return "\n".join(f"  {n:4d} {verb:7s} {res}" for (verb, res), n in sorted(counts.items(), key=lambda kv: kv[0][1]))


# ---------------------------------------------------------------------------------------------- tests


def test_flows_ran_as_the_charts_service_accounts(recording: Recording) -> None:
    by_user = {a.user for a in recording.attrs}
    assert recording.controller_user in by_user
    assert recording.controller_user.startswith(f"system:serviceaccount:{NAMESPACE}:")
    expected = {recording.controller_user} | ({recording.agent_user} if recording.agent_skipped is None else set())
    assert by_user == expected, "every API request is made by one of the two ServiceAccounts"
    for user in sorted(by_user):
        print(f"\n{user}:\n{_summary(a for a in recording.attrs if a.user == user)}")


def test_every_request_is_allowed_by_the_chart(recording: Recording) -> None:
    refused = denied(recording.attrs, grants(render([DEFAULT])))
    assert not refused, f"{len(refused)} request(s) the chart's RBAC denies; the first:\n  {refused[0]}"


def test_the_chart_grants_nothing_the_code_does_not_use(recording: Recording) -> None:
    if recording.agent_skipped:
        pytest.skip(f"{recording.agent_skipped}; the agent's grants would all look unused")
    by_user = grants(render([DEFAULT]))
    used: set[tuple[str, str, str, str]] = set()  # (role, group, resource, verb)
    for a in recording.attrs:
        for g in by_user.get(a.user, []):
            if g.allows(a):
                used.add((g.role, a.group, a.resource, a.verb))
    unused = sorted(
        {
            (g.component, g.role, group, resource, verb)
            for gs in by_user.values()
            for g in gs
            for group, resource, verb in g.triples()
            if (g.role, group, resource, verb) not in used
            and (g.component, group, resource, verb) not in UNUSED_GRANTS_ALLOWED
        }
    )
    assert not unused, "granted but never used:\n" + "\n".join(
        f"  {comp}: {role}: {verb} {group or 'core'}/{resource}" for comp, role, group, resource, verb in unused
    )


def test_the_agent_half_ran(recording: Recording) -> None:
    if recording.agent_skipped:
        pytest.skip(recording.agent_skipped)
    agent = {(a.verb, a.resource) for a in recording.attrs if a.user == recording.agent_user}
    assert {
        ("list", "nodenetworkconfigurationpolicies"),
        ("get", "nodes"),
        ("list", "nodes"),
        ("create", "leases"),
        ("update", "leases"),
        ("delete", "leases"),
        ("patch", "configmaps"),  # its report; nothing of nmstate's (tests/agent/test_agent_writes.py)
    } <= agent
    assert not {r for v, r in agent if v in ("create", "patch", "update", "delete") and r.startswith("nodenetwork")}


def test_leases_are_confined_to_the_release_namespace_and_the_configured_name(recording: Recording) -> None:
    by_user = grants(render([DEFAULT]))
    leases = [a for a in recording.attrs if a.resource == "leases"]
    assert leases
    for a in leases:
        assert a.namespace == NAMESPACE, a
        assert denied([replace(a, namespace="kube-system")], by_user), f"allowed outside {NAMESPACE}: {a}"
    ctl = [a for a in leases if a.user == recording.controller_user and a.verb in ("get", "update")]
    assert ctl and denied([replace(ctl[0], name="someone-elses-lease")], by_user)


def test_ssa_create_needs_create_as_well_as_patch() -> None:
    """The RBAC model itself: a PATCH apply answered 201 is checked as patch and create; 200 as patch only."""
    rec = RequestRecord(
        "PATCH", "/api/v1/namespaces/apps/configmaps/x", {"fieldManager": "virtnet"}, "apply", "configmaps", 201, "u"
    )
    assert [a.verb for a in request_attributes(rec)] == ["patch", "create"]
    assert [a.verb for a in request_attributes(replace(rec, status=200))] == ["patch"]
    only_patch = {
        "u": [
            Grant(
                "ClusterRole/x",
                "controller",
                None,
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]},
            )
        ]
    }
    assert [a.verb for a in denied(request_attributes(rec), only_patch)] == ["create"]


# ---------------------------------------------------------------------------------------------- variants


def _allowlist_values(namespaces: list[str]) -> dict[str, Any]:
    return {"rbac": {"namespaces": namespaces}}


def _used_namespaces(recording: Recording) -> list[str]:
    return sorted(
        {a.namespace for a in recording.attrs if a.user == recording.controller_user and a.namespace} - {NAMESPACE}
    )


def test_namespace_allowlist_allows_the_listed_namespaces_and_denies_the_others(recording: Recording) -> None:
    listed = _used_namespaces(recording)
    assert {"apps", "db", "nfv", "openshift-cnv", "metallb-system", "default"} <= set(listed)
    by_user = grants(render([DEFAULT], values=_allowlist_values(listed)))
    scoped = [a for a in recording.attrs if a.namespace and a.user == recording.controller_user]
    refused = denied(scoped, by_user)
    assert not refused, f"denied in a listed namespace: {refused[0]}"
    for a in scoped:
        if a.resource != "leases":
            assert denied([replace(a, namespace="kube-system")], by_user), f"allowed outside the list: {a}"
    # cluster-scoped objects stay granted cluster-wide
    cluster_scoped = [a for a in recording.attrs if not a.namespace and not a.across_namespaces]
    assert cluster_scoped and not denied(cluster_scoped, by_user)
    # leaving a namespace out of the list denies what the controller does there
    without_nfv = grants(render([DEFAULT], values=_allowlist_values([n for n in listed if n != "nfv"])))
    in_nfv = [a for a in scoped if a.namespace == "nfv"]
    assert in_nfv and denied(in_nfv, without_nfv) == in_nfv
