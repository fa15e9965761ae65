"""A hot-plug reaches the guest: on a cluster without LiveUpdate virtnet live-migrates the VM and waits until the
VMI reports the interface; an unplug that virt-controller finishes (it rewrites the VM's interface list) does not
block virtnet's next change as a conflict. On the API double and on a real kube-apiserver (simulated KubeVirt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backends import Backend, backend_fixture, eventually, settle

from engine.conftest import edit, kubevirt_cr, run
from reconciler.engine.plan import VMChange

backend = backend_fixture()
EXTRA = "      name: front\n    - network: vlan100\n      name: extra\n      hotplug: true\n"
MIGRATIONS = "kubevirt.io/virtualmachineinstancemigrations"


def vm_interfaces(backend: Backend, name: str) -> list[str]:
    vm = backend.find("VirtualMachine", name, "apps")
    assert vm is not None
    return [i["name"] for i in vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]]


def vmi_reports(backend: Backend, name: str) -> set[str]:
    vmi = backend.find("VirtualMachineInstance", name, "apps")
    assert vmi is not None
    return {i["name"] for i in (vmi.get("status") or {}).get("interfaces") or []}


@pytest.fixture
def applied_on(backend: Backend, repo: Path) -> Path:
    return settle(backend, repo)


def test_plug_without_live_update_migrates_and_unplug_converges(backend: Backend, applied_on: Path) -> None:
    backend.put(kubevirt_cr("Stage"), manager="virt-operator")
    web = applied_on / "vms" / "web.yaml"
    edit(web, "      name: front\n", EXTRA)

    planned = run(applied_on, backend.kube, apply=False)
    assert planned.ok, planned.message
    [item] = planned.plan.changes  # type: ignore[union-attr]
    assert (item.vm_change, item.plugs, item.migrate) == (VMChange.HOTPLUG, ("extra",), True)
    assert "a live migration follows (vmRolloutStrategy Stage" in item.reason

    backend.log.reset()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    # apply returned only once the guest has it: the VMI reports the interface now, not eventually
    assert "extra" in vmi_reports(backend, "web-2")
    [migration] = [m for m in backend.objects("VirtualMachineInstanceMigration") if m["spec"]["vmiName"] == "web-2"]
    assert migration["metadata"]["namespace"] == "apps" and migration["status"]["phase"] == "Succeeded"
    writes = [(c.verb, c.resource) for c in backend.log.calls if c.is_write]
    assert writes == [("apply", "kubevirt.io/virtualmachines"), ("apply", MIGRATIONS)]
    assert not run(applied_on, backend.kube, apply=False).plan.has_changes  # type: ignore[union-attr]

    # unplug: virtnet marks it absent, KubeVirt takes it out of the guest and then out of the VM spec itself
    edit(web, EXTRA, "      name: front\n")
    unplug = run(applied_on, backend.kube, apply_options=backend.options())
    assert unplug.ok, unplug.message
    assert [i.reason for i in unplug.plan.changes] == ["unplug extra"]  # type: ignore[union-attr]
    assert eventually(lambda: "extra" not in vm_interfaces(backend, "web-2"))
    backend.quiesce()
    assert run(applied_on, backend.kube, apply=False).plan.errors == ()  # type: ignore[union-attr]

    # the next change of the list (virt-controller owns it now on a real server) converges without a conflict
    edit(web, "      name: front\n", EXTRA)
    again = run(applied_on, backend.kube, apply_options=backend.options())
    assert again.ok, again.message
    [item] = again.plan.changes  # type: ignore[union-attr]
    assert item.conflicts == () and item.plugs == ("extra",)
    assert {c.manager for c in item.take_back} == {"virt-controller"}  # taken back, not refused
    assert any("takes back spec.template.spec.domain.devices.interfaces" in w for w in again.plan.warnings)  # type: ignore[union-attr]
    assert "extra" in vmi_reports(backend, "web-2")
    backend.quiesce()
    final = run(applied_on, backend.kube, apply=False)
    assert final.ok and not final.plan.has_changes, final.message  # type: ignore[union-attr]


def test_plug_with_live_update_needs_no_migration_from_virtnet(backend: Backend, applied_on: Path) -> None:
    backend.put(kubevirt_cr("LiveUpdate"), manager="virt-operator")
    edit(applied_on / "vms" / "web.yaml", "      name: front\n", EXTRA)
    backend.log.reset()
    outcome = run(applied_on, backend.kube, apply_options=backend.options())
    assert outcome.ok, outcome.message
    [item] = outcome.plan.changes  # type: ignore[union-attr]
    assert item.plugs == ("extra",) and not item.migrate and "LiveUpdate" in item.reason
    assert "extra" in vmi_reports(backend, "web-2")
    assert [(c.verb, c.resource) for c in backend.log.calls if c.is_write] == [("apply", "kubevirt.io/virtualmachines")]
    assert not backend.objects("VirtualMachineInstanceMigration")
