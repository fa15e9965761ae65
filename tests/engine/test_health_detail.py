"""A health timeout says, for each VM still pending, why: the interfaces its VMI does not report yet."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.apply import ApplyOptions, _wait_healthy
from reconciler.engine.plan import Action, Item
from reconciler.errors import HealthError
from reconciler.objects import Obj


def vm(name: str) -> Obj:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"runStrategy": "Always"},
        "status": {"ready": True},
    }


class Cluster:
    """Every VM Ready; each VMI reports only ``reported[name]``."""

    def __init__(self, reported: dict[str, list[str]]) -> None:
        self.reported = reported

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        if kind == "VirtualMachine":
            return vm(name)
        interfaces = [{"name": i} for i in self.reported[name]]
        return {"kind": kind, "metadata": {"name": name}, "status": {"interfaces": interfaces}}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def plugged(name: str, *plugs: str) -> Item:
    return Item(Action.UPDATE, name, f"VirtualMachine/apps/{name}", 3, "hot-plug", vm(name), plugs=plugs)


def test_the_timeout_names_what_each_pending_vm_lacks() -> None:
    items = [plugged("a", "x"), plugged("b", "y"), plugged("c", "z")]
    cluster = Cluster({"a": [], "b": [], "c": ["z"]})  # c is done; a and b are not
    options = ApplyOptions(timeout=0, poll=0, sleep=lambda _s: None)
    with pytest.raises(HealthError) as raised:
        _wait_healthy(items, cluster, options, None, lambda _m: None)  # type: ignore[arg-type]
    assert raised.value.obj == "VirtualMachine/apps/a, VirtualMachine/apps/b"
    assert raised.value.message == (
        "not healthy after 0s (VirtualMachine/apps/a: the VMI does not report x yet; "
        "VirtualMachine/apps/b: the VMI does not report y yet)"
    )


def test_one_pending_vm_keeps_the_short_detail() -> None:
    cluster = Cluster({"a": [], "c": ["z"]})
    options = ApplyOptions(timeout=0, poll=0, sleep=lambda _s: None)
    with pytest.raises(HealthError) as raised:
        _wait_healthy([plugged("a", "x"), plugged("c", "z")], cluster, options, None, lambda _m: None)  # type: ignore[arg-type]
    assert raised.value.message == "not healthy after 0s (the VMI does not report x yet)"
