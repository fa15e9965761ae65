"""A restart-class VM change restarts the VM only when the repository allows it (KubeVirt restart API)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from repos import VM, write_repo

from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.plan import VMChange
from reconciler.pipeline import reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged


def _conditions(api: ApiDouble) -> set[str]:
    vm = api.store.find("kubevirt.io/v1", "VirtualMachine", "web-1", "apps") or {}
    return {c["type"] for c in (vm.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


@pytest.mark.parametrize(("restart", "expected"), [("allowed", VMChange.RESTART), ("never", VMChange.RESTART_REQUIRED)])
def test_cpu_change_on_a_running_vm(tmp_path: Path, restart: str, expected: VMChange) -> None:
    repo = write_repo(tmp_path / "repo", {"vms/web.yaml": VM + f"  restart: {restart}\n"})
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api:
        seed_hyperconverged(api.store)
        kube = Kube(api.api_client())
        options = ApplyOptions(poll=0.02, timeout=20)
        assert reconcile(repo, kube, apply_options=options).ok
        write_repo(tmp_path / "repo", {"vms/web.yaml": VM + f"  restart: {restart}\n  cpu: 4\n"})
        api.reset_counts()
        outcome = reconcile(repo, kube, apply_options=options)
        assert outcome.ok and outcome.plan is not None
        [item] = outcome.plan.changes
        assert item.vm_change == expected and "spec.template.spec.domain.cpu.cores changed" in item.reason
        restarts = api.counts[("update", "subresources.kubevirt.io/virtualmachines/restart")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (("RestartRequired" in _conditions(api)) != (restart == "never")):
            time.sleep(0.02)
        if restart == "allowed":
            assert restarts == 1 and "RestartRequired" not in _conditions(api)
        else:
            assert restarts == 0 and "RestartRequired" in _conditions(api)
            assert any("restart required" in w for w in outcome.plan.warnings)
