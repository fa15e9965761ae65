"""Reachability over the data plane, and what changes between two revisions (pure).

Rules (``reconciler.safety.dataplane`` says what the model assumes):

* two VM interfaces in one layer-2 domain that share a subnet are adjacent;
* across subnets in one domain, only when both have a declared gateway present in the domain (a router
  forwards one way and answers the other);
* interfaces of one VM are not a pair; routed paths between domains are not modelled (a router joining two
  domains may filter; nothing in the repository says it does not).

Why positions and cohorts instead of pairs: 10,000 VMs on one pod network are 50 million pairs. Whether two
interfaces reach each other depends only on their *positions* (domain, subnets, routed), so interfaces are
grouped by their position before and after the change (and by the change's cause), and pairs are counted
per pair of groups: only groups that changed are looked at, and only against groups in their domains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import SourceRef
from reconciler.model.segments import SEGMENT_FIELDS, segment_label
from reconciler.safety.dataplane import POD, DataPlane, DomainKey, Endpoint

EXAMPLES = 5  # pairs named per change
MAX_CAUSES = 200  # changed cohorts with a cause each; beyond, they are merged by position (``_coarse``)


@dataclass(frozen=True)
class Position:
    """Where an interface sits: its domain, its subnets, whether a gateway there routes for it. The hash is
    computed once: positions are dictionary keys hundreds of thousands of times in a large diff."""

    domain: DomainKey
    subnets: frozenset[str]
    routed: bool
    digest: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", hash((self.domain, self.subnets, self.routed)))

    def __hash__(self) -> int:
        return self.digest


def reaches(p: Position, q: Position) -> bool:
    return p.domain == q.domain and (bool(p.subnets & q.subnets) or (p.routed and q.routed))


def positions(plane: DataPlane) -> dict[tuple[str, str], Position]:
    """Each interface's position (computed once per data plane: the diff, the checks and the matrix use it).
    Equal positions are one object, so grouping by position hashes each only once."""
    cached: dict[tuple[str, str], Position] | None = plane.cache.get("positions")
    if cached is None:
        unique: dict[tuple[Any, ...], Position] = {}
        cached = {}
        for k, e in plane.endpoints.items():
            t = (e.domain, e.subnets, bool(e.gateways) and plane.routed(e))
            p = unique.get(t)
            if p is None:
                p = unique[t] = Position(*t)
            cached[k] = p
        plane.cache["positions"] = cached
    return cached


@dataclass(frozen=True)
class Cause:
    """What in the repository makes an interface's reachability change, and the line to look at."""

    text: str
    ref: SourceRef | None

    @property
    def where(self) -> str:
        return "" if self.ref is None else f"{self.ref.file}:{self.ref.line}" if self.ref.line else self.ref.file


@dataclass(frozen=True)
class Pair:
    a: str
    a_iface: str
    b: str
    b_iface: str

    def __str__(self) -> str:
        return f"{self.a} ({self.a_iface}) ↔ {self.b} ({self.b_iface})"


@dataclass
class ReachChange:
    """Pairs lost or gained in one domain for one cause."""

    direction: str  # lost | gained
    domain: str
    networks: tuple[str, ...]
    cause: Cause
    count: int = 0
    examples: list[Pair] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "domain": self.domain,
            "networks": list(self.networks),
            "pairs": self.count,
            "examples": [{"a": p.a, "aInterface": p.a_iface, "b": p.b, "bInterface": p.b_iface} for p in self.examples],
            "cause": self.cause.text,
            "file": self.cause.ref.file if self.cause.ref else "",
            "line": self.cause.ref.line if self.cause.ref else 0,
        }


@dataclass
class _Cohort:
    """Interfaces with one position before (None: absent) and after, changed for one cause."""

    before: Position | None
    after: Position | None
    cause: Cause | None
    members: list[tuple[str, str]] = field(default_factory=list)
    number: int = 0
    _vms: Counter[str] | None = None

    @property
    def changed(self) -> bool:
        return self.cause is not None

    @property
    def vms(self) -> Counter[str]:
        """Members per VM (counted when a pair count needs it: most cohorts of a diff never pair)."""
        if self._vms is None:
            self._vms = Counter(k[0] for k in self.members)
        return self._vms


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def network_cause(name: str, base: DataPlane, plane: DataPlane) -> Cause:
    """The field of network ``name`` that moved it to another domain (or: it is new)."""
    after, before = plane.networks.get(name), base.networks.get(name)
    if after is None:
        return Cause(f"network {name} is removed", before.ref("metadata", "name") if before else None)
    label = segment_label(plane.domain_of[name])
    text = f"network {name} moves to {label}"
    if before is None:
        return Cause(f"network {name} is added on {label}", after.ref("metadata", "name"))
    if before.kind != after.kind:
        return Cause(text, after.ref("kind"))
    for attr in SEGMENT_FIELDS.get(after.kind, ()):
        if getattr(before.spec, attr, None) != getattr(after.spec, attr, None):
            return Cause(text, after.ref("spec", _camel(attr)))
    return Cause(text, after.ref("spec"))


def cause_of(b: Endpoint | None, a: Endpoint | None, base: DataPlane, plane: DataPlane) -> Cause:
    """Why an interface's position differs between the revisions, with the line of the proposed revision
    (or of the current one, for what the proposed one removes)."""
    if a is None:
        assert b is not None
        vm = base.vms[b.vm]
        if b.vm not in plane.vms:
            return Cause(f"VM {b.vm} is removed", vm.ref("metadata", "name"))
        return Cause(f"interface {b.iface} of {b.vm} is removed", base.ref(b))
    vm = plane.vms[a.vm]
    if b is None:
        if a.vm not in base.vms:
            return Cause(f"VM {a.vm} is added", vm.ref("metadata", "name"))
        return Cause(f"interface {a.iface} of {a.vm} is added", plane.ref(a))
    if a.network != b.network:
        return Cause(f"{a.vm} interface {b.iface} moves from network {b.network} to {a.network}", plane.ref(a))
    if a.domain != b.domain:
        return network_cause(a.network, base, plane)
    if a.subnets != b.subnets:
        if a.addresses != b.addresses:
            fam = "ipv4" if any(":" not in x for x in a.addresses + b.addresses) else "ipv6"
            return Cause(f"{a.vm} interface {a.iface} changes address", vm.ref("spec", "interfaces", a.slot, fam))
        net = plane.networks.get(a.network)
        where = net.ref("spec", "subnet" if net.kind == "BridgeNetwork" else "subnets") if net else plane.ref(a)
        return Cause(f"network {a.network} changes its subnet", where)
    gw_field = "gateway4" if vm.spec.interfaces[a.slot].gateway4 else "gateway6"
    gw_ref = vm.ref("spec", "interfaces", a.slot, gw_field)
    if a.gateways != b.gateways:
        return Cause(f"{a.vm} interface {a.iface} changes its gateway", gw_ref)
    label = segment_label(a.domain)
    now = "is now" if plane.routed(a) else "is no longer"
    return Cause(f"gateway {', '.join(a.gateways)} of {a.vm} {now} present in {label}", gw_ref)


def _cohorts(base: DataPlane, plane: DataPlane) -> list[_Cohort]:
    before, after = positions(base), positions(plane)
    # one number per distinct position across both revisions, looked up by object identity: comparing
    # 80,000 positions field by field costs more than the rest of the diff
    numbers: dict[Position, int] = {}
    by_object: dict[int, int] = {id(None): -1}
    for p in {id(p): p for p in (*before.values(), *after.values())}.values():
        by_object[id(p)] = numbers.setdefault(p, len(numbers))
    found: dict[tuple[int, int, Cause | None], _Cohort] = {}
    gone = [(k, None) for k in before if k not in after]  # in the current revision's order: deterministic
    for key, pa in [*after.items(), *gone]:
        pb = before.get(key)
        nb, na = by_object[id(pb)], by_object[id(pa)]
        cause = None if nb == na else cause_of(base.endpoints.get(key), plane.endpoints.get(key), base, plane)
        cohort = found.get((nb, na, cause))
        if cohort is None:
            cohort = found[(nb, na, cause)] = _Cohort(pb, pa, cause, number=len(found))
        cohort.members.append(key)
    cohorts = sorted(found.values(), key=lambda c: c.number)
    changed = [c for c in cohorts if c.changed]
    return cohorts if len(changed) <= MAX_CAUSES else [c for c in cohorts if not c.changed] + _coarse(changed)


def _coarse(changed: list[_Cohort]) -> list[_Cohort]:
    """Changed cohorts merged per (before, after) position, the first cause named for all: a commit that
    renames 10,000 VMs has 20,000 causes, and pairing every cohort with every other would take hours."""
    merged: dict[tuple[Position | None, Position | None], list[_Cohort]] = {}
    for c in changed:
        merged.setdefault((c.before, c.after), []).append(c)
    out = []
    for (pb, pa), group in merged.items():
        first = group[0].cause
        assert first is not None
        text = first.text if len(group) == 1 else f"{first.text} (and {len(group) - 1} more changes like it)"
        out.append(_Cohort(pb, pa, Cause(text, first.ref), [k for c in group for k in c.members], group[0].number))
    return out


def _count(c: _Cohort, d: _Cohort) -> int:
    if c is d:
        n = len(c.members)
        return n * (n - 1) // 2 - sum(k * (k - 1) // 2 for k in c.vms.values())
    small, big = (c, d) if len(c.vms) <= len(d.vms) else (d, c)
    return len(c.members) * len(d.members) - sum(k * big.vms.get(v, 0) for v, k in small.vms.items())


def _examples(c: _Cohort, d: _Cohort, side: DataPlane) -> list[Pair]:
    out: list[Pair] = []
    for i, x in enumerate(c.members):
        for y in d.members[i + 1 :] if c is d else d.members:
            if x[0] != y[0]:
                ex, ey = side.endpoints[x], side.endpoints[y]
                a, b = sorted(((ex.vm, ex.iface), (ey.vm, ey.iface)))
                out.append(Pair(a[0], a[1], b[0], b[1]))
                if len(out) == EXAMPLES:
                    return out
    return out


def _candidates(
    c: _Cohort, by_before: dict[DomainKey, list[_Cohort]], by_after: dict[DomainKey, list[_Cohort]]
) -> Iterator[_Cohort]:
    seen: set[int] = set()
    near = by_before.get(c.before.domain, []) if c.before else []
    for group in (near, by_after.get(c.after.domain, []) if c.after else []):
        for d in group:
            if d.number not in seen and (not d.changed or d.number >= c.number):
                seen.add(d.number)
                yield d


def pair_changes(base: DataPlane, plane: DataPlane) -> list[ReachChange]:
    """Pairs lost and gained, grouped by domain and cause, biggest first."""
    cohorts = _cohorts(base, plane)
    by_before: dict[DomainKey, list[_Cohort]] = {}
    by_after: dict[DomainKey, list[_Cohort]] = {}
    for c in cohorts:
        if c.before is not None:
            by_before.setdefault(c.before.domain, []).append(c)
        if c.after is not None:
            by_after.setdefault(c.after.domain, []).append(c)
    groups: dict[tuple[str, DomainKey, Cause], ReachChange] = {}
    for c in cohorts:
        if not c.changed:
            continue
        for d in _candidates(c, by_before, by_after):
            was = c.before is not None and d.before is not None and reaches(c.before, d.before)
            now = c.after is not None and d.after is not None and reaches(c.after, d.after)
            if was == now or not (count := _count(c, d)):
                continue
            direction, side = ("lost", base) if was else ("gained", plane)
            domain = c.before.domain if was and c.before else c.after.domain if c.after else POD
            assert c.cause is not None
            change = groups.get((direction, domain, c.cause))
            if change is None:
                networks = tuple(sorted(side.domains[domain].networks)) if domain in side.domains else ()
                change = groups[(direction, domain, c.cause)] = ReachChange(
                    direction, segment_label(domain), networks, c.cause
                )
            change.count += count
            if len(change.examples) < EXAMPLES:
                change.examples += _examples(c, d, side)[: EXAMPLES - len(change.examples)]
    return sorted(groups.values(), key=lambda g: (g.direction != "lost", -g.count, g.domain, g.cause.text))


def gateway_losses(base: DataPlane, plane: DataPlane) -> list[tuple[str, Cause]]:
    """VMs that had a path to a gateway (one present in the domain) and have none in the proposed revision."""
    had: dict[str, Endpoint] = {}
    for ep in base.endpoints.values():
        if ep.gateways and ep.vm not in had and base.routed(ep):
            had[ep.vm] = ep
    still = {ep.vm for ep in plane.endpoints.values() if ep.vm in had and ep.gateways and plane.routed(ep)}
    out = []
    for vm, ep in sorted(had.items()):
        if vm in plane.vms and vm not in still:
            out.append((vm, cause_of(ep, plane.endpoints.get(ep.key), base, plane)))
    return out


def reachable_vms(plane: DataPlane) -> set[str]:
    """VMs with at least one interface that reaches another VM or a gateway present in its domain."""
    where = positions(plane)
    counts: dict[DomainKey, Counter[Position]] = {}
    mine: dict[str, list[Position]] = {}
    for key, p in where.items():
        counts.setdefault(p.domain, Counter())[p] += 1
        mine.setdefault(key[0], []).append(p)
    # interfaces each distinct position reaches, itself included (positions are few, VMs many)
    reach_count = {p: sum(n for q, n in counts[p.domain].items() if reaches(p, q)) for p in set(where.values())}
    out = set()
    for vm, own in mine.items():
        for p in own:
            # more interfaces in reach than this VM's own: one of them belongs to another VM
            if p.routed or reach_count[p] > sum(1 for q in own if reaches(p, q)):
                out.add(vm)
                break
    return out
