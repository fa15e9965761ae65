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
