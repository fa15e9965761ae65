"""runner.py: one pass with a fake AgentApi (slots, publishing), maxUnavailable, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.agent import cli as agent_cli
from reconciler.agent import nodelock
from reconciler.agent.api import acquire_slot, lease_name
from reconciler.agent.netlink import Netlink
from reconciler.agent.nodelock import NodeLock
from reconciler.agent.publish import condition_of
from reconciler.agent.runner import AgentConfig, run_loop, run_once
from tests.agent.conftest import Topo, ip_json
from tests.agent.test_enforce import nncp


class FakeApi:
    """An in-memory :class:`~reconciler.agent.api.AgentApi`: what it applied, which slot leases it holds."""

    def __init__(self, policies: list[dict[str, Any]], labels: dict[str, str], nodes: int = 4) -> None:
        self.policies = policies
        self.labels = labels
        self.nodes = nodes
        self.leases: dict[str, str] = {}
        self.applied: list[dict[str, Any]] = []
        self.lease_log: list[str] = []
        self.namespace = "virtnet-system"

    def list_policies(self) -> list[dict[str, Any]]:
        return self.policies

    def node_labels(self, node: str) -> dict[str, str]:
        return self.labels

    def count_nodes(self, selector: Mapping[str, str]) -> int:
        return self.nodes

    def apply(self, obj: dict[str, Any]) -> None:
        self.applied.append(obj)

    def try_lease(self, name: str, holder: str, ttl: int) -> bool:
        if self.leases.get(name, holder) != holder:
            return False
        self.leases[name] = holder
        self.lease_log.append(f"take {name}")
        return True

    def release_lease(self, name: str, holder: str) -> None:
        if self.leases.get(name) == holder:
            del self.leases[name]
            self.lease_log.append(f"release {name}")


def test_acquire_slot_takes_a_free_lease() -> None:
    c = FakeApi([], {})
    c.leases[lease_name("p", 0)] = "other-node"
    assert acquire_slot(c, "p", "me", 2) == "virtnet-nncp-p-1"
    assert acquire_slot(c, "p", "third", 2) is None


BR = [{"name": "br1", "type": "linux-bridge", "bridge": {"options": {"stp": {"enabled": False}},
                                                         "port": [{"name": "ve1"}]}}]  # fmt: skip


@pytest.mark.netns
def test_enforce_pass_takes_and_releases_a_slot_and_publishes(topo: Topo) -> None:
    policy = nncp("br", BR, nodeSelector={"role": "worker"}, maxUnavailable=1)
    other = nncp("other", [{"name": "brx", "type": "linux-bridge"}], nodeSelector={"role": "infra"})
    c = FakeApi([policy, other], {"role": "worker"})
    cfg = AgentConfig(node="node-a", mode="enforce", netns=topo.node, api_server=topo.api, probe_timeout=3.0)
    with Netlink(topo.node) as nl:
        res = run_once(cfg, nl, api=c)
    assert res.policies == ["br"]
    assert c.lease_log == ["take virtnet-nncp-br-0", "release virtnet-nncp-br-0"] and c.leases == {}
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in c.applied] == [
        ("ConfigMap", "virtnet-system", "virtnet-agent-node-a"),
    ]
    data = c.applied[0]["data"]
    assert any(i["name"] == "br1" for i in json.loads(data["state.json"])["interfaces"])
    assert condition_of({"status": json.loads(data["policies.json"])["br"]}) == "Available"
    assert res.drift_report["inSync"] is True
    assert {link["ifname"]: link.get("master") for link in ip_json(topo.node, "link", "show")}["ve1"] == "br1"


@pytest.mark.netns
def test_no_free_slot_means_pending_and_no_writes(topo: Topo) -> None:
    policy = nncp("br", BR, maxUnavailable=1)
    c = FakeApi([policy], {})
    c.leases[lease_name("br", 0)] = "node-b"
    with Netlink(topo.node) as nl:
        res = run_once(AgentConfig(node="node-a", mode="enforce", netns=topo.node), nl, api=c)
        assert nl.writes == 0
    nnce = res.nnces[0]
    assert condition_of(nnce) == "Pending"
    pending = next(x for x in nnce["status"]["conditions"] if x["type"] == "Pending")
    assert pending["reason"] == "MaxUnavailableLimitReached"


@pytest.mark.netns
def test_invalid_max_unavailable_fails_the_policy_before_any_slot_or_write(topo: Topo) -> None:
    c = FakeApi([nncp("br", BR, maxUnavailable="half")], {})
    with Netlink(topo.node) as nl:
        res = run_once(AgentConfig(node="node-a", mode="enforce", netns=topo.node), nl, api=c)
        assert nl.writes == 0
    assert c.lease_log == []
    assert res.outcomes["br"].status == "Failing"
    assert res.outcomes["br"].message == (
        "malformed policy, not applied: spec.maxUnavailable: maxUnavailable 'half' is not a number of nodes "
        "(such as 2) or a percentage of them (such as '25%')"
    )
    [report] = c.applied
    assert report["kind"] == "ConfigMap"
    assert condition_of({"status": json.loads(report["data"]["policies.json"])["br"]}) == "Failing"


@pytest.mark.netns
def test_observe_mode_never_writes(topo: Topo) -> None:
    with Netlink(topo.node) as nl:
        res = run_once(AgentConfig(node="node-a"), nl, policies=[nncp("br", BR)], node_labels={})
        assert nl.writes == 0
    assert res.drift_report["inSync"] is False
    assert {(r["interface"], r["field"]) for r in res.drift_report["drift"]} >= {
        ("br1", "exists"),
        ("ve1", "controller"),
    }


@pytest.mark.netns
def test_conflicting_policies_are_reported(topo: Topo) -> None:
    p1 = nncp("p1", [{"name": "ve1", "mtu": 1400}])
    p2 = nncp("p2", [{"name": "ve1", "mtu": 1500}])
    with Netlink(topo.node) as nl:
        res = run_once(AgentConfig(node="node-a"), nl, policies=[p1, p2], node_labels={})
    assert res.error is not None and "disagree on ve1.mtu" in res.error
    assert "disagree" in res.drift_report["error"]


@pytest.mark.netns
def test_run_loop_survives_a_failing_pass_and_stops(topo: Topo) -> None:
    seen: list[int] = []
    calls = {"n": 0}

    def policies() -> list[dict[str, Any]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("API down")
        return [nncp("br", BR)]

    run_loop(
        AgentConfig(node="node-a", netns=topo.node),
        lambda: Netlink(topo.node),
        interval=0,
        policies=policies,
        node_labels={},
        on_pass=lambda r: seen.append(r.writes),
        stop=lambda: calls["n"] >= 3,
        sleep=lambda s: None,
    )
    assert calls["n"] == 3 and seen == [0, 0]


@pytest.mark.netns
def test_cli_once_from_repo(topo: Topo, monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}

    def fake_repo(path: str, cluster: str | None) -> list[dict[str, Any]]:
        got.update(path=path, cluster=cluster)
        return [nncp("br", BR, nodeSelector={"role": "worker"})]

    monkeypatch.setattr(agent_cli, "policies_from_repo", fake_repo)
    args = ["--node", "n1", "--netns", topo.node, "--from-repo", ".", "--cluster", "prod", "--once",
            "--node-labels", "role=worker,zone=a", "--probe", f"{topo.api[0]}:{topo.api[1]}"]  # fmt: skip
    r = CliRunner().invoke(agent_cli.agent_command, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["mode"] == "observe" and out["writes"] == 0 and out["policies"] == ["br"]
    assert out["enactments"] == {"n1.br": "Pending"}
    assert got == {"path": ".", "cluster": "prod"}

    r = CliRunner().invoke(agent_cli.agent_command, [*args, "--mode", "enforce"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["enactments"] == {"n1.br": "Available"} and out["inSync"] is True and out["writes"] > 0


def test_cli_rejects_bad_labels_and_targets() -> None:
    r = CliRunner().invoke(agent_cli.agent_command, ["--node", "n", "--from-repo", ".", "--node-labels", "x"])
    assert r.exit_code != 0 and "is not key=value" in r.output
    r = CliRunner().invoke(agent_cli.agent_command, ["--node", "n", "--from-repo", ".", "--probe", "nope"])
    assert r.exit_code != 0 and "is not host:port" in r.output


@pytest.mark.netns
def test_cli_once_refuses_while_another_agent_holds_the_node_lock(topo: Topo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_cli, "policies_from_repo", lambda path, cluster: [nncp("br", BR)])
    args = ["--node", "n1", "--netns", topo.node, "--from-repo", ".", "--once", "--mode", "enforce", "--lock-wait", "0"]
    with NodeLock(nodelock.LOCK_DIR, "n1", topo.node):  # the session's lock directory (conftest)
        r = CliRunner().invoke(agent_cli.agent_command, args)
    assert r.exit_code == 1, r.output
    out = json.loads(r.output)
    assert "another agent is enforcing on node n1" in out["error"] and out["writes"] == 0 and out["enactments"] == {}
    assert "br1" not in {link["ifname"] for link in ip_json(topo.node, "link", "show")}
    r = CliRunner().invoke(agent_cli.agent_command, args)
    assert r.exit_code == 0 and json.loads(r.output)["enactments"] == {"n1.br": "Available"}
