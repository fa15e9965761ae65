"""The double's simulated controllers, KubeMacPool's webhook and virt-api's restart, against a real apiserver.

Why: ``ControlPlane.start(dir, simulate=...)`` (and ``scripts/kube-up``) is how virtnet meets nmstate and
KubeVirt behaviour together with the real server's semantics; these tests hold what the simulators promise
(the same as in the double: :mod:`tests.testing.test_controllers`) and what the real server adds (status
subresources with the real controllers' managers, admission output owned by no manager, an aggregated API).
The last tests run ``virtnet`` itself end to end on a control plane of their own.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from reconciler.cli import main
from reconciler.clients.kube import Kube
from reconciler.testing.controlplane import ControlPlane, ControlPlaneUnavailable
from reconciler.testing.controlplane.kubemacpool import GRACE
from reconciler.testing.controlplane.simulate import SYNC_EVERY

pytestmark = [pytest.mark.realapi, pytest.mark.timeout(1800)]

T = TypeVar("T")
NNCP = ("nmstate.io", "v1", "nodenetworkconfigurationpolicies")
NNCE = ("nmstate.io", "v1beta1", "nodenetworkconfigurationenactments")
NNS = ("nmstate.io", "v1beta1", "nodenetworkstates")
NS = "sim"
VM = ("kubevirt.io", "v1", NS, "virtualmachines")
VMI = ("kubevirt.io", "v1", NS, "virtualmachineinstances")
APPLY = "application/apply-patch+yaml"
WORKERS = {"node-role.kubernetes.io/worker": ""}
REPO = Path(__file__).resolve().parents[2] / "examples" / "repo"


def start(directory: Path) -> ControlPlane:
    try:
        return ControlPlane.start(directory, simulate=("nmstate", "kubevirt", "gc"))
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with start(tmp_path_factory.mktemp("simulate")) as cp:
        yield cp


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(plane.kubeconfig))
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": NS}})
    yield api_client
    api_client.close()


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def wait(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while (out := probe()) is None or out is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return out


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in (obj.get("status") or {}).get("conditions") or []}


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(manager, subresource) -> operation, from managedFields."""
    return {(m["manager"], m.get("subresource", "")): m["operation"] for m in obj["metadata"]["managedFields"]}


def policy(name: str, port: str) -> dict[str, Any]:
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy", "metadata": {"name": name},
            "spec": {"nodeSelector": WORKERS, "desiredState": {"interfaces": [
                {"name": name, "type": "linux-bridge", "state": "up", "ipv4": {"enabled": False},
                 "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": port}]}}]}}}


def vm(name: str, bridges: list[str], *, run: str = "Always", macs: dict[str, str] | None = None) -> dict[str, Any]:
    macs = macs or {}
    ifaces = [{"name": "default", "masquerade": {}}] + [{"name": b, "bridge": {}} for b in bridges]
    for iface in ifaces:
        if iface["name"] in macs:
            iface["macAddress"] = macs[iface["name"]]
    networks = [{"name": "default", "pod": {}}] + [{"name": b, "multus": {"networkName": b}} for b in bridges]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": NS},
            "spec": {"runStrategy": run, "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "domain": {"devices": {"interfaces": ifaces}}, "networks": networks}}}}


def apply_vm(custom: client.CustomObjectsApi, body: dict[str, Any], manager: str = "tester",
             **kwargs: Any) -> dict[str, Any]:
    name = body["metadata"]["name"]
    out = custom.patch_namespaced_custom_object(*VM, name, body, field_manager=manager, _content_type=APPLY,
                                                **kwargs)
    if out is None and not kwargs.get("dry_run"):  # the client maps no body for 201 Created (a create)
        out = custom.get_namespaced_custom_object(*VM, name)
    return out or {}


def iface_macs(obj: dict[str, Any]) -> dict[str, str]:
    ifaces = obj["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
    return {i["name"]: i.get("macAddress", "") for i in ifaces}


def get_vmi(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = custom.get_namespaced_custom_object(*VMI, name)
        return out
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# ---- nmstate -------------------------------------------------------------------------------------------------


def test_policy_becomes_available_with_an_enactment_per_node_and_the_bridge_on_the_nodes(
        custom: client.CustomObjectsApi) -> None:
    custom.create_cluster_custom_object(*NNCP, policy("br-sim", "eth1"))
    live = wait("br-sim Available", lambda: (p := custom.get_cluster_custom_object(*NNCP, "br-sim")) and
                conditions(p).get("Available", ("",))[0] == "True" and p)
    assert conditions(live)["Available"][1] == "SuccessfullyConfigured"
    assert conditions(live)["Degraded"][0] == "False"
    assert managers(live)[("nmstate-handler", "status")] == "Update"  # status through /status, as nmstate does
    nnces = {e["metadata"]["name"]: e for e in custom.list_cluster_custom_object(*NNCE)["items"]
             if e["metadata"]["labels"]["nmstate.io/policy"] == "br-sim"}
    assert set(nnces) == {"worker-0.br-sim", "worker-1.br-sim", "worker-2.br-sim"}
    assert all(conditions(e)["Available"][0] == "True" for e in nnces.values())
    nns = custom.get_cluster_custom_object(*NNS, "worker-0")
    assert "br-sim" in [i["name"] for i in nns["status"]["currentState"]["interfaces"]]
    assert "br-sim" not in [i["name"] for i in custom.get_cluster_custom_object(*NNS, "master-0")["status"]
                            ["currentState"]["interfaces"]]


def test_policy_over_a_missing_nic_is_degraded_naming_node_and_nic(custom: client.CustomObjectsApi) -> None:
    custom.create_cluster_custom_object(*NNCP, policy("br-missing", "eth9"))
    live = wait("br-missing Degraded", lambda: (p := custom.get_cluster_custom_object(*NNCP, "br-missing")) and
                conditions(p).get("Degraded", ("",))[0] == "True" and p)
    _, reason, message = conditions(live)["Degraded"]
    assert reason == "FailedToConfigure"
    assert "3/3 nodes failed to configure" in message
    assert "failed to configure node worker-0: interface eth9 not found on the node" in message
    nnce = custom.get_cluster_custom_object(*NNCE, "worker-1.br-missing")
    assert conditions(nnce)["Failing"][:2] == ("True", "FailedToConfigure")


# ---- KubeVirt ------------------------------------------------------------------------------------------------


def test_running_vm_gets_a_ready_vmi_with_its_interfaces(custom: client.CustomObjectsApi) -> None:
    created = apply_vm(custom, vm("web", ["blue"]))
    vmi = wait("VMI web with interfaces", lambda: (v := get_vmi(custom, "web")) and (v.get("status") or {})
               .get("interfaces") and v)
    got = {i["name"]: i for i in vmi["status"]["interfaces"]}
    assert set(got) == {"default", "blue"}
    assert got["default"]["ipAddress"].startswith("10.128.")
    assert {n: i["mac"] for n, i in got.items()} == iface_macs(created)  # the MACs KubeMacPool gave the VM
    assert managers(vmi)[("virt-controller", "")] == "Update"
    assert managers(vmi)[("virt-handler", "status")] == "Update"
    live = wait("VM web Ready", lambda: (v := custom.get_namespaced_custom_object(*VM, "web")) and
                (v.get("status") or {}).get("ready") and v)
    assert live["status"]["printableStatus"] == "Running"
    assert managers(live)[("virt-controller", "status")] == "Update"


def test_hot_plugged_bridge_reaches_the_vmi_and_a_plain_removal_needs_a_restart(
        custom: client.CustomObjectsApi) -> None:
    apply_vm(custom, vm("plug", []))
    wait("VMI plug", lambda: get_vmi(custom, "plug"))
    apply_vm(custom, vm("plug", ["green"]))
    # no LiveUpdate: the plug reaches the VMI spec, the guest (status) only once a migration moved the VM
    vmi = wait("green in the VMI spec", lambda: (v := get_vmi(custom, "plug")) and "green" in
               [i["name"] for i in v["spec"]["domain"]["devices"]["interfaces"]] and v)
    assert "green" not in [i["name"] for i in (vmi.get("status") or {}).get("interfaces") or []]
    custom.create_namespaced_custom_object("kubevirt.io", "v1", NS, "virtualmachineinstancemigrations", {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": "plug-green"}, "spec": {"vmiName": "plug"}})
    vmi = wait("green plugged", lambda: (v := get_vmi(custom, "plug")) and "green" in
               [i["name"] for i in (v.get("status") or {}).get("interfaces") or []] and v)
    live = custom.get_namespaced_custom_object(*VM, "plug")
    assert "RestartRequired" not in conditions(live)
    apply_vm(custom, vm("plug", []))  # dropped without state: absent first: KubeVirt cannot unplug that live
    live = wait("RestartRequired", lambda: (v := custom.get_namespaced_custom_object(*VM, "plug")) and
                "RestartRequired" in conditions(v) and v)
    assert "green" in [i["name"] for i in (get_vmi(custom, "plug") or {})["status"]["interfaces"]]


def test_kubemacpool_assigns_a_mac_no_manager_owns_and_keeps_it_on_update(custom: client.CustomObjectsApi) -> None:
    created = apply_vm(custom, vm("macs", ["red"], run="Halted"))
    macs = iface_macs(created)
    assert all(m.startswith("02:00:00:") for m in macs.values()) and len(set(macs.values())) == 2
    assert "macAddress" not in str(created["metadata"]["managedFields"])  # admission output has no manager
    assert {m["manager"] for m in created["metadata"]["managedFields"]} <= {"tester", "virt-controller"}
    again = apply_vm(custom, vm("macs", ["red", "yellow"], run="Halted"))  # the apply sends no MACs
    assert {k: v for k, v in iface_macs(again).items() if k != "yellow"} == macs
    assert iface_macs(again)["yellow"] not in macs.values()


def test_kubemacpool_refuses_a_mac_another_vm_holds_and_releases_it_on_delete(
        custom: client.CustomObjectsApi) -> None:
    holder = apply_vm(custom, vm("holder", [], run="Halted"))
    mac = iface_macs(holder)["default"]
    with pytest.raises(ApiException) as err:
        apply_vm(custom, vm("thief", [], run="Halted", macs={"default": mac}))
    assert err.value.status == 500
    assert json.loads(err.value.body)["message"] == (
        'admission webhook "mutatevirtualmachines.kubemacpool.io" denied the request: Failed to create virtual '
        "machine allocation error: Failed to allocate mac to the vm object: failed to allocate requested mac address")
    # a dry run reserves nothing (sideEffects: NoneOnDryRun)
    apply_vm(custom, vm("dry", [], run="Halted", macs={"default": "02:00:00:aa:00:01"}), dry_run="All")
    apply_vm(custom, vm("wet", [], run="Halted", macs={"default": "02:00:00:aa:00:01"}))
    custom.delete_namespaced_custom_object(*VM, "holder")

    def taken_over() -> bool:
        try:
            apply_vm(custom, vm("thief", [], run="Halted", macs={"default": mac}))
            return True
        except ApiException:
            return False

    # released by the next pool sync; a VM deleted before any sync listed it waits out the grace period
    wait("the deleted VM's MAC released", taken_over, timeout=GRACE + 3 * SYNC_EVERY)


def test_restart_goes_through_the_aggregated_api_to_the_simulated_virt_api(
        plane: ControlPlane, custom: client.CustomObjectsApi) -> None:
    kube = Kube.from_kubeconfig(str(plane.kubeconfig))  # virtnet's own client and restart call
    apply_vm(custom, vm("reboot", []))
    first = wait("VMI reboot", lambda: get_vmi(custom, "reboot"))
    kube.restart_vm(NS, "reboot")  # PUT .../virtualmachines/reboot/restart: 202 or ApplyError
    wait("a new VMI", lambda: (v := get_vmi(custom, "reboot")) and v["metadata"]["uid"] != first["metadata"]["uid"])
    # virt-controller consumes virt-api's request (its own status write, which may follow the new VMI)
    wait("the request consumed", lambda: "stateChangeRequests" not in custom.get_namespaced_custom_object(
        *VM, "reboot")["status"])
    apply_vm(custom, vm("halted", [], run="Halted"))
    path = f"/apis/subresources.kubevirt.io/v1/namespaces/{NS}/virtualmachines/{{name}}/restart"
    for name, status, words in (("halted", 409, "RunStategy Halted does not support manual restart requests"),
                                ("nobody", 404, 'virtualmachines.kubevirt.io "nobody" not found')):
        with pytest.raises(ApiException) as err:
            kube.request("PUT", path.format(name=name), body={})
        assert err.value.status == status and words in json.loads(err.value.body)["message"]


# ---- kube-controller-manager's part -------------------------------------------------------------------------


def test_foreground_deletion_and_a_deleted_namespace_finish(api: client.ApiClient,
                                                              custom: client.CustomObjectsApi) -> None:
    apply_vm(custom, vm("doomed", []))
    wait("VMI doomed", lambda: get_vmi(custom, "doomed"))
    custom.delete_namespaced_custom_object(*VM, "doomed", propagation_policy="Foreground")  # as virtnet prunes

    def gone(read: Callable[[], Any]) -> bool:
        try:
            read()
            return False
        except ApiException as exc:
            return exc.status == 404

    wait("VM and VMI gone", lambda: gone(lambda: custom.get_namespaced_custom_object(*VM, "doomed"))
         and get_vmi(custom, "doomed") is None)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "sim-doomed"}})
    core.create_namespaced_config_map("sim-doomed", {"metadata": {"name": "c"}})
    core.delete_namespace("sim-doomed")
    wait("namespace sim-doomed gone", lambda: gone(lambda: core.read_namespace("sim-doomed")))


def test_a_status_write_keeps_a_field_another_writer_added_after_the_read(
    plane: ControlPlane, api: client.ApiClient
) -> None:
    """The simulated virt-controller writes a VM's status from its last read; virt-api's restart adds
    ``stateChangeRequests`` in between. Replacing the whole status lost that restart (a VMI never recreated,
    seen in CI): the write sets and removes only the keys the writer changed. Shown on a Namespace, whose
    status no simulator writes."""
    from reconciler.testing.kubestore import KubeStore
    from reconciler.testing.statuswrite import set_status

    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "sim-status"}})
    store = KubeStore(plane.rest())
    read = store.find("v1", "Namespace", "sim-status")
    assert read is not None and read["status"] == {"phase": "Active"}
    condition = {"type": "Test", "status": "True", "reason": "Other", "message": "another writer"}
    core.patch_namespace_status("sim-status", {"status": {"conditions": [condition]}})  # after the read
    set_status(store, "v1", "Namespace", read, {"phase": "Active", "extra": "mine"}, "sim")
    status = core.read_namespace_status("sim-status").status
    assert status.phase == "Active" and [c.type for c in status.conditions or []] == ["Test"]
    core.delete_namespace("sim-status")


# ---- virtnet end to end --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Path]]:
    """A control plane of its own with the example repository applied by ``virtnet apply``."""
    tmp = tmp_path_factory.mktemp("virtnet-e2e")
    repo = tmp / "repo"
    shutil.copytree(REPO, repo)
    with start(tmp / "plane") as cp:
        result = virtnet("apply", repo, cp)
        assert result.exit_code == 0, result.output
        yield cp, repo


def virtnet(command: str, repo: Path, cp: ControlPlane) -> Any:
    return CliRunner().invoke(main, [command, str(repo), "--kubeconfig", str(cp.kubeconfig),
                                     *(["--timeout", "60"] if command == "apply" else [])])


def test_a_second_plan_after_apply_has_no_changes(applied: tuple[ControlPlane, Path]) -> None:
    cp, repo = applied
    result = virtnet("plan", repo, cp)
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output


def test_removing_a_non_hotplug_interface_is_planned_and_applied_to_the_live_vm(
        applied: tuple[ControlPlane, Path]) -> None:
    cp, repo = applied
    web = repo / "vms" / "web.yaml"
    text = web.read_text()
    front = '    - network: vlan200\n      mac: "02:00:00:00:01:03"\n      dhcp: true\n      name: front\n'
    assert front in text
    web.write_text(text.replace(front, ""))
    plan = virtnet("plan", repo, cp)
    assert plan.exit_code == 2, plan.output
    [line] = [x for x in plan.output.splitlines() if x.startswith("~ VirtualMachine/apps/web-2 [restart-required]: ")]
    assert "interface front removed" in line  # (and its DHCP stanza leaves the config drive's networkData)
    result = virtnet("apply", repo, cp)
    assert result.exit_code == 0, result.output
    with config.new_client_from_config(config_file=str(cp.kubeconfig)) as api:
        live = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "kubevirt.io", "v1", "apps", "virtualmachines", "web-2")
        assert "front" not in iface_macs(live)
        assert "RestartRequired" in conditions(wait("RestartRequired on web-2", lambda: (
            v := client.CustomObjectsApi(api).get_namespaced_custom_object(
                "kubevirt.io", "v1", "apps", "virtualmachines", "web-2")) and "RestartRequired" in conditions(v)
            and v))
    assert virtnet("plan", repo, cp).exit_code == 0


def test_a_restart_allowed_vm_is_restarted_through_the_aggregated_api(applied: tuple[ControlPlane, Path]) -> None:
    cp, repo = applied
    with config.new_client_from_config(config_file=str(cp.kubeconfig)) as api:
        custom = client.CustomObjectsApi(api)
        vmi_of = ("kubevirt.io", "v1", "nfv", "virtualmachineinstances", "vrouter-1")
        before = wait("vrouter-1 VMI", lambda: custom.get_namespaced_custom_object(*vmi_of))
        router = repo / "vms" / "vrouter.yaml"
        router.write_text(router.read_text().replace("memory: 8Gi", "memory: 6Gi"))
        result = virtnet("apply", repo, cp)
        assert result.exit_code == 0, result.output
        assert "restart" in result.output
        after = wait("a new vrouter-1 VMI", lambda: (v := custom.get_namespaced_custom_object(*vmi_of)) and
                     v["metadata"]["uid"] != before["metadata"]["uid"] and v, timeout=60)
        assert after["spec"]["domain"]["memory"]["guest"] == "6Gi"


def test_a_pruned_vm_is_gone_and_the_next_plan_is_clean(applied: tuple[ControlPlane, Path]) -> None:
    cp, repo = applied
    (repo / "vms" / "db.yaml").unlink()
    result = virtnet("apply", repo, cp)  # prunes with propagationPolicy Foreground: the gc finishes it
    assert result.exit_code == 0, result.output
    assert "VirtualMachine/db/db-1: no longer in the repository" in result.output
    with config.new_client_from_config(config_file=str(cp.kubeconfig)) as api:
        custom = client.CustomObjectsApi(api)
        wait("db-1 and its VMI gone", lambda: not custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", "db", "virtualmachines")["items"] and not custom.list_namespaced_custom_object(
            "kubevirt.io", "v1", "db", "virtualmachineinstances")["items"])
    plan = virtnet("plan", repo, cp)
    assert plan.exit_code == 0, plan.output


def test_a_field_another_manager_took_over_is_named_by_plan_before_any_write(
        applied: tuple[ControlPlane, Path]) -> None:
    """The issue's "must show": plan names the other field manager (real managedFields of a real server) and
    nothing is written; --force-conflicts takes the field back."""
    cp, repo = applied
    with config.new_client_from_config(config_file=str(cp.kubeconfig)) as api:
        core = client.CoreV1Api(api)
        core.patch_namespaced_config_map("web-settings", "apps", {"data": {"LISTEN_PORT": "9999"}},
                                         field_manager="ops")
        plan = virtnet("plan", repo, cp)
        assert plan.exit_code == 1, plan.output
        assert "ConfigMap/apps/web-settings: data.LISTEN_PORT is owned by field manager 'ops'" in plan.output
        refused = virtnet("apply", repo, cp)
        assert refused.exit_code == 1 and "PlanBlocked" in refused.output
        assert core.read_namespaced_config_map("web-settings", "apps").data == {"LISTEN_PORT": "9999"}
        forced = CliRunner().invoke(main, ["apply", str(repo), "--kubeconfig", str(cp.kubeconfig),
                                           "--timeout", "60", "--force-conflicts"])
        assert forced.exit_code == 0, forced.output
        assert core.read_namespaced_config_map("web-settings", "apps").data == {"LISTEN_PORT": "8080"}
    assert virtnet("plan", repo, cp).exit_code == 0
