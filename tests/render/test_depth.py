"""Cluster and network settings of the networking chapter's procedures: namespaces (KubeMacPool opt-out, mesh
membership, labels), the published secondary DNS, DPDK's runtime class, the live-migration NAD, SR-IOV
selectors and network options, OVN persistent IPs, bond options and uplink VLAN filtering. Each rendered
object is also held to the upstream schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemas
from repos import BRIDGE, CLUSTER

from reconciler.render.checks import check_object
from render.helpers import cni, pick, render_files

STRICT = pytest.mark.skipif(not schemas.available(), reason=schemas.skip_reason())


def _valid(*objs: dict[str, Any]) -> None:
    for obj in objs:
        assert list(check_object(obj)) == [], obj["metadata"]["name"]
        if schemas.available():
            assert schemas.errors(obj) == [], obj["metadata"]["name"]


def test_namespace_settings_are_labels(tmp_path: Path) -> None:
    cluster = CLUSTER + (
        "  namespaces:\n"
        "    - {name: apps, serviceMesh: true, labels: {team: web}}\n"
        "    - {name: db, kubeMacPool: false, serviceMesh: true, meshRevision: canary}\n"
    )
    objs = render_files(tmp_path, {"cluster.yaml": cluster})
    apps, db = pick(objs, "Namespace", "apps"), pick(objs, "Namespace", "db")
    owned = {"app.kubernetes.io/managed-by", "virtnet.io/cluster"}
    assert {k: v for k, v in apps["metadata"]["labels"].items() if k not in owned} == {
        "istio-injection": "enabled",
        "team": "web",
    }
    assert {k: v for k, v in db["metadata"]["labels"].items() if k not in owned} == {
        "istio.io/rev": "canary",
        "mutatevirtualmachines.kubemacpool.io": "ignore",
    }
    _valid(apps, db)


def test_a_namespace_out_of_kubemacpool_may_use_macs_outside_the_pool(tmp_path: Path) -> None:
    vm = (
        "apiVersion: virtnet.io/v1alpha1\nkind: VM\nmetadata:\n  name: v\n  namespace: db\nspec:\n"
        "  boot: {containerDisk: img}\n  podMac: '0a:00:00:00:00:01'\n"
    )
    with pytest.raises(Exception, match="outside the MAC pool"):
        render_files(tmp_path / "in", {"vms/v.yaml": vm})
    opted_out = CLUSTER + "  namespaces: [{name: db, kubeMacPool: false}]\n"
    objs = render_files(tmp_path / "out", {"vms/v.yaml": vm, "cluster.yaml": opted_out})
    iface = pick(objs, "VirtualMachine", "v", "db")["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
    assert iface == [{"name": "default", "masquerade": {}, "macAddress": "0a:00:00:00:00:01"}]


def test_secondary_dns_is_published_and_announced_at_one_address(tmp_path: Path) -> None:
    cluster = CLUSTER + (
        "  baseDomain: prod.example.com\n  secondaryDNS:\n    nameServerIP: 192.0.2.105\n    pool: public\n"
    )
    objs = render_files(tmp_path, {"cluster.yaml": cluster})
    svc = pick(objs, "Service", "dns-lb", "openshift-cnv")
    assert svc["spec"] == {
        "type": "LoadBalancer",
        "selector": {"k8s-app": "secondary-dns"},
        "ports": [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}],
    }
    annotations = svc["metadata"]["annotations"]
    assert annotations["metallb.io/loadBalancerIPs"] == "192.0.2.105"
    assert annotations["metallb.io/address-pool"] == "public"
    hco = pick(objs, "HyperConverged", "kubevirt-hyperconverged", "openshift-cnv")
    assert hco["spec"]["kubeSecondaryDNSNameServerIP"] == "192.0.2.105"
    _valid(svc)
    quiet = CLUSTER + "  baseDomain: x.example\n  secondaryDNS: {nameServerIP: 192.0.2.105, publish: false}\n"
    assert not [o for o in render_files(tmp_path / "b", {"cluster.yaml": quiet}) if o["kind"] == "Service"]


def test_dpdk_runtime_class_and_cpu_alignment_go_to_hyperconverged(tmp_path: Path) -> None:
    cluster = CLUSTER + "  dpdk:\n    runtimeClass: performance-dpdk\n    alignCPUs: true\n"
    hco = pick(render_files(tmp_path, {"cluster.yaml": cluster}), "HyperConverged", "kubevirt-hyperconverged")
    assert hco["spec"]["defaultRuntimeClass"] == "performance-dpdk"
    assert hco["spec"]["featureGates"] == {"alignCPUs": True}
    _valid(hco)


def test_live_migration_nad_is_one_the_bridge_plugin_accepts(tmp_path: Path) -> None:
    cluster = CLUSTER + "  liveMigration:\n    network: vlan100\n    ipRange: 10.250.0.0/24\n"
    nad = pick(
        render_files(tmp_path, {"cluster.yaml": cluster}), "NetworkAttachmentDefinition", "vlan100", "openshift-cnv"
    )
    config = cni(nad)
    assert config["ipam"] == {"type": "whereabouts", "range": "10.250.0.0/24"}
    assert "disableContainerInterface" not in config
    _valid(nad)
    # the check that refuses the pairing, on the very object with the flag put back
    broken = json.loads(json.dumps(nad))
    broken["spec"]["config"] = json.dumps({**config, "disableContainerInterface": True})
    [finding] = check_object(broken)
    assert "cannot use IPAM when DisableContainerInterface" in finding.message
    # and a VM network keeps the flag, without IPAM: accepted
    vm_nad = pick(render_files(tmp_path / "vm", {}), "NetworkAttachmentDefinition", "vlan100", "apps")
    assert cni(vm_nad)["disableContainerInterface"] is True and list(check_object(vm_nad)) == []


SRIOV = """apiVersion: virtnet.io/v1alpha1
kind: SriovNetwork
metadata:
  name: fast
spec:
  resourceName: fast
  vendor: "8086"
  deviceID: "1592"
  rootDevices: ["0000:3b:00.0"]
  numVfs: 8
  deviceType: netdevice
  isRdma: true
  linkState: enable
  capabilities: [mac, ips]
  ipam: {type: whereabouts, range: 10.60.0.0/24, exclude: [10.60.0.0/28], gateway: 10.60.0.1}
  namespaces: [apps]
"""


def test_sriov_selects_by_vendor_device_and_address_and_sets_network_options(tmp_path: Path) -> None:
    objs = render_files(tmp_path, {"networks/sriov.yaml": SRIOV})
    policy = pick(objs, "SriovNetworkNodePolicy", "fast")
    assert policy["spec"]["nicSelector"] == {"rootDevices": ["0000:3b:00.0"], "vendor": "8086", "deviceID": "1592"}
    assert policy["spec"]["isRdma"] is True
    net = pick(objs, "SriovNetwork", "fast-apps")["spec"]
    assert net["linkState"] == "enable"
    assert json.loads(net["capabilities"]) == {"ips": True, "mac": True}
    assert json.loads(net["ipam"]) == {
        "type": "whereabouts",
        "range": "10.60.0.0/24",
        "exclude": ["10.60.0.0/28"],
        "gateway": "10.60.0.1",
    }
    _valid(policy, pick(objs, "SriovNetwork", "fast-apps"))


def test_ovn_persistent_ips_turn_on_the_ipam_controller(tmp_path: Path) -> None:
    ovn = (
        "apiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: l2\nspec:\n  topology: layer2\n"
        "  subnets: [10.100.0.0/24]\n  allowPersistentIPs: true\n  namespaces: [apps]\n"
    )
    objs = render_files(tmp_path, {"networks/ovn.yaml": ovn})
    assert cni(pick(objs, "NetworkAttachmentDefinition", "l2", "apps"))["allowPersistentIPs"] is True
    hco = pick(objs, "HyperConverged", "kubevirt-hyperconverged")
    assert hco["spec"]["featureGates"] == {"deployKubevirtIpamController": True}
    without = render_files(tmp_path / "b", {"networks/ovn.yaml": ovn.replace("  allowPersistentIPs: true\n", "")})
    assert "allowPersistentIPs" not in cni(pick(without, "NetworkAttachmentDefinition", "l2", "apps"))


def test_bond_options_and_uplink_vlan_filtering(tmp_path: Path) -> None:
    bridge = BRIDGE.replace(
        "  uplink:\n    nic: eth1\n",
        "  uplink:\n    bond:\n      name: bond0\n      mode: 802.3ad\n      nics: [eth1, eth2]\n      miimon: 100\n"
        "      options: {lacp_rate: fast, xmit_hash_policy: layer3+4, min_links: 1}\n"
        "    vlan:\n      mode: trunk\n      trunkTags: [100, '200-299']\n      tag: 1\n      enableNative: true\n",
    )
    policy = pick(render_files(tmp_path, {"networks/bridge.yaml": bridge}), "NodeNetworkConfigurationPolicy", "vlan100")
    bond, br = policy["spec"]["desiredState"]["interfaces"]
    assert bond["link-aggregation"] == {
        "mode": "802.3ad",
        "port": ["eth1", "eth2"],
        "options": {"lacp_rate": "fast", "miimon": "100", "min_links": "1", "xmit_hash_policy": "layer3+4"},
    }
    assert br["bridge"]["port"] == [
        {
            "name": "bond0",
            "vlan": {
                "mode": "trunk",
                "trunk-tags": [{"id": 100}, {"id-range": {"min": 200, "max": 299}}],
                "enable-native": True,
                "tag": 1,
            },
        }
    ]
    _valid(policy)
    access = BRIDGE.replace("    nic: eth1\n", "    nic: eth1\n    vlan: {mode: access, tag: 100}\n")
    policy = pick(
        render_files(tmp_path / "b", {"networks/bridge.yaml": access}), "NodeNetworkConfigurationPolicy", "vlan100"
    )
    assert policy["spec"]["desiredState"]["interfaces"][0]["bridge"]["port"] == [
        {"name": "eth1", "vlan": {"mode": "access", "tag": 100}}
    ]


@STRICT
def test_the_strict_schema_check_sees_a_wrong_new_field(tmp_path: Path) -> None:
    """The checks above can fail: a misspelt field in a shape virtnet now writes is a schema error."""
    objs = render_files(tmp_path, {"networks/sriov.yaml": SRIOV})
    policy = json.loads(json.dumps(pick(objs, "SriovNetworkNodePolicy", "fast")))
    policy["spec"]["nicSelector"]["deviceId"] = "1592"
    assert schemas.errors(policy)
