"""Drift made by hand on a real (namespaced) node reaches the controller's plan, through the API.

The agent runs for real in a network namespace and publishes its NodeNetworkState to the API double
with its own Kubernetes client; ``virtnet plan`` then reads that state and shows the drift.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from repos import LAB_CLUSTER, lab_bridge, write_repo

from agent.conftest import Topo, ip
from reconciler.agent.api import KubeAgentApi
from reconciler.agent.netlink import Netlink
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.cli import main
from reconciler.testing import ApiDouble

NODE = {
    "name": "node-a",
    "labels": {"role": "worker"},
    "interfaces": [{"name": "ve1", "type": "ethernet", "state": "up", "mtu": 1500}],
}


@pytest.mark.netns
def test_hand_made_mtu_drift_shows_in_plan(topo: Topo, tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"cluster.yaml": LAB_CLUSTER, "bridge.yaml": lab_bridge(1500)}, base=False)
    with ApiDouble(controllers=("nmstate",), nodes=[NODE]) as api:
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        applied = CliRunner().invoke(main, ["apply", str(repo), "--kubeconfig", kubeconfig, "--timeout", "20"])
        assert applied.exit_code == 0, applied.output
        agent_api = KubeAgentApi(api.api_client(), lease_namespace="default")
        nl = Netlink(topo.node)
        enforced = run_once(AgentConfig(node="node-a", mode="enforce", netns=topo.node, probes=[]), nl, api=agent_api)
        assert enforced.error is None and nl.writes > 0
        ip("link", "set", "br1", "mtu", "1400", ns=topo.node)  # someone "fixes" the node by hand

        observed = run_once(
            AgentConfig(node="node-a", mode="observe", netns=topo.node), Netlink(topo.node), api=agent_api
        )
        assert [(i.interface, i.field, i.actual) for i in observed.drift] == [("br1", "mtu", 1400)]

        plan = CliRunner().invoke(main, ["plan", str(repo), "--kubeconfig", kubeconfig])
        assert plan.exit_code == 0, plan.output
        assert "node drift on node-a: br1 mtu is 1400, the policy wants 1500" in plan.output
