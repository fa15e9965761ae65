"""The connectivity diff (reconciler/safety/connectivity.py, reach.py, dataplane.py): who gains or loses reachability
between two revisions, with the line that causes it, and the data-plane danger checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model import Repo, load_repo
from reconciler.output.connectivity import MD_GROUPS, connectivity_markdown, connectivity_text, matrix_files
from reconciler.output.safety import MD_WARNINGS, safety_markdown, safety_text
from reconciler.safety import SafetyReport, connectivity
from reconciler.safety.connectivity import compare
from reconciler.safety.dataplane import build
from reconciler.safety.matrix import namespace_matrix
from reconciler.safety.reach import MAX_CAUSES
from tests.gitutil import git, isolate_git
from tests.repos import write_repo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "repo"
CLUSTER = (
    "apiVersion: virtnet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: test\nspec:\n  allowedNamespaces: [apps]\n"
)


def line_of(repo: Path, file: str, needle: str) -> int:
    return next(i for i, line in enumerate((repo / file).read_text().splitlines(), 1) if needle in line)


def doc(kind: str, name: str, spec: str, namespace: str = "") -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return f"apiVersion: virtnet.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{ns}spec:\n{spec}"


def bridge(name: str, vlan: int, extra: str = "", uplink: bool = True) -> str:
    up = "  uplink:\n    nic: eth1\n" if uplink else ""
    return doc("BridgeNetwork", name, f"  bridge: br1\n{up}  vlan: {vlan}\n  namespaces: [apps]\n{extra}")


def vm(name: str, interfaces: list[tuple[str, str, str]], pod: bool = True) -> str:
    """``interfaces``: (network, ipv4 or "", gateway4 or ""); a static address's MAC is made of its octets."""
    lines = [] if pod else ["  podNetwork: false"]
    lines += [
        "  boot:",
        "    containerDisk: quay.io/containerdisks/fedora:40",
        "  interfaces:" + ("" if interfaces else " []"),
    ]
    for network, ipv4, gateway in interfaces:
        lines.append(f"    - network: {network}")
        if ipv4:
            octets = ":".join(f"{int(o):02x}" for o in ipv4.split("/")[0].split("."))
            lines.append(f'      mac: "02:00:{octets}"')
            lines.append(f"      ipv4: {ipv4}")
        if gateway:
            lines.append(f"      gateway4: {gateway}")
    return doc("VM", name, "\n".join(lines) + "\n", "apps")


def repo_at(root: Path, files: dict[str, str]) -> Repo:
    return load_repo(write_repo(root, {"cluster.yaml": CLUSTER, **files}, base=False))


@pytest.fixture
def moved(tmp_path: Path) -> Path:
    """examples/repo with web-1's vlan100 interface moved to vlan200 (the issue's example: web-1 has one)."""
    repo = tmp_path / "moved"
    shutil.copytree(EXAMPLES, repo)
    web = repo / "vms" / "web.yaml"
    text = web.read_text()
    assert text.count("- network: vlan100") == 1  # the interface the issue names exists, and only once
    web.write_text(text.replace("- network: vlan100", "- network: vlan200"))
    return repo


# ------------------------------------------------------------------------------------------ the example
def test_moving_web_1_off_vlan100_loses_web_1_and_db_1_there_and_nothing_else(moved: Path) -> None:
    report = compare(load_repo(EXAMPLES), load_repo(moved))
    where = f"vms/web.yaml:{line_of(moved, 'vms/web.yaml', '- network: vlan200')}"
    lost = [c for c in report.changes if c.direction == "lost"]
    assert [(c.domain, c.networks, c.count) for c in lost] == [("bridge br1 VLAN 100", ("vlan100",), 1)]
    assert [str(p) for p in lost[0].examples] == ["apps/web-1 (vlan100) ↔ db/db-1 (vlan100)"]
    assert lost[0].cause.where == where
    assert report.lost == 1 and report.gained == 0  # tenant-l2 and the pod network still join them
    assert [(vm, c.where) for vm, c in report.gateways] == [("apps/web-1", where)]
    assert [f.check for f in report.findings] == ["gateway-absent"]
    assert report.domain_changes == [] and report.services == []


def test_the_loss_is_named_in_plan_text_and_json(moved: Path) -> None:
    runner = CliRunner()
    args = ["plan", str(moved), "--base", str(EXAMPLES), "--api-double"]
    text = runner.invoke(main, args)
    assert text.exit_code == 2, text.output
    assert "Connectivity: 1 pair lost, 0 pairs gained" in text.stdout
    assert "apps/web-1 (vlan100) ↔ db/db-1 (vlan100)" in text.stdout
    data = json.loads(runner.invoke(main, [*args, "-o", "json"]).stdout)["safety"]["connectivity"]
    assert data["pairsLost"] == 1 and data["pairsGained"] == 0
    [change] = data["changes"]
    assert (change["examples"], change["file"]) == (
        [{"a": "apps/web-1", "aInterface": "vlan100", "b": "db/db-1", "bInterface": "vlan100"}],
        "vms/web.yaml",
    )


def test_without_a_current_revision_the_plan_has_no_diff_and_the_example_has_no_danger() -> None:
    report = compare(None, load_repo(EXAMPLES))
    assert not report.compared and report.changes == [] and report.findings == []
    # br1/100, br1/200, br-storage, br-mig, tenant-l2, localnet physnet-dc/50, SR-IOV ens5f0/400, and the RDMA
    # network's VFs (selected by vendor and device id: a domain of their resource, not of an unknown PF)
    assert report.domains == 8


def test_the_same_revision_again_changes_nothing() -> None:
    repo = load_repo(EXAMPLES)
    assert compare(repo, load_repo(EXAMPLES)).empty
    assert compare(repo, repo).empty


# ---------------------------------------------------------------------------------------- domains: shared, merged
def test_two_network_names_on_one_bridge_and_vlan_are_one_domain(tmp_path: Path) -> None:
    repo = repo_at(tmp_path, {
        "nets.yaml": bridge("vlan100", 100, "  subnet: 10.0.0.0/24\n") + "---\n"
        + bridge("alias", 100, uplink=False),
        "vms.yaml": vm("a", [("vlan100", "10.0.0.10/24", "")]) + "---\n" + vm("b", [("alias", "10.0.0.11/24", "")]),
    })  # fmt: skip
    report = compare(None, repo)
    assert report.shared == [("bridge br1 VLAN 100", ("alias", "vlan100"))]
    assert "  one domain: bridge br1 VLAN 100 carries networks alias, vlan100" in connectivity_text(report)
    rows = {r.vm: r for r in namespace_matrix(build(repo))["apps"]}
    assert rows["apps/a"].peers == {"apps/b": ["vlan100"]} and rows["apps/b"].peers == {"apps/a": ["alias"]}


def test_a_change_that_merges_two_domains_is_flagged_with_its_line(tmp_path: Path) -> None:
    vms = vm("a", [("red", "10.0.0.10/24", "")]) + "---\n" + vm("b", [("blue", "10.0.0.11/24", "")])
    apart = bridge("red", 100) + "---\n" + bridge("blue", 300, uplink=False)
    base = repo_at(tmp_path / "base", {"nets.yaml": apart, "vms.yaml": vms})
    root = tmp_path / "new"
    new = repo_at(
        root, {"nets.yaml": bridge("red", 100) + "---\n" + bridge("blue", 100, uplink=False), "vms.yaml": vms}
    )
    report = compare(base, new)
    [merge] = report.domain_changes
    assert (merge.kind, merge.domain, merge.groups) == ("merged", "bridge br1 VLAN 100", (("blue",), ("red",)))
    second_vlan = [i for i, line in enumerate((root / "nets.yaml").read_text().splitlines(), 1) if "vlan: 100" in line]
    assert merge.cause.where == f"nets.yaml:{second_vlan[1]}"  # blue's vlan line, not red's
    assert [f.check for f in report.findings] == ["domain-merge"]
    assert (report.lost, report.gained) == (0, 1)  # a and b share 10.0.0.0/24: now adjacent
    back = compare(new, base)
    assert [(d.kind, d.domain) for d in back.domain_changes] == [("split", "bridge br1 VLAN 100")]
    assert (back.lost, back.gained) == (1, 0) and back.findings == []


# ---------------------------------------------------------------------------------------------- reachability rules
def test_across_subnets_only_through_gateways_present_in_the_domain(tmp_path: Path) -> None:
    nets = bridge("n1", 100, "  subnet: 10.0.1.0/24\n") + "---\n" + bridge("n2", 100, "  subnet: 10.0.2.0/24\n", False)
    routed = vm("a", [("n1", "10.0.1.10/24", "10.0.1.1")]) + "---\n" + vm("b", [("n2", "10.0.2.10/24", "10.0.2.1")])
    base = repo_at(tmp_path / "base", {"nets.yaml": nets, "vms.yaml": routed})
    assert compare(None, base).findings == []  # both gateways lie in subnets of an uplinked domain
    rows = {r.vm: r for r in namespace_matrix(build(base))["apps"]}
    assert rows["apps/a"].peers == {"apps/b": ["n1"]} and rows["apps/a"].gateway
    plain = vm("a", [("n1", "10.0.1.10/24", "10.0.1.1")]) + "---\n" + vm("b", [("n2", "10.0.2.10/24", "")])
    root = tmp_path / "new"
    report = compare(base, repo_at(root, {"nets.yaml": nets, "vms.yaml": plain}))
    [change] = report.changes
    assert (change.direction, change.count, change.cause.text) == ("lost", 1, "apps/b interface n2 changes its gateway")
    assert change.cause.where == f"vms.yaml:{line_of(root, 'vms.yaml', '- network: n2')}"  # gateway4 is gone
    assert [vm for vm, _ in report.gateways] == ["apps/b"]


def test_a_gateway_held_by_a_vm_router_is_present_on_an_overlay(tmp_path: Path) -> None:
    ovn = doc("OvnNetwork", "l2", "  topology: layer2\n  subnets: [10.9.0.0/24]\n  namespaces: [apps]\n")
    client = vm("client", [("l2", "10.9.0.10/24", "10.9.0.1")])
    alone = compare(None, repo_at(tmp_path / "alone", {"net.yaml": ovn, "vms.yaml": client}))
    assert "gateway-absent" in [f.check for f in alone.findings]  # an overlay reaches no router outside
    router = vm("router", [("l2", "10.9.0.1/24", "")])
    served = compare(None, repo_at(tmp_path / "served", {"net.yaml": ovn, "vms.yaml": client + "---\n" + router}))
    assert served.findings == []


def test_pairs_are_counted_not_listed_and_one_vm_is_not_a_pair(tmp_path: Path) -> None:
    """50 VMs (one of them with two interfaces in the domain) moved off a VLAN: C(50, 2) pairs, five named."""
    nets = bridge("n1", 100, "  subnet: 10.0.0.0/24\n") + "---\n" + bridge("n1b", 100, uplink=False)
    many = [vm(f"v{i}", [("n1", f"10.0.0.{i + 10}/24", "")]) for i in range(49)]
    many.append(vm("twice", [("n1", "10.0.0.200/24", ""), ("n1b", "10.0.0.201/24", "")]))
    base = repo_at(tmp_path / "base", {"nets.yaml": nets, "vms.yaml": "---\n".join(many)})
    moved = bridge("n1", 200, "  subnet: 10.0.0.0/24\n") + "---\n" + bridge("n1b", 200, uplink=False)
    report = compare(base, repo_at(tmp_path / "new", {"nets.yaml": moved, "vms.yaml": "---\n".join(many)}))
    # every pair moves along: nothing lost or gained, though both networks changed domain
    assert report.changes == [] and [d.kind for d in report.domain_changes] == []
    apart = bridge("n1", 100, "  subnet: 10.0.0.0/24\n") + "---\n" + bridge("n1b", 200, uplink=False)
    split = compare(base, repo_at(tmp_path / "split", {"nets.yaml": apart, "vms.yaml": "---\n".join(many)}))
    [change] = split.changes
    assert change.count == 49  # twice's n1b interface leaves all 49 others; its own n1 interface is no pair
    assert len(change.examples) == 5
    full = compare(base, repo_at(tmp_path / "gone", {"nets.yaml": nets, "vms.yaml": many[-1]}))
    # among the 49 removed VMs on n1 and on the pod network, and each of them with twice's n1, n1b and pod
    assert full.lost == 2 * (49 * 48 // 2) + 49 * 3


def test_service_ports_lost_and_a_vm_left_unreachable(tmp_path: Path) -> None:
    exposed = doc("VM", "web", "  boot:\n    containerDisk: quay.io/containerdisks/fedora:40\n"
                  "  expose:\n    - port: 80\n", "apps")  # fmt: skip
    hidden = vm("web", [("n1", "", "")], pod=False)  # no pod network, and no address known on n1
    other = "---\n" + vm("other", [])
    net = bridge("n1", 100)
    report = compare(repo_at(tmp_path / "base", {"vms.yaml": exposed + other, "net.yaml": net}),
                     repo_at(tmp_path / "new", {"vms.yaml": hidden + other, "net.yaml": net}))  # fmt: skip
    assert [(s.direction, s.service, s.port) for s in report.services] == [("lost", "apps/web-svc", "80/TCP")]
    # web left the pod network, where other was its only peer: both are left with nobody
    assert [(f.check, f.obj) for f in report.findings] == [
        ("no-reachable-interface", "kubevirt.io/VirtualMachine/apps/other"),
        ("no-reachable-interface", "kubevirt.io/VirtualMachine/apps/web"),
    ]


def test_danger_checks_address_outside_the_domain_and_overlapping_subnets(tmp_path: Path) -> None:
    nets = bridge("n1", 100, "  subnet: 10.0.0.0/24\n") + "---\n" + bridge("n2", 100, "  subnet: 10.0.0.0/25\n", False)
    nets += "---\n" + bridge("n3", 100, uplink=False)
    root = tmp_path / "r"
    report = compare(None, repo_at(root, {"nets.yaml": nets, "vms.yaml": vm("a", [("n3", "10.7.0.5/24", "")])}))
    checks = {f.check: f for f in report.findings}
    assert set(checks) == {"ip-outside-domain", "subnet-overlap", "no-reachable-interface"}
    assert "10.7.0.5 is outside every subnet of bridge br1 VLAN 100" in checks["ip-outside-domain"].message
    assert checks["ip-outside-domain"].ref is not None
    assert checks["ip-outside-domain"].ref.line == line_of(root, "vms.yaml", "ipv4: 10.7.0.5/24")
    assert "n1 (10.0.0.0/24) and n2 (10.0.0.0/25)" in checks["subnet-overlap"].message


def test_a_no_op_reconcile_counts_the_findings_of_its_plane_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nets = bridge("n1", 100, "  subnet: 10.0.0.0/24\n") + "---\n" + bridge("n2", 100, "  subnet: 10.0.0.0/25\n", False)
    nets += "---\n" + bridge("n3", 100, uplink=False)
    repo = repo_at(tmp_path, {"nets.yaml": nets, "vms.yaml": vm("a", [("n3", "10.7.0.5/24", "")])})
    calls: list[object] = []
    checks = connectivity._overlap_findings
    monkeypatch.setattr(connectivity, "_overlap_findings", lambda plane: calls.append(plane) or checks(plane))
    counts = [compare(repo, repo).preexisting for _ in range(3)]
    assert counts == [3, 3, 3] and len(calls) == 1  # every poll after the first reads the plane's findings
    assert len(compare(None, repo).findings) == 3 and len(calls) == 1


# -------------------------------------------------------------------------------------------------------- output
def test_the_pr_comment_puts_counts_first_and_names_only_the_biggest(tmp_path: Path) -> None:
    """MD_GROUPS + 3 networks; on network i, one of its i + 2 VMs leaves for another VLAN: i + 1 pairs lost."""
    n = MD_GROUPS + 3
    nets = "---\n".join(bridge(f"n{i}", 100 + i, f"  subnet: 10.{i}.0.0/24\n", i == 0) for i in range(n))
    nets += "---\n" + bridge("away", 999, uplink=False)

    def vms(leaving: bool) -> str:
        docs = [vm(f"v{i}-{j}", [("away" if leaving and j == 0 else f"n{i}", f"10.{i}.0.{j + 10}/24", "")])
                for i in range(n) for j in range(i + 2)]  # fmt: skip
        return "---\n".join(docs)

    base = repo_at(tmp_path / "base", {"nets.yaml": nets, "vms.yaml": vms(False)})
    report = compare(base, repo_at(tmp_path / "new", {"nets.yaml": nets, "vms.yaml": vms(True)}))
    total = sum(i + 1 for i in range(n))
    assert report.lost == total and len(report.changes) == n
    lines = connectivity_markdown(report)
    assert lines[:3] == [
        "#### Connectivity",
        "",
        f"**{total} pairs lost, 0 pairs gained; 0 VM(s) lose their "
        "only gateway path; 0 domain(s) merged, 0 split; 0 Service port(s) lost, 0 gained**",
    ]
    rows = [line for line in lines if line.startswith("| :x: lost |")]
    assert len(rows) == MD_GROUPS
    assert rows[0].startswith(f"| :x: lost | {n} | bridge br1 VLAN {100 + n - 1} |")  # the biggest first
    assert any("3 more change group(s)" in line for line in lines)


def test_the_status_branch_gets_a_matrix_per_namespace() -> None:
    files = matrix_files(load_repo(EXAMPLES))
    assert sorted(files) == ["reachability/apps.md", "reachability/db.md", "reachability/nfv.md"]
    assert "| `web-1` | yes | yes | 2 | · |  |" in files["reachability/apps.md"]


def test_the_blast_radius_sections_carry_the_connectivity(moved: Path) -> None:
    """The plan's safety section (terminal and PR comment) and its JSON show the diff; no diff, no section."""
    report = SafetyReport(connectivity=compare(load_repo(EXAMPLES), load_repo(moved)))
    line = line_of(moved, "vms/web.yaml", "- network: vlan200")
    assert not report.empty
    assert f"  lost 1 pair on bridge br1 VLAN 100 (vlan100): vms/web.yaml:{line}:" in safety_text(report)
    body = safety_markdown(report, link="https://forge/blob/abc/")
    assert "#### Connectivity" in body
    assert f"[`vms/web.yaml:{line}`](https://forge/blob/abc/vms/web.yaml#L{line})" in body
    assert "| apps/web-1 (vlan100) ↔ db/db-1 (vlan100) |" in body
    assert report.as_dict()["connectivity"]["pairsLost"] == 1
    same = SafetyReport(connectivity=compare(load_repo(EXAMPLES), load_repo(EXAMPLES)))
    assert same.empty and safety_markdown(same) == ""


def test_a_pr_comment_names_a_bounded_number_of_warnings(tmp_path: Path) -> None:
    """Without a current revision every pre-existing warning is new: the comment names MD_WARNINGS of them."""
    ovn = doc("OvnNetwork", "l2", "  topology: layer2\n  subnets: [10.9.0.0/24]\n  namespaces: [apps]\n")
    vms = "---\n".join(vm(f"c{i}", [("l2", f"10.9.0.{i + 10}/24", "10.9.0.1")]) for i in range(MD_WARNINGS + 5))
    report = SafetyReport(findings=tuple(compare(None, repo_at(tmp_path, {"n.yaml": ovn, "v.yaml": vms})).findings))
    assert len(report.warnings) == MD_WARNINGS + 5  # every client's gateway is absent
    body = safety_markdown(report)
    assert body.count("- **gateway-absent**") == MD_WARNINGS and "… and 5 more warning(s)" in body


def test_thousands_of_causes_are_merged_by_position_not_paired_one_by_one(tmp_path: Path) -> None:
    """Renaming every VM removes and adds each: one cause per VM. Past MAX_CAUSES they are grouped by
    position, and the counts stay exact (pairs on the pod network: all lost, all gained again)."""
    n = MAX_CAUSES + 10
    before = "---\n".join(vm(f"v{i}", []) for i in range(n))
    after = "---\n".join(vm(f"w{i}", []) for i in range(n))
    report = compare(repo_at(tmp_path / "a", {"v.yaml": before}), repo_at(tmp_path / "b", {"v.yaml": after}))
    assert (report.lost, report.gained) == (n * (n - 1) // 2, n * (n - 1) // 2)
    assert [(c.direction, c.domain) for c in report.changes] == [("lost", "pod network"), ("gained", "pod network")]
    assert report.changes[0].cause.text == f"VM apps/v0 is removed (and {n - 1} more changes like it)"


def test_a_current_revision_that_does_not_validate_leaves_the_plan_without_a_diff(moved: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(EXAMPLES, broken)
    (broken / "vms" / "web.yaml").write_text((broken / "vms" / "web.yaml").read_text().replace("vlan100", "vlan999"))
    result = CliRunner().invoke(main, ["plan", str(moved), "--base", str(broken), "--api-double", "-o", "json"])
    assert result.exit_code == 2, result.output
    assert "does not validate, no connectivity diff" in result.stderr and "vlan999" in result.stderr
    assert json.loads(result.stdout)["safety"]["connectivity"]["compared"] is False


def test_the_current_revision_can_be_a_git_revision_of_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``plan --base-rev HEAD``: the committed examples/repo (in a sub-folder) against the edited working tree."""
    isolate_git(monkeypatch, tmp_path / "home")
    checkout = tmp_path / "checkout"
    shutil.copytree(EXAMPLES, checkout / "deploy")
    git("init", "-q", "-b", "main", cwd=checkout)
    git("add", "-A", cwd=checkout)
    git("commit", "-q", "-m", "examples", cwd=checkout)
    web = checkout / "deploy" / "vms" / "web.yaml"
    web.write_text(web.read_text().replace("- network: vlan100", "- network: vlan200"))
    args = ["plan", str(checkout / "deploy"), "--api-double", "-o", "json", "--base-rev"]
    result = CliRunner().invoke(main, [*args, "HEAD"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["safety"]["connectivity"]["pairsLost"] == 1
    assert git("status", "--porcelain", cwd=checkout) == "M deploy/vms/web.yaml"  # the checkout is untouched
    missing = CliRunner().invoke(main, [*args, "no-such-branch"])
    assert missing.exit_code == 1 and "cannot read revision 'no-such-branch'" in missing.stderr
