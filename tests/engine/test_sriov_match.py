"""Which SR-IOV node policies a VM waits for: one network → resource map per stage, and no scan at all for a VM
without an SR-IOV interface (a stage of a thousand plain VMs used to scan every object once per VM)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.engine import apply, sriov
from reconciler.engine.apply import ApplyOptions, _wait_sriov
from reconciler.engine.plan import Action, Item, Plan


def vm(name: str, sriov_net: str = "") -> dict[str, Any]:
    interfaces = [{"name": "pod", "masquerade": {}}] + ([{"name": "vf", "sriov": {}}] if sriov_net else [])
    networks = [{"name": "pod", "pod": {}}] + (
        [{"name": "vf", "multus": {"networkName": sriov_net}}] if sriov_net else []
    )
    spec = {"domain": {"devices": {"interfaces": interfaces}}, "networks": networks}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "nfv"},
        "spec": {"runStrategy": "Always", "template": {"spec": spec}},
    }


NETWORK = {
    "kind": "SriovNetwork",
    "metadata": {"name": "fast"},
    "spec": {"networkNamespace": "nfv", "resourceName": "vf1"},
}
POLICY = {
    "kind": "SriovNetworkNodePolicy",
    "metadata": {"name": "p1", "namespace": "ops"},
    "spec": {"resourceName": "vf1"},
}
OTHER = {
    "kind": "SriovNetworkNodePolicy",
    "metadata": {"name": "p2", "namespace": "ops"},
    "spec": {"resourceName": "vf2"},
}


class Untouchable:
    def __iter__(self) -> Iterator[dict[str, Any]]:
        raise AssertionError("scanned the policies for a VM without SR-IOV")


def test_a_vm_without_sriov_scans_nothing() -> None:
    assert sriov.policies_for(vm("plain"), {}, Untouchable()) == []


def test_a_vm_finds_the_policies_of_its_networks_resource() -> None:
    resources = sriov.network_resources([NETWORK, POLICY, vm("x")])
    assert resources == {("nfv", "fast"): "vf1"}
    assert sriov.policies_for(vm("fast-vm", "fast"), resources, [POLICY, OTHER]) == [POLICY]
    assert sriov.policies_for(vm("elsewhere", "nfv/slow"), resources, [POLICY, OTHER]) == []


def test_a_stage_builds_the_network_map_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = sriov.network_resources

    def counted(objects: Any) -> Any:
        calls.append(1)
        return real(objects)

    monkeypatch.setattr(apply.sriov, "network_resources", counted)
    items = [Item(Action.CREATE, f"vm{i}", f"VirtualMachine/nfv/vm{i}", 3, "new", vm(f"vm{i}")) for i in range(50)]
    plan = Plan("c", (*items, Item(Action.CREATE, "n", "SriovNetwork/fast", 1, "new", NETWORK)))
    _wait_sriov(items, plan, None, ApplyOptions(), lambda _m: None)  # type: ignore[arg-type]  # nothing to wait for
    assert calls == [1]
