"""The node agent writes none of kubernetes-nmstate's objects: every API write of an observe pass, an enforce pass
and an observe pass that finds drift is listed, and each is a ConfigMap of its own or a slot Lease.

Why: ``NodeNetworkState <node>`` and ``NodeNetworkConfigurationEnactment <node>.<policy>`` are written by
nmstate's handler, and NNCP status is computed from them; a second writer would make nmstate report what the
agent saw. The agent runs for real (netlink in a network namespace, ``KubeAgentApi`` over HTTP) against the API
double with the simulated nmstate, which writes those objects as the real handler does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from repos import LAB_CLUSTER, lab_bridge, write_repo

from agent.conftest import Topo, ip
from reconciler import labels
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
AGENT_USER = "system:serviceaccount:virtnet-system:virtnet-agent"
WRITES = ("create", "update", "patch", "apply", "delete", "deletecollection")


@pytest.mark.netns
def test_every_agent_write_is_its_own_configmap_or_a_lease(topo: Topo, tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"cluster.yaml": LAB_CLUSTER, "bridge.yaml": lab_bridge(1500)}, base=False)
    with ApiDouble(controllers=("nmstate",), nodes=[NODE]) as api:
        api.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "virtnet-system"}})
        kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
        applied = CliRunner().invoke(main, ["apply", str(repo), "--kubeconfig", kubeconfig, "--timeout", "20"])
        assert applied.exit_code == 0, applied.output
        agent = KubeAgentApi(api.api_client(user=AGENT_USER), lease_namespace="virtnet-system")
        observe = AgentConfig(node="node-a", mode="observe", netns=topo.node)
        enforce = AgentConfig(node="node-a", mode="enforce", netns=topo.node, probes=[], check_capabilities=False)
        run_once(observe, Netlink(topo.node), api=agent)
        enforced = run_once(enforce, Netlink(topo.node), api=agent)
        assert enforced.error is None and enforced.writes > 0  # it did change the node
        ip("link", "set", "br1", "mtu", "1400", ns=topo.node)
        drifted = run_once(observe, Netlink(topo.node), api=agent)
        assert [(d.interface, d.field) for d in drifted.drift] == [("br1", "mtu")]

        writes = [r for r in api.requests if r.user == AGENT_USER and r.verb in WRITES and not r.dry_run]
        listed = sorted({(r.verb, r.resource, r.path.rsplit("/", 1)[-1]) for r in writes})
        assert listed == [
            ("apply", "configmaps", "virtnet-agent-node-a"),
            ("create", "coordination.k8s.io/leases", "leases"),
            ("delete", "coordination.k8s.io/leases", "virtnet-nncp-lab-br-0"),
        ], listed
        assert not [r for r in writes if "nmstate.io" in r.resource]

        # nmstate stays the only writer of its objects; the controller reads the drift from the agent's report
        nns = api.store.find("nmstate.io/v1beta1", "NodeNetworkState", "node-a")
        assert nns is not None and labels.AGENT not in {m["manager"] for m in nns["metadata"]["managedFields"]}
        assert labels.MANAGED_BY not in (nns["metadata"].get("labels") or {})
        plan = CliRunner().invoke(main, ["plan", str(repo), "--kubeconfig", kubeconfig])
        assert "node drift on node-a: br1 mtu is 1400, the policy wants 1500" in plan.output
