"""The ``hotplug`` flag decides whether an interface change on a running VM is live or restart-class."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.engine.plan import VMChange, classify_vm


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
