"""A simulated KubeMacPool: the mutating webhook that gives VirtualMachine interfaces their MAC addresses.

What the real one (k8snetworkplumbingwg/kubemacpool) does, and so this one:

* an interface without ``macAddress`` gets one from the pool (``02:00:00:f0:00:01`` upwards here, skipping any
  address in use); on an update, an interface that had a MAC keeps it (matched by interface name);
* an explicitly requested MAC is allocated as asked, unless another VM holds it, or two interfaces of the
  request name it: then the write is refused with the webhook's denial (KubeMacPool answers 500 with
  ``admission webhook "mutatevirtualmachines.kubemacpool.io" denied the request: Failed to create virtual
  machine allocation error: Failed to allocate mac to the vm object: failed to allocate requested mac address``);
* the MACs of a VM are released when it is removed (and those of an interface when it is removed from it);
* a dry run allocates nothing: the pool only learns of committed writes (a store observer);
* a VM in a namespace labelled ``mutatevirtualmachines.kubemacpool.io=ignore`` is left alone (the real
  webhook's ``namespaceSelector``): no MAC is added, a requested one is neither checked nor held.

As admission output, the MACs it adds are owned by no field manager (the store runs mutators after the
managedFields bookkeeping).
"""

from __future__ import annotations

from typing import Any

from reconciler.model.cluster import KUBEMACPOOL_IGNORE
from reconciler.testing.errors import ApiError
from reconciler.testing.resources import ResourceType
from reconciler.testing.store import Obj, Store

WEBHOOK = "mutatevirtualmachines.kubemacpool.io"
OPT_OUT_LABEL, OPT_OUT_VALUE = KUBEMACPOOL_IGNORE  # a namespace labelled so is not mutated
POOL_START = 0xF00001


def interfaces(vm: Obj | None) -> list[dict[str, Any]]:
    spec = (((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    out: list[dict[str, Any]] = ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []
    return out


def _norm(mac: str) -> str:
    return mac.lower().replace("-", ":")


def _is_vm(rt: ResourceType) -> bool:
    return (rt.group, rt.kind) == ("kubevirt.io", "VirtualMachine")


class KubeMacPool:
    """Installs itself on ``store`` as a mutator (allocation) and an observer (what is allocated)."""

    def __init__(self, store: Store, prefix: str = "02:00:00") -> None:
        self.prefix = prefix
        self.owners: dict[str, tuple[str, str]] = {}  # mac -> (namespace, vm) of committed VMs
        self._next = POOL_START
        self.store = store
        store.mutators.append(self.mutate)
        store.observers.append(self.observe)

    def _deny(self, old: Obj | None) -> ApiError:
        action = "update" if old else "create"
        return ApiError(500, "", f'admission webhook "{WEBHOOK}" denied the request: Failed to {action} virtual '
                        "machine allocation error: Failed to allocate mac to the vm object: failed to allocate "
                        "requested mac address")

    def ignores(self, namespace: str) -> bool:
        """Whether the VM's namespace opted out (a namespace the store does not hold has no labels)."""
        try:
            ns = self.store.find("v1", "Namespace", namespace)
        except (KeyError, ApiError):  # a store without Namespaces (the webhook's private one)
            return False
        return ((ns or {}).get("metadata", {}).get("labels") or {}).get(OPT_OUT_LABEL) == OPT_OUT_VALUE

    def mutate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        if not _is_vm(rt):
            return
        meta = obj.get("metadata") or {}
        if self.ignores(meta.get("namespace", "")):
            return
        vm = (meta.get("namespace", ""), meta.get("name", ""))
        previous = {i.get("name"): i["macAddress"] for i in interfaces(old) if i.get("macAddress")}
        taken: set[str] = set()
        live = [i for i in interfaces(obj) if i.get("state") != "absent"]
        for iface in live:
            if mac := iface.get("macAddress"):
                mac = _norm(str(mac))
                if self.owners.get(mac, vm) != vm or mac in taken:
                    raise self._deny(old)
                taken.add(mac)
        for iface in live:
            if not iface.get("macAddress"):
                mac = previous.get(iface.get("name")) or self._allocate(taken)
                iface["macAddress"] = mac
                taken.add(_norm(mac))

    def _allocate(self, taken: set[str]) -> str:
        """The next free pool MAC; the cursor moves only when a write commits (a dry run moves nothing)."""
        n = self._next
        while True:
            mac = f"{self.prefix}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
            if mac not in self.owners and mac not in taken:
                return mac
            n += 1

    def observe(self, rt: ResourceType, old: Obj | None, new: Obj | None) -> None:
        if not _is_vm(rt):
            return
        meta = (new or old or {}).get("metadata") or {}
        vm = (meta.get("namespace", ""), meta.get("name", ""))
        for mac in [m for m, owner in self.owners.items() if owner == vm]:
            del self.owners[mac]
        if new is not None and self.ignores(vm[0]):
            return  # not KubeMacPool's: it holds none of this VM's MACs
        for iface in interfaces(new):
            if iface.get("macAddress"):
                mac = _norm(str(iface["macAddress"]))
                self.owners[mac] = vm
                if mac.startswith(self.prefix + ":"):
                    self._next = max(self._next, int(mac[len(self.prefix) + 1:].replace(":", ""), 16) + 1)
