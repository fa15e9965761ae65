"""VirtualMachines described fully: DPDK CPU topology and model, NUMA passthrough, hugepages; SSH keys the guest
agent keeps, configDrive; networkData that keeps DHCP on the pod interface and DHCP per interface; the guest
agent installed when something needs it. Each rendered VM is also held to KubeVirt's schema."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import schemas
import yaml
from repos import CLUSTER, VM

from render.helpers import pick, render_files

SRIOV = (
    "apiVersion: virtnet.io/v1alpha1\nkind: SriovNetwork\nmetadata:\n  name: fast\nspec:\n"
    "  resourceName: fast\n  vendor: '8086'\n  deviceID: '1592'\n  numVfs: 4\n  namespaces: [apps]\n"
)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq9m0a9pZp0nP3jY9bX8kR6w2lZ1s7y2S0d4QvKx3Lm me@example.com"
DPDK_CLUSTER = CLUSTER + "  dpdk: {runtimeClass: performance-dpdk}\n"


def _vm(objs: list[dict[str, Any]], name: str = "web-1") -> dict[str, Any]:
    vm = pick(objs, "VirtualMachine", name, "apps")
    if schemas.available():
        assert schemas.errors(vm) == []
    return vm


def _cloud_init(vm: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    volume = next(v for v in vm["spec"]["template"]["spec"]["volumes"] if v["name"] == "cloudinitdisk")
    [(source, data)] = [(k, v) for k, v in volume.items() if k != "name"]
    return source, data


def test_dpdk_vm_with_cpu_topology_model_and_numa(tmp_path: Path) -> None:
    vm = VM + (
        "    - network: fast\n      mac: '02:00:00:00:00:20'\n  dpdk: true\n  cpu: 4\n  sockets: 1\n  threads: 2\n"
        "  cpuModel: host-passthrough\n  numa: guestMappingPassthrough\n  memory: 8Gi\n"
    )
    objs = render_files(tmp_path, {"vms/web.yaml": vm, "networks/sriov.yaml": SRIOV, "cluster.yaml": DPDK_CLUSTER})
    domain = _vm(objs)["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"] == {
        "cores": 4,
        "sockets": 1,
        "threads": 2,
        "model": "host-passthrough",
        "dedicatedCpuPlacement": True,
        "isolateEmulatorThread": True,
        "numa": {"guestMappingPassthrough": {}},
    }
    assert domain["memory"] == {"guest": "8Gi", "hugepages": {"pageSize": "1Gi"}}
    hco = pick(objs, "HyperConverged", "kubevirt-hyperconverged")
    assert hco["spec"]["defaultRuntimeClass"] == "performance-dpdk"  # the runtime class the VM's pod runs with


def test_pinned_cpus_and_hugepages_without_dpdk(tmp_path: Path) -> None:
    vm = VM + "  dedicatedCpus: true\n  hugepages: 2Mi\n  numa: guestMappingPassthrough\n"
    domain = _vm(render_files(tmp_path, {"vms/web.yaml": vm}))["spec"]["template"]["spec"]["domain"]
    assert domain["cpu"] == {"cores": 1, "dedicatedCpuPlacement": True, "numa": {"guestMappingPassthrough": {}}}
    assert domain["memory"]["hugepages"] == {"pageSize": "2Mi"}
    assert "networkInterfaceMultiqueue" not in domain["devices"]


def test_guest_agent_keeps_the_ssh_keys(tmp_path: Path) -> None:
    vm = VM + f"  sshKeys: ['{KEY}']\n  sshKeyDelivery: guestAgent\n  user: fedora\n"
    objs = render_files(tmp_path, {"vms/web.yaml": vm})
    machine = _vm(objs)
    assert machine["spec"]["template"]["spec"]["accessCredentials"] == [
        {
            "sshPublicKey": {
                "source": {"secret": {"secretName": "web-1-ssh-keys"}},
                "propagationMethod": {"qemuGuestAgent": {"users": ["fedora"]}},
            }
        }
    ]
    secret = pick(objs, "Secret", "web-1-ssh-keys", "apps")
    assert base64.b64decode(secret["data"]["key1"]).decode() == KEY
    _, data = _cloud_init(machine)
    user_data = yaml.safe_load(data["userData"])
    assert "ssh_authorized_keys" not in user_data  # the agent writes them, not cloud-init
    assert user_data["packages"] == ["qemu-guest-agent"]  # the agent the keys depend on
    assert ["systemctl", "enable", "--now", "qemu-guest-agent"] in user_data["runcmd"]


def test_config_drive_carries_cloud_init_and_access_credentials(tmp_path: Path) -> None:
    vm = VM + f"  cloudInit: configDrive\n  sshKeys: ['{KEY}']\n  sshKeyDelivery: accessCredentials\n"
    machine = _vm(render_files(tmp_path, {"vms/web.yaml": vm}))
    source, data = _cloud_init(machine)
    assert source == "cloudInitConfigDrive" and "networkData" in data and "userData" in data
    [credential] = machine["spec"]["template"]["spec"]["accessCredentials"]
    assert credential["sshPublicKey"]["propagationMethod"] == {"configDrive": {}}


def test_network_data_keeps_the_pod_interface_and_takes_dhcp(tmp_path: Path) -> None:
    vm = VM + "    - network: vlan100\n      name: dyn\n      mac: '02:00:00:00:00:11'\n      dhcp: true\n"
    _, data = _cloud_init(_vm(render_files(tmp_path / "a", {"vms/web.yaml": vm})))
    ethernets = yaml.safe_load(data["networkData"])["ethernets"]
    assert ethernets["dyn"] == {"match": {"macaddress": "02:00:00:00:00:11"}, "set-name": "dyn", "dhcp4": True}
    assert ethernets["enp1s0"] == {"dhcp4": True}  # the pod interface, by the name KubeVirt's first NIC gets
    # with its MAC given, the pod interface is matched by it; a guest named otherwise is told by podGuestName
    by_mac = _vm(render_files(tmp_path / "b", {"vms/web.yaml": vm + "  podMac: '02:00:00:00:00:12'\n"}))
    _, data = _cloud_init(by_mac)
    assert yaml.safe_load(data["networkData"])["ethernets"]["default"] == {
        "match": {"macaddress": "02:00:00:00:00:12"},
        "dhcp4": True,
    }
    renamed = _vm(render_files(tmp_path / "c", {"vms/web.yaml": vm + "  podGuestName: eth0\n"}))
    assert "eth0" in yaml.safe_load(_cloud_init(renamed)[1]["networkData"])["ethernets"]
    # without the pod network there is nothing to keep
    off = _vm(render_files(tmp_path / "d", {"vms/web.yaml": vm + "  podNetwork: false\n"}))
    assert set(yaml.safe_load(_cloud_init(off)[1]["networkData"])["ethernets"]) == {"vlan100", "dyn"}


def test_guest_agent_is_installed_when_fqdns_depend_on_it(tmp_path: Path) -> None:
    dns = CLUSTER + "  baseDomain: example.com\n  secondaryDNS: {nameServerIP: 192.0.2.53, publish: false}\n"
    user_data = yaml.safe_load(_cloud_init(_vm(render_files(tmp_path / "a", {"cluster.yaml": dns})))[1]["userData"])
    assert user_data["packages"] == ["qemu-guest-agent"]
    assert user_data["runcmd"] == [["systemctl", "enable", "--now", "qemu-guest-agent"]]
    # no secondary DNS: nothing depends on the agent
    plain = yaml.safe_load(_cloud_init(_vm(render_files(tmp_path / "b", {})))[1]["userData"])
    assert "packages" not in plain
    # the image has it: the repository says so
    files = {"cluster.yaml": dns, "vms/web.yaml": VM + "  installGuestAgent: false\n"}
    image = yaml.safe_load(_cloud_init(_vm(render_files(tmp_path / "c", files)))[1]["userData"])
    assert "packages" not in image
