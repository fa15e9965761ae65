"""The simulated nmstate and KubeVirt controllers of the API double, observed through the real client.

``tick_interval=None`` makes every test step explicit: nothing changes until the test calls ``api.tick()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from reconciler.testing import ApiDouble

NNCP = ("nmstate.io", "v1", "nodenetworkconfigurationpolicies")
NNCE = ("nmstate.io", "v1beta1", "nodenetworkconfigurationenactments")
VM = ("kubevirt.io", "v1", "default", "virtualmachines")
VMI = ("kubevirt.io", "v1", "default", "virtualmachineinstances")
NODES = [
    {"name": "worker-0", "labels": {"role": "worker", "nic": "eth1"},
     "interfaces": [{"name": "eth0", "type": "ethernet", "state": "up", "mac-address": "52:54:00:00:00:01",
                     "mtu": 1500, "ipv4": {"enabled": True, "dhcp": True}},
                    {"name": "eth1", "type": "ethernet", "state": "up", "mac-address": "52:54:00:00:00:02"}]},
    {"name": "worker-1", "labels": {"role": "worker"},
     "interfaces": [{"name": "eth0", "type": "ethernet", "state": "up", "mac-address": "52:54:00:00:01:01"}]},
]


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=NODES, tick_interval=None,
                   nmstate_delay_ticks=2) as double:
        yield double


@pytest.fixture
def custom(api: ApiDouble) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api.api_client())


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in (obj.get("status") or {}).get("conditions") or []}


def bridge_policy(name: str, port: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy", "metadata": {"name": name},
            "spec": {"nodeSelector": selector or {},
                     "desiredState": {"interfaces": [{"name": "br1", "type": "linux-bridge", "state": "up",
                                                      "bridge": {"port": [{"name": port}]}}]}}}


def test_nodes_and_node_network_states_are_created(api: ApiDouble) -> None:
    v1 = client.CoreV1Api(api.api_client())
    assert [n.metadata.name for n in v1.list_node().items] == ["worker-0", "worker-1"]
    nns = client.CustomObjectsApi(api.api_client()).get_cluster_custom_object(
        "nmstate.io", "v1beta1", "nodenetworkstates", "worker-0")
    assert [i["name"] for i in nns["status"]["currentState"]["interfaces"]] == ["eth0", "eth1"]


def test_nncp_progresses_then_becomes_available(api: ApiDouble, custom: client.CustomObjectsApi) -> None:
    custom.create_cluster_custom_object(*NNCP, bridge_policy("br1", "eth1", {"nic": "eth1"}))
    api.tick()
    policy = custom.get_cluster_custom_object(*NNCP, "br1")
    assert conditions(policy)["Progressing"][:2] == ("True", "ConfigurationProgressing")
    assert conditions(policy)["Available"][0] == "False"
    nnce = custom.get_cluster_custom_object(*NNCE, "worker-0.br1")
    assert conditions(nnce)["Progressing"][0] == "True"
    api.tick(2)
    policy = custom.get_cluster_custom_object(*NNCP, "br1")
    assert conditions(policy)["Available"][:2] == ("True", "SuccessfullyConfigured")
    assert conditions(policy)["Progressing"][0] == "False"
    assert [e["metadata"]["name"] for e in custom.list_cluster_custom_object(*NNCE)["items"]] == ["worker-0.br1"]
    assert conditions(custom.get_cluster_custom_object(*NNCE, "worker-0.br1"))["Available"][0] == "True"
    nns = api.store.find("nmstate.io/v1beta1", "NodeNetworkState", "worker-0")
    assert nns is not None
    assert "br1" in [i["name"] for i in nns["status"]["currentState"]["interfaces"]]

    # state: absent removes the bridge from the node again
    absent = bridge_policy("br1", "eth1", {"nic": "eth1"})
    absent["spec"]["desiredState"]["interfaces"] = [{"name": "br1", "type": "linux-bridge", "state": "absent"}]
    # a PUT of a custom resource must carry the resourceVersion it replaces (422 without, as on a real server)
    live = custom.get_cluster_custom_object(*NNCP, "br1")
    absent["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    custom.replace_cluster_custom_object(*NNCP, "br1", absent)
    api.tick(3)
    nns = api.store.find("nmstate.io/v1beta1", "NodeNetworkState", "worker-0")
    assert nns is not None
    assert "br1" not in [i["name"] for i in nns["status"]["currentState"]["interfaces"]]


def test_nncp_degraded_when_a_node_lacks_the_nic(api: ApiDouble, custom: client.CustomObjectsApi) -> None:
    custom.create_cluster_custom_object(*NNCP, bridge_policy("br1", "eth1", {"role": "worker"}))
    api.tick(3)
    status, reason, message = conditions(custom.get_cluster_custom_object(*NNCP, "br1"))["Degraded"]
    assert (status, reason) == ("True", "FailedToConfigure")
    assert "worker-1" in message and "eth1" in message and "worker-0" not in message
    failing = conditions(custom.get_cluster_custom_object(*NNCE, "worker-1.br1"))["Failing"]
    assert failing[0] == "True" and "eth1" in failing[2]
    assert conditions(custom.get_cluster_custom_object(*NNCE, "worker-0.br1"))["Available"][0] == "True"


def test_nncp_without_matching_node_is_ignored(api: ApiDouble, custom: client.CustomObjectsApi) -> None:
    custom.create_cluster_custom_object(*NNCP, bridge_policy("br1", "eth1", {"role": "nope"}))
    api.tick()
    conds = conditions(custom.get_cluster_custom_object(*NNCP, "br1"))
    assert conds["Ignored"][:2] == ("True", "NoMatchingNode")
    assert conds["Available"][0] == "False" and conds["Progressing"][0] == "False"
    assert custom.list_cluster_custom_object(*NNCE)["items"] == []


def vm_body(extra_ifaces: list[dict[str, Any]] | None = None, extra_nets: list[dict[str, Any]] | None = None,
            run: str = "Always") -> dict[str, Any]:
    network_data = ("version: 2\nethernets:\n  eth1:\n    match: {macaddress: '02:aa:00:00:00:01'}\n"
                    "    addresses: [192.168.10.5/24]\n")
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1"},
            "spec": {"runStrategy": run, "template": {"spec": {
                "domain": {"devices": {"interfaces": [
                    {"name": "default", "masquerade": {}},
                    {"name": "blue", "bridge": {}, "macAddress": "02:aa:00:00:00:01"},
                    *(extra_ifaces or [])]}, "memory": {"guest": "1Gi"}},
                "networks": [{"name": "default", "pod": {}}, {"name": "blue", "multus": {"networkName": "blue"}},
                             *(extra_nets or [])],
                "volumes": [{"name": "ci", "cloudInitNoCloud": {"networkData": network_data}}]}}}}


def test_vm_gets_vmi_with_interfaces_and_pool_mac(api: ApiDouble, custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(*VM, vm_body())
    ifaces = created["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
    pool_mac = ifaces[0]["macAddress"]  # written back by the KubeMacPool-like admission hook
    assert pool_mac.startswith("02:00:00:") and ifaces[1]["macAddress"] == "02:aa:00:00:00:01"
    api.tick()
    vmi = custom.get_namespaced_custom_object(*VMI, "vm1")
    got = {i["name"]: (i["mac"], i.get("ipAddress", "")) for i in vmi["status"]["interfaces"]}
    assert got["blue"] == ("02:aa:00:00:00:01", "192.168.10.5")
    assert got["default"][0] == pool_mac and got["default"][1].startswith("10.128.")
    vm = custom.get_namespaced_custom_object(*VM, "vm1")
    assert (vm["status"]["printableStatus"], vm["status"]["ready"]) == ("Running", True)
    assert conditions(vm)["Ready"][0] == "True"
    # deleting the VM releases its MACs (KubeMacPool's pool moves on: a re-created VM gets the next one)
    custom.delete_namespaced_custom_object(*VM, "vm1")
    again = custom.create_namespaced_custom_object(*VM, vm_body())
    assert again["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] != pool_mac


def test_stopped_vm_has_no_vmi(api: ApiDouble, custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(*VM, vm_body(run="Halted"))
    api.tick()
    assert custom.get_namespaced_custom_object(*VM, "vm1")["status"]["printableStatus"] == "Stopped"
    assert custom.list_namespaced_custom_object(*VMI)["items"] == []


def test_hotplug_is_live_but_other_changes_require_restart(api: ApiDouble,
                                                           custom: client.CustomObjectsApi) -> None:
    custom.create_namespaced_custom_object(*VM, vm_body())
    api.tick()
    hot = vm_body([{"name": "red", "bridge": {}}], [{"name": "red", "multus": {"networkName": "red"}}])
    custom.patch_namespaced_custom_object(*VM, "vm1", {"spec": hot["spec"]})
    api.tick()
    vm = custom.get_namespaced_custom_object(*VM, "vm1")
    assert "RestartRequired" not in conditions(vm)
    vmi = custom.get_namespaced_custom_object(*VMI, "vm1")
    # no LiveUpdate: red is in the VMI spec, but the guest gets it only in a new launcher pod (a migration)
    assert [i["name"] for i in vmi["spec"]["domain"]["devices"]["interfaces"]] == ["default", "blue", "red"]
    assert [i["name"] for i in vmi["status"]["interfaces"]] == ["default", "blue"]
    migration = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                 "metadata": {"name": "m1", "namespace": "default"}, "spec": {"vmiName": "vm1"}}
    custom.create_namespaced_custom_object("kubevirt.io", "v1", "default", "virtualmachineinstancemigrations",
                                           migration)
    api.tick()
    vmi = custom.get_namespaced_custom_object(*VMI, "vm1")
    assert [i["name"] for i in vmi["status"]["interfaces"]] == ["default", "blue", "red"]
    assert vmi["status"]["migrationState"]["completed"] is True

    cold = custom.get_namespaced_custom_object(*VM, "vm1")
    cold["spec"]["template"]["spec"]["domain"]["memory"] = {"guest": "2Gi"}
    custom.replace_namespaced_custom_object(*VM, "vm1", cold)
    api.tick()
    assert conditions(custom.get_namespaced_custom_object(*VM, "vm1"))["RestartRequired"][0] == "True"


def test_background_ticks_reach_available_without_manual_ticks() -> None:
    with ApiDouble(controllers=("nmstate",), nodes=NODES, tick_interval=0.01) as api:
        custom = client.CustomObjectsApi(api.api_client())
        custom.create_cluster_custom_object(*NNCP, bridge_policy("br1", "eth1", {"nic": "eth1"}))
        for _ in range(500):  # bounded poll: at most ~5 s
            if conditions(custom.get_cluster_custom_object(*NNCP, "br1")).get("Available", ("",))[0] == "True":
                break
            threading.Event().wait(0.01)
        assert conditions(custom.get_cluster_custom_object(*NNCP, "br1"))["Available"][0] == "True"


def test_simulated_sriov_operator_syncs_the_selected_nodes_then_fails_a_missing_pf() -> None:
    nodes = [{"name": "w0", "labels": {"sriov": "yes"}, "interfaces": [{"name": "ens5f0"}]},
             {"name": "w1", "labels": {}, "interfaces": []}]
    with ApiDouble(controllers=("sriov",), nodes=nodes) as api:
        policy = {"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
                  "metadata": {"name": "p", "namespace": "openshift-sriov-network-operator"},
                  "spec": {"resourceName": "r", "numVfs": 4, "nodeSelector": {"sriov": "yes"},
                           "nicSelector": {"pfNames": ["ens5f0"]}, "deviceType": "vfio-pci"}}
        api.store.put(policy)

        def sync(node: str) -> str | None:
            state = api.store.find("sriovnetwork.openshift.io/v1", "SriovNetworkNodeState", node,
                                   "openshift-sriov-network-operator")
            return None if state is None else (state.get("status") or {}).get("syncStatus")

        api.tick()
        assert (sync("w0"), sync("w1")) == ("InProgress", None)  # only the node the policy selects
        for _ in range(3):
            api.tick()
        assert sync("w0") == "Succeeded"
        api.store.put({**policy, "spec": {**policy["spec"], "nicSelector": {"pfNames": ["ens9f9"]}}})
        api.tick()
        assert sync("w0") == "InProgress"
        for _ in range(3):
            api.tick()
        assert sync("w0") == "Failed"


def test_a_settled_policy_costs_its_tick_no_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nmstate tick scans names and generations (``heads``) and reads a policy whole only to act on it:
    copying every policy and enactment every 20 ms was half a CPU of the double at 10,000 VMs."""
    with ApiDouble(controllers=("nmstate",), nodes=NODES, tick_interval=None, nmstate_delay_ticks=2) as api:
        custom = client.CustomObjectsApi(api.api_client())
        custom.create_cluster_custom_object(*NNCP, bridge_policy("br1-policy", "eth1", {"nic": "eth1"}))
        api.tick(4)
        policy = custom.get_cluster_custom_object(*NNCP, "br1-policy")
        assert conditions(policy)["Available"][0] == "True"
        heads = api.store.heads("nmstate.io/v1", "NodeNetworkConfigurationPolicy")
        assert heads == [("br1-policy", policy["metadata"]["generation"], policy["metadata"].get("labels") or {})]
        reads: list[str] = []
        for method in ("objects", "find"):
            real = getattr(api.store, method)
            monkeypatch.setattr(api.store, method, lambda *a, _m=method, _r=real, **k: reads.append(_m) or _r(*a, **k))
        api.tick(3)
        assert reads == []  # settled: nothing copied
        policy["spec"]["desiredState"]["interfaces"][0]["mtu"] = 9000
        custom.replace_cluster_custom_object(*NNCP, "br1-policy", policy)
        api.tick()
        assert reads and "objects" not in reads  # a new generation: that policy (and its enactments) read
