"""The ``hotplug`` flag decides whether an interface change on a running VM is live or restart-class."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler import labels
from reconciler.engine.kubevirt import rollout_strategy
from reconciler.engine.live import LiveState
from reconciler.engine.plan import VMChange, build_plan, classify_vm
from reconciler.objects import obj_id


def vm(interfaces: list[str], hotplug: str = "", restart: str = "never") -> dict[str, Any]:
    annotations = {"virtnet.io/restart": restart, **({"virtnet.io/hotplug": hotplug} if hotplug else {})}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": "web", "namespace": "apps", "annotations": annotations},
        "spec": {
            "template": {
                "spec": {
                    "domain": {
                        "devices": {"interfaces": [{"name": n, "bridge": {}, "model": "virtio"} for n in interfaces]}
                    },
                    "networks": [{"name": n, "multus": {"networkName": n}} for n in interfaces],
                }
            }
        },
        "status": {"printableStatus": "Running", "ready": True},
    }


def test_marked_interface_is_plugged_live() -> None:
    kind, applied, reason = classify_vm(vm(["a", "b"], hotplug="b"), vm(["a"]), None)
    assert kind == VMChange.HOTPLUG and reason == "plug b"
    assert [i["name"] for i in applied["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]] == ["a", "b"]


def test_unmarked_interface_needs_a_restart_or_restarts_when_allowed() -> None:
    kind, _, reason = classify_vm(vm(["a", "b"]), vm(["a"]), None)
    assert kind == VMChange.RESTART_REQUIRED and reason == "interface b added without hotplug: true"
    kind, _, _ = classify_vm(vm(["a", "b"], restart="allowed"), vm(["a"]), None)
    assert kind == VMChange.RESTART


def test_unplug_of_a_marked_interface_keeps_it_absent_until_the_guest_lets_go() -> None:
    live = vm(["a", "b"], hotplug="b")
    kind, applied, _ = classify_vm(vm(["a"]), live, None)
    assert kind == VMChange.HOTPLUG
    interfaces = applied["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
    assert interfaces[-1] == {"name": "b", "bridge": {}, "model": "virtio", "state": "absent"}
    # next plan: the live VM carries the absent marker; while the guest still has b, keep it
    live_absent = copy.deepcopy(applied)
    live_absent["status"] = live["status"]
    vmi = {"status": {"interfaces": [{"name": "a"}, {"name": "b"}]}}
    _, still, reason = classify_vm(vm(["a"]), live_absent, vmi)
    assert still["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][-1]["state"] == "absent"
    assert reason == "unplug still in progress"
    _, done, _ = classify_vm(vm(["a"]), live_absent, {"status": {"interfaces": [{"name": "a"}]}})
    assert [i["name"] for i in done["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]] == ["a"]


def _owned_by(manager: str) -> dict[str, Any]:
    """A managedFields entry of ``manager`` owning the VM's atomic interface and network lists (an update)."""
    lists = {"f:domain": {"f:devices": {"f:interfaces": {}}}, "f:networks": {}}
    return {"manager": manager, "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": lists}}}}


@pytest.mark.parametrize(("manager", "blocked"), [("virt-controller", False), ("kubectl-edit", True)])
def test_only_virt_controllers_rewrite_of_the_lists_is_taken_back(manager: str, blocked: bool) -> None:
    owned = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "c"}
    live, desired = vm(["a"], hotplug="b"), vm(["a", "b"], hotplug="b")
    for obj in (live, desired):
        obj["metadata"]["labels"] = dict(owned)
    live["metadata"]["managedFields"] = [_owned_by(manager)]
    state = LiveState(owned={obj_id(live): live}, vmis={"apps/web": {"status": {"interfaces": [{"name": "a"}]}}})
    plan = build_plan([desired], state, "c")
    [item] = plan.changes
    assert bool(plan.errors) is blocked
    assert item.plugs == ("b",) and item.migrate
    assert bool(item.conflicts) is blocked and bool(item.take_back) is not blocked
    assert {c.manager for c in (*item.conflicts, *item.take_back)} == {manager}


def test_rollout_strategy_is_stage_unless_the_kubevirt_cr_says_live_update() -> None:
    assert rollout_strategy([]) == "Stage"  # no KubeVirt CR readable: migrate (harmless where not needed)
    assert rollout_strategy([{"spec": {}}]) == "Stage"
    assert rollout_strategy([{"spec": {"configuration": {"vmRolloutStrategy": "LiveUpdate"}}}]) == "LiveUpdate"
    assert rollout_strategy([{"spec": {"configuration": {"vmRolloutStrategy": "Stage"}}}]) == "Stage"
