"""Who reaches whom within each namespace on the secondary networks (pure): the status branch's
``reachability/<namespace>.md`` matrix (``reconciler.output.connectivity``), by the rules of
``reconciler.safety.reach``. Its output lists every pair of a namespace (4,000 VMs on one network: 16 million
peers), so it pairs *positions* and hands each VM its position's reach, not two interfaces at a time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from reconciler.safety.dataplane import POD, DataPlane, DomainKey, Endpoint
from reconciler.safety.reach import Position, positions, reaches


@dataclass
class MatrixRow:
    """One VM of a namespace: the VMs of the same namespace it reaches (by network), and what else."""

    vm: str
    peers: dict[str, list[str]] = field(default_factory=dict)  # VM name -> networks it is reached over
    elsewhere: int = 0  # interface pairs with VMs of other namespaces
    pod: bool = False
    gateway: bool = False


def _add(row: MatrixRow, peer: str, network: str) -> None:
    nets = row.peers.setdefault(peer, [])
    if network not in nets:
        nets.append(network)


def _peers_by_position(members: list[tuple[Endpoint, Position]], rows: dict[str, MatrixRow]) -> None:
    """The peers of one namespace's VMs in one domain, each VM with one interface there: a member reaches
    exactly what its position reaches, so positions are paired (a domain's members share a few) and each
    member takes its position's reach list, in member order: the order the pair loop added them in."""
    at: dict[Position, list[int]] = {}
    for i, (_, p) in enumerate(members):
        at.setdefault(p, []).append(i)
    reach = {p: sorted(j for q, js in at.items() if reaches(p, q) for j in js) for p in at}
    vms = [a.vm for a, _ in members]
    for k, (a, p) in enumerate(members):
        row, net = rows[a.vm], a.network
        if not row.peers:  # the common case, built at once (4,000 VMs on one network: 16 million peers)
            row.peers = {vms[j]: [net] for j in reach[p] if j != k}
            continue
        for j in reach[p]:
            if j != k:
                _add(row, vms[j], net)


def namespace_matrix(plane: DataPlane) -> dict[str, list[MatrixRow]]:
    """Per namespace, who reaches whom on the secondary networks (the pod network joins every VM that has
    it and is a flag, not a column). Pairs are looked at within one namespace and one domain only; pairs
    with other namespaces are counted from position counts, never listed."""
    where = positions(plane)
    total: dict[DomainKey, Counter[Position]] = {}
    local: dict[tuple[str, DomainKey], Counter[Position]] = {}
    groups: dict[tuple[str, DomainKey], list[tuple[Endpoint, Position]]] = {}
    rows: dict[str, MatrixRow] = {vm: MatrixRow(vm) for vm in sorted(plane.vms)}
    for key, ep in plane.endpoints.items():
        p = where[key]
        if ep.domain == POD:
            rows[ep.vm].pod = True
            continue
        rows[ep.vm].gateway = rows[ep.vm].gateway or p.routed
        total.setdefault(ep.domain, Counter())[p] += 1
        local.setdefault((ep.namespace, ep.domain), Counter())[p] += 1
        groups.setdefault((ep.namespace, ep.domain), []).append((ep, p))
    for (ns, domain), members in groups.items():
        if len({a.vm for a, _ in members}) == len(members):
            _peers_by_position(members, rows)
        else:  # a VM with two interfaces here: pair them one by one (the order of its networks depends on it)
            for i, (a, pa) in enumerate(members):
                for b, pb in members[i + 1 :]:
                    if a.vm != b.vm and reaches(pa, pb):
                        _add(rows[a.vm], b.vm, a.network)
                        _add(rows[b.vm], a.vm, b.network)
        near, here = total[domain], local[(ns, domain)]
        elsewhere = {p: sum(n - here.get(q, 0) for q, n in near.items() if reaches(p, q)) for p in here}
        for a, pa in members:
            rows[a.vm].elsewhere += elsewhere[pa]
    out: dict[str, list[MatrixRow]] = {}
    for vm, row in rows.items():
        out.setdefault(vm.partition("/")[0], []).append(row)
    return out
