"""VirtualMachines: pod network, secondary interfaces, MACs, cloud-init, SSH keys, Services, mesh, DPDK."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from repos import CLUSTER, VM

from render.helpers import pick, render_files

SRIOV = (
    "apiVersion: virtnet.io/v1alpha1\nkind: SriovNetwork\nmetadata:\n  name: fast\nspec:\n"
    "  resourceName: fast\n  pfNames: [ens5f0]\n  numVfs: 4\n  namespaces: [apps]\n"
)
OVN = (
    "apiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: l2\nspec:\n"
    "  topology: layer2\n  namespaces: [apps]\n"
)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq9m0a9pZp0nP3jY9bX8kR6w2lZ1s7y2S0d4QvKx3Lm me@example.com"


def _vmi(objs: list[dict], name: str = "web-1") -> dict:
    return pick(objs, "VirtualMachine", name, "apps")["spec"]["template"]["spec"]


def test_interfaces_networks_and_bindings(tmp_path: Path) -> None:
    vm = VM + "    - network: l2\n      hotplug: true\n    - network: fast\n      mac: '02:00:00:00:00:20'\n"
    spec = _vmi(render_files(tmp_path, {"vms/web.yaml": vm, "networks/sriov.yaml": SRIOV, "networks/ovn.yaml": OVN}))
    assert spec["domain"]["devices"]["interfaces"] == [
        {"name": "default", "masquerade": {}},
        {"name": "vlan100", "bridge": {}, "model": "virtio", "macAddress": "02:00:00:00:00:10"},
        {"name": "l2", "bridge": {}, "model": "virtio"},  # no MAC: KubeMacPool's to choose
        {"name": "fast", "sriov": {}, "macAddress": "02:00:00:00:00:20"},
    ]
    assert spec["networks"] == [
        {"name": "default", "pod": {}},
        {"name": "vlan100", "multus": {"networkName": "vlan100"}},
        {"name": "l2", "multus": {"networkName": "l2"}},
        {"name": "fast", "multus": {"networkName": "fast-apps"}},
    ]


def test_pod_network_can_be_turned_off(tmp_path: Path) -> None:
    spec = _vmi(render_files(tmp_path, {"vms/web.yaml": VM + "  podNetwork: false\n"}))
    assert [i["name"] for i in spec["domain"]["devices"]["interfaces"]] == ["vlan100"]
    assert [n["name"] for n in spec["networks"]] == ["vlan100"]


def test_static_addresses_in_cloud_init_network_data(tmp_path: Path) -> None:
    vm = VM + "      ipv6: 'fd00::10/64'\n      gateway4: 192.168.100.1\n      dns: [192.168.100.53]\n"
    spec = _vmi(render_files(tmp_path, {"vms/web.yaml": vm}))
    cloud_init = next(v for v in spec["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
    data = yaml.safe_load(cloud_init["networkData"])
    assert data == {
        "version": 2,
        "ethernets": {
            "vlan100": {
                "match": {"macaddress": "02:00:00:00:00:10"},
                "set-name": "vlan100",
                "addresses": ["192.168.100.10/24", "fd00::10/64"],
                "routes": [{"to": "0.0.0.0/0", "via": "192.168.100.1"}],
                "nameservers": {"addresses": ["192.168.100.53"]},
            },
            # the pod interface keeps DHCP: netplan guests bring up only the NICs networkData lists
            "enp1s0": {"dhcp4": True},
        },
    }


def test_ssh_keys_through_cloud_init_or_access_credentials(tmp_path: Path) -> None:
    spec = _vmi(render_files(tmp_path / "a", {"vms/web.yaml": VM + f"  sshKeys: ['{KEY}']\n  user: fedora\n"}))
    user_data = next(v for v in spec["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]["userData"]
    assert user_data.startswith("#cloud-config\n")
    assert yaml.safe_load(user_data) == {"user": "fedora", "ssh_authorized_keys": [KEY]}

    objs = render_files(
        tmp_path / "b", {"vms/web.yaml": VM + f"  sshKeys: ['{KEY}']\n  sshKeyDelivery: accessCredentials\n"}
    )
    spec = _vmi(objs)
    assert spec["accessCredentials"] == [
        {
            "sshPublicKey": {
                "source": {"secret": {"secretName": "web-1-ssh-keys"}},
                "propagationMethod": {"noCloud": {}},
            }
        }
    ]
    secret = pick(objs, "Secret", "web-1-ssh-keys", "apps")
    assert base64.b64decode(secret["data"]["key1"]).decode() == KEY
    user_data = next(v for v in spec["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]["userData"]
    assert "ssh_authorized_keys" not in user_data


def test_services_from_expose(tmp_path: Path) -> None:
    vm = VM + (
        "  expose:\n    - {name: ssh, port: 22, type: NodePort, nodePort: 30022}\n"
        "    - {name: http, port: 80, targetPort: 8080, type: LoadBalancer, pool: public}\n"
        "    - {port: 443, type: LoadBalancer, pool: public}\n    - {port: 9100}\n"
    )
    objs = render_files(tmp_path, {"vms/web.yaml": vm})
    node_port = pick(objs, "Service", "web-1-nodeport", "apps")
    assert node_port["spec"] == {
        "type": "NodePort",
        "selector": {"virtnet.io/vm": "web-1"},
        "ports": [{"name": "ssh", "port": 22, "targetPort": 22, "protocol": "TCP", "nodePort": 30022}],
    }
    lb = pick(objs, "Service", "web-1-lb", "apps")
    assert lb["metadata"]["annotations"]["metallb.io/address-pool"] == "public"
    assert [p["name"] for p in lb["spec"]["ports"]] == ["http", "tcp-443"]
    assert pick(objs, "Service", "web-1-svc", "apps")["spec"]["type"] == "ClusterIP"
    template_labels = pick(objs, "VirtualMachine", "web-1", "apps")["spec"]["template"]["metadata"]["labels"]
    assert template_labels == {"virtnet.io/vm": "web-1"}  # what every Service selects


def test_service_mesh_and_dpdk(tmp_path: Path) -> None:
    vm = (
        VM
        + "    - network: fast\n      mac: '02:00:00:00:00:20'\n  dpdk: true\n  serviceMesh: true\n  restart: allowed\n"
    )
    cluster = CLUSTER + "  namespaces: [{name: apps, serviceMesh: true}]\n  dpdk: {runtimeClass: performance-x}\n"
    objs = render_files(tmp_path, {"vms/web.yaml": vm, "networks/sriov.yaml": SRIOV, "cluster.yaml": cluster})
    machine = pick(objs, "VirtualMachine", "web-1", "apps")
    template = machine["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "cpu-load-balancing.crio.io": "disable",
        "cpu-quota.crio.io": "disable",
        "irq-load-balancing.crio.io": "disable",
        "sidecar.istio.io/inject": "true",
    }
    domain = template["spec"]["domain"]
    assert domain["cpu"] == {"cores": 1, "dedicatedCpuPlacement": True, "isolateEmulatorThread": True}
    assert domain["memory"] == {"guest": "2Gi", "hugepages": {"pageSize": "1Gi"}}
    assert domain["devices"]["networkInterfaceMultiqueue"] is True
    assert machine["metadata"]["annotations"]["virtnet.io/restart"] == "allowed"


def test_data_volume_boot(tmp_path: Path) -> None:
    vm = VM.replace(
        "    containerDisk: quay.io/containerdisks/fedora:40\n",
        "    dataVolume:\n      size: 30Gi\n      storageClass: fast\n      http:\n        url: https://example.com/f.qcow2\n",
    )
    machine = pick(render_files(tmp_path, {"vms/web.yaml": vm}), "VirtualMachine", "web-1", "apps")
    assert machine["spec"]["dataVolumeTemplates"] == [
        {
            "metadata": {"name": "web-1-rootdisk"},
            "spec": {
                "storage": {"resources": {"requests": {"storage": "30Gi"}}, "storageClassName": "fast"},
                "source": {"http": {"url": "https://example.com/f.qcow2"}},
            },
        }
    ]
    assert machine["spec"]["template"]["spec"]["volumes"][0] == {
        "name": "rootdisk",
        "dataVolume": {"name": "web-1-rootdisk"},
    }


def test_hotplug_interfaces_are_recorded_on_the_vm(tmp_path: Path) -> None:
    vm = VM + "    - network: l2\n      hotplug: true\n"
    machine = pick(
        render_files(tmp_path, {"vms/web.yaml": vm, "networks/ovn.yaml": OVN}), "VirtualMachine", "web-1", "apps"
    )
    assert machine["metadata"]["annotations"]["virtnet.io/hotplug"] == "l2"


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        (
            "      registry:\n        url: docker://quay.io/containerdisks/fedora:40\n",
            {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
        ),
        (
            "      pvc:\n        name: golden\n        namespace: images\n",
            {"pvc": {"name": "golden", "namespace": "images"}},
        ),
    ],
)
def test_data_volume_boot_from_a_registry_or_a_pvc(tmp_path: Path, source: str, rendered: dict) -> None:
    boot = "    dataVolume:\n      size: 30Gi\n" + source
    vm = VM.replace("    containerDisk: quay.io/containerdisks/fedora:40\n", boot)
    machine = pick(render_files(tmp_path, {"vms/web.yaml": vm}), "VirtualMachine", "web-1", "apps")
    (template,) = machine["spec"]["dataVolumeTemplates"]
    assert template["spec"] == {"storage": {"resources": {"requests": {"storage": "30Gi"}}}, "source": rendered}
