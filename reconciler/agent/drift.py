"""Drift: where the node differs from its policies, as rows ``(interface, field, desired, actual)`` (pure).

The same comparison as :func:`reconciler.agent.steps.diff`, read as a report instead of a to-do list:
observe mode publishes it, and the controller shows it in plans (``reconciler.labels.AGENT_DRIFT_KEY`` of the
agent's ConfigMap).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.agent.desired import observed_addrs, wanted
from reconciler.agent.state import interfaces_by_name
from reconciler.agent.steps import Op, diff
from reconciler.nmstate import Interface


@dataclass(frozen=True)
class DriftItem:
    interface: str
    field: str
    desired: Any
    actual: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "field": self.field,
            "desired": self.desired,
            "actual": self.actual,
        }


def drift(desired: Mapping[str, Interface] | Iterable[Interface], observed: Mapping[str, Any]) -> list[DriftItem]:
    """Where the node differs from the policies: one row per interface and field (addresses as sets)."""
    items_in = list(desired.values()) if isinstance(desired, Mapping) else list(desired)
    items: list[DriftItem] = []
    addr_ifaces: set[tuple[str, int]] = set()
    for s in diff(items_in, observed):
        p = s.params
        if s.op in (Op.ADD_ADDRESS, Op.DEL_ADDRESS):
            addr_ifaces.add((s.target, p["family"]))
        elif s.op == Op.ADD_ROUTE:
            items.append(DriftItem(s.target, f"route {p['destination']}", p["next-hop-address"], p["actual"]))
        elif s.op == Op.CREATE_LINK:
            items.append(DriftItem(s.target, "exists", True, False))
        elif s.op == Op.DELETE_LINK:
            items.append(DriftItem(s.target, "exists", False, True))
        elif s.op == Op.DETACH_PORT:
            items.append(DriftItem(s.target, "controller", None, p["controller"]))
        elif s.op == Op.ATTACH_PORT:
            items.append(DriftItem(s.target, "controller", p["controller"], p["actual"]))
        elif s.op == Op.SET_MTU:
            items.append(DriftItem(s.target, "mtu", p["mtu"], p["actual"]))
        elif s.op == Op.SET_STATE:
            items.append(DriftItem(s.target, "state", p["state"], p["actual"]))
        elif s.op == Op.SET_STP:
            items.append(DriftItem(s.target, "bridge.options.stp.enabled", p["enabled"], p["actual"]))
    if addr_ifaces:
        obs = interfaces_by_name(observed)
        wants = {w.name: w for w in (wanted(i) for i in items_in)}
        for name, fam in sorted(addr_ifaces):
            w = wants.get(name)
            want_set = (w.addrs.get(fam) if w and w.state != "absent" else set()) or set()
            fmt = sorted(f"{ip}/{plen}" for ip, plen in want_set)
            have = sorted(f"{ip}/{plen}" for ip, plen in observed_addrs(obs.get(name), fam))
            items.append(DriftItem(name, f"ipv{fam}.address", fmt, have))
    return sorted(items, key=lambda d: (d.interface, d.field))
