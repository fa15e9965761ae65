"""The blast radius of SR-IOV node policy changes: drains and reboots, their nodes and the SR-IOV VMs they stop
(pure, over examples/repo's render), and the plan text that shows them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.live import LiveState
from reconciler.engine.plan import build_plan
from reconciler.model import load_repo
from reconciler.objects import Obj, obj_id
from reconciler.output.safety import safety_markdown, safety_text
from reconciler.render import render
from reconciler.safety import analyze
from reconciler.safety.nodes import build_nodes
from reconciler.safety.sriov import disruption

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "repo"
MELLANOX = {"vendor": "15b3", "pfNames": ["ens5f0"]}
SRIOV_NODE = {"feature.node.kubernetes.io/network-sriov.capable": "true"}


def policy(**spec: Any) -> Obj:
    base = {"resourceName": "fastnet", "numVfs": 8, "deviceType": "vfio-pci", "nicSelector": {"pfNames": ["ens5f0"]}}
    return {"kind": "SriovNetworkNodePolicy", "metadata": {"name": "p"}, "spec": {**base, **spec}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"numVfs": 16}, "drain"),
        ({"deviceType": "netdevice"}, "drain"),
        ({"mtu": 9000}, "drain"),
        ({"nicSelector": {"pfNames": ["ens5f1"]}}, "drain"),
        ({"isRdma": True}, "reboot"),
        ({"linkType": "ib"}, "reboot"),
        ({"eSwitchMode": "switchdev"}, "reboot"),
        ({"numVfs": 16, "nicSelector": MELLANOX}, "reboot"),
        ({"resourceName": "other"}, "none"),
        ({"priority": 10}, "none"),
    ],
)
def test_which_fields_drain_or_reboot(change: dict[str, Any], expected: str) -> None:
    before = policy(nicSelector=MELLANOX) if change.get("nicSelector") == MELLANOX else policy()
    kind, why = disruption(before, policy(**change))
    assert kind == expected, why
    assert bool(why) == (expected != "none")


def test_new_and_deleted_policies_drain() -> None:
    assert disruption(None, policy())[0] == "drain"
    assert disruption(policy(), None)[0] == "drain"


def test_a_numvfs_change_names_its_nodes_and_the_sriov_vms_it_stops() -> None:
    desired = render(load_repo(EXAMPLES)).objects
    [pol] = [o for o in desired if o["kind"] == "SriovNetworkNodePolicy" and o["metadata"]["name"] == "fast-net"]
    live_pol = copy.deepcopy(pol)
    live_pol["spec"]["numVfs"] = 4  # the cluster has 4 VFs, the repository asks for 8
    owned = {obj_id(o): o for o in desired if "virtnet.io/cluster" in (o["metadata"].get("labels") or {})}
    owned[obj_id(pol)] = live_pol
    plan = build_plan(desired, LiveState(owned=owned), "prod")
    nodes = [{"metadata": {"name": f"worker-{i}", "labels": SRIOV_NODE}} for i in range(2)]
    nodes.append({"metadata": {"name": "master-0", "labels": {"node-role.kubernetes.io/master": ""}}})
    report = analyze(plan, build_nodes(nodes, []), desired)
    [impact] = report.sriov
    assert impact.disruption == "drain" and impact.why == ("numVfs 4 → 8",)
    assert impact.nodes == ("worker-0", "worker-1")
    assert impact.vms == ("nfv/vrouter-1",)
    assert report.as_dict()["sriovPolicies"][0]["disruption"] == "drain"
    text = safety_text(report)
    assert "drain of worker-0, worker-1 (numVfs 4 → 8); SR-IOV VMs stopped and started elsewhere: nfv/vrouter-1" in text
    assert "**drain**" in safety_markdown(report)
