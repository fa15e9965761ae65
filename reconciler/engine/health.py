"""Health of live objects, one small function per kind (pure).

The statuses and their meaning follow Argo CD's rules, which users already know: NNCP Available →
Healthy, Degraded → Degraded, Progressing → Progressing, Ignored (no matching node) → Suspended;
VirtualMachine Ready → Healthy, Stopped or Paused → Suspended. Kinds without a rule are Healthy once
they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from reconciler.objects import Obj


class Status(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"


@dataclass(frozen=True)
class Health:
    status: Status
    message: str = ""


def _condition(obj: Obj, kind: str) -> dict[str, str] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def nncp_health(obj: Obj) -> Health:
    if cond := _condition(obj, "Degraded"):
        return Health(Status.DEGRADED, cond.get("message", ""))
    if cond := _condition(obj, "Available"):
        return Health(Status.HEALTHY, cond.get("message", ""))
    if cond := _condition(obj, "Ignored"):
        return Health(Status.SUSPENDED, cond.get("message", "no node matches the nodeSelector"))
    return Health(Status.PROGRESSING, "waiting for kubernetes-nmstate to configure the nodes")


def vm_health(obj: Obj) -> Health:
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        # right after an apply the status still describes the previous spec: not a verdict yet
        return Health(Status.PROGRESSING, f"KubeVirt has not observed generation {generation} yet")
    printable = status.get("printableStatus", "")
    if printable in ("Stopped", "Paused") or (obj.get("spec") or {}).get("runStrategy") == "Halted":
        return Health(Status.SUSPENDED, printable or "Halted")
    if printable in ("CrashLoopBackOff", "ErrorUnschedulable", "ErrImagePull", "ImagePullBackOff", "DataVolumeError"):
        return Health(Status.DEGRADED, printable)
    if status.get("ready") or _condition(obj, "Ready"):
        return Health(Status.HEALTHY, "Ready")
    return Health(Status.PROGRESSING, printable or "starting")


CHECKS: dict[str, Callable[[Obj], Health]] = {
    "NodeNetworkConfigurationPolicy": nncp_health,
    "VirtualMachine": vm_health,
}


def health_of(obj: Obj | None) -> Health:
    if obj is None:
        return Health(Status.MISSING)
    check = CHECKS.get(obj.get("kind", ""))
    return check(obj) if check else Health(Status.HEALTHY)
