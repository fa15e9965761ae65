"""Whole reconciles of examples/repo against the API double: convergence, request budget, VM hot-plug vs restart,
and the ``plan``/``apply`` commands.

The request budget is the engine's promise to a busy API server: a reconcile with nothing to do reads (one LIST
per kind, GETs of patch-only objects) and never writes; one changed VM is one write.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from backends import Backend, backend_fixture, eventually, settle
from click.testing import CliRunner

from engine.conftest import edit, kubevirt_cr, run
from reconciler import labels
from reconciler.cli import main
from reconciler.clients.kube import MANAGED_KINDS, RESOURCES
from reconciler.engine.plan import Action, VMChange
from reconciler.render.checks import ANNOTATIONS_ROOM

VMS = "kubevirt.io/virtualmachines"


def resource_key(kind: str) -> str:
    """The double's ``group/plural`` accounting key of a kind the engine knows."""
    res = RESOURCES[kind]
    group = res.api_version.split("/")[0] if "/" in res.api_version else ""
    return f"{group}/{res.plural}" if group else res.plural


def vm_conditions(backend: Backend, ns: str, name: str) -> dict[str, str]:
    vm = backend.find("VirtualMachine", name, ns)
    assert vm is not None
    return {c["type"]: c["status"] for c in (vm.get("status") or {}).get("conditions") or []}


def vm_interfaces(backend: Backend, ns: str, name: str) -> list[str]:
    vm = backend.find("VirtualMachine", name, ns)
    assert vm is not None
    return [i["name"] for i in vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]]


def vmi_interfaces(backend: Backend, ns: str, name: str) -> list[str]:
    vmi = backend.find("VirtualMachineInstance", name, ns)
    assert vmi is not None
    return [i["name"] for i in vmi["status"]["interfaces"]]


# ---- convergence and request budget (on the API double and on a real kube-apiserver) ----------------------------

backend = backend_fixture()


@pytest.fixture
def applied_on(backend: Backend, repo: Path) -> Path:
    """``repo`` applied to ``backend`` once and its request log cleared: the steady state."""
    return settle(backend, repo)


def test_plan_apply_plan_is_empty(backend: Backend, repo: Path) -> None:
    kube = backend.kube
    first = run(repo, kube, apply=False)
    assert first.ok and first.plan is not None
    assert first.plan.counts() == {"create": 35, "update": 1, "delete": 0, "no-op": 0, "skip": 0}
    assert backend.log.writes() == 0  # a plan never writes

    applied = run(repo, kube, apply_options=backend.options())
    assert applied.ok, applied.message
    assert applied.changes is not None and len(applied.changes.results) == 36
    assert all(r.ok for r in applied.changes.results)

    again = run(repo, kube, apply=False)
    assert again.ok and again.plan is not None
    assert [i.name for i in again.plan.changes] == []
    assert again.plan.counts()["no-op"] == 36 and again.plan.warnings == ()


def test_noop_reconcile_only_lists_and_gets(backend: Backend, applied_on: Path) -> None:
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok and outcome.changes is None  # nothing to apply, so apply_plan was not even entered
    counts = backend.log.counts()
    assert backend.log.writes() == 0
    assert {verb for verb, _ in counts} <= {"list", "get"}
    lists = {res: n for (verb, res), n in counts.items() if verb == "list"}
    # owned objects per managed kind, the VMIs (hot-plug state), the node agents' drift reports (ConfigMaps of
    # their own: a second ConfigMap LIST, by the agent's label)
    assert lists == {resource_key(k): 1 for k in (*MANAGED_KINDS, "VirtualMachineInstance")} | {"configmaps": 2}
    # the patch-only HyperConverged, and OpenShift's DNS config: examples/repo enables secondary DNS, whose
    # domain is checked against the cluster's base domain on every load (a 404 here: not OpenShift)
    gets = {res: n for (verb, res), n in counts.items() if verb == "get"}
    assert gets == {"hco.kubevirt.io/hyperconvergeds": 1, "config.openshift.io/dnses": 1}
    assert sum(counts.values()) == len(MANAGED_KINDS) + 4 == 15
    if backend.double is not None:  # the double sees every path, discovery included; the client log cannot
        assert backend.double.nonresource_counts == Counter()  # no discovery: paths come from a static table
    selectors = {c.query.get("labelSelector") for c in backend.log.calls if c.verb == "list"}
    assert selectors == {
        "app.kubernetes.io/managed-by=virtnet",  # ours, and other clusters' (only to refuse a takeover)
        "virtnet.io/vm",
        "app.kubernetes.io/managed-by=virtnet-agent",
    }
    assert outcome.plan is not None and outcome.plan.counts()["no-op"] == 36


def test_noop_reconcile_with_small_pages_counts_one_list_per_page(backend: Backend, applied_on: Path) -> None:
    from reconciler.clients import kube as kube_module

    kube = backend.kube
    pages_of = kube_module.Kube.list.__defaults__  # (label_selector, page_size, namespace)
    assert pages_of == (None, 500, None)
    original = kube.list
    kube.list = lambda kind, selector=None, page_size=500, namespace=None: original(  # type: ignore[method-assign]
        kind, selector, page_size=3, namespace=namespace
    )
    outcome = run(applied_on, kube)
    assert outcome.ok and not outcome.plan.has_changes  # type: ignore[union-attr]
    assert backend.log.writes() == 0
    owned = Counter(o["kind"] for o in outcome.desired if "virtnet.io/cluster" in o["metadata"].get("labels", {}))
    counts = backend.log.counts()
    for kind in MANAGED_KINDS:
        pages, full = max(1, -(-owned[kind] // 3)), owned[kind] > 0 and owned[kind] % 3 == 0
        # A real apiserver ends a full page with a `continue` token whenever any key follows it, even one the
        # label selector drops (3 owned Namespaces, then openshift-*): one more, empty, page. The double says
        # `continue` only when another object matches. Both keep the API's contract; the engine follows either.
        extra = 1 if backend.real and full else 0
        agent = 1 if kind == "ConfigMap" else 0  # the node agents' reports are ConfigMaps too: one more LIST
        assert pages + agent <= counts[("list", resource_key(kind))] <= pages + extra + agent, kind


def test_running_vms_are_observed_through_their_vmis(backend: Backend, applied_on: Path) -> None:
    from reconciler.pipeline import observe

    outcome = run(applied_on, backend.kube, apply=False)
    live = observe(backend.kube, "prod", outcome.desired)
    assert sorted(live.vmis) == ["apps/web-1", "apps/web-2", "db/db-1", "nfv/vrouter-1"]


def test_one_changed_vm_is_exactly_one_write(backend: Backend, applied_on: Path) -> None:
    # a cluster that rolls VM changes out live: KubeVirt migrates the VM itself (without it, see
    # test_hotplug_migration.py: the migration virtnet creates is a second write)
    backend.put(kubevirt_cr("LiveUpdate"), manager="virt-operator")
    edit(
        applied_on / "vms" / "web.yaml",
        "      name: front\n",
        "      name: front\n    - network: vlan100\n      name: extra\n      hotplug: true\n",
    )
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    [item] = outcome.plan.changes  # type: ignore[union-attr]
    assert (item.name, item.vm_change, item.plugs) == ("VirtualMachine/apps/web-2", VMChange.HOTPLUG, ("extra",))
    assert item.reason == "plug extra; KubeVirt migrates the VM itself (vmRolloutStrategy LiveUpdate)"
    assert backend.log.writes() == 1
    [write] = [c for c in backend.log.calls if c.is_write]
    assert (write.verb, write.path) == ("apply", "/apis/kubevirt.io/v1/namespaces/apps/virtualmachines/web-2")


def test_the_revision_is_recorded_on_what_a_commit_writes(backend: Backend, applied_on: Path) -> None:
    """``virtnet.io/revision`` names the commit that last wrote an object: it goes on the writes (the plan's
    ``with_revision``), so a new commit alone writes nothing and leaves the other objects' revisions alone."""
    before = backend.find("VirtualMachine", "web-1", "apps")
    assert before is not None
    outcome = run(applied_on, backend.kube, apply_options=backend.options(), revision="a" * 40)
    assert outcome.ok and outcome.plan is not None and not outcome.plan.has_changes, outcome.message
    edit(applied_on / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    outcome = run(applied_on, backend.kube, apply_options=backend.options(), revision="b" * 40)
    assert outcome.ok, outcome.message
    assert backend.log.writes() == 1
    db, web = backend.find("VirtualMachine", "db-1", "db"), backend.find("VirtualMachine", "web-1", "apps")
    assert db is not None and web is not None
    assert db["metadata"]["annotations"][labels.REVISION] == "b" * 40
    assert web["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert all(labels.REVISION not in (o["metadata"].get("annotations") or {}) for o in outcome.desired)


def test_a_one_vm_commit_reads_no_node_facts(backend: Backend, applied_on: Path) -> None:
    """No node check looks at a VM (``safety.analysis.NODE_KINDS``): on either server, a one-VM commit lists
    neither Nodes nor NodeNetworkStates (tests/safety/test_analysis.py counts the reads on the double)."""
    edit(applied_on / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    assert backend.log.writes() == 1
    listed = {c.resource for c in backend.log.calls if c.verb == "list"}
    assert not listed & {"nodes", "nmstate.io/nodenetworkstates"}, listed


@pytest.mark.parametrize(("over", "adopt"), [(0, False), (1, False), (0, True)])
def test_annotations_up_to_the_limit_less_virtnets_own_are_applied(
    backend: Backend, applied_on: Path, over: int, adopt: bool
) -> None:
    """Counted in bytes, with room kept for what the engine adds at the write (``virtnet.io/revision``, here a
    64-digit commit id of a SHA-256 repository, and ``virtnet.io/adopted`` on an adopted object): an object
    that passes ``render.checks`` is accepted, one byte more is refused at its file before anything is written."""
    key, name = "example.com/blob", "big"
    own = {"example.com/blob": "", **({labels.ADOPT: "true"} if adopt else {})}
    own[labels.SOURCE] = "manifests/big.yaml:1"  # the provenance annotation render adds
    used = sum(len(k.encode()) + len(v.encode()) for k, v in own.items())
    value = "é" * 100 + "x" * (ANNOTATIONS_ROOM - used - 200 + over)
    marks = "".join(f'    {k}: "{v}"\n' for k, v in own.items() if k not in (key, labels.SOURCE))
    (applied_on / "manifests" / "big.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\n  annotations:\n"
        f"    {key}: {value}\n{marks}data:\n  a: b\n"
    )
    if adopt:  # someone else's object of that name: adopting it marks it virtnet.io/adopted at the write
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "apps"}}
        backend.client(field_manager="helm").apply(cm)
        backend.log.reset()
    outcome = run(applied_on, backend.kube, apply_options=backend.options(), revision="c" * 64)
    if over:
        assert not outcome.ok and backend.log.writes() == 0
        [problem] = outcome.problems
        assert (problem.ref.file, problem.ref.line) == ("manifests/big.yaml", 6)
        assert f"annotations total {ANNOTATIONS_ROOM + 1} bytes" in problem.message
        return
    assert outcome.ok, outcome.message
    assert backend.log.writes() == 1
    stored = backend.find("ConfigMap", name, "apps")
    assert stored is not None
    annotations = stored["metadata"]["annotations"]
    assert annotations[key] == value and annotations[labels.REVISION] == "c" * 64
    assert (labels.ADOPTED in annotations) is adopt


def test_changed_mac_is_one_write_and_a_restart_warning(backend: Backend, applied_on: Path) -> None:
    edit(applied_on / "vms" / "web.yaml", '"02:00:00:00:01:02"', '"02:00:00:00:01:09"')
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    [item] = outcome.plan.changes  # type: ignore[union-attr]
    assert item.name == "VirtualMachine/apps/web-2" and item.vm_change == VMChange.RESTART_REQUIRED
    assert "interface dc-vlan50 changed" in item.reason
    assert backend.log.writes() == 1
    live = backend.find("VirtualMachine", "web-2", "apps")
    macs = {i["name"]: i.get("macAddress") for i in live["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]}
    assert macs["dc-vlan50"] == "02:00:00:00:01:09"


# ---- hot-plug vs restart end to end (KubeVirt simulated: in the double, or beside the real server) ---------------
# A restart or a hot-plug is asynchronous (KubeVirt answers and changes the VMI later), so the tests wait for the
# controller's reaction itself; the bound is generous because CI machines can be heavily loaded.


def test_hotplugged_bridge_reaches_the_running_vm_without_restart(backend: Backend, applied_on: Path) -> None:
    assert vm_conditions(backend, "apps", "web-2") == {"Ready": "True"}
    edit(
        applied_on / "vms" / "web.yaml",
        "      name: front\n",
        "      name: front\n    - network: vlan100\n      name: extra\n      hotplug: true\n",
    )
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok and outcome.plan is not None and outcome.plan.warnings == ()
    assert eventually(lambda: "extra" in vmi_interfaces(backend, "apps", "web-2"))
    assert "RestartRequired" not in vm_conditions(backend, "apps", "web-2")
    assert not run(applied_on, backend.kube, apply=False).plan.has_changes  # type: ignore[union-attr]


def test_unplugged_bridge_leaves_the_vm_and_the_marker_is_dropped_next_time(
    backend: Backend, applied_on: Path
) -> None:
    kube = backend.kube
    edit(applied_on / "vms" / "web.yaml", "    - network: tenant-l2\n      hotplug: true\n", "")
    outcome = run(applied_on, kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    [item] = outcome.plan.changes  # type: ignore[union-attr]
    assert (item.vm_change, item.reason) == (VMChange.HOTPLUG, "unplug tenant-l2")
    sent = backend.find("VirtualMachine", "web-1", "apps")
    assert sent is not None
    states = {i["name"]: i.get("state") for i in sent["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]}
    assert states["tenant-l2"] == "absent"
    assert eventually(lambda: "tenant-l2" not in vmi_interfaces(backend, "apps", "web-1"))
    assert "RestartRequired" not in vm_conditions(backend, "apps", "web-1")

    # virt-controller then drops the absent interface from the VM spec itself: nothing left for virtnet to do
    assert eventually(lambda: "tenant-l2" not in vm_interfaces(backend, "apps", "web-1"))
    backend.quiesce()
    after = run(applied_on, kube, apply=False)
    assert after.ok and not after.plan.has_changes, after.message  # type: ignore[union-attr]


def test_cpu_change_on_a_running_vm_warns_restart_required(backend: Backend, applied_on: Path) -> None:
    edit(
        applied_on / "vms" / "web.yaml",
        "  cpu: 2\n  memory: 4Gi\n  boot:\n    containerDisk: quay.io/containerdisks/fedora:40\n"
        "  interfaces:\n    - network: vlan200",
        "  cpu: 4\n  memory: 4Gi\n  boot:\n"
        "    containerDisk: quay.io/containerdisks/fedora:40\n  interfaces:\n    - network: vlan200",
    )
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    assert outcome.plan is not None
    assert outcome.plan.warnings == (
        "VirtualMachine/apps/web-2: restart required (spec.template.spec.domain.cpu.cores changed); "
        "the VM does not allow virtnet to restart it",
    )
    # KubeVirt agrees
    assert eventually(lambda: vm_conditions(backend, "apps", "web-2").get("RestartRequired") == "True")
    assert backend.log.writes() == 1


def test_vm_that_allows_restart_is_restarted_after_its_apply(backend: Backend, applied_on: Path) -> None:
    edit(applied_on / "vms" / "vrouter.yaml", "  cpu: 4\n", "  cpu: 8\n")
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    [item] = outcome.plan.changes  # type: ignore[union-attr]
    assert (item.vm_change, item.action) == (VMChange.RESTART, Action.UPDATE)
    assert outcome.plan.warnings == ()  # type: ignore[union-attr]
    sent = [(c.method, c.path, c.status) for c in backend.log.calls if c.method in ("PATCH", "PUT") and c.is_write]
    assert sent == [
        ("PATCH", "/apis/kubevirt.io/v1/namespaces/nfv/virtualmachines/vrouter-1", 200),
        ("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/nfv/virtualmachines/vrouter-1/restart", 200),
    ]  # (the client log says 200 for any success: KubeVirt answers the restart 202)
    assert backend.log.writes() == 2

    def restarted_with_new_cpu() -> bool:
        vmi = backend.find("VirtualMachineInstance", "vrouter-1", "nfv")
        return vmi is not None and vmi["spec"]["domain"]["cpu"]["cores"] == 8

    assert eventually(restarted_with_new_cpu)  # the restart picked up the new template
    # virt-controller writes the fresh VMI first and the VM's status after it: the condition clears a moment later
    assert eventually(lambda: "RestartRequired" not in vm_conditions(backend, "nfv", "vrouter-1"))


# ---- the commands -------------------------------------------------------------------------------------------
# double-only: `virtnet plan/apply --api-double` starts the CLI's own double; the CLI against a real server via
# --kubeconfig is in reliability/test_prune_safety.py and test_crash.py (both servers)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_plan_command_exits_2_with_changes_and_renders_every_format(cli: CliRunner, repo: Path) -> None:
    text = cli.invoke(main, ["plan", str(repo), "--api-double"])
    assert text.exit_code == 2, text.output
    assert "Plan for cluster prod: 35 to create, 1 to update, 0 to delete, 0 unchanged" in text.output

    as_json = cli.invoke(main, ["plan", str(repo), "--api-double", "-o", "json"])
    assert as_json.exit_code == 2
    doc = json.loads(as_json.stdout)
    assert doc["cluster"] == "prod" and doc["counts"]["create"] == 35 and doc["errors"] == []
    assert len(doc["items"]) == 36

    markdown = cli.invoke(main, ["plan", str(repo), "--api-double", "-o", "markdown"])
    assert markdown.exit_code == 2
    assert "| | object | why |" in markdown.stdout and "| + create | `Namespace/apps` |" in markdown.stdout


def test_plan_command_exits_1_on_an_invalid_repository(cli: CliRunner, repo: Path) -> None:
    edit(repo / "vms" / "web.yaml", '"02:00:00:00:01:02"', '"02:00:00:00:01:01"')  # duplicate MAC
    result = cli.invoke(main, ["plan", str(repo), "--api-double"])
    assert result.exit_code == 1 and "02:00:00:00:01:01" in result.output


def test_apply_command_exits_0(cli: CliRunner, repo: Path) -> None:
    result = cli.invoke(main, ["apply", str(repo), "--api-double", "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert "35 to create" in result.stdout
