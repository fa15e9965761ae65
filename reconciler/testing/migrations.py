"""Simulated live migration (virt-controller's VirtualMachineInstanceMigration handling) for the test clusters.

Why: on a cluster that does not roll VM changes out live, a hot-plugged interface sits in the VMI spec while the
guest runs on in a launcher pod without it; only a migration to a new pod (built from the VMI spec, so with every
attachment) lets the guest, and so the VMI's ``status.interfaces``, see it. The simulated KubeVirt
(:mod:`.controllers`) keeps a running VMI's reported interfaces to those its pod had; this controller finishes
each pending migration at once: the VMI then reports every interface of its spec and records the migration in
``status.migrationState``, the migration goes ``Succeeded`` (``Failed`` when its VMI does not exist).
"""

from __future__ import annotations

from typing import Any

from reconciler.testing.objectstore import ObjectStore
from reconciler.testing.statuswrite import set_status
from reconciler.testing.store import now

KUBEVIRT = "kubevirt.io/v1"
DONE = ("Succeeded", "Failed")


class MigrationController:
    """Runs after the KubeVirt controller in a tick, so a migration sees the VMI spec of that pass."""

    manager = "virt-controller"

    def __init__(self, store: ObjectStore, kubevirt: Any) -> None:
        self.store, self.kubevirt = store, kubevirt

    def tick(self) -> None:
        for mig in self.store.objects(KUBEVIRT, "VirtualMachineInstanceMigration"):
            if (mig.get("status") or {}).get("phase") in DONE or mig["metadata"].get("deletionTimestamp"):
                continue
            ns, vmi_name = mig["metadata"]["namespace"], (mig.get("spec") or {}).get("vmiName", "")
            vmi = self.store.find(KUBEVIRT, "VirtualMachineInstance", vmi_name, ns)
            if vmi is None:
                set_status(
                    self.store,
                    KUBEVIRT,
                    "VirtualMachineInstanceMigration",
                    mig,
                    {
                        "phase": "Failed",
                        "migrationState": {"failed": True, "failureReason": f"VMI {vmi_name} not found"},
                    },
                    self.manager,
                )
                continue
            state = {
                "completed": True,
                "migrationUid": mig["metadata"].get("uid", ""),
                "sourceNode": "worker-0",
                "targetNode": "worker-0",
                "endTimestamp": now(),
            }
            vmi = {**vmi, "status": {**(vmi.get("status") or {}), "migrationState": state}}
            self.kubevirt.report(vmi, None)  # the target pod has every interface of the VMI spec
            set_status(
                self.store,
                KUBEVIRT,
                "VirtualMachineInstanceMigration",
                mig,
                {"phase": "Succeeded", "migrationState": state},
                self.manager,
            )
