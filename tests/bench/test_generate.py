"""The benchmark generator is deterministic and valid, and the harness runs end to end on a tiny size.

No timing assertions: the machine running CI is not the machine the figures are for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bench.generate import SIZES, generate, worker_nodes
from reconciler.model import load_repo
from reconciler.render import render


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.yaml")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate("S", tmp_path / "a", seed=7)
    generate("S", tmp_path / "b", seed=7)
    generate("S", tmp_path / "c", seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_size_s_validates_and_has_the_specified_shape(tmp_path: Path) -> None:
    summary = generate("S", tmp_path)
    repo = load_repo(tmp_path)  # raises ModelError on any validation problem
    vms = repo.of("VM")
    networks = repo.networks
    assert (len(vms), len(networks), len(repo.cluster.spec.allowed_namespaces)) == (100, 50, 10)
    assert all(len(vm.spec.interfaces) == 3 for vm in vms)
    assert {e.kind for e in networks.values()} == {"BridgeNetwork", "OvnNetwork"}
    assert summary.static_ips > 0 and summary.exposes > 0 and summary.secrets > 0
    assert any(e.spec.uplink for e in repo.of("BridgeNetwork"))
    kinds = Counter(o["kind"] for o in render(repo).objects)
    assert kinds["VirtualMachine"] == 100
    assert kinds["NodeNetworkConfigurationPolicy"] == summary.bridges
    assert kinds["Service"] > 0 and kinds["Secret"] == summary.secrets


def test_bump_changes_exactly_one_vm(tmp_path: Path) -> None:
    generate("XS", tmp_path / "a")
    generate("XS", tmp_path / "b", bump_cpu_of=5)
    a, b = render(load_repo(tmp_path / "a")).objects, render(load_repo(tmp_path / "b")).objects
    differ = [x["metadata"]["name"] for x, y in zip(a, b, strict=True) if x != y]
    assert differ == ["vm-00005"]


def test_worker_nodes_carry_every_uplink(tmp_path: Path) -> None:
    summary = generate("M", tmp_path)
    assert summary.vms == SIZES["M"].vms and summary.uplinks
    for worker in worker_nodes("M"):
        assert set(summary.uplinks) <= {i["name"] for i in worker["interfaces"]}


@pytest.mark.timeout(900)  # a whole bench run (kubectl passes, node namespaces): minutes on a loaded machine
def test_harness_end_to_end_on_xs(tmp_path: Path) -> None:
    """The double only: the real server's run is ``test_real.py``'s (``realapi``)."""
    from bench import cluster, run

    # the bench's own rule (tests/tools.py's extracted kubectl first), so the kubectl assertions run where it does
    found = Path(cluster._kubectl())
    kubectl = found if found.exists() else None
    root = os.geteuid() == 0 and shutil.which("ip") is not None
    args = ["--sizes", "XS", "--backends", "double", "--repeats", "2", "--out", str(tmp_path / "r.json")]
    args += ["--webhook-deliveries", "3", "--node-sizes", "2" if root else ""]
    if kubectl is None:
        args.append("--no-kubectl")
    assert run.main(args) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    xs = results["sizes"]["XS"]
    assert xs["render"]["objects"] > 0 and xs["render"]["peak_rss_mib"] > 0
    assert xs["connectivity"]["found"]["domains_merged"] == 1
    double = xs["backends"]["double"]
    assert double["server"]["start_seconds"] > 0 and double["server"]["simulator"] == ["nmstate"]
    virtnet = double["virtnet"]
    assert virtnet["cold"]["writes"] == xs["render"]["objects"]  # every object once (HyperConverged patched)
    assert virtnet["noop"]["writes_per_run"] == [0, 0]
    assert set(virtnet["noop"]["by_verb"]) <= {"list", "get"}
    assert virtnet["one_vm_change"]["writes_per_run"] == [1, 1]
    assert len(virtnet["one_vm_change"]["runs_seconds"]) == 2
    # the double spends CPU serving the cold apply; the client's own CPU is counted apart
    assert virtnet["cold"]["server_cpu_seconds"] > 0 and virtnet["cold"]["client_cpu_seconds"] > 0
    assert 100 < virtnet["cold"]["objects_kib"] * 1024 / virtnet["cold"]["objects"] < 10_000  # bytes an object
    [per_write] = [line for line in run.table(results).splitlines() if "server CPU per write" in line]
    assert per_write.rstrip().endswith(" ms"), per_write  # both figures there, not "-"
    controller = double["controller"]  # virtnet run: informers, caches
    assert controller["noop"]["writes_per_run"] == [0, 0] and "list" not in controller["noop"]["by_verb"]
    assert controller["one_vm_commit"]["writes_per_run"] == [1, 1]
    assert 0 < controller["one_vm_commit"]["push_to_write"]["seconds"] <= controller["one_vm_commit"]["seconds"]
    assert xs["render"]["anchor_safe_load"]["seconds"] > 0 and xs["render"]["ratio_to_safe_load"] > 0
    assert xs["render"]["anchor_safe_load"]["objects"] > 0  # the anchor loaded the same files
    for fig in (xs["render"], xs["render"]["anchor_safe_load"]):  # repeated runs, not one
        assert len(fig["runs_seconds"]) == fig["repeats"] == 2 and fig["seconds_min"] <= fig["seconds_max"]
    if kubectl is not None:
        assert double["kubectl"]["noop"]["writes"] == xs["render"]["objects"]
        assert double["kubectl_server"]["simulator"] == []  # kubectl waits for nothing: no nmstate ticking
        assert double["kubectl"]["diff"]["writes"] == 0
        cold = double["kubectl"]["cold"]
        assert cold["server_cpu_seconds"] > 0 and cold["client_cpu_seconds"] > 0
        assert set(xs["ratios"]["virtnet_to_kubectl_double"]) == {"cold", "noop", "plan_vs_diff", "one_vm_change"}
    assert "real" not in xs["backends"] and "real_to_double" not in xs["ratios"]
    if root:
        assert results["node"]["runs"]["2"]["noop"]["netlink_writes"] == 0
    else:
        assert "skipped" in results["node"]


def test_connectivity_bench_measures_a_diff_that_finds_something(tmp_path: Path) -> None:
    """``bench.connectivity``: the twin merges two domains, so the timed diff has work to do (counts, not time)."""
    from bench import connectivity

    generate("XS", tmp_path / "current")
    twin = connectivity.merged_twin(tmp_path / "current", tmp_path / "proposed")
    figures = connectivity.measure(tmp_path / "current", twin, repeats=1)
    assert figures["found"]["domains_merged"] == 1 and figures["found"]["findings"] >= 1
    assert len(figures["runs"]["compare"]) == 1 and figures["render"] > 0
    assert figures["spread"]["compare"]["runs_seconds"] == figures["runs"]["compare"]
    # a reused --workdir: the twin is made again from the repository, not refused nor moved twice
    again = connectivity.merged_twin(tmp_path / "current", tmp_path / "proposed")
    before = (tmp_path / "current" / "networks" / "bridges.yaml").read_text().count("  vlan: 100\n")
    assert (again / "networks" / "bridges.yaml").read_text().count("  vlan: 100\n") == before + 1
