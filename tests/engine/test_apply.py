"""Ordered server-side apply against the API double: waves, NNCP staging, health stops, prune, conflicts, retries.

Every assertion is on what the server saw (``api.requests``, request bodies, stored objects, node state), so a
reordering or a skipped health wait in the engine shows up as a failed test rather than a slower one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backends import Backend, Call, backend_fixture, eventually, settle

from engine.conftest import EXAMPLES, edit, run
from reconciler import labels
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions, apply_plan, node_stages
from reconciler.engine.live import LiveState
from reconciler.engine.plan import Action, build_plan
from reconciler.model import load_repo
from reconciler.objects import obj_id, wave
from reconciler.render import render
from reconciler.testing import ApiDouble
from reconciler.testing.faults import Fault, RequestInfo

NNCPS = "nmstate.io/nodenetworkconfigurationpolicies"
VMS = "kubevirt.io/virtualmachines"
#: the kind each resource of a write request stands for, to check wave order from the request log
KIND_OF = {
    "namespaces": "Namespace",
    NNCPS: "NodeNetworkConfigurationPolicy",
    "sriovnetwork.openshift.io/sriovnetworknodepolicies": "SriovNetworkNodePolicy",
    "k8s.cni.cncf.io/network-attachment-definitions": "NetworkAttachmentDefinition",
    "sriovnetwork.openshift.io/sriovnetworks": "SriovNetwork",
    "metallb.io/ipaddresspools": "IPAddressPool",
    "metallb.io/l2advertisements": "L2Advertisement",
    "hco.kubevirt.io/hyperconvergeds": "HyperConverged",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    VMS: "VirtualMachine",
    "services": "Service",
}


def node_interfaces(kube: Kube, node: str = "worker-0") -> set[str]:
    nns = kube.get("NodeNetworkState", node)
    assert nns is not None
    return {i["name"] for i in nns["status"]["currentState"]["interfaces"]}


WRITES = ("create", "update", "patch", "apply", "delete")


def writes(api: ApiDouble) -> list[Any]:
    """What the server stored: server-side dry runs (plan time) are not writes."""
    return [r for r in api.requests if r.verb in WRITES and not r.fault and not r.dry_run]


# Tests taking ``backend`` run on the API double and on a real kube-apiserver (tests/backends.py); the others
# stay on the double and say why.
backend = backend_fixture()
stepped_backend = backend_fixture(stepped=True, name="stepped_backend")


@pytest.fixture
def applied_on(backend: Backend, repo: Path) -> Path:
    return settle(backend, repo)


# ---- order --------------------------------------------------------------------------------------------------


def test_first_apply_writes_in_wave_order(backend: Backend, repo: Path) -> None:
    outcome = run(repo, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    log = [c for c in backend.log.calls if c.is_write]
    assert all(c.verb == "apply" and c.status == 200 for c in log)
    waves = [wave({"kind": KIND_OF[c.resource], "metadata": {}}) for c in log]
    assert waves == sorted(waves), [(c.resource, c.path) for c in log]
    assert len(log) == len(outcome.desired) == 36
    assert [KIND_OF[c.resource] for c in log if wave({"kind": KIND_OF[c.resource], "metadata": {}}) == 0][:3] == [
        "Namespace"
    ] * 3
    last_vm_or_service = {KIND_OF[c.resource] for c in log[-8:]}
    assert last_vm_or_service == {"VirtualMachine", "Service"}


def test_bridge_over_a_vlan_is_applied_only_after_the_vlan_policy_is_available(backend: Backend, repo: Path) -> None:
    """``storage`` bridges ``bond1.300``, which ``worker-uplinks`` creates; nmstate would fail it if sent first."""
    seen: list[tuple[str, str]] = []  # (request, state of worker-uplinks when it was sent)

    def spy(call: Call) -> None:
        if call.is_write and call.resource == NNCPS:
            uplinks = backend.find("NodeNetworkConfigurationPolicy", "worker-uplinks")
            conds = {c["type"]: c["status"] for c in ((uplinks or {}).get("status") or {}).get("conditions", [])}
            seen.append((call.path.rsplit("/", 1)[-1], "Available" if conds.get("Available") == "True" else "not"))

    backend.log.before = spy
    outcome = run(repo, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    assert seen[-1] == ("storage", "Available")
    assert sorted(seen[:-1]) == [("migration", "not"), ("vlan100", "not"), ("worker-uplinks", "not")]
    backend.quiesce()
    assert {"bond1.300", "br-storage", "br1", "br-mig"} <= node_interfaces(backend.admin)


def test_node_stages_put_a_policy_after_the_one_creating_its_ports() -> None:
    desired = render(load_repo(EXAMPLES)).objects
    plan = build_plan(desired, LiveState(), "prod")
    stages = node_stages([i for i in plan.items if i.wave == 0])
    assert [sorted(i.name for i in s if "NodeNetwork" in i.name) for s in stages] == [
        [
            "NodeNetworkConfigurationPolicy/migration",
            "NodeNetworkConfigurationPolicy/vlan100",
            "NodeNetworkConfigurationPolicy/worker-uplinks",
        ],
        ["NodeNetworkConfigurationPolicy/storage"],
    ]
    assert sum(len(s) for s in stages) == 9  # namespaces and the SR-IOV policies stay in the first stage


# ---- health stops the run ------------------------------------------------------------------------------------


def test_degraded_policy_stops_the_run_before_any_vm_is_written(backend: Backend, repo: Path) -> None:
    kube = backend.kube
    edit(repo / "networks" / "vlan-bridges.yaml", "nic: eth1", "nic: eth9")
    blocked = run(repo, kube, apply_options=backend.options())  # the safety analysis sees eth9 on no node
    assert blocked.failed == "PlanBlocked" and "(missing-nic)" in blocked.message and backend.log.writes() == 0
    # accepted anyway: nmstate reports Degraded and the run stops
    outcome = run(repo, kube, accept_risk=True, apply_options=backend.options())
    assert outcome.failed == "ApplyFailed"
    assert "NodeNetworkConfigurationPolicy/vlan100" in outcome.message and "Degraded" in outcome.message
    assert "worker-0" in outcome.message and "eth9" in outcome.message
    written = {c.resource for c in backend.log.calls if c.is_write}
    assert VMS not in written and "services" not in written
    assert "k8s.cni.cncf.io/network-attachment-definitions" not in written  # wave 1 not started
    assert backend.objects("VirtualMachine") == []


# ---- prune --------------------------------------------------------------------------------------------------


def test_removed_vm_file_deletes_the_vm_and_its_services_only(backend: Backend, applied_on: Path) -> None:
    (applied_on / "vms" / "db.yaml").unlink()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    deleted = sorted(backend.log.deletes())
    assert deleted == [
        "/api/v1/namespaces/db/secrets/db-1-ssh-keys",
        "/api/v1/namespaces/db/services/db-1-svc",
        "/apis/kubevirt.io/v1/namespaces/db/virtualmachines/db-1",
    ]
    assert backend.log.writes() == 3
    assert backend.find("VirtualMachine", "web-1", "apps")
    if backend.real:  # Foreground deletion: gone once the garbage collector (simulated here) has been
        assert eventually(lambda: backend.find("VirtualMachine", "db-1", "db") is None)
    assert backend.find("VirtualMachine", "db-1", "db") is None


def test_removed_bridge_network_is_taken_down_on_the_nodes_before_its_policy_is_deleted(
    stepped_backend: Backend, repo: Path
) -> None:
    """The policy was Available before ``state: absent`` was applied: that stale condition must not count."""
    backend = stepped_backend
    kube, options = backend.kube, backend.options()
    assert run(repo, kube, apply_options=options).ok
    applied = repo
    backend.quiesce()
    assert "br-storage" in node_interfaces(backend.admin)
    (applied / "networks" / "storage.yaml").unlink()
    edit(
        applied / "vms" / "db.yaml",
        '    - network: storage\n      mac: "02:00:00:00:02:02"\n      ipv4: 10.30.0.21/24\n',
        "",
    )
    bodies: list[tuple[str, str]] = []
    original = kube.request

    def recording(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("/nodenetworkconfigurationpolicies/storage") and method in ("PATCH", "DELETE"):
            body = kwargs.get("body", args[1] if len(args) > 1 else None)
            bodies.append((method, body or ""))
        return original(method, path, *args, **kwargs)

    kube.request = recording  # type: ignore[method-assign]
    outcome = run(applied, kube, apply_options=options)
    assert outcome.ok, outcome.message
    assert [m for m, _ in bodies] == ["PATCH", "DELETE"]
    absent = json.loads(bodies[0][1])
    assert absent["spec"]["desiredState"]["interfaces"] == [
        {"name": "br-storage", "type": "linux-bridge", "state": "absent"}
    ]
    assert absent["metadata"]["labels"][labels.CLUSTER] == "prod"
    assert eventually(lambda: backend.find("NodeNetworkConfigurationPolicy", "storage") is None)  # GC on a server
    assert "br-storage" not in node_interfaces(backend.admin)  # nmstate took the bridge down before the delete
    assert "bond1.300" in node_interfaces(backend.admin)  # what worker-uplinks made stays


def test_same_name_object_of_another_manager_survives_prune(backend: Backend, applied_on: Path) -> None:
    theirs = backend.client(field_manager="someone-else")
    theirs.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-2-settings", "namespace": "apps"},
            "data": {"x": "1"},
        }
    )
    theirs.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "stale",
                "namespace": "apps",
                "labels": {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "staging"},
            },
            "data": {},
        }
    )
    (applied_on / "manifests" / "web-config.yaml").unlink()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    assert [i.name for i in outcome.plan.items if i.action == Action.DELETE] == ["ConfigMap/apps/web-settings"]  # type: ignore[union-attr]
    if backend.real:
        assert eventually(lambda: backend.find("ConfigMap", "web-settings", "apps") is None)
    assert backend.find("ConfigMap", "web-settings", "apps") is None
    assert backend.find("ConfigMap", "web-2-settings", "apps") is not None
    assert backend.find("ConfigMap", "stale", "apps") is not None


def test_an_object_already_being_deleted_is_not_deleted_again(backend: Backend, applied_on: Path) -> None:
    finalizer = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                 "metadata": {"name": "db-1", "namespace": "db", "finalizers": ["kubevirt.io/test-finalizer"]}}
    backend.put(finalizer, manager="virt-controller")  # the VM stays until its controller lets it go
    (applied_on / "vms" / "db.yaml").unlink()
    pruned = run(applied_on, backend.kube, apply_options=backend.options())
    assert pruned.ok, pruned.message
    assert len(backend.log.deletes()) == 3
    vm = backend.find("VirtualMachine", "db-1", "db")
    assert vm is not None and vm["metadata"].get("deletionTimestamp")  # being deleted, still there
    backend.log.reset()
    again = run(applied_on, backend.kube, apply_options=backend.options())
    assert again.ok, again.message
    assert [i.name for i in again.plan.changes] == []  # type: ignore[union-attr]
    assert backend.log.writes() == 0
    going = "VirtualMachine/db/db-1 is no longer in the repository and is being deleted (waiting for "
    assert any(w.startswith(going) and "kubevirt.io/test-finalizer" in w for w in again.plan.warnings)  # type: ignore[union-attr]


def test_mass_prune_guard_blocks_deleting_a_whole_directory(backend: Backend, applied_on: Path) -> None:
    for path in (applied_on / "vms").iterdir():
        path.unlink()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.failed == "PlanBlocked"
    assert "refusing to prune 10 of 35 owned objects" in outcome.message
    assert backend.log.writes() == 0
    assert len(backend.objects("VirtualMachine")) == 4


# ---- conflicts ----------------------------------------------------------------------------------------------


def test_existing_object_is_adopted_only_with_the_opt_in_and_then_never_pruned(backend: Backend, repo: Path) -> None:
    """The namespace and a ConfigMap exist already (made by someone else, as on a real cluster: the namespace
    first): virtnet refuses to take either over until the repository says so, then adopts them, and never
    deletes them afterwards."""
    kube = backend.kube
    theirs = backend.client(field_manager="helm")
    theirs.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    theirs.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-settings", "namespace": "apps"},
            "data": {"LISTEN_PORT": "9090"},
        }
    )
    backend.log.reset()
    refused = run(repo, kube, apply_options=backend.options())
    assert refused.failed == "PlanBlocked" and backend.log.writes() == 0
    assert "ConfigMap/apps/web-settings already exists and virtnet did not create it" in refused.message
    assert "Namespace/apps already exists" in refused.message
    assert 'virtnet.io/adopt: "true"' in refused.message

    manifest = repo / "manifests" / "web-config.yaml"
    adopt = '\n  annotations:\n    virtnet.io/adopt: "true"\n'
    edit(manifest, "  namespace: apps\n", "  namespace: apps" + adopt)
    edit(repo / "clusters" / "prod.yaml", "  name: prod\n", "  name: prod" + adopt)  # its Namespaces
    conflict = run(repo, kube, apply_options=backend.options())
    assert conflict.failed == "PlanBlocked" and backend.log.writes() == 0
    assert "ConfigMap/apps/web-settings: data.LISTEN_PORT is owned by field manager 'helm'" in conflict.message

    forced = run(repo, kube, apply_options=backend.options(force_conflicts=True))
    assert forced.ok, forced.message
    live = kube.get("ConfigMap", "web-settings", "apps")
    assert live is not None and live["data"] == {"LISTEN_PORT": "8080"}
    assert live["metadata"]["annotations"][labels.ADOPTED] == "true"
    owners = {
        m["manager"] for m in live["metadata"]["managedFields"] if "f:LISTEN_PORT" in m["fieldsV1"].get("f:data", {})
    }
    assert owners == {"virtnet"}
    assert run(repo, kube, apply=False).plan.has_changes is False  # type: ignore[union-attr]  # no churn

    manifest.unlink()
    after = run(repo, kube, apply_options=backend.options())
    assert after.ok, after.message
    assert kube.get("ConfigMap", "web-settings", "apps") is not None  # virtnet did not create it: never deleted
    assert any("web-settings" in w and "adopted" in w for w in after.plan.warnings)  # type: ignore[union-attr]


# ---- retries ------------------------------------------------------------------------------------------------


# double-only from here to the dry run: fault injection is the double's (503, 429, dropped connections)


class EveryFourth:
    """Fails every fourth resource request, up to ``budget`` times, cycling 503, 429 and a dropped connection.

    ``Retry-After: 0`` and a small budget keep the backoff (with its jitter) short.
    """

    def __init__(self, budget: int = 9) -> None:
        self.seen = 0
        self.injected: list[str] = []
        self.budget = budget

    def __call__(self, info: RequestInfo) -> Fault | None:
        self.seen += 1
        if self.seen % 4 or len(self.injected) >= self.budget:
            return None
        kind = ("503", "429", "drop")[len(self.injected) % 3]
        self.injected.append(kind)
        return Fault(kind, retry_after=0)


def test_transient_errors_are_retried_and_the_reconcile_converges(api: ApiDouble, kube: Kube, repo: Path) -> None:
    hook = EveryFourth()
    api.faults = hook
    outcome = run(repo, kube)
    assert outcome.ok, outcome.message
    faulted = [r for r in api.requests if r.fault]
    assert len(faulted) == len(hook.injected) == 9
    assert sorted({r.status for r in faulted}) == [0, 429, 503]
    assert sum(api.fault_counts.values()) == 9
    # every faulted request was sent again and then served: its (method, path) appears later unfaulted
    for i, r in enumerate(api.requests):
        if r.fault:
            assert any(not s.fault and (s.method, s.path) == (r.method, r.path) for s in api.requests[i + 1 :]), r
    # a faulted request never reached the store: no double apply
    assert len([r for r in writes(api) if r.resource == VMS]) == 4
    api.faults = None
    api.reset_counts()
    again = run(repo, kube)
    assert again.ok and not again.plan.has_changes and api.writes() == 0  # type: ignore[union-attr]


def test_backoff_honours_retry_after_up_to_ten_seconds() -> None:
    from kubernetes.client.exceptions import ApiException
    from tenacity import RetryCallState, Retrying

    from reconciler.clients.kube import _wait

    def state_for(retry_after: str) -> RetryCallState:
        state = RetryCallState(Retrying(), None, (), {})
        exc = ApiException(status=429)
        exc.headers = {"Retry-After": retry_after}
        state.set_exception((ApiException, exc, None))
        return state

    assert _wait(state_for("3")) >= 3
    assert _wait(state_for("3600")) == 10.0
    assert _wait(state_for("soon")) < 10.0


def test_retry_gives_up_after_the_attempts_and_reports_the_status(api: ApiDouble, kube: Kube, repo: Path) -> None:
    api.faults = lambda info: Fault("503", retry_after=0) if info.resource == "configmaps" else None
    kube.attempts = 3
    outcome = run(repo, kube)
    assert outcome.failed == "ObserveFailed" and "503" in outcome.message
    assert api.fault_counts[("503", "list", "configmaps")] == 3
    assert api.writes() == 0


# ---- plan-time checks by the server --------------------------------------------------------------------------


def test_server_dry_run_refuses_at_plan_time_before_any_write(api: ApiDouble, kube: Kube, applied: Path) -> None:
    """A write the server refuses (an admission webhook or a quota, played here by an injected 409 on the dry
    run of one object) blocks the plan while nothing is written yet, instead of failing between waves.
    Double-only: it injects the refusal."""
    (applied / "manifests" / "extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: apps\ndata:\n  A: '2'\n"
    )
    edit(applied / "manifests" / "web-config.yaml", '"8080"', '"8081"')

    def admission(info: RequestInfo) -> Fault | None:
        return Fault("409") if info.dry_run and info.name == "extra" else None

    api.faults = admission
    api.reset_counts()
    outcome = run(applied, kube)
    assert outcome.failed == "PlanBlocked"
    assert outcome.message.startswith("ConfigMap/apps/extra: the API server refuses it: HTTP 409")
    assert api.writes() == 0
    dry_runs = sorted(r.path.rsplit("/", 1)[-1] for r in api.requests if r.verb == "apply")
    assert dry_runs == ["extra", "web-settings"]  # every write of the plan was asked first, none was made
    assert {r.query.get("dryRun") for r in api.requests if r.verb == "apply"} == {"All"}


def _theirs_holding(backend: Backend, mac: str) -> None:
    """A VM of someone else's in ``apps`` holding ``mac`` (KubeMacPool allocated it to them)."""
    nic = {"name": "nic0", "bridge": {}, "macAddress": mac}
    spec = {"domain": {"devices": {"interfaces": [nic]}, "memory": {"guest": "1Gi"}},
            "networks": [{"name": "nic0", "multus": {"networkName": "vlan100"}}]}
    theirs = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "theirs", "namespace":
              "apps"}, "spec": {"runStrategy": "Halted", "template": {"spec": spec}}}
    backend.put(theirs, manager="someone-else")


def test_an_admission_webhook_refusal_blocks_the_plan_before_any_write(backend: Backend, applied_on: Path) -> None:
    """The server-side dry run asks admission too: KubeMacPool (a real mutating webhook beside the real server,
    in-process in the double) refuses a MAC another VM holds, so the plan stops before its first write."""
    _theirs_holding(backend, "02:00:00:00:01:77")
    edit(applied_on / "vms" / "web.yaml", '"02:00:00:00:01:02"', '"02:00:00:00:01:77"')
    backend.log.reset()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.failed == "PlanBlocked", outcome.message
    refused = 'VirtualMachine/apps/web-2: the API server refuses it: HTTP 500: admission webhook "mutatevirtualmachines'
    assert outcome.message.startswith(refused + '.kubemacpool.io" denied the request'), outcome.message
    assert backend.log.writes() == 0
    dry = [c for c in backend.log.calls if c.verb == "apply"]
    assert dry and all(c.dry_run for c in dry)


def test_an_admission_denial_is_not_retried_like_a_server_fault(backend: Backend, applied_on: Path) -> None:
    _theirs_holding(backend, "02:00:00:00:01:77")
    edit(applied_on / "vms" / "web.yaml", '"02:00:00:00:01:02"', '"02:00:00:00:01:77"')
    sent: list[str] = []
    transport = backend.kube.api.rest_client
    send = transport.request

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "PATCH" and "/virtualmachines/web-2?" in url:
            sent.append(url)
        return send(method, url, *args, **kwargs)

    transport.request = counting
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.failed == "PlanBlocked", outcome.message
    assert len(sent) == 1, f"the refused dry run was sent {len(sent)} times"


class Deleting:
    """A ClusterWriter whose object is being deleted for ``polls`` GETs, then gone; records the calls."""

    def __init__(self, polls: int) -> None:
        self.polls, self.calls = polls, []  # type: ignore[var-annotated]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        self.polls -= 1
        return (
            {"kind": kind, "metadata": {"name": name, "uid": "old", "deletionTimestamp": "t", "finalizers": ["x/y"]}}
            if self.polls >= 0
            else None
        )

    def apply(self, obj: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        self.calls.append(("apply", obj["metadata"]["name"]))
        return obj

    def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []

    def delete(self, obj: dict[str, Any]) -> None:
        raise AssertionError("nothing is deleted")

    def restart_vm(self, namespace: str, name: str) -> None:
        raise AssertionError("nothing is restarted")


OURS = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "prod"}


def terminating(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "uid": "old", "deletionTimestamp": "t", "finalizers": ["x/y"]}}


def test_object_being_deleted_is_waited_out_then_created_again() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps", "labels": OURS}}
    plan = build_plan([cm], LiveState(owned={obj_id(cm): terminating(cm)}), "prod")
    [item] = plan.items
    assert item.action == Action.CREATE and item.waits_for is not None
    assert "ConfigMap/apps/c is being deleted" in item.reason
    cluster = Deleting(polls=2)
    changes = apply_plan(plan, cluster, ApplyOptions(poll=0, timeout=5))
    assert changes.ok, changes.error
    assert cluster.calls == [("get", "c"), ("get", "c"), ("get", "c"), ("apply", "c")]


def test_nothing_is_written_into_a_terminating_namespace_and_a_stuck_deletion_is_an_error() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": OURS}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps", "labels": OURS}}
    plan = build_plan([ns, cm], LiveState(owned={obj_id(ns): terminating(ns)}), "prod")
    assert [(i.action, i.waits_for is not None) for i in plan.items] == [(Action.CREATE, True)] * 2
    cluster = Deleting(polls=10**6)
    ticks = iter(range(10**6))
    changes = apply_plan(plan, cluster, ApplyOptions(poll=0, timeout=3, clock=lambda: float(next(ticks))))
    assert not changes.ok and "still being deleted after 3s (finalizers: x/y)" in (changes.results[0].message)
    assert ("apply", "c") not in cluster.calls and ("apply", "apps") not in cluster.calls
