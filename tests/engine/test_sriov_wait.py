"""VMs on an SR-IOV network are applied only once the SR-IOV operator reports the nodes their policy selects
synced (SriovNetworkNodeState ``status.syncStatus: Succeeded``); a failed sync stops the run before the VM is
written. The test plays the operator's config daemon itself (it writes the node states), on the API double and
on a real kube-apiserver."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from backends import Backend, backend_fixture, eventually, settle

from engine.conftest import edit, run
from reconciler.clients.kube import Kube
from reconciler.pipeline import Outcome

backend = backend_fixture()
OPERATOR_NS = "openshift-sriov-network-operator"


def set_sync(backend: Backend, node: str, sync: str, error: str = "") -> None:
    """What the operator's config daemon on ``node`` reports."""
    kube = Kube(backend.admin.api, field_manager="sriov-network-config-daemon")
    meta = {"name": node, "namespace": OPERATOR_NS}
    kube.apply({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState", "metadata": meta})
    status = {"syncStatus": sync, **({"lastSyncError": error} if error else {})}
    kube.apply(
        {"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState", "metadata": meta,
         "status": status},
        force=True,
        subresource="status",
    )


def vrouter_cpu(backend: Backend) -> int:
    vm = backend.find("VirtualMachine", "vrouter-1", "nfv")
    assert vm is not None
    return int(vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"])


@pytest.fixture
def applied_on(backend: Backend, repo: Path) -> Path:
    return settle(backend, repo)


def test_an_sriov_vm_waits_for_the_node_sync(backend: Backend, applied_on: Path) -> None:
    set_sync(backend, "worker-0", "Succeeded")
    set_sync(backend, "worker-1", "InProgress")  # the policy selects every SR-IOV capable worker
    edit(applied_on / "vms" / "vrouter.yaml", "  cpu: 4\n", "  cpu: 6\n")
    done: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: done.append(run(applied_on, backend.kube, apply_options=backend.options(poll=0.05)))
    )
    worker.start()
    try:
        # the run is under way and waiting: the VM is not written while worker-1 is still syncing
        assert eventually(lambda: any(c.resource == "sriovnetwork.openshift.io/sriovnetworknodestates"
                                      for c in list(backend.log.calls)), timeout=20)
        assert not eventually(lambda: vrouter_cpu(backend) == 6, timeout=1.0)
        set_sync(backend, "worker-1", "Succeeded")
    finally:
        worker.join(timeout=30)
    [outcome] = done
    assert outcome.ok, outcome.message
    assert vrouter_cpu(backend) == 6


def test_a_failed_node_sync_stops_the_run_before_the_vm(backend: Backend, applied_on: Path) -> None:
    set_sync(backend, "worker-2", "Failed", "failed to configure VFs on ens5f0: device busy")
    edit(applied_on / "vms" / "vrouter.yaml", "  cpu: 4\n", "  cpu: 6\n")
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.failed == "ApplyFailed"
    assert "worker-2: failed to configure VFs on ens5f0: device busy" in outcome.message
    assert vrouter_cpu(backend) == 4
