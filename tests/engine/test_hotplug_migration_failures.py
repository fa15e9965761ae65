"""A hot-plug whose migration goes wrong fails the run with one error, and the VM's write keeps its one result
(a ChangeSet has one entry per object): the migration refused, the migration Failed, or the VMI spec never
gets the plug. The cluster's answers are bent by a client wrapper, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend, backend_fixture, settle

from engine.conftest import edit, kubevirt_cr, run
from reconciler.clients.kube import Kube
from reconciler.errors import ApplyError
from reconciler.objects import Obj
from reconciler.pipeline import Outcome

backend = backend_fixture()
EXTRA = "      name: front\n    - network: vlan100\n      name: extra\n      hotplug: true\n"


class Bent:
    """``kube`` with some answers changed: ``refuse`` a kind's writes, ``answer`` a GET of a kind its own way."""

    def __init__(
        self, kube: Kube, refuse: str = "", answer: dict[str, Callable[[Obj | None], Obj | None]] | None = None
    ) -> None:
        self.kube, self.refuse, self.answer = kube, refuse, answer or {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kube, name)

    def apply(self, obj: Obj, **kwargs: Any) -> Obj:
        if obj["kind"] == self.refuse and not kwargs.get("dry_run"):
            raise ApplyError(f"{obj['kind']}/{obj['metadata']['name']}", "admission webhook denied the request")
        return self.kube.apply(obj, **kwargs)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        live = self.kube.get(kind, name, namespace)
        return self.answer[kind](live) if kind in self.answer else live


def failed(migration: Obj | None) -> Obj | None:
    return None if migration is None else {**migration, "status": {"phase": "Failed"}}


def unplugged(vmi: Obj | None) -> Obj | None:
    """The VMI as virt-controller left it before carrying the plug over: without the new interface."""
    if vmi is None:
        return None
    domain = vmi["spec"]["domain"]
    interfaces = [i for i in domain["devices"]["interfaces"] if i["name"] != "extra"]
    devices = {**domain["devices"], "interfaces": interfaces}
    return {**vmi, "spec": {**vmi["spec"], "domain": {**domain, "devices": devices}}}


@pytest.fixture
def plugged(backend: Backend, repo: Path) -> Path:
    """The example applied on a cluster without LiveUpdate, then web-2 given a hot-plugged interface."""
    applied = settle(backend, repo)
    backend.put(kubevirt_cr("Stage"), manager="virt-operator")
    edit(applied / "vms" / "web.yaml", "      name: front\n", EXTRA)
    return applied


def apply_through(backend: Backend, path: Path, kube: Bent) -> Outcome:
    outcome = run(path, kube, apply_options=backend.options(timeout=2))  # type: ignore[arg-type]
    assert not outcome.ok and outcome.changes is not None
    [result] = outcome.changes.results
    assert result.ok and result.name.endswith("web-2")  # the VM's write went through: its one entry
    return outcome


def test_a_refused_migration_is_the_runs_error_not_a_second_result(backend: Backend, plugged: Path) -> None:
    outcome = apply_through(backend, plugged, Bent(backend.kube, refuse="VirtualMachineInstanceMigration"))
    assert outcome.changes is not None and outcome.changes.error is not None
    assert "migration not created: admission webhook denied the request" in outcome.changes.error


def test_a_failed_migration_is_the_runs_error(backend: Backend, plugged: Path) -> None:
    bent = Bent(backend.kube, answer={"VirtualMachineInstanceMigration": failed})
    outcome = apply_through(backend, plugged, bent)
    assert outcome.changes is not None and outcome.changes.error is not None
    assert "live migration" in outcome.changes.error and "failed" in outcome.changes.error


def test_a_plug_that_never_reaches_the_vmi_spec_is_the_runs_error(backend: Backend, plugged: Path) -> None:
    outcome = apply_through(backend, plugged, Bent(backend.kube, answer={"VirtualMachineInstance": unplugged}))
    assert outcome.changes is not None and outcome.changes.error is not None
    assert "KubeVirt did not add extra to the VMI spec" in outcome.changes.error
