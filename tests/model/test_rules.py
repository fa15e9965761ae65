"""One failing input per validation rule: exit 1, the exact ``file:line: field: message``, nothing rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from repos import BRIDGE, VM, write_repo

from reconciler.cli import main

SRIOV = """\
apiVersion: virtnet.io/v1alpha1
kind: SriovNetwork
metadata:
  name: fast
spec:
  resourceName: fast
  pfNames: [ens5f0]
  numVfs: 4
  deviceType: {device}
  namespaces: [apps]
"""


PLAIN_VM = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: legacy
  namespace: apps
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices:
          interfaces:
            - name: default
              masquerade: {}
            - name: vlan
              bridge: {}
              macAddress: "02:00:00:00:00:10"
      networks:
        - name: default
          pod: {}
        - name: vlan
          multus:
            networkName: vlan100
"""

PLAIN_SRIOV_NETWORK = """\
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata:
  name: fast
  namespace: openshift-sriov-network-operator
spec:
  resourceName: fast
  networkNamespace: kube-system
"""

PLAIN_SRIOV_POLICY = """\
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata:
  name: fast
  namespace: openshift-sriov-network-operator
spec:
  resourceName: fast
  numVfs: 4
  nodeSelector: {}
  nicSelector:
    pfNames:
      - eth1
"""

PLAIN_NNCP = """\
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: extra
spec:
  desiredState:
    interfaces:
      - name: {name}
        type: linux-bridge
        bridge:
          port:
            - name: eth1
"""

OVN = """\
apiVersion: virtnet.io/v1alpha1
kind: OvnNetwork
metadata:
  name: tenant
spec:
  topology: layer2
  subnets: [10.10.0.0/24]
  excludeSubnets: [10.10.0.0/28]
  namespaces: [apps]
"""
UPLINK = "  uplink:\n    nic: eth1\n"
ON_VLAN100 = "network: vlan100"
OVN_IFACE = '    - network: tenant\n      mac: "02:00:00:00:00:20"\n      ipv4: {ip}\n'

BONDS = """\
apiVersion: virtnet.io/v1alpha1
kind: NodeNetwork
metadata:
  name: bonds
spec:
  bonds:
    - name: {bond}
      nics: [eth2, eth3]
"""

STORAGE = """\
apiVersion: virtnet.io/v1alpha1
kind: BridgeNetwork
metadata:
  name: storage-network-a
spec:
  bridge: br1
  namespaces: [apps]
---
apiVersion: virtnet.io/v1alpha1
kind: BridgeNetwork
metadata:
  name: storage-network-b
spec:
  bridge: br1
  namespaces: [apps]
"""


def vm(name: str = "web-1", extra: str = "", iface: str = "", ns: str = "apps") -> str:
    """A VM document; ``iface`` lines are appended to the first interface, ``extra`` to the spec."""
    text = VM.replace("name: web-1", f"name: {name}").replace("namespace: apps", f"namespace: {ns}")
    return text + iface + extra


CASES: list[tuple[str, dict[str, str | bytes | None], str]] = [
    (
        "unknown field",
        {"vms/web.yaml": VM.replace("      mac:", "      macc:")},
        "vms/web.yaml:11: spec.interfaces[0].macc: unknown field",
    ),
    (
        "DNS-1123 name",
        {"vms/web.yaml": vm(name="Web_1")},
        "vms/web.yaml:4: metadata.name: 'Web_1' is not a DNS-1123 label",
    ),
    (
        "interface name longer than 15",
        {"networks/bridge.yaml": BRIDGE.replace("bridge: br1", "bridge: br-much-too-long1")},
        "networks/bridge.yaml:6: spec.bridge: interface name 'br-much-too-long1' must be 1 to 15 characters",
    ),
    (
        "VLAN out of range",
        {"networks/bridge.yaml": BRIDGE.replace("vlan: 100", "vlan: 5000")},
        "networks/bridge.yaml:9: spec.vlan: Input should be less than or equal to 4094",
    ),
    (
        "MTU out of range",
        {"networks/bridge.yaml": BRIDGE + "  mtu: 100\n"},
        "networks/bridge.yaml:12: spec.mtu: Input should be greater than or equal to 576",
    ),
    (
        "dangling network reference",
        {"vms/web.yaml": VM.replace("network: vlan100", "network: vlan999")},
        "vms/web.yaml:10: spec.interfaces[0].network: network 'vlan999' is not defined (known: vlan100)",
    ),
    (
        "network not offered in the VM's namespace",
        {"vms/web.yaml": vm(ns="db")},
        "vms/web.yaml:10: spec.interfaces[0].network: network 'vlan100' is not offered in namespace 'db'",
    ),
    (
        "localnet without a bridge mapping",
        {
            "networks/ovn.yaml": "apiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: physnet\n"
            "spec:\n  topology: localnet\n  physicalNetworkName: dc\n  namespaces: [apps]\n"
        },
        "networks/ovn.yaml:7: spec.physicalNetworkName: localnet 'dc' has no ovnBridgeMappings entry",
    ),
    (
        "duplicate MAC",
        {"vms/web2.yaml": vm(name="web-2").replace("192.168.100.10", "192.168.100.11")},
        "vms/web2.yaml:11: spec.interfaces[0].mac: MAC 02:00:00:00:00:10 is already used at vms/web.yaml:11",
    ),
    (
        "MAC outside the pool",
        {"vms/web.yaml": VM.replace("02:00:00:00:00:10", "02:00:00:01:00:10")},
        "vms/web.yaml:11: spec.interfaces[0].mac: MAC 02:00:00:01:00:10 is outside the MAC pool",
    ),
    (
        "duplicate static IP",
        {"vms/web2.yaml": vm(name="web-2").replace("00:00:10", "00:00:11")},
        "vms/web2.yaml:12: spec.interfaces[0].ipv4: IP 192.168.100.10 is already used on network vlan100",
    ),
    (
        "static IP outside the subnet",
        {"vms/web.yaml": VM.replace("192.168.100.10/24", "192.168.7.10/24")},
        "vms/web.yaml:12: spec.interfaces[0].ipv4: IP 192.168.7.10 is outside network vlan100's subnet",
    ),
    (
        "gateway outside the subnet",
        {"vms/web.yaml": vm(iface="      gateway4: 10.0.0.1\n")},
        "vms/web.yaml:13: spec.interfaces[0].gateway4: gateway 10.0.0.1 is not in the interface's subnet",
    ),
    (
        "static IP without a MAC",
        {"vms/web.yaml": VM.replace('      mac: "02:00:00:00:00:10"\n', "")},
        "vms/web.yaml:10: spec.interfaces[0]: a static address needs an explicit mac",
    ),
    (
        "one NIC in two bridges",
        {"networks/b2.yaml": BRIDGE.replace("name: vlan100", "name: other").replace("bridge: br1", "bridge: br2")},
        "networks/bridge.yaml:8: spec.uplink.nic: NIC eth1 would be port of bridge br1 "
        "but is already port of bridge br2 (networks/b2.yaml:8",
    ),
    (
        "bridge nobody creates",
        {
            "networks/b2.yaml": "apiVersion: virtnet.io/v1alpha1\nkind: BridgeNetwork\nmetadata:\n  name: other\n"
            "spec:\n  bridge: br9\n  namespaces: [apps]\n"
        },
        "networks/b2.yaml:6: spec.bridge: bridge br9 is not created by any BridgeNetwork",
    ),
    (
        "hot-plug on SR-IOV",
        {
            "networks/sriov.yaml": SRIOV.format(device="vfio-pci"),
            "vms/web.yaml": vm(extra="    - network: fast\n      hotplug: true\n"),
        },
        "vms/web.yaml:14: spec.interfaces[1].hotplug: SR-IOV interface fast cannot be hot-plugged",
    ),
    (
        "VM on a netdevice SR-IOV network",
        {"networks/sriov.yaml": SRIOV.format(device="netdevice"), "vms/web.yaml": vm(extra="    - network: fast\n")},
        "vms/web.yaml:13: spec.interfaces[1].network: SR-IOV network fast has deviceType netdevice; VMs need vfio-pci",
    ),
    (
        "DPDK without an SR-IOV vfio-pci network",
        {"vms/web.yaml": vm(extra="  dpdk: true\n")},
        "vms/web.yaml:13: spec.dpdk: dpdk needs at least one interface on an SR-IOV network with vfio-pci",
    ),
    (
        "Service port clash",
        {"vms/web.yaml": vm(extra="  expose:\n    - port: 22\n    - port: 22\n      name: ssh2\n")},
        "vms/web.yaml:15: spec.expose[1].port: port 22/TCP is already exposed on Service web-1-svc",
    ),
    (
        "nodePort clash across VMs",
        {
            "vms/web.yaml": vm(extra="  expose:\n    - port: 22\n      type: NodePort\n      nodePort: 30022\n"),
            "vms/web2.yaml": vm(
                name="web-2", extra="  expose:\n    - port: 22\n      type: NodePort\n      nodePort: 30022\n"
            )
            .replace("00:00:10", "00:00:11")
            .replace("100.10/", "100.11/"),
        },
        "vms/web2.yaml:16: spec.expose[0].nodePort: nodePort 30022 is already taken at vms/web.yaml:16",
    ),
    (
        "one Service with two types",
        {
            "vms/web.yaml": vm(
                extra="  expose:\n    - {port: 22, service: web}\n    - {port: 80, service: web, type: NodePort}\n"
            )
        },
        "vms/web.yaml:15: spec.expose[1].type: Service web mixes types ClusterIP and NodePort",
    ),
    (
        "undefined MetalLB pool",
        {"vms/web.yaml": vm(extra="  expose:\n    - port: 80\n      type: LoadBalancer\n      pool: private\n")},
        "vms/web.yaml:16: spec.expose[0].pool: MetalLB pool 'private' is not defined",
    ),
    (
        "namespace outside the allowed list",
        {"vms/web.yaml": vm(ns="kube-system")},
        "vms/web.yaml:5: metadata.namespace: namespace 'kube-system' is not allowed (allowed: apps, db)",
    ),
    (
        "plain manifest of a forbidden kind",
        {
            "raw/crb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
            "  name: pwn\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        },
        "raw/crb.yaml:2: kind: kind 'ClusterRoleBinding' may not be managed from this repository",
    ),
    (
        "plain manifest in a forbidden namespace",
        {"raw/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: kube-system\n"},
        "raw/cm.yaml:5: metadata.namespace: namespace 'kube-system' is not allowed",
    ),
    (
        "two documents render the same object",
        {
            "raw/nad.yaml": "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n"
            "  name: vlan100\n  namespace: apps\nspec:\n  config: '{}'\n"
        },
        "raw/nad.yaml:4: metadata.name: NetworkAttachmentDefinition/apps/vlan100 "
        "is also produced by networks/bridge.yaml:4",
    ),
    (
        "duplicate network names across kinds",
        {
            "networks/ovn.yaml": "apiVersion: virtnet.io/v1alpha1\nkind: OvnNetwork\nmetadata:\n  name: vlan100\n"
            "spec:\n  topology: layer2\n  namespaces: [apps]\n"
        },
        "networks/ovn.yaml:4: metadata.name: OvnNetwork 'vlan100' is already defined as a BridgeNetwork",
    ),
    (
        "document for an undefined cluster",
        {"vms/web.yaml": VM.replace("  namespace: apps\n", "  namespace: apps\n  clusters: [prod]\n")},
        "vms/web.yaml:6: metadata.clusters: cluster 'prod' is not defined by any Cluster",
    ),
    (
        "VLAN MTU above its bond",
        {
            "nodes/n.yaml": "apiVersion: virtnet.io/v1alpha1\nkind: NodeNetwork\nmetadata:\n  name: n\nspec:\n"
            "  bonds:\n    - name: bond0\n      nics: [eth2, eth3]\n      mtu: 1500\n"
            "  vlans:\n    - base: bond0\n      id: 20\n      mtu: 9000\n"
        },
        "nodes/n.yaml:13: spec.vlans[0].mtu: VLAN bond0.20 MTU 9000 is above its parent bond0's MTU 1500",
    ),
    (
        "YAML alias",
        {"vms/web.yaml": VM + "  sshKeys: &k [ssh-ed25519 AAAA a@b]\n  userData: *k\n"},
        "vms/web.yaml:14: YAML aliases/anchors are not allowed",
    ),
    ("not UTF-8", {"vms/bad.yaml": b"a: 1\nb: \xff\xfe\n"}, "vms/bad.yaml:2: file is not valid UTF-8"),
    (
        "oversized file",
        {"vms/huge.yaml": "# " + "x" * (5 * 1024 * 1024) + "\n"},
        "vms/huge.yaml: file is 5242883 bytes; the limit is 4194304 bytes",
    ),
    ("YAML syntax", {"vms/web.yaml": VM + "  cpu: [1\n"}, "vms/web.yaml:14: YAML syntax error"),
    # the same rules for plain manifests (reconciler.model.facts reads them like the documents)
    (
        "plain VirtualMachine reusing a MAC",
        {"raw/vm.yaml": PLAIN_VM},
        "raw/vm.yaml:17: spec.template.spec.domain.devices.interfaces[1].macAddress: "
        "MAC 02:00:00:00:00:10 is already used at vms/web.yaml:11",
    ),
    (
        "plain VirtualMachine outside the MAC pool",
        {"raw/vm.yaml": PLAIN_VM.replace("02:00:00:00:00:10", "02:00:01:00:00:10")},
        "raw/vm.yaml:17: spec.template.spec.domain.devices.interfaces[1].macAddress: MAC 02:00:01:00:00:10 "
        "is outside the MAC pool",
    ),
    (
        "plain VirtualMachine on a NAD of another namespace",
        {"raw/vm.yaml": PLAIN_VM.replace(":10", ":99").replace("networkName: vlan100", "networkName: db/vlan100")},
        "raw/vm.yaml:23: spec.template.spec.networks[1].multus.networkName: network db/vlan100 is in another "
        "namespace than the VM (apps)",
    ),
    (
        "plain SriovNetwork feeding kube-system",
        {"raw/sn.yaml": PLAIN_SRIOV_NETWORK},
        "raw/sn.yaml:8: spec.networkNamespace: SriovNetwork would offer its network in namespace 'kube-system', "
        "not allowed",
    ),
    (
        "plain NNCP taking a bridge's NIC",
        {"raw/nncp.yaml": PLAIN_NNCP.format(name="br9")},
        "raw/nncp.yaml:12: spec.desiredState.interfaces[0].bridge.port[0].name: NIC eth1 would be port of bridge "
        "br9 but is already port of bridge br1 (networks/bridge.yaml:8",
    ),
    (
        "plain NNCP bridge named like a virtnet bridge",
        {"raw/nncp.yaml": PLAIN_NNCP.format(name="br1").replace("eth1", "eth7")},
        "raw/nncp.yaml:8: spec.desiredState.interfaces[0].name: interface br1 (linux-bridge) is already created on "
        "the same nodes as a linux-bridge at networks/bridge.yaml:6",
    ),
    (
        "plain SriovNetworkNodePolicy on a bridge's NIC",
        {"raw/policy.yaml": PLAIN_SRIOV_POLICY},
        "raw/policy.yaml:12: spec.nicSelector.pfNames[0]: NIC eth1 would be SR-IOV PF of fast but is already port "
        "of bridge br1",
    ),
    # refused today only by luck or not at all
    (
        "one IP on two network names that are one bridge and VLAN",
        {
            "networks/b2.yaml": BRIDGE.replace("name: vlan100", "name: vlan100-b").replace(
                "  uplink:\n    nic: eth1\n", ""
            ),
            "vms/web2.yaml": vm(name="web-2")
            .replace("00:00:10", "00:00:11")
            .replace("network: vlan100", "network: vlan100-b"),
        },
        "vms/web2.yaml:12: spec.interfaces[0].ipv4: IP 192.168.100.10 is already used on network vlan100-b "
        "(the same bridge br1 and VLAN 100 as vlan100) at vms/web.yaml:12",
    ),
    (
        "static IP inside excludeSubnets",
        {"networks/ovn.yaml": OVN, "vms/web.yaml": vm(extra=OVN_IFACE.format(ip="10.10.0.5/24"))},
        "vms/web.yaml:15: spec.interfaces[1].ipv4: IP 10.10.0.5 is in network tenant's excludeSubnets 10.10.0.0/28",
    ),
    (
        "bridge named like a bond",
        {"nodes/bonds.yaml": BONDS.format(bond="br1")},
        "nodes/bonds.yaml:7: spec.bonds[0].name: interface br1 (bond) is already created on the same nodes as a "
        "linux-bridge at networks/bridge.yaml:6",
    ),
    (
        "SR-IOV PF that is a bridge uplink",
        {"networks/sriov.yaml": SRIOV.format(device="vfio-pci").replace("ens5f0", "eth1#0-3")},
        "networks/sriov.yaml:7: spec.pfNames[0]: NIC eth1 would be SR-IOV PF of fast but is already port of "
        "bridge br1 (networks/bridge.yaml:8",
    ),
    (
        "bridge whose uplink is another bridge",
        {
            "networks/inner.yaml": BRIDGE.replace("name: vlan100", "name: inner")
            .replace("bridge: br1", "bridge: br2")
            .replace("nic: eth1", "nic: br1")
        },
        "networks/inner.yaml:8: spec.uplink.nic: uplink br1 of bridge br2 is itself a Linux bridge "
        "(networks/bridge.yaml:6: spec.bridge)",
    ),
    (
        "bridge whose uplink is itself",
        {"networks/bridge.yaml": BRIDGE.replace("nic: eth1", "nic: br1")},
        "networks/bridge.yaml:8: spec.uplink.nic: bridge br1 cannot be its own uplink",
    ),
    (
        "two interface names sharing their first 15 characters",
        {
            "networks/storage.yaml": STORAGE,
            "vms/web.yaml": vm(extra="    - network: storage-network-a\n    - network: storage-network-b\n"),
        },
        "vms/web.yaml:14: spec.interfaces[2].network: interface name storage-network-b shares its first 15 "
        "characters with storage-network-a (vms/web.yaml:13: spec.interfaces[1]): in the guest both would be "
        "storage-network",
    ),
    (
        "SSH key with a line break",
        {"vms/web.yaml": vm(extra='  sshKeys:\n    - "ssh-ed25519 AAAAC3Nz a@b\\nssh-rsa AAAAB3Nz evil@x"\n')},
        "vms/web.yaml:14: spec.sshKeys[0]: ssh key contains a line break or control character",
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_reports_location_and_renders_nothing(
    tmp_path: Path, files: dict[str, str | bytes | None], expected: str
) -> None:
    repo = write_repo(tmp_path / "repo", files)
    result = CliRunner().invoke(main, ["render", str(repo)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert expected in result.stderr, result.stderr


def test_base_repo_is_valid(tmp_path: Path) -> None:
    """The cases above fail because of their change, not because the base is broken."""
    result = CliRunner().invoke(main, ["validate", str(write_repo(tmp_path / "repo", {}))])
    assert result.exit_code == 0, result.output


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    bad = VM.replace("network: vlan100", "network: nope").replace("02:00:00:00:00:10", "02:00:00:09:00:10")
    repo = write_repo(tmp_path / "repo", {"vms/web.yaml": bad, "vms/other.yaml": vm(name="Bad_Name")})
    result = CliRunner().invoke(main, ["validate", str(repo)])
    assert result.exit_code == 1
    lines = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("vms/other.yaml:4: metadata.name")
    assert lines[1].startswith("vms/web.yaml:10: spec.interfaces[0].network: network 'nope'")
    assert lines[2].startswith("vms/web.yaml:11: spec.interfaces[0].mac: MAC 02:00:00:09:00:10 is outside")
    assert result.stderr.splitlines()[0] == "3 problems in the repository"


def test_a_file_that_does_not_parse_does_not_cause_false_references(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"networks/bridge.yaml": BRIDGE + "  mtu: [1500\n"})
    result = CliRunner().invoke(main, ["validate", str(repo)])
    assert result.exit_code == 1
    problems = result.stderr.splitlines()[1:]
    assert len(problems) == 1 and "networks/bridge.yaml:13: YAML syntax error" in problems[0], result.stderr


def test_plain_manifests_that_follow_the_rules_pass(tmp_path: Path) -> None:
    """No false alarms: a plain VM on its namespace's network with its own MAC, a plain NNCP on a free NIC, a
    plain SriovNetwork for an allowed namespace, a PF shared by two VF ranges, two names on one bridge
    without a shared address."""
    files: dict[str, str | bytes | None] = {
        "raw/vm.yaml": PLAIN_VM.replace("02:00:00:00:00:10", "02:00:00:00:00:99"),
        "raw/nncp.yaml": PLAIN_NNCP.format(name="br9").replace("eth1", "eth7"),
        "raw/sn.yaml": PLAIN_SRIOV_NETWORK.replace("kube-system", "apps"),
        "raw/policy.yaml": PLAIN_SRIOV_POLICY.replace("eth1", "ens5f0#4-7").replace("name: fast", "name: fast2"),
        "networks/sriov.yaml": SRIOV.format(device="vfio-pci").replace("ens5f0", "ens5f0#0-3"),
        "networks/b2.yaml": BRIDGE.replace("name: vlan100", "name: vlan100-b").replace(UPLINK, ""),
        "vms/web2.yaml": vm(name="web-2").replace("00:00:10", "00:00:11").replace("100.10/", "100.11/"),
    }
    result = CliRunner().invoke(main, ["validate", str(write_repo(tmp_path / "repo", files))])
    assert result.exit_code == 0, result.output
