"""Which layer-2 segment an SR-IOV network is on (model.segments): the PF(s) and VLAN when the selector names
them, else the resource; as one address per segment (rule_static_ips) and the connectivity diff see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ModelError
from reconciler.model import Repo, load_repo
from reconciler.safety.connectivity import compare
from tests.repos import write_repo

CLUSTER = (
    "apiVersion: virtnet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: test\nspec:\n  allowedNamespaces: [apps]\n"
)


def sriov(name: str, selector: str, vlan: int = 100) -> str:
    return (
        f"apiVersion: virtnet.io/v1alpha1\nkind: SriovNetwork\nmetadata:\n  name: {name}\nspec:\n"
        f"  resourceName: {name.replace('-', '_')}\n{selector}  numVfs: 4\n"
        f"  vlan: {vlan}\n  namespaces: [apps]\n"
    )


def vm(name: str, network: str, mac: str, ip: str = "10.0.0.10/24") -> str:
    return (
        f"apiVersion: virtnet.io/v1alpha1\nkind: VM\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n"
        "  boot:\n    containerDisk: quay.io/containerdisks/fedora:40\n  interfaces:\n"
        f'    - network: {network}\n      mac: "02:00:00:00:00:{mac}"\n      ipv4: {ip}\n'
    )


def repo_of(root: Path, first: str, second: str, second_ip: str = "10.0.0.10/24") -> Repo:
    files = {
        "cluster.yaml": CLUSTER,
        "nets.yaml": sriov("net-a", first) + "---\n" + sriov("net-b", second),
        "vms.yaml": vm("a", "net-a", "10") + "---\n" + vm("b", "net-b", "11", second_ip),
    }
    return load_repo(write_repo(root, files, base=False))


def test_two_networks_on_one_pf_and_vlan_are_one_segment(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        repo_of(tmp_path, "  pfNames: ['ens5f0#0-1']\n", "  pfNames: ['ens5f0#2-3']\n")
    [problem] = err.value.problems
    assert problem.ref.field == "spec.interfaces[0].ipv4"
    assert "IP 10.0.0.10 is already used on network net-b (the same SR-IOV PF and VLAN as net-a)" in problem.message


def test_vendor_selected_networks_of_different_resources_are_separate(tmp_path: Path) -> None:
    repo_of(tmp_path, "  vendor: '8086'\n", "  vendor: '8086'\n")  # the same address on each: no problem


def test_a_pf_selected_and_a_root_device_selected_network_are_separate(tmp_path: Path) -> None:
    repo_of(tmp_path, "  pfNames: [ens5f0]\n", "  rootDevices: ['0000:3b:00.0']\n")


def test_a_root_device_change_is_named_as_what_merged_the_networks(tmp_path: Path) -> None:
    one, other = "  rootDevices: ['0000:3b:00.0']\n", "  rootDevices: ['0000:3b:00.1']\n"
    base = repo_of(tmp_path / "base", one, other, "10.0.0.11/24")
    new = repo_of(tmp_path / "new", other, other, "10.0.0.11/24")
    [merge] = compare(base, new).domain_changes
    line = next(i for i, t in enumerate((tmp_path / "new" / "nets.yaml").read_text().splitlines(), 1) if "rootDev" in t)
    assert (merge.kind, merge.domain) == ("merged", "SR-IOV PF 0000:3b:00.1 VLAN 100")
    assert merge.cause.where == f"nets.yaml:{line}"  # net-a's rootDevices, not its spec
