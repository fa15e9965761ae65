"""publish.py: the agent's report ConfigMap, and the nmstate-shaped data and drift report inside it (pure)."""

from __future__ import annotations

import json

import pytest

from reconciler import labels
from reconciler.agent.drift import DriftItem
from reconciler.agent.publish import (
    condition_of,
    conditions,
    drift_report,
    enactment,
    node_network_state,
    node_report,
)

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T04:00:00Z"
POLICY = {
    "metadata": {"name": "br1-policy", "generation": 4, "uid": "u-1"},
    "spec": {"desiredState": {"interfaces": [{"name": "br1", "type": "linux-bridge"}]}},
}


def test_node_network_state() -> None:
    current = {"interfaces": [{"name": "eth0"}], "routes": {"running": []}}
    nns = node_network_state("node-a", current, NOW)
    assert nns["apiVersion"] == "nmstate.io/v1beta1" and nns["kind"] == "NodeNetworkState"
    assert nns["metadata"]["name"] == "node-a"
    assert nns["status"] == {"currentState": current, "lastSuccessfulUpdateTime": NOW}
    assert nns["metadata"] == {"name": "node-a", "labels": {"app.kubernetes.io/managed-by": "virtnet-agent"}}


def test_the_report_is_a_configmap_of_ours_carrying_what_the_controller_reads() -> None:
    report = drift_report("node-a", [DriftItem("br1", "mtu", 1500, 1400)], ["br1-policy"], NOW, "observe")
    nns = node_network_state("node-a", {"interfaces": [{"name": "br1"}]}, NOW)
    cm = node_report("node-a", "virtnet-system", nns, [enactment("node-a", POLICY, "Pending", "observe", NOW)], report)
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")  # not nmstate's kinds
    assert cm["metadata"]["name"] == "virtnet-agent-node-a" and cm["metadata"]["namespace"] == "virtnet-system"
    key, _, value = labels.AGENT_SELECTOR.partition("=")
    assert cm["metadata"]["labels"] == {key: value, labels.AGENT_NODE: "node-a"}
    assert cm["data"][labels.AGENT_DRIFT_KEY] == (
        '{"drift": [{"actual": 1400, "desired": 1500, "field": "mtu", "interface": "br1"}], '
        '"inSync": false, "mode": "observe", "node": "node-a", "policies": ["br1-policy"], '
        '"time": "2026-01-02T03:04:05Z"}'
    )
    assert json.loads(cm["data"]["state.json"]) == {"interfaces": [{"name": "br1"}]}
    policies = json.loads(cm["data"]["policies.json"])
    assert list(policies) == ["br1-policy"] and policies["br1-policy"]["policyGeneration"] == 4
    assert condition_of({"status": policies["br1-policy"]}) == "Pending"


def test_enactment_has_all_conditions_one_true() -> None:
    e = enactment("node-a", POLICY, "Failing", "probe failed", NOW)
    assert e["metadata"]["name"] == "node-a.br1-policy"
    assert e["kind"] == "NodeNetworkConfigurationEnactment" and e["apiVersion"] == "nmstate.io/v1beta1"
    conds = {c["type"]: c for c in e["status"]["conditions"]}
    assert set(conds) == {"Available", "Failing", "Progressing", "Pending", "Aborted"}
    assert conds["Failing"] == {"type": "Failing", "status": "True", "reason": "FailedToConfigure",
                                "message": "probe failed", "lastTransitionTime": NOW}  # fmt: skip
    assert all(c["status"] == "False" for t, c in conds.items() if t != "Failing")
    assert e["status"]["desiredState"] == POLICY["spec"]["desiredState"]
    assert e["status"]["policyGeneration"] == 4
    assert e["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert condition_of(e) == "Failing"
    assert condition_of(enactment("n", POLICY, "Pending", "m", NOW)) == "Pending"


def test_transition_time_moves_only_on_change() -> None:
    first = conditions("Available", "SuccessfullyConfigured", "ok", NOW)
    same = {c["type"]: c for c in conditions("Available", "SuccessfullyConfigured", "ok", LATER, first)}
    assert same["Available"]["lastTransitionTime"] == NOW
    flipped = {c["type"]: c for c in conditions("Failing", "FailedToConfigure", "x", LATER, first)}
    assert flipped["Available"]["lastTransitionTime"] == LATER
    assert flipped["Failing"]["lastTransitionTime"] == LATER
    assert flipped["Aborted"]["lastTransitionTime"] == NOW
    with pytest.raises(ValueError):
        conditions("Degraded", "r", "m", NOW)


def test_drift_report() -> None:
    rep = drift_report("node-a", [DriftItem("br1", "mtu", 1500, 1400)], ["b", "a"], NOW, "observe")
    assert rep == {
        "node": "node-a",
        "mode": "observe",
        "time": NOW,
        "policies": ["a", "b"],
        "inSync": False,
        "drift": [{"interface": "br1", "field": "mtu", "desired": 1500, "actual": 1400}],
    }
    assert drift_report("n", [], [], NOW, "enforce")["inSync"] is True


def test_a_long_node_name_still_gives_a_valid_unique_name_and_label() -> None:
    """Node names are DNS subdomains of up to 253 characters: a plain cut could end in "." or "-" (the agent's
    only write refused every pass) or make two nodes one."""
    from reconciler.render.syntax import dns_subdomain, label_value

    stem = "worker-" + "a" * 49 + "." + "b" * 185  # 242 characters: the label cut would end on the "."
    nodes = [stem + ".x1", stem + ".x2"]
    reports = [node_report(n, "virtnet-system", {}, [], {}) for n in nodes]
    names = [r["metadata"]["name"] for r in reports]
    values = [r["metadata"]["labels"][labels.AGENT_NODE] for r in reports]
    assert len(set(names)) == 2 and len(set(values)) == 2
    for name, value in zip(names, values, strict=True):
        assert dns_subdomain(name) is None  # None: no problem
        assert label_value(value) is None
    assert [r["data"]["node"] for r in reports] == nodes  # the whole name, for the controller
