"""``diff_object``: only fields virtnet sets can differ, and fields it stopped setting show up as removals.

The live objects here are written by hand the way an API server returns them (defaults, status, managedFields
with ``f:``/``k:``/``v:`` paths), because the diff's job is exactly to ignore what the server adds.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler import labels
from reconciler.engine.diff import Change, Conflict, conflicts, diff_object

OURS = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "prod"}


def vm(interfaces: list[dict[str, Any]], networks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    networks = (
        networks
        if networks is not None
        else [{"name": i["name"], "multus": {"networkName": i["name"]}} for i in interfaces]
    )
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "web-1", "namespace": "apps", "labels": dict(OURS)},
        "spec": {
            "runStrategy": "Always",
            "template": {"spec": {"domain": {"devices": {"interfaces": interfaces}}, "networks": networks}},
        },
    }


def served(obj: dict[str, Any], fields: dict[str, Any] | None = None, manager: str = "virtnet") -> dict[str, Any]:
    """``obj`` as the server returns it: identity, defaults, status and (optionally) a managedFields entry."""
    live = copy.deepcopy(obj)
    live["metadata"].update(
        uid="6b1e0c1e-0000-4000-8000-000000000001",
        resourceVersion="4711",
        generation=3,
        creationTimestamp="2025-01-01T00:00:00Z",
        finalizers=["kubevirt.io/virtualMachineControllerFinalize"],
    )
    live["status"] = {"printableStatus": "Running", "ready": True}
    if fields is not None:
        live["metadata"]["managedFields"] = [
            {
                "manager": manager,
                "operation": "Apply",
                "apiVersion": obj["apiVersion"],
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            },
            {
                "manager": "virt-controller",
                "operation": "Update",
                "subresource": "status",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:ready": {}, "f:printableStatus": {}}},
            },
        ]
    return live


def iface_fields(*names: str, mac: bool = False) -> dict[str, Any]:
    """fieldsV1 of a VM whose interfaces ``names`` (bridge, model, optionally macAddress) virtnet applied."""
    per_iface: dict[str, Any] = {"f:bridge": {}, "f:model": {}, "f:name": {}, ".": {}}
    if mac:
        per_iface["f:macAddress"] = {}
    ifaces = {f'k:{{"name":"{n}"}}': copy.deepcopy(per_iface) for n in names}
    nets = {f'k:{{"name":"{n}"}}': {".": {}, "f:name": {}, "f:multus": {".": {}, "f:networkName": {}}} for n in names}
    return {
        "f:metadata": {"f:labels": {".": {}, f"f:{labels.MANAGED_BY}": {}, f"f:{labels.CLUSTER}": {}}},
        "f:spec": {
            "f:runStrategy": {},
            "f:template": {"f:spec": {"f:domain": {"f:devices": {"f:interfaces": ifaces}}, "f:networks": nets}},
        },
    }


def bridge(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "bridge": {}, "model": "virtio", **extra}


def test_new_object_is_one_set_of_everything() -> None:
    desired = vm([bridge("eth1")])
    assert diff_object(desired, None) == [Change("set", "", None, desired)]


def test_server_defaults_status_identity_and_managed_fields_are_not_changes() -> None:
    desired = vm([bridge("eth1")])
    live = served(desired, iface_fields("eth1"))
    live["spec"]["template"]["spec"]["domain"]["machine"] = {"type": "q35"}  # defaulted by the server
    live["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["ports"] = [{"port": 80}]
    assert diff_object(desired, live) == []


def test_provenance_annotations_are_ignored_but_other_annotations_count() -> None:
    desired = vm([bridge("eth1")])
    desired["metadata"]["annotations"] = {labels.SOURCE: "vms/web.yaml:7", labels.REVISION: "abc"}
    live = served(vm([bridge("eth1")]))
    live["metadata"]["annotations"] = {labels.SOURCE: "vms/web.yaml:3", labels.REVISION: "old"}
    assert diff_object(desired, live) == []

    desired["metadata"]["annotations"][labels.RESTART] = "allowed"
    assert diff_object(desired, live) == [Change("set", "metadata.annotations", None, {labels.RESTART: "allowed"})]


def test_provenance_annotation_dropped_from_the_repo_is_not_a_removal() -> None:
    desired = vm([bridge("eth1")])
    fields = iface_fields("eth1")
    fields["f:metadata"]["f:annotations"] = {".": {}, f"f:{labels.SOURCE}": {}, f"f:{labels.REVISION}": {}}
    live = served(desired, fields)
    live["metadata"]["annotations"] = {labels.SOURCE: "vms/web.yaml:3", labels.REVISION: "abc"}
    assert diff_object(desired, live) == []


def test_keyed_lists_match_by_name_not_position() -> None:
    desired = vm([bridge("eth1"), bridge("eth2", macAddress="02:00:00:00:00:02")])
    live = served(vm([bridge("eth2", macAddress="02:00:00:00:00:02"), bridge("eth1")]))
    assert diff_object(desired, live) == []

    desired["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["model"] = "e1000e"
    assert diff_object(desired, live) == [
        Change("set", "spec.template.spec.domain.devices.interfaces[name=eth2].model", "virtio", "e1000e")
    ]


def test_added_list_item_is_a_set_of_the_whole_item() -> None:
    desired = vm([bridge("eth1"), bridge("eth2")])
    live = served(vm([bridge("eth1")]), iface_fields("eth1"))
    changes = diff_object(desired, live)
    paths = sorted(c.path for c in changes)
    assert paths == [
        "spec.template.spec.domain.devices.interfaces[name=eth2]",
        "spec.template.spec.networks[name=eth2]",
    ]
    assert all(c.op == "set" and c.old is None for c in changes)


def test_removed_interface_is_detected_from_our_managed_fields() -> None:
    desired = vm([bridge("eth1")])
    live = served(vm([bridge("eth1"), bridge("eth2")]), iface_fields("eth1", "eth2"))
    changes = diff_object(desired, live)
    assert sorted((c.op, c.path) for c in changes) == [
        ("remove", "spec.template.spec.domain.devices.interfaces[name=eth2]"),
        ("remove", "spec.template.spec.networks[name=eth2]"),
    ]
    removed = next(c for c in changes if "interfaces" in c.path)
    assert removed.old == bridge("eth2")
    assert str(removed).startswith("- spec.template.spec.domain.devices.interfaces[name=eth2]: ")


def test_field_owned_by_another_manager_is_never_a_removal() -> None:
    """Without our managedFields (or with another manager's), a live-only field is not ours to remove."""
    desired = vm([bridge("eth1")])
    live_fields = iface_fields("eth1", "eth2")
    assert diff_object(desired, served(vm([bridge("eth1"), bridge("eth2")]))) == []
    assert diff_object(desired, served(vm([bridge("eth1"), bridge("eth2")]), live_fields, manager="kubectl")) == []


def test_removed_scalar_field_and_removed_set_member() -> None:
    desired = vm([bridge("eth1")])
    live = served(desired, iface_fields("eth1"))
    del desired["spec"]["runStrategy"]
    live["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:finalizers"] = {'v:"virtnet.io/cleanup"': {}}
    live["metadata"]["finalizers"] = ["virtnet.io/cleanup"]
    desired["metadata"]["finalizers"] = []
    changes = diff_object(desired, live)
    assert Change("remove", "spec.runStrategy", old="Always") in changes


def test_kubemacpool_mac_is_not_a_change_or_removal() -> None:
    """KubeMacPool's webhook writes the MAC inside our apply, so it even lands in *our* managedFields."""
    desired = vm([bridge("eth1")])
    live = served(vm([bridge("eth1", macAddress="02:00:00:00:00:07")]), iface_fields("eth1", mac=True))
    assert diff_object(desired, live) == []


def test_mac_set_in_the_repository_wins() -> None:
    desired = vm([bridge("eth1", macAddress="02:00:00:00:01:01")])
    live = served(vm([bridge("eth1", macAddress="02:00:00:00:00:07")]), iface_fields("eth1", mac=True))
    assert diff_object(desired, live) == [
        Change(
            "set",
            "spec.template.spec.domain.devices.interfaces[name=eth1].macAddress",
            "02:00:00:00:00:07",
            "02:00:00:00:01:01",
        )
    ]


def test_int_and_float_of_the_same_value_are_equal_but_other_types_are_not() -> None:
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {"a": 1, "b": 2.5}}
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {"a": 1.0, "b": 2.5}}
    assert diff_object(desired, live) == []
    live["spec"]["b"] = 2
    assert diff_object(desired, live) == [Change("set", "spec.b", 2, 2.5)]
    live["spec"] = {"a": "1", "b": 2.5}
    assert diff_object(desired, live) == [Change("set", "spec.a", "1", 1)]


def test_booleans_are_not_numbers_either_way() -> None:
    """``True == 1`` in Python; in a Kubernetes object they are different values whichever side has which."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert diff_object({**obj, "spec": {"a": True}}, {**obj, "spec": {"a": 1}}) == [Change("set", "spec.a", 1, True)]
    assert diff_object({**obj, "spec": {"a": 1}}, {**obj, "spec": {"a": True}}) == [Change("set", "spec.a", True, 1)]


def test_list_of_scalars_is_compared_whole() -> None:
    obj = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}}
    assert diff_object({**obj, "spec": {"p": ["eth2", "eth3"]}}, {**obj, "spec": {"p": ["eth2", "eth3"]}}) == []
    assert diff_object({**obj, "spec": {"p": ["eth2"]}}, {**obj, "spec": {"p": ["eth2", "eth3"]}}) == [
        Change("set", "spec.p", ["eth2", "eth3"], ["eth2"])
    ]


def test_service_port_keyed_by_port_and_defaulted_protocol_is_not_removed() -> None:
    """The server keys Service ports by port+protocol and defaults protocol to TCP; a repo port without it stays."""
    desired = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "apps", "labels": dict(OURS)},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    live = copy.deepcopy(desired)
    live["spec"]["ports"][0]["protocol"] = "TCP"
    live["metadata"]["managedFields"] = [
        {
            "manager": "virtnet",
            "operation": "Apply",
            "fieldsV1": {
                "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}}}
            },
        }
    ]
    assert diff_object(desired, live) == []
    desired["spec"]["ports"] = [{"name": "https", "port": 443}]
    assert [(c.op, c.path) for c in diff_object(desired, live) if c.op == "remove"] == [
        ("remove", "spec.ports[port=80,protocol=TCP]")
    ]


def test_status_in_the_desired_object_is_ignored() -> None:
    desired = vm([bridge("eth1")])
    desired["status"] = {"ready": False}
    assert diff_object(desired, served(vm([bridge("eth1")]))) == []


def atomic_fields() -> dict[str, Any]:
    """fieldsV1 as a real kube-apiserver records a VM apply: KubeVirt's schema gives its interface and
    network lists no x-kubernetes-list-type, so they are atomic (``{}``, no ``k:`` entries)."""
    return {
        "f:metadata": {"f:labels": {".": {}, f"f:{labels.MANAGED_BY}": {}, f"f:{labels.CLUSTER}": {}}},
        "f:spec": {
            "f:runStrategy": {},
            "f:template": {"f:spec": {"f:domain": {"f:devices": {"f:interfaces": {}}}, "f:networks": {}}},
        },
    }


def test_removed_item_of_an_atomic_list_is_a_removal() -> None:
    """On a real server an atomic list has no per-item entries: the removal is found from the live list."""
    desired = vm([bridge("eth1")])
    live = served(vm([bridge("eth1", macAddress="02:00:00:00:00:01"), bridge("eth2")]), atomic_fields())
    changes = diff_object(desired, live)
    assert sorted((c.op, c.path) for c in changes) == [
        ("remove", "spec.template.spec.domain.devices.interfaces[name=eth2]"),
        ("remove", "spec.template.spec.networks[name=eth2]"),
    ]


def test_atomic_list_owned_by_another_manager_is_still_replaced_whole() -> None:
    """virt-controller rewrites the interface list after an unplug and so owns it; our apply still
    replaces the whole list, so an item we no longer want is a removal (and a conflict, see plan)."""
    desired = vm([bridge("eth1")])
    live = served(vm([bridge("eth1"), bridge("eth2")]), atomic_fields(), manager="virt-controller")
    paths = [c.path for c in diff_object(desired, live) if c.op == "remove"]
    assert paths == [
        "spec.template.spec.domain.devices.interfaces[name=eth2]",
        "spec.template.spec.networks[name=eth2]",
    ]


def test_atomic_list_without_names_keeps_items_the_server_extended() -> None:
    policy = {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "br1", "labels": dict(OURS)},
        "spec": {"desiredState": {"routes": {"config": [{"destination": "10.0.0.0/8"}]}}},
    }
    live = served(policy, {"f:spec": {"f:desiredState": {"f:routes": {"f:config": {}}}}})
    live["spec"]["desiredState"]["routes"]["config"] = [
        {"destination": "10.0.0.0/8", "metric": 100},
        {"destination": "192.168.0.0/16"},
    ]
    changes = diff_object(policy, live)
    assert [(c.op, c.old) for c in changes] == [("remove", {"destination": "192.168.0.0/16"})]


def test_unchanged_atomic_list_is_no_change() -> None:
    desired = vm([bridge("eth1"), bridge("eth2")])
    live = served(vm([bridge("eth1", macAddress="02:00:00:00:00:01"), bridge("eth2")]), atomic_fields())
    assert diff_object(desired, live) == []


def test_conflicts_name_the_other_manager_of_a_changed_field() -> None:
    desired = vm([bridge("eth1")])
    desired["spec"]["runStrategy"] = "Halted"
    live = served(vm([bridge("eth1")]), iface_fields("eth1"))
    live["metadata"]["managedFields"].append(
        {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:runStrategy": {}}}}
    )
    changes = diff_object(desired, live)
    assert conflicts(changes, live) == [Conflict("spec.runStrategy", "kubectl-edit")]
    assert str(conflicts(changes, live)[0]) == "spec.runStrategy is owned by field manager 'kubectl-edit'"


def test_conflict_on_an_item_of_an_atomic_list_another_manager_owns() -> None:
    """virt-controller took the atomic interface list over (after an unplug): adding one conflicts."""
    desired = vm([bridge("eth1"), bridge("eth2")])
    live = served(vm([bridge("eth1")]), atomic_fields(), manager="virt-controller")
    found = {(c.path, c.manager) for c in conflicts(diff_object(desired, live), live)}
    assert ("spec.template.spec.domain.devices.interfaces[name=eth2]", "virt-controller") in found


def test_no_conflict_for_our_own_fields_status_writers_or_unowned_fields() -> None:
    desired = vm([bridge("eth1")])
    desired["spec"]["runStrategy"] = "Halted"
    live = served(vm([bridge("eth1")]), iface_fields("eth1"))  # the status writer's entry is in there too
    live["metadata"]["managedFields"].append(
        {"manager": "other", "operation": "Update", "fieldsV1": {"f:metadata": {"f:annotations": {"f:x": {}}}}}
    )
    assert conflicts(diff_object(desired, live), live) == []


def test_an_empty_struct_owned_by_another_manager_owns_none_of_its_children() -> None:
    """``f:spec: {}`` (someone applied ``spec: {}``) is no claim on the fields later put inside spec."""
    desired = vm([bridge("eth1")])
    desired["spec"]["runStrategy"] = "Halted"
    live = served(vm([bridge("eth1")]), iface_fields("eth1"))
    live["metadata"]["managedFields"].append({"manager": "seed", "operation": "Update", "fieldsV1": {"f:spec": {}}})
    assert conflicts(diff_object(desired, live), live) == []
