"""The real server as a benchmark backend (``bench/real.py``) and the two-backend table and ratios.

Fast: requests counted on the client are keyed as the API double counts them on the server (checked against
the double itself on an XS reconcile), kubectl's ``-v=6`` log is read the same way, and ratios and the table
come out of a results dict with both backends. ``realapi``: XS end to end on a real kube-apiserver.
Counts are asserted, times never: the machine running the tests is not the one the figures are for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import run
from bench.generate import generate, worker_nodes
from bench.real import Tally, classify, counting_requests, kubectl_counts


def test_requests_are_keyed_as_the_double_keys_them() -> None:
    base = "https://127.0.0.1:6443"
    apply = "application/apply-patch+yaml"
    assert classify("GET", f"{base}/api/v1/namespaces/ns-000/services?limit=500") == ("list", "services", False)
    assert classify("GET", f"{base}/api/v1/namespaces?limit=500") == ("list", "namespaces", False)
    assert classify("GET", f"{base}/api/v1/namespaces/ns-000") == ("get", "namespaces", False)
    assert classify("GET", f"{base}/api/v1/pods?watch=true") == ("watch", "pods", False)
    vm = f"{base}/apis/kubevirt.io/v1/namespaces/ns-000/virtualmachines/vm-1"
    assert classify("PATCH", f"{vm}?fieldManager=virtnet&dryRun=All", apply) == (
        "apply",
        "kubevirt.io/virtualmachines",
        True,
    )
    assert classify("PATCH", f"{vm}?fieldManager=virtnet", f"{apply}; charset=utf-8") == (
        "apply",
        "kubevirt.io/virtualmachines",
        False,
    )
    nncp = f"{base}/apis/nmstate.io/v1/nodenetworkconfigurationpolicies/br0/status"
    assert classify("PATCH", nncp, "application/merge-patch+json") == (
        "patch",
        "nmstate.io/nodenetworkconfigurationpolicies/status",
        False,
    )
    assert classify("POST", f"{base}/api/v1/namespaces") == ("create", "namespaces", False)
    assert classify("PUT", vm) == ("update", "kubevirt.io/virtualmachines", False)
    assert classify("DELETE", vm) == ("delete", "kubevirt.io/virtualmachines", False)
    for path in ("/api", "/apis", "/api/v1", "/apis/nmstate.io/v1", "/openapi/v3", "/version"):
        assert classify("GET", base + path) == (path, "", False)


def test_client_side_counts_equal_the_doubles_own_on_a_reconcile(tmp_path: Path) -> None:
    from reconciler.clients.kube import Kube
    from reconciler.engine.apply import ApplyOptions
    from reconciler.pipeline import reconcile
    from reconciler.testing import ApiDouble
    from reconciler.testing.nodes import seed_hyperconverged

    generate("XS", tmp_path / "repo")
    options = ApplyOptions(wait_for_vms=False, poll=0.02, timeout=60)
    with ApiDouble(controllers=("nmstate",), nodes=worker_nodes("XS")) as api:
        seed_hyperconverged(api.store)
        kube = Kube(api.api_client())
        tally = Tally()
        for _ in range(2):  # cold apply (creates, dry runs, health waits), then a no-op
            api.reset_counts()
            tally.reset()
            with counting_requests(tally):
                assert reconcile(tmp_path / "repo", kube, apply_options=options).ok
            mine = tally.snapshot()
            assert mine.by_key == {f"{verb} {res}": n for (verb, res), n in sorted(api.counts.items())}
            assert mine.nonresource == dict(api.nonresource_counts)
            assert mine.writes == api.writes()
        assert mine.writes == 0
        kube.api.close()


def test_kubectl_requests_are_read_from_its_v6_log() -> None:
    url = "https://127.0.0.1:40001"
    log = "\n".join(
        [
            "I1130 19:29:35.386724   14636 loader.go:402] Config loaded from file:  /tmp/kubeconfig",
            f'I1130 19:29:35.584080   14636 round_trippers.go:632] "Response" verb="GET" url="{url}/api?timeout=32s"'
            ' status="200 OK" milliseconds=28',
            f'I1130 19:29:35.586598   14636 round_trippers.go:632] "Response" verb="GET" url="{url}/apis?timeout=32s"'
            ' status="200 OK" milliseconds=1',
            f'I1130 19:29:35.854482   14636 round_trippers.go:632] "Response" verb="PATCH" '
            f'url="{url}/api/v1/namespaces/ns-000?fieldManager=kubectl&force=false" status="201 Created" '
            "milliseconds=23",
            f'I1130 19:29:35.915505   14636 round_trippers.go:632] "Response" verb="PATCH" '
            f'url="{url}/apis/nmstate.io/v1/nodenetworkconfigurationpolicies/net-000?dryRun=All" '
            'status="200 OK" milliseconds=4',
            f'I1130 19:29:35.920000   14636 round_trippers.go:632] "Response" verb="GET" '
            f'url="{url}/apis/kubevirt.io/v1/namespaces/ns-000/virtualmachines/vm-1" status="404 Not Found"',
        ]
    )
    counts = kubectl_counts(log)
    assert counts.by_key == {
        "apply namespaces": 1,
        "apply nmstate.io/nodenetworkconfigurationpolicies": 1,
        "get kubevirt.io/virtualmachines": 1,
    }
    assert counts.writes == 1  # the dry run is not a write
    assert counts.by_verb() == {"apply": 2, "discovery": 2, "get": 1}


def _fig(seconds: float, writes: int = 0, runs: int = 1, **more: Any) -> dict[str, Any]:
    spread = {"seconds_min": seconds, "seconds_max": seconds, "runs_seconds": [seconds] * runs, "repeats": runs}
    return {"seconds": seconds, "by_verb": {"list": 3}, "writes": writes, **(spread if runs > 1 else {}), **more}


def _backend(scale: float, full: bool) -> dict[str, Any]:
    virtnet = {
        "cold": _fig(
            2 * scale,
            53,
            health_wait_sleep_seconds=0.5,
            seconds_without_health_wait=2 * scale - 0.5,
            plan_text_bytes=100,
            client_cpu_seconds=0.7 * scale,
            server_cpu_seconds=3.0 * scale,
        ),
        "noop": _fig(0.2 * scale, runs=3),
        "noop_plan_only": _fig(0.1 * scale, runs=3),
        "one_vm_change": _fig(0.3 * scale, 1, runs=3, plan_text_bytes=10),
    }
    kubectl = {"cold": _fig(1.0, 53), "noop": _fig(1.0 * scale, 53, runs=3)}
    if full:
        kubectl |= {"diff": _fig(2.0, runs=3), "one_vm_change": _fig(1.5, 53, runs=3)}
    server = {"start_seconds": 5.0, "simulator_interval_seconds": 0.02 if full else 0.1}
    return {"server": server, "kubectl_server": server, "virtnet": virtnet, "kubectl": kubectl, "bench_seconds": 9}


def test_ratios_and_table_put_the_backends_side_by_side() -> None:
    backends = {"double": _backend(1.0, full=True), "real": _backend(2.0, full=False)}
    ratios = run.ratios(backends)
    assert ratios["real_to_double"]["virtnet noop"] == pytest.approx(2.0)
    assert ratios["real_to_double"]["virtnet cold without health-wait sleep"] == pytest.approx(3.5 / 1.5)
    assert ratios["real_to_double"]["kubectl noop"] == pytest.approx(2.0)
    assert ratios["virtnet_to_kubectl_double"]["plan_vs_diff"] == pytest.approx(0.05)
    assert set(ratios["virtnet_to_kubectl_real"]) == {"cold", "noop"}  # no diff, no one-VM kubectl on real
    sized = {
        "repo": {"vms": 12, "networks": 9, "namespaces": 3},
        "render": {"objects": 53, "seconds": 0.04, "peak_rss_mib": 44},
    }
    results = {
        "repeats": 3,
        "cpus": 2,
        "sizes": {
            "XS": {**sized, "backends": backends, "ratios": ratios},
            "S": {**sized, "backends": {"double": backends["double"], "real": {"skipped": "no Go"}}, "ratios": {}},
        },
    }
    text = run.table(results)
    heads = [cell.strip() for cell in text.splitlines()[0].split("|")[1:]]
    assert heads == ["XS double", "XS real", "S double"]
    assert "S on the real: skipped (no Go)" in text
    noop = next(line for line in text.splitlines() if line.startswith("3 virtnet no-op reconcile time"))
    assert "0.40 s (0.40 s-0.40 s)" in noop  # the real column's median (min-max)
    cpu = next(line for line in text.splitlines() if line.startswith("2   CPU: client / server"))
    assert [c.strip() for c in cpu.split("|")[1:3]] == ["0.70 s / 3.00 s", "1.40 s / 6.00 s"]
    floor = next(line for line in text.splitlines() if line.startswith("2   server CPU / CPUs"))
    assert [c.strip() for c in floor.split("|")[1:3]] == ["1.50 s", "3.00 s"]  # the server's CPU over 2 CPUs
    # the end's load average is mostly the run's own servers: only a loaded start marks the figures
    quiet = run.table({**results, "loadavg_start": [0.1], "loadavg_end": [1.7]})
    assert "at start 0.1, at end 1.7" in quiet and "loaded machine" not in quiet
    assert "loaded machine" in run.table({**results, "loadavg_start": [1.5], "loadavg_end": [0.2]})
    kubectl_diff = next(line for line in text.splitlines() if line.startswith("7 kubectl diff"))
    assert kubectl_diff.split("|")[2].strip() == "-"  # not measured on the real server


def _kubectl_available() -> bool:
    return bool(shutil.which("kubectl")) or Path("/usr/bin/kubectl").exists()


@pytest.mark.realapi
@pytest.mark.timeout(900)
def test_xs_on_the_real_server_counts(tmp_path: Path) -> None:
    from bench import real

    if reason := real.available():
        pytest.skip(reason)
    args = ["--sizes", "XS", "--backends", "real", "--repeats", "2", "--node-sizes", "", "--webhook-deliveries", "1"]
    args += ["--out", str(tmp_path / "r.json"), "--workdir", str(tmp_path / "work")]
    if not _kubectl_available():
        args.append("--no-kubectl")
    assert run.main(args) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    xs = results["sizes"]["XS"]
    figures = xs["backends"]["real"]
    server = figures["server"]
    assert server["version"].startswith("v1.") and server["simulator"] == ["nmstate"]
    assert server["start_seconds"] > 0 and server["simulator_start_seconds"] > 0
    assert server["service_cidr"] == real.SERVICE_CIDR  # room for L's 2,300 ClusterIPs
    virtnet = figures["virtnet"]
    assert virtnet["cold"]["writes"] == xs["render"]["objects"]
    assert virtnet["cold"]["server_cpu_seconds"] > 0  # kube-apiserver's and etcd's, read from /proc
    assert virtnet["noop"]["writes_per_run"] == [0, 0] and virtnet["noop_plan_only"]["writes_per_run"] == [0, 0]
    assert set(virtnet["noop"]["by_verb"]) <= {"list", "get"}
    assert virtnet["one_vm_change"]["writes_per_run"] == [1, 1]  # bump, then un-bump: one VM each time
    assert len(virtnet["noop"]["runs_seconds"]) == 2
    controller = figures["controller"]  # virtnet run: informers, caches
    assert controller["noop"]["writes_per_run"] == [0, 0] and "list" not in controller["noop"]["by_verb"]
    assert controller["one_vm_commit"]["writes_per_run"] == [1, 1]
    if _kubectl_available():
        kubectl = figures["kubectl"]
        assert kubectl["cold"]["writes"] == xs["render"]["objects"]
        assert kubectl["cold"]["server_cpu_seconds"] > 0 and kubectl["cold"]["client_cpu_seconds"] > 0
        assert kubectl["noop"]["writes_per_run"] == [xs["render"]["objects"]] * 2
        assert "diff" not in kubectl and figures["kubectl_server"]["start_seconds"] > 0
        assert set(xs["ratios"]["virtnet_to_kubectl_real"]) == {"cold", "noop"}


def test_cpu_seconds_reads_a_processes_cpu_time_and_skips_one_that_is_gone() -> None:
    from bench.cluster import cpu_seconds

    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ninput()"
    busy = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while cpu_seconds([busy.pid]) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu_seconds([busy.pid]) >= 0.3
    finally:
        busy.communicate(b"\n", timeout=30)
    assert cpu_seconds([busy.pid]) == 0.0  # reaped: nothing to read, no error
