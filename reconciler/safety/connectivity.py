"""The connectivity diff of a plan: which VMs gain or lose reachability, and the data-plane danger checks (pure).

Why: the blast radius says which nodes and VMs a change touches; a reviewer also wants to know *who can
still talk to whom*. Moving an interface to another VLAN, changing a bridge's VLAN, an OVN subnet or a
localnet mapping silently cuts VMs off from each other or from their gateway, or joins two networks that
were meant to be apart. :func:`compare` builds the data plane of the current and the proposed revision
(``reconciler.safety.dataplane``), compares their reachability (``reconciler.safety.reach``) and checks the
proposed one:

=========================  ========  ================================================================
check                      severity  when
=========================  ========  ================================================================
``domain-merge``           warning   networks that were apart now share one layer-2 domain
``ip-outside-domain``      warning   a static IP outside every subnet declared in its domain
``gateway-absent``         warning   an interface's gateway is not present in its domain
``subnet-overlap``         warning   two networks in one domain declare overlapping subnets
``no-reachable-interface`` warning   a VM none of whose interfaces reaches another VM or a gateway
=========================  ========  ================================================================

They warn rather than block: the repository does not show routers outside the cluster or addresses given
by DHCP, so the model can be wrong where a node check cannot. With a current revision, only findings the
change introduces are reported (``preexisting`` counts the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceRef
from reconciler.model import Repo
from reconciler.model.loader import paused_gc
from reconciler.model.segments import Subnet, segment_label
from reconciler.safety.checks import WARNING, Finding
from reconciler.safety.dataplane import POD, DataPlane, Domain, build, equivalent, host, network_key, parse_ip
from reconciler.safety.reach import Cause, ReachChange, gateway_losses, network_cause, pair_changes, reachable_vms

CONNECTIVITY_CHECKS = (
    "domain-merge",
    "ip-outside-domain",
    "gateway-absent",
    "subnet-overlap",
    "no-reachable-interface",
)


def vm_id(vm: str) -> str:
    """``namespace/name`` → the VirtualMachine's object id (for marking it in pictures)."""
    ns, _, name = vm.partition("/")
    return f"kubevirt.io/VirtualMachine/{ns}/{name}"


@dataclass(frozen=True)
class DomainChange:
    kind: str  # merged | split
    domain: str
    groups: tuple[tuple[str, ...], ...]  # the networks that were apart (merged) or are now apart (split)
    cause: Cause

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "domain": self.domain,
            "groups": [list(g) for g in self.groups],
            "cause": self.cause.text,
            "file": self.cause.ref.file if self.cause.ref else "",
            "line": self.cause.ref.line if self.cause.ref else 0,
        }


@dataclass(frozen=True)
class ServiceChange:
    direction: str  # lost | gained
    service: str
    port: str  # 80/TCP
    vm: str


@dataclass
class ConnectivityReport:
    compared: bool = False  # a current revision was given: the diff is meaningful
    domains: int = 0
    shared: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # domains with several networks
    changes: list[ReachChange] = field(default_factory=list)
    gateways: list[tuple[str, Cause]] = field(default_factory=list)  # VMs losing their only gateway path
    domain_changes: list[DomainChange] = field(default_factory=list)
    services: list[ServiceChange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    preexisting: int = 0

    @property
    def lost(self) -> int:
        return sum(c.count for c in self.changes if c.direction == "lost")

    @property
    def gained(self) -> int:
        return sum(c.count for c in self.changes if c.direction == "gained")

    @property
    def empty(self) -> bool:
        return not (self.changes or self.gateways or self.domain_changes or self.services or self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "domains": self.domains,
            "sharedDomains": [{"domain": d, "networks": list(n)} for d, n in self.shared],
            "pairsLost": self.lost,
            "pairsGained": self.gained,
            "changes": [c.as_dict() for c in self.changes],
            "gatewayLost": [
                {"vm": vm, "cause": c.text, "file": c.ref.file if c.ref else "", "line": c.ref.line if c.ref else 0}
                for vm, c in self.gateways
            ],
            "domainChanges": [d.as_dict() for d in self.domain_changes],
            "services": [
                {"direction": s.direction, "service": s.service, "port": s.port, "vm": s.vm} for s in self.services
            ],
            "preexistingFindings": self.preexisting,
        }


def domain_changes(base: DataPlane, plane: DataPlane) -> list[DomainChange]:
    """Domains whose networks came from several domains (merged: accidental bridging), or went to several."""
    out = []
    for key, dom in sorted(plane.domains.items(), key=lambda kv: segment_label(kv[0])):
        if key == POD:
            continue
        sources: dict[Any, list[str]] = {}
        for n in sorted(dom.networks):
            sources.setdefault(base.domain_of.get(n, ("new", n)), []).append(n)
        if len(sources) > 1:
            moved = [n for src, names in sources.items() if src != key for n in names] or dom.networks
            first = network_cause(moved[0], base, plane)
            others = ", ".join(n for n in dom.networks if n != moved[0])
            cause = Cause(f"{first.text}: one broadcast domain with {others}", first.ref)
            out.append(DomainChange("merged", dom.label, tuple(tuple(v) for v in sources.values()), cause))
    for key, dom in sorted(base.domains.items(), key=lambda kv: segment_label(kv[0])):
        targets: dict[Any, list[str]] = {}
        for n in sorted(dom.networks):
            if n in plane.domain_of:
                targets.setdefault(plane.domain_of[n], []).append(n)
        if len(targets) > 1:
            moved = [n for dst, names in targets.items() if dst != key for n in names]
            out.append(
                DomainChange(
                    "split", dom.label, tuple(tuple(v) for v in targets.values()), network_cause(moved[0], base, plane)
                )
            )
    return out


def service_changes(base: DataPlane, plane: DataPlane) -> list[ServiceChange]:
    """Service ports that stop or start leading to a VM's pod network."""
    out = []
    for direction, mine, other in (("lost", base, plane), ("gained", plane, base)):
        for key in sorted(mine.exposures.keys() - other.exposures.keys()):
            e = mine.exposures[key]
            out.append(ServiceChange(direction, e.service, f"{e.port}/{e.protocol}", e.vm))
    return out


def _finding(check: str, message: str, ref: SourceRef | None, vm: str = "", iface: str = "") -> Finding:
    return Finding(WARNING, check, message, "", iface, ref, vm_id(vm) if vm else "")


def _outside(addr: str, domain: Domain) -> list[Subnet] | None:
    """The declared subnets of the address's family when none holds it (else None)."""
    ip = parse_ip(addr)
    declared = [s for _, s in domain.subnets if s.version == ip.version]
    if not declared or network_key(addr) in {str(s) for s in declared} or any(ip in s for s in declared):
        return None
    return declared


def _address_findings(plane: DataPlane) -> list[Finding]:
    out = []
    for ep in plane.endpoints.values():
        domain = plane.domains.get(ep.domain)
        if domain is None or not (ep.addresses or ep.gateways):
            continue
        for addr in ep.addresses:
            if (declared := _outside(addr, domain)) is not None:
                fam = "ipv6" if ":" in addr else "ipv4"
                out.append(
                    _finding(
                        "ip-outside-domain",
                        f"{ep.vm} interface {ep.iface}: {host(addr)} is outside every subnet of {domain.label} "
                        f"({', '.join(map(str, declared))})",
                        plane.ref(ep, fam),
                        ep.vm,
                        ep.iface,
                    )
                )
        for gateway in ep.gateways:
            if not domain.has_gateway(gateway):
                known = "no interface there holds it" + (
                    f", and no subnet declared for {domain.label} holds it" if domain.external else ""
                )
                out.append(
                    _finding(
                        "gateway-absent",
                        f"{ep.vm} interface {ep.iface}: gateway {gateway} is not present in {domain.label} ({known})",
                        plane.ref(ep, "gateway6" if ":" in gateway else "gateway4"),
                        ep.vm,
                        ep.iface,
                    )
                )
    return out


def _overlap_findings(plane: DataPlane) -> list[Finding]:
    out = []
    for domain in plane.domains.values():
        for i, (net_a, a) in enumerate(domain.subnets):
            for net_b, b in domain.subnets[i + 1 :]:
                if net_a != net_b and a.version == b.version and a.overlaps(b):
                    entry = plane.networks[net_b]
                    where = entry.ref("spec", "subnet" if entry.kind == "BridgeNetwork" else "subnets")
                    out.append(
                        _finding(
                            "subnet-overlap",
                            f"networks {net_a} ({a}) and {net_b} ({b}) are one "
                            f"domain ({domain.label}) with overlapping subnets",
                            where,
                        )
                    )
    return out


def _isolated_findings(plane: DataPlane) -> list[Finding]:
    reachable = reachable_vms(plane)
    return [
        _finding(
            "no-reachable-interface",
            f"{vm} has no interface that reaches another VM or a gateway",
            entry.ref("spec", "interfaces") if entry.spec.interfaces else entry.ref("metadata", "name"),
            vm,
        )
        for vm, entry in sorted(plane.vms.items())
        if vm not in reachable
    ]


def findings(plane: DataPlane) -> list[Finding]:
    """The danger checks of one revision's data plane (merges need two revisions: see :func:`compare`).

    Kept on the plane (memoised by ``build``): every no-op reconcile compares a revision with itself and needs
    them only to count, and the next revision's comparison needs this one's again as its base."""
    cached: list[Finding] | None = plane.cache.get("findings")
    if cached is None:
        cached = _address_findings(plane) + _overlap_findings(plane) + _isolated_findings(plane)
        plane.cache["findings"] = cached
    return list(cached)


def _key(f: Finding) -> tuple[str, str]:
    """A finding's identity across revisions: its check and message (which name things, never lines)."""
    return (f.check, f.message)


def finding_keys(plane: DataPlane) -> list[tuple[str, str]]:
    """The identities of the plane's findings. A revision's findings are needed only this way when it is the
    base of a comparison, or when they are only counted; a plane :func:`reconciler.safety.dataplane.equivalent`
    to its base takes the base's (its findings would be the same, and building them costs 0.2 s at L)."""
    keys: list[tuple[str, str]] | None = plane.cache.get("keys")
    if keys is None:
        keys = plane.cache["keys"] = [_key(f) for f in findings(plane)]
    return keys


def compare(base: Repo | None, repo: Repo) -> ConnectivityReport:
    """The connectivity report of the proposed revision ``repo`` against the current one ``base`` (None: no
    current revision known; then only the proposed revision's checks)."""
    with paused_gc():  # many small objects, no cycles: the collector's rescans cost more than the analysis
        return _compare(base, repo)


def _compare(base: Repo | None, repo: Repo) -> ConnectivityReport:
    old = build(base) if base is not None and base is not repo else None
    plane = build(repo, old)
    report = ConnectivityReport(compared=base is not None, domains=len(plane.domains) - 1)
    report.shared = sorted((d.label, tuple(sorted(d.networks))) for d in plane.domains.values() if len(d.networks) > 1)
    if base is repo:  # the same revision again (a reconcile of it): nothing changes, its findings are counted
        report.preexisting = len(finding_keys(plane))
        return report
    if base is None:  # no current revision: every finding is the proposed revision's
        report.findings = findings(plane)
        return report
    assert old is not None
    if equivalent(old, plane):  # no reachability, gateway, domain, Service or finding can differ
        report.preexisting = len(plane.cache.setdefault("keys", finding_keys(old)))
        return report
    found = findings(plane)
    report.changes = pair_changes(old, plane)
    report.gateways = gateway_losses(old, plane)
    report.domain_changes = domain_changes(old, plane)
    report.services = service_changes(old, plane)
    before = set(finding_keys(old))
    report.findings = [f for f in found if _key(f) not in before]
    report.preexisting = len(found) - len(report.findings)
    report.findings += [
        _finding(
            "domain-merge",
            f"{d.domain} now joins networks that were apart: "
            + " + ".join("/".join(g) for g in d.groups)
            + f" ({d.cause.text})",
            d.cause.ref,
        )
        for d in report.domain_changes
        if d.kind == "merged"
    ]
    return report
