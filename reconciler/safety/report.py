"""The safety report (data): the blast radius and findings of one plan, and which checks were accepted.

Kept apart from ``analysis`` (which computes it) so that output and the pipeline read a report without
importing the analysis, and so the analysis module stays about the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler import labels
from reconciler.safety.checks import ERROR, WARNING, Finding
from reconciler.safety.connectivity import CONNECTIVITY_CHECKS, ConnectivityReport
from reconciler.safety.radius import NetworkImpact, PolicyImpact, ServiceImpact

ACCEPT_ANNOTATION = labels.ACCEPT_RISK
CHECKS = ("disconnect", "missing-nic", "enslaved", "mtu", "no-nodes", "control-plane", "in-use", *CONNECTIVITY_CHECKS)


@dataclass(frozen=True)
class SafetyReport:
    policies: tuple[PolicyImpact, ...] = ()
    networks: tuple[NetworkImpact, ...] = ()
    services: tuple[ServiceImpact, ...] = ()
    findings: tuple[Finding, ...] = ()
    accepted: frozenset[str] = frozenset()  # check names accepted (CLI: all of CHECKS)
    accepted_by: str = ""  # "--accept-risk" or the annotation's file:line
    nodes_read: bool = False
    note: str = ""  # why node facts are missing, when they are
    connectivity: ConnectivityReport | None = None  # who reaches whom, before and after (safety.connectivity)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    def is_accepted(self, finding: Finding) -> bool:
        return finding.check in self.accepted

    @property
    def blocking(self) -> list[Finding]:
        """Errors nobody accepted: these stop apply."""
        return [f for f in self.errors if not self.is_accepted(f)]

    @property
    def empty(self) -> bool:
        busy = self.connectivity is not None and not self.connectivity.empty
        return not (self.policies or self.networks or self.services or self.findings or self.note or busy)

    def marked_ids(self) -> list[str]:
        """Object ids at risk: policies/networks/VMs named by a finding (for the topology picture)."""
        return sorted({f.obj for f in self.findings if f.obj})

    def blocked_message(self) -> str:
        n = len(self.blocking)
        checks = ",".join(sorted({f.check for f in self.blocking}))
        return (
            f"{n} safety error{'s' if n != 1 else ''} ({checks}): "
            + "; ".join(str(f) for f in self.blocking)
            + f" — fix the change, or accept with --accept-risk or the Cluster annotation {ACCEPT_ANNOTATION}: "
            f'"{checks}"'
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodesRead": self.nodes_read,
            "note": self.note,
            "accepted": sorted(self.accepted),
            "acceptedBy": self.accepted_by,
            "blocking": len(self.blocking),
            "policies": [p.as_dict() for p in self.policies],
            "networks": [n.as_dict() for n in self.networks],
            "services": [{"name": s.name, "vm": s.vm, "why": s.why} for s in self.services],
            "findings": [{**f.as_dict(), "accepted": self.is_accepted(f)} for f in self.findings],
            "connectivity": self.connectivity.as_dict() if self.connectivity is not None else None,
        }
