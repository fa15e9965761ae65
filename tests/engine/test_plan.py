"""``build_plan``: pairing, wave order, and how a VM update will land on a running VM (pure).

VM classification is what makes a plan honest: a hot-plug is applied silently, a change that KubeVirt only
takes at the next boot must say "restart required" (or restart, when the VM allows it).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.conftest import EXAMPLES
from reconciler import labels
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.live import LiveState
from reconciler.engine.plan import Action, PlanOptions, VMChange, build_plan
from reconciler.model import load_repo
from reconciler.objects import obj_id, sort_key
from reconciler.render import render

CLUSTER = "prod"
OURS = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: CLUSTER}
LOOSE = PlanOptions(prune=PruneOptions(max_share=1.0))


def obj(kind: str, name: str, ns: str | None = None, api_version: str = "v1", **body: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(OURS)}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


def bridge(name: str) -> dict[str, Any]:
    return {"name": name, "bridge": {}, "model": "virtio"}


def sriov(name: str) -> dict[str, Any]:
    return {"name": name, "sriov": {}, "macAddress": "02:00:00:00:03:01"}


def vm(*interfaces: dict[str, Any], cores: int = 2, restart: str = "never", hotplug: str = "") -> dict[str, Any]:
    """A rendered VM; ``hotplug`` is the comma-separated interfaces the repository marked ``hotplug: true``."""
    out = obj("VirtualMachine", "web-1", "apps", "kubevirt.io/v1")
    out["metadata"]["annotations"] = {labels.RESTART: restart}
    if hotplug:
        out["metadata"]["annotations"][labels.HOTPLUG] = hotplug
    ifaces = [{"name": "default", "masquerade": {}}, *interfaces]
    nets = [{"name": "default", "pod": {}}] + [
        {"name": i["name"], "multus": {"networkName": i["name"]}} for i in interfaces
    ]
    out["spec"] = {
        "runStrategy": "Always",
        "template": {
            "spec": {"domain": {"cpu": {"cores": cores}, "devices": {"interfaces": ifaces}}, "networks": nets}
        },
    }
    return out


def running(vm_obj: dict[str, Any], fields: bool = True) -> dict[str, Any]:
    """``vm_obj`` as live and running, with virtnet's managedFields for its interfaces and networks."""
    live = copy.deepcopy(vm_obj)
    live["status"] = {"printableStatus": "Running", "ready": True}
    spec = live["spec"]["template"]["spec"]
    for iface in spec["domain"]["devices"]["interfaces"]:
        if "bridge" in iface:
            iface.setdefault("macAddress", "02:00:00:00:00:42")  # KubeMacPool
    if fields:
        keys = {f'k:{{"name":"{i["name"]}"}}': {".": {}, "f:name": {}} for i in spec["domain"]["devices"]["interfaces"]}
        nets = {f'k:{{"name":"{n["name"]}"}}': {".": {}, "f:name": {}} for n in spec["networks"]}
        live["metadata"]["managedFields"] = [
            {
                "manager": "virtnet",
                "operation": "Apply",
                "fieldsV1": {
                    "f:spec": {
                        "f:template": {
                            "f:spec": {"f:domain": {"f:devices": {"f:interfaces": keys}}, "f:networks": nets}
                        }
                    }
                },
            }
        ]
    return live


def vmi_with(*names: str) -> dict[str, dict[str, Any]]:
    return {
        "apps/web-1": {
            "metadata": {"name": "web-1", "namespace": "apps"},
            "status": {"interfaces": [{"name": n} for n in names]},
        }
    }


def plan_vm(desired: dict[str, Any], live: dict[str, Any], vmis: dict[str, Any] | None = None) -> Any:
    plan = build_plan([desired], LiveState(owned={obj_id(live): live}, vmis=vmis or {}), CLUSTER)
    assert plan.errors == ()
    [item] = plan.items
    return plan, item


def interfaces(o: dict[str, Any]) -> list[dict[str, Any]]:
    return o["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]


# ---- pairing and order --------------------------------------------------------------------------------------


def test_create_update_noop_and_delete_are_paired_by_id() -> None:
    same = obj("ConfigMap", "same", "apps", data={"a": "1"})
    changed = obj("ConfigMap", "changed", "apps", data={"a": "2"})
    new = obj("ConfigMap", "new", "apps", data={"a": "3"})
    stale = obj("ConfigMap", "stale", "apps", data={})
    live = {obj_id(o): o for o in (copy.deepcopy(same), obj("ConfigMap", "changed", "apps", data={"a": "1"}), stale)}
    plan = build_plan([same, changed, new], LiveState(owned=live), CLUSTER, LOOSE)
    assert {i.name: i.action for i in plan.items} == {
        "ConfigMap/apps/same": Action.NOOP,
        "ConfigMap/apps/changed": Action.UPDATE,
        "ConfigMap/apps/new": Action.CREATE,
        "ConfigMap/apps/stale": Action.DELETE,
    }
    update = next(i for i in plan.items if i.action == Action.UPDATE)
    assert [str(c) for c in update.changes] == ["~ data.a: 1 → 2"]
    assert plan.counts() == {"create": 1, "update": 1, "delete": 1, "no-op": 1, "skip": 0}
    assert plan.has_changes and len(plan.changes) == 3


def test_no_changes_when_everything_matches() -> None:
    desired = [obj("ConfigMap", "a", "apps", data={"x": "1"})]
    plan = build_plan(desired, LiveState(owned={obj_id(o): copy.deepcopy(o) for o in desired}), CLUSTER)
    assert not plan.has_changes and plan.errors == () and plan.warnings == ()


def test_items_are_ordered_by_wave_and_deletes_come_last_in_reverse() -> None:
    desired = render(load_repo(EXAMPLES)).objects
    old_ns = obj("Namespace", "old")
    old_ns["metadata"]["annotations"] = {labels.PRUNE_NAMESPACE: "allowed"}
    stale = [
        old_ns,
        obj("Service", "old-svc", "apps"),
        obj("NodeNetworkConfigurationPolicy", "old-br", api_version="nmstate.io/v1", spec={}),
    ]
    live = {obj_id(o): o for o in stale}
    state = LiveState(owned=live, namespace_contents={"old": set()})  # opted in and empty: may go
    plan = build_plan(list(reversed(desired)), state, CLUSTER, LOOSE)
    kept = [i for i in plan.items if i.action != Action.DELETE]
    assert [i.desired for i in kept] == sorted(desired, key=sort_key)
    waves = [i.wave for i in kept]
    assert waves == sorted(waves) and set(waves) == {0, 1, 2}
    first_kinds = {i.desired["kind"] for i in kept if i.wave == 0}  # type: ignore[index]
    assert first_kinds == {"Namespace", "NodeNetworkConfigurationPolicy", "SriovNetworkNodePolicy"}
    assert {i.desired["kind"] for i in kept if i.wave == 2} == {"VirtualMachine", "Service"}  # type: ignore[index]
    deletes = [i.name for i in plan.items if i.action == Action.DELETE]
    assert deletes == ["Service/apps/old-svc", "NodeNetworkConfigurationPolicy/old-br", "Namespace/old"]
    assert plan.items[-3:] == tuple(i for i in plan.items if i.action == Action.DELETE)


def test_missing_patch_only_object_is_a_plan_error() -> None:
    hco = {
        "apiVersion": "hco.kubevirt.io/v1beta1",
        "kind": "HyperConverged",
        "metadata": {"name": "kubevirt-hyperconverged", "namespace": "openshift-cnv"},
        "spec": {"x": 1},
    }
    plan = build_plan([hco], LiveState(patch_targets={obj_id(hco): None}), CLUSTER)
    assert (
        len(plan.errors) == 1
        and "HyperConverged/openshift-cnv/kubevirt-hyperconverged does not exist" in (plan.errors[0])
    )
    assert [i.action for i in plan.items] == [Action.SKIP]

    present = build_plan([hco], LiveState(patch_targets={obj_id(hco): {**hco, "spec": {}}}), CLUSTER)
    assert present.errors == () and [i.action for i in present.items] == [Action.UPDATE]


# ---- VM classification --------------------------------------------------------------------------------------


def test_stopped_vm_change_is_a_plain_update() -> None:
    live = running(vm(bridge("eth1")))
    live["status"] = {"printableStatus": "Stopped", "ready": False}
    plan, item = plan_vm(vm(bridge("eth1"), cores=4), live)
    assert item.action == Action.UPDATE and item.vm_change == VMChange.NONE
    assert "not running" in item.reason and plan.warnings == ()


def test_adding_a_bridge_interface_to_a_running_vm_is_a_hotplug() -> None:
    desired = vm(bridge("eth1"), bridge("eth2"), hotplug="eth2")
    plan, item = plan_vm(desired, running(vm(bridge("eth1"))), vmi_with("default", "eth1"))
    assert (item.action, item.vm_change, item.plugs, item.migrate) == (Action.UPDATE, VMChange.HOTPLUG, ("eth2",), True)
    assert item.reason == "plug eth2; a live migration follows (vmRolloutStrategy Stage: virtnet migrates the VM)"
    assert item.desired == desired
    assert plan.warnings == ()


def test_adding_an_interface_not_marked_hotplug_needs_a_restart() -> None:
    plan, item = plan_vm(vm(bridge("eth1"), bridge("eth2")), running(vm(bridge("eth1"))), vmi_with("default", "eth1"))
    assert (item.vm_change, item.reason) == (VMChange.RESTART_REQUIRED, "interface eth2 added without hotplug: true")
    assert len(plan.warnings) == 1 and "restart required" in plan.warnings[0]


def test_removing_a_bridge_interface_is_a_hotplug_that_applies_state_absent() -> None:
    live = running(vm(bridge("eth1"), bridge("eth2"), hotplug="eth2"))
    plan, item = plan_vm(vm(bridge("eth1")), live, vmi_with("default", "eth1", "eth2"))
    assert (item.action, item.vm_change, item.reason) == (Action.UPDATE, VMChange.HOTPLUG, "unplug eth2")
    assert item.desired is not None
    applied = {i["name"]: i for i in interfaces(item.desired)}
    assert applied["eth2"]["state"] == "absent" and "bridge" in applied["eth2"]
    assert {"name": "eth2", "multus": {"networkName": "eth2"}} in item.desired["spec"]["template"]["spec"]["networks"]
    assert plan.warnings == ()


def _after_unplug_applied() -> dict[str, Any]:
    """The live VM after the unplug marker was applied: eth2 is still listed, ``state: absent``."""
    live = running(vm(bridge("eth1"), bridge("eth2"), hotplug="eth2"))
    interfaces(live)[-1]["state"] = "absent"
    return live


def test_unplug_marker_is_kept_while_the_guest_still_has_the_interface() -> None:
    _, item = plan_vm(vm(bridge("eth1")), _after_unplug_applied(), vmi_with("default", "eth1", "eth2"))
    assert item.action == Action.NOOP and item.reason == "unplug still in progress"
    assert item.desired is not None and interfaces(item.desired)[-1]["state"] == "absent"


def test_unplug_marker_is_dropped_once_the_vmi_no_longer_reports_the_interface() -> None:
    _, item = plan_vm(vm(bridge("eth1")), _after_unplug_applied(), vmi_with("default", "eth1"))
    assert item.desired is not None and [i["name"] for i in interfaces(item.desired)] == ["default", "eth1"]
    assert item.action == Action.UPDATE and item.vm_change == VMChange.NONE
    assert sorted((c.op, c.path) for c in item.changes) == [
        ("remove", "spec.template.spec.domain.devices.interfaces[name=eth2]"),
        ("remove", "spec.template.spec.networks[name=eth2]"),
    ]


@pytest.mark.parametrize(
    ("desired", "live", "reason"),
    [
        (vm(bridge("eth1")), vm(bridge("eth1"), sriov("fast")), "SR-IOV interface fast removed"),
        (vm(bridge("eth1"), cores=4), vm(bridge("eth1")), "spec.template.spec.domain.cpu.cores changed"),
    ],
    ids=["sriov-removed", "cpu-changed"],
)
def test_restart_required_unless_the_vm_allows_restart(
    desired: dict[str, Any], live: dict[str, Any], reason: str
) -> None:
    plan, item = plan_vm(desired, running(live), vmi_with("default", "eth1"))
    assert (item.action, item.vm_change, item.reason) == (Action.UPDATE, VMChange.RESTART_REQUIRED, reason)
    assert plan.warnings == (
        f"VirtualMachine/apps/web-1: restart required ({reason}); the VM does not allow virtnet to restart it",
    )
    assert item.desired == desired  # no unplug markers: the restart takes the interface away

    allowed = copy.deepcopy(desired)
    allowed["metadata"]["annotations"][labels.RESTART] = "allowed"
    plan, item = plan_vm(allowed, running(live), vmi_with("default", "eth1"))
    assert (item.vm_change, item.reason) == (VMChange.RESTART, reason)
    assert plan.warnings == ()


def test_kubemacpool_mac_on_a_running_vm_is_not_an_interface_change() -> None:
    _, item = plan_vm(vm(bridge("eth1")), running(vm(bridge("eth1"))), vmi_with("default", "eth1"))
    assert item.action == Action.NOOP and item.vm_change == VMChange.NONE


def test_changed_mac_on_a_running_vm_needs_a_restart() -> None:
    desired = vm({**bridge("eth1"), "macAddress": "02:00:00:00:01:01"})
    _, item = plan_vm(desired, running(vm(bridge("eth1"))), vmi_with("default", "eth1"))
    assert (item.vm_change, item.reason) == (VMChange.RESTART_REQUIRED, "interface eth1 changed")
