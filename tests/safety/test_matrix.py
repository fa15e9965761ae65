"""The reachability matrix (safety.matrix.namespace_matrix) pairs positions, not VMs: the same rows, peers in
the same order and pair counts as pairing every two interfaces of a namespace and domain one by one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reconciler.model import load_repo
from reconciler.safety import matrix
from reconciler.safety.dataplane import POD, DataPlane, build
from reconciler.safety.matrix import MatrixRow, _add, namespace_matrix
from reconciler.safety.reach import positions, reaches
from tests.repos import write_repo

CLUSTER = (
    "apiVersion: virtnet.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: test\nspec:\n  allowedNamespaces: [apps, db]\n"
)


def bridge(name: str, vlan: int, subnet: str, uplink: bool) -> str:
    up = "  uplink:\n    nic: eth1\n" if uplink else ""
    return (
        f"apiVersion: virtnet.io/v1alpha1\nkind: BridgeNetwork\nmetadata:\n  name: {name}\nspec:\n  bridge: br1\n"
        f"{up}  vlan: {vlan}\n  subnet: {subnet}\n  namespaces: [apps, db]\n"
    )


def vm(name: str, ns: str, interfaces: list[tuple[str, str, str]]) -> str:
    lines = ["  boot:", "    containerDisk: quay.io/containerdisks/fedora:40", "  interfaces:"]
    for network, ipv4, gateway in interfaces:
        octets = ":".join(f"{int(o):02x}" for o in ipv4.split("/")[0].split("."))
        lines += [f"    - network: {network}", f'      mac: "02:00:{octets}"', f"      ipv4: {ipv4}"]
        lines += [f"      gateway4: {gateway}"] if gateway else []
    return (
        f"apiVersion: virtnet.io/v1alpha1\nkind: VM\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
        + "\n".join(lines)
        + "\n"
    )


def naive_matrix(plane: DataPlane) -> dict[str, list[MatrixRow]]:
    """Every two interfaces of a namespace and domain, one by one (the definition)."""
    where = positions(plane)
    total: dict[object, Counter[object]] = {}
    local: dict[tuple[str, object], Counter[object]] = {}
    groups: dict[tuple[str, object], list[tuple[object, object]]] = {}
    rows = {vm: MatrixRow(vm) for vm in sorted(plane.vms)}
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
        for i, (a, pa) in enumerate(members):
            for b, pb in members[i + 1 :]:
                if a.vm != b.vm and reaches(pa, pb):
                    _add(rows[a.vm], b.vm, a.network)
                    _add(rows[b.vm], a.vm, b.network)
            rows[a.vm].elsewhere += sum(
                n - local[(ns, domain)].get(q, 0) for q, n in total[domain].items() if reaches(pa, q)
            )
    out: dict[str, list[MatrixRow]] = {}
    for vm_name, row in rows.items():
        out.setdefault(vm_name.partition("/")[0], []).append(row)
    return out


def generated(root: Path, twice: bool) -> DataPlane:
    """Routed and unrouted subnets on one domain, VMs on two domains, two namespaces; ``twice``: one VM with
    two interfaces in one domain (the one-by-one path)."""
    nets = [
        bridge("n1", 100, "10.0.1.0/24", True),
        bridge("n2", 100, "10.0.2.0/24", False),
        bridge("n3", 300, "10.0.3.0/24", False),
    ]
    vms = []
    for i in range(40):
        ns, ip = ("apps", i + 10) if i % 4 else ("db", i + 10)
        shape = i % 5
        if shape == 0:
            ifaces = [("n1", f"10.0.1.{ip}/24", "10.0.1.1")]
        elif shape == 1:
            ifaces = [("n2", f"10.0.2.{ip}/24", "10.0.2.1")]
        elif shape == 2:
            ifaces = [("n2", f"10.0.2.{ip}/24", "")]
        elif shape == 3:
            ifaces = [("n3", f"10.0.3.{ip}/24", ""), ("n1", f"10.0.1.{ip}/24", "")]
        else:
            ifaces = [("n3", f"10.0.3.{ip}/24", "")]
        vms.append(vm(f"v{i}", ns, ifaces))
    if twice:
        vms.append(vm("twice", "apps", [("n2", "10.0.2.200/24", ""), ("n1", "10.0.1.200/24", "")]))
    files = {"cluster.yaml": CLUSTER, "nets.yaml": "---\n".join(nets), "vms.yaml": "---\n".join(vms)}
    return build(load_repo(write_repo(root, files, base=False)))


@pytest.mark.parametrize("twice", [False, True])
def test_pairing_positions_is_pairing_interfaces(tmp_path: Path, twice: bool) -> None:
    plane = generated(tmp_path, twice)
    got, want = namespace_matrix(plane), naive_matrix(plane)
    assert got == want
    # insertion order too: the matrix lists peers and their networks in this order
    assert [[(r.vm, list(r.peers.items())) for r in rows] for rows in got.values()] == [
        [(r.vm, list(r.peers.items())) for r in rows] for rows in want.values()
    ]
    apps = {r.vm: r for r in got["apps"]}
    assert apps["apps/v3"].peers and apps["apps/v3"].elsewhere > 0  # the example is not trivially empty
    assert any(len(nets) == 2 for r in got["apps"] for nets in r.peers.values())  # reached over two domains


def test_one_network_of_many_vms_pairs_its_positions_not_its_vms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 VMs on one subnet: one position, so a handful of reach tests instead of C(300, 2) (4,000 VMs took
    seconds); every VM still lists the 299 others."""
    many = [vm(f"v{i}", "apps", [("n1", f"10.0.{i // 200 + 1}.{i % 200 + 10}/22", "")]) for i in range(300)]
    files = {
        "cluster.yaml": CLUSTER,
        "nets.yaml": bridge("n1", 100, "10.0.0.0/22", True),
        "vms.yaml": "---\n".join(many),
    }
    plane = build(load_repo(write_repo(tmp_path, files, base=False)))
    calls = Counter[str]()
    real = matrix.reaches
    monkeypatch.setattr(matrix, "reaches", lambda p, q: calls.update(["reaches"]) or real(p, q))
    rows = namespace_matrix(plane)["apps"]
    assert calls["reaches"] <= 4 and all(len(r.peers) == 299 for r in rows)
    assert rows[0].peers["apps/v1"] == ["n1"]
