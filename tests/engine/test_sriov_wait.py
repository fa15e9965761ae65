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


def test_with_the_simulated_operator_the_sriov_vm_is_written_after_the_sync(repo: Path) -> None:
    """The double's simulated SR-IOV operator (the real tier does not run it): a fresh apply of examples/repo
    creates the policy, the operator syncs the workers, and only then is the SR-IOV VM written (the double's
    watch history orders the writes)."""
    from reconciler.engine.apply import ApplyOptions
    from reconciler.testing import ApiDouble
    from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
    from reconciler.testing.sriov import SriovController

    nodes = demo_nodes()
    with ApiDouble(controllers=("nmstate", "kubevirt", "sriov"), nodes=nodes, tick_interval=None,
                   event_log_size=100_000) as api:
        seed_hyperconverged(api.store)
        [operator] = [c for c in api.controllers if isinstance(c, SriovController)]
        operator.delay_ticks = 40  # draining and configuring takes longer than the whole rest of the apply
        options = ApplyOptions(poll=0, timeout=20, sleep=lambda _s: api.tick())
        outcome = run(repo, Kube(api.api_client()), apply_options=options)
        assert outcome.ok, outcome.message
        vm_events, _ = api.store.events.after(("kubevirt.io", "virtualmachines"), 1)
        created = next(e.rv for e in vm_events if e.type == "ADDED" and e.obj["metadata"]["name"] == "vrouter-1")
        state_events, _ = api.store.events.after(("sriovnetwork.openshift.io", "sriovnetworknodestates"), 1)
        synced: dict[str, int] = {}
        for e in state_events:
            if (e.obj.get("status") or {}).get("syncStatus") == "Succeeded":
                synced.setdefault(e.obj["metadata"]["name"], e.rv)
        assert sorted(synced) == ["worker-0", "worker-1", "worker-2"]  # the workers the policy selects
        assert max(synced.values()) < created  # every one of them synced before the VM was written
