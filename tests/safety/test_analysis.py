"""Safety analysis end to end: a repository change → ``virtnet plan`` against the API double → the message
(with ``file:line``) in the plan text and in the Markdown PR comment; blast radius of an examples/repo change;
``--accept-risk`` and the Cluster annotation letting a blocked plan through.

Node shapes (given to the simulated nmstate controller): the demo cluster (three workers whose eth0 carries
the default route and node IP, three control-plane nodes), workers with a single NIC, workers with a bond
that already exists and carries the node IP, and workers where a NIC is missing on some nodes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler import pipeline
from reconciler.agent import safety as agent_safety
from reconciler.agent.steps import Op, Step
from reconciler.cli import main
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.nmstate import max_unavailable
from reconciler.pipeline import reconcile
from reconciler.safety import batches
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, node, seed_hyperconverged
from tests.repos import write_repo
from tests.safety.test_nodes import bonded_node

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "repo"
FAST = ApplyOptions(poll=0.02, timeout=10)
WORKER = {"node-role.kubernetes.io/worker": ""}


def cluster(annotation: str | None = None) -> str:
    meta = f'  annotations:\n    virtnet.io/accept-risk: "{annotation}"\n' if annotation else ""
    return (
        "apiVersion: virtnet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: test\n"
        + meta
        + "spec:\n  allowedNamespaces: [apps]\n"
    )


def doc(kind: str, name: str, spec: str) -> str:
    return f"apiVersion: virtnet.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}"


def bridge_net(name: str, bridge: str, extra: str = "") -> str:
    spec = f'  bridge: {bridge}\n  nodeSelector:\n    node-role.kubernetes.io/worker: ""\n  namespaces: [apps]\n'
    return doc("BridgeNetwork", name, spec + extra)


def repo_of(tmp: Path, files: dict[str, str], annotation: str | None = None) -> Path:
    return write_repo(tmp / "repo", {"cluster.yaml": cluster(annotation), **files}, base=False)


def line_of(repo: Path, file: str, needle: str) -> int:
    lines = (repo / file).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def workers(n: int, nics: tuple[str, ...] = ("eth0", "eth1")) -> list[dict[str, Any]]:
    return [node(f"worker-{i}", i, WORKER, nics) for i in range(n)]


@pytest.fixture
def double() -> Iterator[Any]:
    """Start an API double for a node shape; yields a function nodes -> (api, kubeconfig path)."""
    started: list[ApiDouble] = []

    def start(nodes: list[dict[str, Any]], tmp: Path, kubevirt: bool = False) -> tuple[ApiDouble, Path]:
        api = ApiDouble(controllers=("nmstate", "kubevirt") if kubevirt else ("nmstate",), nodes=nodes).start()
        started.append(api)
        return api, api.kubeconfig(tmp / "kubeconfig")

    yield start
    for api in started:
        api.stop()


def plan(repo: Path, kubeconfig: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["plan", str(repo), "--kubeconfig", str(kubeconfig), *args])


def markdown(repo: Path, kubeconfig: Path, *args: str) -> str:
    return plan(repo, kubeconfig, "-o", "markdown", *args).stdout


# ---------------------------------------------------------------------------------------------- a. disconnect
def test_single_nic_carrying_the_default_route_put_into_a_bridge_blocks_the_plan(double: Any, tmp_path: Path) -> None:
    api, kc = double(workers(2, ("eth0",)), tmp_path)
    repo = repo_of(tmp_path, {"networks/pub.yaml": bridge_net("pub", "br0", "  uplink:\n    nic: eth0\n")})
    where = f"networks/pub.yaml:{line_of(repo, 'networks/pub.yaml', 'nic: eth0')}"
    result = plan(repo, kc)
    assert result.exit_code == 1, result.output
    expected = (
        f"error [disconnect] {where}: would disconnect node worker-0: eth0 carries the default route via "
        "192.0.2.1 and the node IP 192.0.2.10 and would become a port of bridge br0 (policy pub)"
    )
    assert expected in result.stdout
    assert "would disconnect node worker-1" in result.stdout
    assert result.stderr == (
        "PlanBlocked: 2 safety error(s) above block apply; nothing was changed (fix them, or accept with "
        '--accept-risk or the Cluster annotation virtnet.io/accept-risk: "disconnect")\n'
    )
    assert result.output.count("would disconnect node worker-0") == 1  # once, not again in the failure
    md = markdown(repo, kc)
    assert "#### :x: Safety: 2 error(s) block apply" in md
    assert f"- **disconnect** `{where}`: would disconnect node worker-0: eth0 carries" in md
    assert "(node `worker-0`, interface `eth0`)" in md
    assert 'virtnet.io/accept-risk: "disconnect"' in md
    assert "```mermaid" in md and "classDef risk" in md
    assert api.counts[("apply", "nmstate.io/nodenetworkconfigurationpolicies")] == 0
    data = json.loads(plan(repo, kc, "-o", "json").stdout)
    assert [(f["check"], f["node"], f["line"]) for f in data["safety"]["findings"]] == [
        ("disconnect", "worker-0", int(where.rsplit(":", 1)[1])),
        ("disconnect", "worker-1", int(where.rsplit(":", 1)[1])),
    ]
    assert data["safety"]["blocking"] == 2 and data["safety"]["policies"][0]["nodeCount"] == 2


STEP = [Step(Op.ATTACH_PORT, "bond0", {"controller": "br0"})]


def test_agent_precheck_on_a_recorded_state_without_a_kernel() -> None:
    """The agent's precheck (reconciler/agent/safety.py) on a bonded node's currentState, no netns needed."""
    n = bonded_node()
    state = {"interfaces": n["interfaces"], "routes": n["routes"]}
    bridge: dict[str, Any] = {"name": "br0", "type": "linux-bridge", "bridge": {"port": [{"name": "bond0"}]}}
    refused = agent_safety.precheck_for(
        {"metadata": {"name": "p"}, "spec": {"desiredState": {"interfaces": [bridge]}}}, "worker-0"
    )(state, STEP)
    assert refused == [
        "[disconnect] would disconnect node worker-0: bond0 carries the default route via 198.51.100.1 and the node "
        "IP 198.51.100.7 and would become a port of bridge br0 (policy p), but br0 gets no matching address or "
        "DHCP; move the IP configuration to br0 or use another NIC"
    ]
    bridge["ipv4"] = {"enabled": True, "dhcp": False, "address": [{"ip": "198.51.100.7", "prefix-length": 24}]}
    policy = {"metadata": {"name": "p"}, "spec": {"desiredState": {"interfaces": [bridge]}}}
    assert agent_safety.precheck_for(policy, "worker-0")(state, STEP) == []


def test_existing_bond_carrying_the_node_ip_redeclared_without_its_address(double: Any, tmp_path: Path) -> None:
    _, kc = double([bonded_node("worker-0"), bonded_node("worker-1")], tmp_path)
    bonds = '  nodeSelector:\n    node-role.kubernetes.io/worker: ""\n'
    bonds += "  bonds:\n    - name: bond0\n      nics: [eth1, eth2]\n"
    repo = repo_of(tmp_path, {"nodes/bond.yaml": doc("NodeNetwork", "uplinks", bonds)})
    result = plan(repo, kc)
    assert result.exit_code == 1
    assert (
        "would disconnect node worker-0: bond0 carries the default route via 198.51.100.1 and the node IP "
        "198.51.100.7 and policy uplinks removes its address"
    ) in result.stdout


# --------------------------------------------------------------------------------------------- b. missing NIC
def test_nic_missing_on_some_nodes_lists_those_nodes(double: Any, tmp_path: Path) -> None:
    nodes = [
        node("worker-0", 0, WORKER, ("eth0", "eth9")),
        *[node(f"worker-{i}", i, WORKER, ("eth0",)) for i in (1, 2)],
    ]
    _, kc = double(nodes, tmp_path)
    repo = repo_of(tmp_path, {"networks/lab.yaml": bridge_net("lab", "br9", "  uplink:\n    nic: eth9\n")})
    where = f"networks/lab.yaml:{line_of(repo, 'networks/lab.yaml', 'nic: eth9')}"
    result = plan(repo, kc)
    assert result.exit_code == 1
    assert f"error [missing-nic] {where}: would go Degraded on worker-1, worker-2: eth9 missing" in result.stdout
    assert "worker-0:" not in result.stdout.split("[missing-nic]")[1].split("\n")[0]
    assert f"- **missing-nic** `{where}`: would go Degraded on worker-1, worker-2: eth9 missing" in markdown(repo, kc)


def test_a_nic_the_policy_tunes_is_not_created_by_it(double: Any, tmp_path: Path) -> None:
    """An uplink with an MTU is also listed as ``type: ethernet`` in the policy; that tunes a NIC, it does not
    make one: a NIC no node has is still missing (and the blast radius does not claim to create it)."""
    _, kc = double(workers(2, ("eth0",)), tmp_path)
    spec = "  mtu: 9000\n  uplink:\n    nic: eth9\n"
    repo = repo_of(tmp_path, {"networks/lab.yaml": bridge_net("lab", "br9", spec)})
    result = plan(repo, kc)
    assert result.exit_code == 1, result.output
    assert "error [missing-nic]" in result.stdout and "worker-0, worker-1: eth9 missing" in result.stdout
    assert "create ethernet eth9" not in result.stdout
    assert "eth9: missing on the node (ethernet is not created by a policy)" in result.stdout


# ------------------------------------------------------------------------------------------ c. already enslaved
def test_port_of_an_unmanaged_bond_is_a_warning_only(double: Any, tmp_path: Path) -> None:
    _, kc = double([bonded_node("worker-0")], tmp_path)
    repo = repo_of(tmp_path, {"networks/lab.yaml": bridge_net("lab", "br2", "  uplink:\n    nic: eth2\n")})
    where = f"networks/lab.yaml:{line_of(repo, 'networks/lab.yaml', 'nic: eth2')}"
    result = plan(repo, kc)
    assert result.exit_code == 2, result.output  # changes, not blocked
    assert (
        f"warning [enslaved] {where}: eth2 on worker-0 is already a port of bond0, which policy lab does not manage"
    ) in result.stdout
    md = markdown(repo, kc)
    assert "#### :warning: Safety warnings" in md and f"- **enslaved** `{where}`: eth2 on worker-0" in md


# ------------------------------------------------------------------------------------------------------ d. MTU
def test_vlan_mtu_above_its_parent_and_nad_mtu_above_the_bridge(double: Any, tmp_path: Path) -> None:
    nodes = workers(2)
    for n in nodes:
        n["interfaces"][1]["mtu"] = 1500  # eth1: no jumbo frames on these nodes
    _, kc = double(nodes, tmp_path)
    vlans = (
        '  nodeSelector:\n    node-role.kubernetes.io/worker: ""\n'
        "  vlans:\n    - base: eth0\n      id: 10\n      mtu: 9000\n"
    )
    repo = repo_of(
        tmp_path,
        {
            "nodes/vlan.yaml": doc("NodeNetwork", "v10", vlans),
            "networks/lan.yaml": bridge_net("lan", "br1", "  uplink:\n    nic: eth1\n")
            + "---\n"
            + bridge_net("jumbo", "br1", "  mtu: 9000\n  vlan: 5\n"),
        },
    )
    vlan_where = f"nodes/vlan.yaml:{line_of(repo, 'nodes/vlan.yaml', 'mtu: 9000')}"
    nad_where = f"networks/lan.yaml:{line_of(repo, 'networks/lan.yaml', 'mtu: 9000')}"
    result = plan(repo, kc)
    assert result.exit_code == 1
    assert (
        f"error [mtu] {vlan_where}: VLAN eth0.10 MTU 9000 is above its parent eth0's MTU 1500 on worker-0"
    ) in result.stdout
    assert (
        f"error [mtu] {nad_where}: NetworkAttachmentDefinition/apps/jumbo has MTU 9000 but bridge br1 has a lower "
        "MTU on worker-0 (1500), worker-1 (1500)"
    ) in result.stdout
    md = markdown(repo, kc)
    assert f"- **mtu** `{vlan_where}`: VLAN eth0.10 MTU 9000" in md
    assert f"- **mtu** `{nad_where}`: NetworkAttachmentDefinition/apps/jumbo has MTU 9000" in md


# ------------------------------------------------------------------------- e. zero nodes and the control plane
def test_policy_selecting_no_node_is_a_warning(double: Any, tmp_path: Path) -> None:
    _, kc = double(workers(1), tmp_path)
    spec = "  nodeSelector:\n    zone: nowhere\n  vlans:\n    - base: eth1\n      id: 20\n"
    repo = repo_of(tmp_path, {"nodes/v20.yaml": doc("NodeNetwork", "v20", spec)})
    where = f"nodes/v20.yaml:{line_of(repo, 'nodes/v20.yaml', 'nodeSelector')}"
    result = plan(repo, kc)
    assert result.exit_code == 2
    assert f"warning [no-nodes] {where}: policy v20 selects no node (nodeSelector zone=nowhere)" in result.stdout
    assert f"- **no-nodes** `{where}`: policy v20 selects no node" in markdown(repo, kc)


CONTROL_PLANE_VLAN = (
    '  nodeSelector:\n    node-role.kubernetes.io/control-plane: ""\n{extra}  vlans:\n    - base: eth0\n      id: 30\n'
)


def test_all_control_plane_nodes_in_one_batch_break_quorum(double: Any, tmp_path: Path) -> None:
    _, kc = double(demo_nodes(), tmp_path)
    repo = repo_of(tmp_path, {"nodes/cp.yaml": doc("NodeNetwork", "cp-vlan", CONTROL_PLANE_VLAN.format(extra=""))})
    where = f"nodes/cp.yaml:{line_of(repo, 'nodes/cp.yaml', 'nodeSelector')}"
    result = plan(repo, kc)
    assert result.exit_code == 1
    assert (
        f"error [control-plane] {where}: policy cp-vlan may reconfigure 2 of 3 control-plane nodes at once "
        "(maxUnavailable 50% → batches of 2); etcd keeps quorum with at most 1 down"
    ) in result.stdout
    assert "batches [master-0, master-1] → [master-2]" in result.stdout
    assert f"- **control-plane** `{where}`: policy cp-vlan may reconfigure 2 of 3" in markdown(repo, kc)


def test_one_control_plane_node_at_a_time_is_fine(double: Any, tmp_path: Path) -> None:
    _, kc = double(demo_nodes(), tmp_path)
    spec = CONTROL_PLANE_VLAN.format(extra="  maxUnavailable: 1\n")
    repo = repo_of(tmp_path, {"nodes/cp.yaml": doc("NodeNetwork", "cp-vlan", spec)})
    result = plan(repo, kc)
    assert result.exit_code == 2, result.output
    assert "[control-plane]" not in result.stdout
    assert "batches [master-0] → [master-1] → [master-2]" in result.stdout


# ------------------------------------------------------------------------------------------- f. network in use
RAW_VM = """\
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: legacy-vm
  namespace: apps
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices:
          interfaces:
            - {name: default, masquerade: {}}
{iface}      networks:
        - {name: default, pod: {}}
{net}"""
LEGACY_IFACE = "            - {name: legacy, bridge: {}}\n"
LEGACY_NET = "        - {name: legacy, multus: {networkName: legacy}}\n"


def in_use_repo(tmp: Path, legacy: bool, vm_uses_it: bool) -> Path:
    files = {
        "networks/lan.yaml": bridge_net("lan", "br1", "  uplink:\n    nic: eth1\n"),
        "networks/legacy.yaml": bridge_net("legacy", "br1", "  vlan: 300\n") if legacy else None,
        "manifests/vm.yaml": RAW_VM.replace("{iface}", LEGACY_IFACE if vm_uses_it else "").replace(
            "{net}", LEGACY_NET if vm_uses_it else ""
        ),
    }
    root = tmp / "repo"
    (root / "networks" / "legacy.yaml").unlink(missing_ok=True)
    return write_repo(
        root, {"cluster.yaml": cluster(), **{k: v for k, v in files.items() if v is not None}}, base=False
    )


def test_removing_a_network_a_running_vm_uses_is_blocked_unless_the_vm_lets_go(double: Any, tmp_path: Path) -> None:
    api, kc = double(workers(2), tmp_path, kubevirt=True)
    kube = Kube(api.api_client())
    first = reconcile(in_use_repo(tmp_path, legacy=True, vm_uses_it=True), kube, apply_options=FAST)
    assert first.ok, first.message
    repo = in_use_repo(tmp_path, legacy=False, vm_uses_it=True)
    where = f"manifests/vm.yaml:{line_of(repo, 'manifests/vm.yaml', 'networkName: legacy')}"
    result = plan(repo, kc)
    assert result.exit_code == 1, result.output
    assert (
        f"error [in-use] {where}: VirtualMachine/apps/legacy-vm still uses apps/legacy through interface legacy, "
        "but the plan removes NetworkAttachmentDefinition/apps/legacy"
    ) in result.stdout
    assert f"- **in-use** `{where}`: VirtualMachine/apps/legacy-vm still uses apps/legacy" in markdown(repo, kc)
    # the same removal together with the VM's interface (hot-unplug) is safe
    repo = in_use_repo(tmp_path, legacy=False, vm_uses_it=False)
    result = plan(repo, kc)
    assert result.exit_code == 2, result.output
    assert "[in-use]" not in result.stdout
    # the VM is still listed on the removed network, with how the plan changes it (KubeVirt's classification)
    assert (
        "NetworkAttachmentDefinition/apps/legacy (delete, via NAD apps/legacy): VMs apps/legacy-vm (" in result.stdout
    )


# ---------------------------------------------------------------------------------------------- acceptance
def policy_writes(api: ApiDouble) -> int:
    """NNCP applies the server stored (plan-time dry runs excluded)."""
    return sum(
        1
        for r in api.requests
        if r.resource == "nmstate.io/nodenetworkconfigurationpolicies" and r.verb == "apply" and not r.dry_run
    )


def test_accept_risk_flag_and_cluster_annotation_let_a_blocked_plan_through(double: Any, tmp_path: Path) -> None:
    api, kc = double(workers(1, ("eth0",)), tmp_path)
    files = {"networks/pub.yaml": bridge_net("pub", "br0", "  uplink:\n    nic: eth0\n")}
    repo = repo_of(tmp_path, files)
    apply = CliRunner().invoke(main, ["apply", str(repo), "--kubeconfig", str(kc), "--timeout", "10"])
    assert apply.exit_code == 1 and "PlanBlocked" in apply.stderr
    assert policy_writes(api) == 0  # errors block apply

    accepted = plan(repo, kc, "--accept-risk")
    assert accepted.exit_code == 2, accepted.output
    assert "accepted error [disconnect]" in accepted.stdout and "risks accepted by --accept-risk" in accepted.stdout
    assert "_(accepted)_" in markdown(repo, kc, "--accept-risk")

    other = repo_of(tmp_path, files, annotation="mtu")
    assert plan(other, kc).exit_code == 1  # accepting another check does not help
    annotated = repo_of(tmp_path, files, annotation="disconnect, mtu")
    result = plan(annotated, kc)
    assert result.exit_code == 2, result.output
    assert f"risks accepted by cluster.yaml:{line_of(annotated, 'cluster.yaml', 'accept-risk')}" in result.stdout

    apply = CliRunner().invoke(main, ["apply", str(repo), "--kubeconfig", str(kc), "--timeout", "10", "--accept-risk"])
    assert apply.exit_code == 0, apply.output
    assert policy_writes(api) == 1


# ------------------------------------------------------------------------------ blast radius on examples/repo
@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[ApiDouble, Kube, Path]]:
    repo = Path(shutil.copytree(EXAMPLES, tmp_path / "repo"))
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes()) as api:
        seed_hyperconverged(api.store)
        kube = Kube(api.api_client())
        outcome = reconcile(repo, kube, apply_options=FAST)
        assert outcome.ok, outcome.message
        yield api, kube, repo


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def count_node_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the safety hook's reads of node facts (the pipeline also lists agent NodeNetworkStates itself)."""
    calls: list[int] = []
    real = pipeline.read_nodes

    def counted(kube: Kube) -> Any:
        calls.append(1)
        return real(kube)

    monkeypatch.setattr(pipeline, "read_nodes", counted)
    return calls


def test_no_op_plan_reads_no_nodes(demo: tuple[ApiDouble, Kube, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    api, kube, repo = demo
    reads = count_node_reads(monkeypatch)
    api.reset_counts()
    outcome = reconcile(repo, kube, apply=False)
    assert outcome.ok and outcome.plan is not None and not outcome.plan.has_changes
    assert reads == [] and api.counts[("list", "nodes")] == 0
    assert outcome.safety is not None and outcome.safety.empty


def test_a_vm_change_reads_no_nodes(demo: tuple[ApiDouble, Kube, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """No node check looks at a VM: a one-VM commit lists neither Nodes nor NodeNetworkStates."""
    api, kube, repo = demo
    edit(repo / "vms/db.yaml", "cpu: 4", "cpu: 6")
    reads = count_node_reads(monkeypatch)
    api.reset_counts()
    outcome = reconcile(repo, kube, apply=False)
    assert outcome.ok and outcome.plan is not None and len(outcome.plan.changes) == 1, outcome.message
    assert reads == [] and api.counts[("list", "nodes")] == 0
    assert outcome.safety is not None and outcome.safety.note == ""


def test_blast_radius_of_the_vlan100_mtu_change(
    demo: tuple[ApiDouble, Kube, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, kube, repo = demo
    edit(repo / "networks/vlan-bridges.yaml", "mtu: 1500", "mtu: 9000")
    reads = count_node_reads(monkeypatch)
    api.reset_counts()
    outcome = reconcile(repo, kube, apply=False)
    assert outcome.ok, outcome.message
    assert reads == [1] and api.counts[("list", "nodes")] == 1
    report = outcome.safety
    assert report is not None and report.findings == ()
    (policy,) = report.policies
    assert policy.name == "vlan100" and policy.nodes == ("worker-0", "worker-1", "worker-2")
    assert policy.batches == (("worker-0", "worker-1"), ("worker-2",))
    assert policy.interfaces["worker-2"] == ("eth1: mtu 1500 → 9000", "br1: mtu 1500 → 9000")
    vms = {n.name: {v.name: v.impact for v in n.vms} for n in report.networks}
    assert vms["NetworkAttachmentDefinition/apps/vlan100"] == {"apps/web-1": "next-start"}
    assert vms["NetworkAttachmentDefinition/db/vlan100"] == {"db/db-1": "next-start"}
    # the bridge is shared with vlan200, so web-2 feels the bridge MTU change too
    assert vms["NodeNetworkConfigurationPolicy/vlan100"] == {
        "apps/web-1": "in-place",
        "apps/web-2": "in-place",
        "db/db-1": "in-place",
    }


def test_blast_radius_classifies_hot_plug_and_restart_and_lists_services(
    demo: tuple[ApiDouble, Kube, Path], tmp_path: Path
) -> None:
    api, _, repo = demo
    edit(repo / "networks/vlan-bridges.yaml", "mtu: 1500", "mtu: 9000")
    back = "    - network: vlan200\n      name: back\n      hotplug: true\n"
    edit(
        repo / "vms/web.yaml",
        "    - network: tenant-l2\n      hotplug: true\n",
        "    - network: tenant-l2\n      hotplug: true\n" + back,
    )
    edit(repo / "vms/db.yaml", "ipv4: 192.168.100.21/24", "ipv4: 192.168.100.22/24")
    kc = api.kubeconfig(tmp_path / "kubeconfig")
    result = plan(repo, kc)
    assert result.exit_code == 2, result.output
    text = result.stdout
    assert (
        "NodeNetworkConfigurationPolicy/vlan100 (update): 3 node(s) worker-0, worker-1, worker-2; "
        "maxUnavailable 50% (default) → batches [worker-0, worker-1] → [worker-2]"
    ) in text
    assert "worker-0, worker-1, worker-2: eth1: mtu 1500 → 9000; br1: mtu 1500 → 9000" in text
    assert "NetworkAttachmentDefinition/apps/vlan100 (update, via NAD apps/vlan100): VMs apps/web-1 (hot-plug)" in text
    assert "NetworkAttachmentDefinition/db/vlan100 (update, via NAD db/vlan100): VMs db/db-1 (restart-required)" in text
    assert "Service/db/db-1-svc: endpoints change (db/db-1: VM needs a restart" in text
    md = markdown(repo, kc)
    assert "<details><summary>Blast radius</summary>" in md  # collapsed
    assert (
        "| `vlan100` | update | 3: `worker-0`, `worker-1`, `worker-2` | [worker-0, worker-1] → [worker-2] "
        "(maxUnavailable 50% (default)) |"
    ) in md
    assert "| `NetworkAttachmentDefinition/db/vlan100` | update | NAD db/vlan100 | db/db-1 (restart-required) |" in md
    assert "  class vm_db_db_1 risk;" in md  # the VM that must restart is marked in the picture


def test_rollout_batches_follow_max_unavailable() -> None:
    assert max_unavailable(None, 3) == 2 and max_unavailable("50%", 5) == 3
    assert max_unavailable("10%", 3) == 1 and max_unavailable(2, 10) == 2
    assert max_unavailable(0, 3) == 1 and max_unavailable("0%", 0) == 1
    assert batches(["w0", "w1", "w2"], 2) == [["w0", "w1"], ["w2"]]
    assert batches([], 2) == []
