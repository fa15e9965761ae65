"""The simulated KubeMacPool of the API double (double only: the real-server tier runs no webhooks).

What it must do as the real webhook does: hand out pool MACs that nobody holds, keep an interface's MAC across
updates, refuse a MAC another VM holds (the webhook's 500 denial), release a deleted VM's MACs, allocate
nothing on a dry run, and own nothing: admission output is in no field manager's set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client import ApiException

from reconciler.testing import ApiDouble
from reconciler.testing.kubemacpool import WEBHOOK, interfaces
from reconciler.testing.schemas import shape_of
from reconciler.testing.ssa import encode, fieldset, leaves

NS = "macs"
GROUP = ("kubevirt.io", "v1", NS, "virtualmachines")


@pytest.fixture
def custom() -> Iterator[client.CustomObjectsApi]:
    with ApiDouble(controllers=("kubevirt",), tick_interval=None) as api:
        api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield client.CustomObjectsApi(api.api_client())


def vm(name: str, *macs: str | None) -> dict[str, Any]:
    ifaces = [{"name": f"n{i}", "bridge": {}, **({"macAddress": m} if m else {})} for i, m in enumerate(macs)]
    nets = [{"name": f"n{i}", "multus": {"networkName": "br"}} for i in range(len(macs))]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name, "namespace": NS},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {"interfaces": ifaces}},
                                                                    "networks": nets}}}}


def macs(obj: dict[str, Any]) -> list[str]:
    return [i.get("macAddress", "") for i in interfaces(obj)]


def apply(custom: client.CustomObjectsApi, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Server-side apply through the dynamic client (the typed one maps only 200, not 201 Created)."""
    res = dynamic.DynamicClient(custom.api_client).resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
    out: dict[str, Any] = res.server_side_apply(body=body, namespace=NS, field_manager="virtnet", **kw).to_dict()
    return out


def test_pool_macs_are_stable_and_owned_by_nobody(custom: client.CustomObjectsApi) -> None:
    first = apply(custom, vm("a", None, None))
    assert len(set(macs(first))) == 2 and all(macs(first))
    assert apply(custom, vm("a", None, None))["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    entry = first["metadata"]["managedFields"][0]
    from reconciler.testing.resources import Registry

    rt = Registry().by_kind("kubevirt.io/v1", "VirtualMachine")
    assert rt is not None
    applied = fieldset({k: v for k, v in vm("a", None, None).items() if k not in ("apiVersion", "kind", "metadata")},
                       shape_of(rt))
    assert entry["fieldsV1"] == encode(leaves(applied))  # exactly what was applied: the MACs are nobody's
    grown = apply(custom, vm("a", None, None, None))
    assert macs(grown)[:2] == macs(first)  # an interface keeps its MAC across updates


def test_a_held_mac_is_refused_and_released_with_its_vm(custom: client.CustomObjectsApi) -> None:
    taken = "02:00:00:00:aa:01"
    apply(custom, vm("owner", taken))
    with pytest.raises(ApiException) as exc:
        apply(custom, vm("thief", taken))
    body = json.loads(exc.value.body)
    assert exc.value.status == 500
    assert body["message"] == (f'admission webhook "{WEBHOOK}" denied the request: Failed to create virtual machine '
                               "allocation error: Failed to allocate mac to the vm object: failed to allocate "
                               "requested mac address")
    with pytest.raises(ApiException):
        apply(custom, vm("twice", "02:00:00:00:aa:02", "02:00:00:00:aa:02"))  # two interfaces, one MAC
    custom.delete_namespaced_custom_object(*GROUP, "owner")
    assert macs(apply(custom, vm("thief", taken))) == [taken]


def test_the_pool_skips_requested_macs_and_dry_runs_allocate_nothing(custom: client.CustomObjectsApi) -> None:
    first_pool_mac = "02:00:00:f0:00:01"
    apply(custom, vm("explicit", first_pool_mac))
    dry = apply(custom, vm("dry", None), dry_run="All")
    real = apply(custom, vm("real", None))
    assert macs(dry) == macs(real) and macs(real) != [first_pool_mac]


def test_a_namespace_labelled_ignore_is_left_alone() -> None:
    """``mutatevirtualmachines.kubemacpool.io=ignore`` (virtnet's ``kubeMacPool: false``): no MAC is added, and a
    MAC a VM there asks for is neither refused nor held against VMs elsewhere."""
    with ApiDouble(controllers=("kubevirt",), tick_interval=None) as api:
        api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        labels = {WEBHOOK: "ignore"}
        api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "nfv", "labels": labels}})
        custom = client.CustomObjectsApi(api.api_client())
        resources = dynamic.DynamicClient(custom.api_client).resources
        res = resources.get(api_version="kubevirt.io/v1", kind="VirtualMachine")
        ignored = vm("vendor", None, "0a:00:00:00:00:01")
        ignored["metadata"]["namespace"] = "nfv"
        out = res.server_side_apply(body=ignored, namespace="nfv", field_manager="virtnet").to_dict()
        assert macs(out) == ["", "0a:00:00:00:00:01"]  # nothing added
        # a VM in a managed namespace may take the same MAC: the opted-out VM holds nothing in the pool
        assert macs(apply(custom, vm("a", "0a:00:00:00:00:01"))) == ["0a:00:00:00:00:01"]
        assert all(macs(apply(custom, vm("b", None))))  # and managed namespaces still get MACs
