"""Suspend, resume and pin: the operator's switches on the ClusterSync object, honoured on every run, and the
object's status (kstatus conditions, revisions, counts, heartbeat) as the controller reports it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler import labels
from reconciler.cli import main
from reconciler.clients.kube import Kube
from reconciler.clients.syncstatus import SyncObject
from reconciler.engine.apply import ApplyOptions
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.gitutil import isolate_git, make_remote, push_commit
from tests.repos import BASE, VM

NS = "virtnet-system"


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as double:
        seed_hyperconverged(double.store)
        double.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield double


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch, tmp_path / "home")
    return make_remote(tmp_path, dict(BASE))


def controller(remote: Path, api: ApiDouble, tmp_path: Path) -> Controller:
    settings = Settings(
        repo_url=remote.as_uri(),
        cache_root=tmp_path / "cache",
        apply=ApplyOptions(poll=0.02, timeout=20),
        cluster="test",
        sync_namespace=NS,
        status_branch=None,
    )
    return Controller(settings, Kube(api.api_client()), Metrics())


def cluster_writes(api: ApiDouble) -> Counter[tuple[str, str]]:
    """Writes to anything but virtnet's own ClusterSync object."""
    verbs = ("create", "update", "patch", "apply", "delete")
    return Counter({k: n for k, n in api.counts.items() if k[0] in verbs and "clustersyncs" not in k[1]})


def sync_of(api: ApiDouble) -> dict[str, Any]:
    found = api.store.find(labels.SYNC_API_VERSION, labels.SYNC_KIND, "test", NS)
    assert found is not None
    return found


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def vm_mac(api: ApiDouble) -> str:
    vm = api.store.find("kubevirt.io/v1", "VirtualMachine", "web-1", "apps")
    assert vm is not None
    return str(vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]["macAddress"])


def test_suspend_stops_writes_within_one_run_and_resume_restarts_them(
    remote: Path, api: ApiDouble, tmp_path: Path
) -> None:
    ctl = controller(remote, api, tmp_path)
    first = ctl.reconcile("poll")
    assert first.ok and first.changes is not None
    status = sync_of(api)["status"]
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == first.revision
    assert status["result"] == labels.APPLIED and status["suspended"] is False
    assert condition(sync_of(api), "Ready")["status"] == "True"
    assert status["counts"]["objects"] == status["counts"]["inSync"] > 0

    operator = SyncObject(Kube(api.api_client()), NS, "test", labels.OPERATOR_FIELD_MANAGER)
    operator.set_spec(suspend=True, suspendReason="incident 42")
    new_sha = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")}, "change MAC")
    api.reset_counts()
    suspended = ctl.reconcile("poll")
    assert suspended.ok and suspended.changes is None and suspended.message == "suspended by the operator: incident 42"
    assert cluster_writes(api) == Counter()  # not one write to the cluster, not one Event
    # the switches' GET at the run's start is the only read of the object: the report reuses it
    assert [n for (verb, res), n in api.counts.items() if verb == "get" and "clustersyncs" in res] == [1]
    assert vm_mac(api).endswith("00:00:10")
    obj = sync_of(api)
    assert obj["status"]["suspended"] is True and obj["status"]["result"] == labels.SUSPENDED
    assert obj["status"]["lastAppliedRevision"] == first.revision  # the last applied revision still stands
    assert condition(obj, "Ready")["status"] == "True"
    assert condition(obj, "Reconciling")["reason"] == labels.SUSPENDED
    metrics = ctl.metrics.render().decode()
    assert "virtnet_suspended 1.0" in metrics
    assert 'virtnet_reconcile_results_total{result="Suspended"} 1.0' in metrics

    spec = operator.set_spec(suspend=False, suspendReason="")["spec"]
    assert spec == {"suspend": False}
    resumed = ctl.reconcile("poll")
    assert resumed.ok and resumed.revision == new_sha and resumed.changes is not None
    assert vm_mac(api).endswith("00:00:42")
    assert sync_of(api)["status"]["lastAppliedRevision"] == new_sha
    assert "virtnet_suspended 0.0" in ctl.metrics.render().decode()


def test_a_pinned_revision_holds_the_cluster_until_cleared(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    ctl = controller(remote, api, tmp_path)
    first = ctl.reconcile("poll")
    assert first.ok and first.revision
    operator = SyncObject(Kube(api.api_client()), NS, "test", labels.OPERATOR_FIELD_MANAGER)
    operator.set_spec(pinnedRevision=first.revision)
    new_sha = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")}, "change MAC")
    held = ctl.reconcile("poll")
    assert held.ok and held.revision == first.revision and vm_mac(api).endswith("00:00:10")
    status = sync_of(api)["status"]
    assert status["pinnedRevision"] == first.revision and status["lastAttemptedRevision"] == first.revision
    assert f'virtnet_pinned_revision_info{{revision="{first.revision}"}} 1.0' in ctl.metrics.render().decode()
    # suspend and resume keep the pin (the operator's fields are applied whole)
    operator.set_spec(suspend=True)
    assert operator.set_spec(suspend=False)["spec"]["pinnedRevision"] == first.revision
    operator.set_spec(pinnedRevision="")
    followed = ctl.reconcile("poll")
    assert followed.revision == new_sha and vm_mac(api).endswith("00:00:42")
    assert "virtnet_pinned_revision_info{" not in ctl.metrics.render().decode()


def test_conditions_say_stalled_for_a_commit_that_does_not_validate(
    remote: Path, api: ApiDouble, tmp_path: Path
) -> None:
    ctl = controller(remote, api, tmp_path)
    assert ctl.reconcile("poll").ok
    ready_since = condition(sync_of(api), "Ready")["lastTransitionTime"]
    assert ctl.reconcile("poll").ok
    assert condition(sync_of(api), "Ready")["lastTransitionTime"] == ready_since  # no change, no transition
    bad = push_commit(remote, {"vms/web.yaml": VM.replace("vlan100", "nowhere")}, "typo")
    assert ctl.reconcile("poll").failed == "ValidationFailed"
    obj = sync_of(api)
    assert [condition(obj, k)["status"] for k in ("Ready", "Reconciling", "Stalled")] == ["False", "False", "True"]
    assert (
        condition(obj, "Stalled")["reason"] == "ValidationFailed" and "nowhere" in condition(obj, "Stalled")["message"]
    )
    assert obj["status"]["lastAttemptedRevision"] == bad and obj["status"]["lastAppliedRevision"] != bad


def test_the_commands_set_the_switches(api: ApiDouble, tmp_path: Path) -> None:
    kubeconfig = str(api.kubeconfig(tmp_path / "kubeconfig"))
    runner = CliRunner()
    args = ["test", "-n", NS, "--kubeconfig", kubeconfig]
    done = runner.invoke(main, ["suspend", *args, "--reason", "change freeze"])
    assert done.exit_code == 0 and done.output == f"ClusterSync {NS}/test: suspended (from the next run)\n"
    spec = sync_of(api)["spec"]
    assert spec == {"suspend": True, "suspendReason": "change freeze"}
    assert runner.invoke(main, ["pin", *args, "0123abcd"]).exit_code == 0
    resumed = runner.invoke(main, ["resume", *args])
    assert resumed.exit_code == 0 and resumed.output.endswith("resumed; still pinned at 0123abcd\n")
    assert sync_of(api)["spec"] == {"suspend": False, "pinnedRevision": "0123abcd"}
    assert runner.invoke(main, ["pin", *args, "--clear"]).exit_code == 0
    assert sync_of(api)["spec"] == {"suspend": False}
    refused = runner.invoke(main, ["pin", *args, "main"])
    assert refused.exit_code != 0 and "not a commit id" in refused.output
