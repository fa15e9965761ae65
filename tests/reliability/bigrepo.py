"""A deterministic, valid repository of about a thousand rendered objects, for fault and crash tests.

Shape (defaults): one ``Cluster`` (``big``) with eight namespaces and a MAC pool (so HyperConverged is
patched too); 40 ``BridgeNetwork`` documents in groups of ten sharing a bridge ``brgN`` whose first network
owns the uplink NIC ``ensN`` (4 NICs, so 4 NNCPs), each offered in four consecutive namespaces (one NAD
per namespace); 300 VMs with one or two interfaces on networks offered in their namespace, some with a
static IPv4 and explicit MAC, every VM exposing SSH (a ClusterIP Service), every third one also a NodePort
Service, every fifth one its SSH keys in a Secret. Files are split per network group and per namespace,
so a test can delete one file and know exactly which objects leave.

Same arguments, same bytes: the layout depends only on the arguments (and ``seed``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.testing.nodes import node

API = "virtnet.io/v1alpha1"
CLUSTER = "big"
GROUP = 10  # bridge networks per bridge / uplink NIC
SPAN = 4  # namespaces each network is offered in
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq9m0a9pZp0nP3jY9bX8kR6w2lZ1s7y2S0d4QvKx3Lm big@example.com"
WORKER = {"node-role.kubernetes.io/worker": ""}


@dataclass(frozen=True)
class Shape:
    vms: int = 320
    networks: int = 40
    namespaces: int = 8
    seed: int = 7
    scoped: bool = False  # give every network and VM ``metadata.clusters: [big]`` (for repos with 2 Clusters)

    @property
    def nics(self) -> tuple[str, ...]:
        return tuple(f"ens{g}" for g in range((self.networks + GROUP - 1) // GROUP))


def _ns(i: int) -> str:
    return f"ns-{i:02d}"


def _meta(shape: Shape, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if shape.scoped:
        meta["clusters"] = [CLUSTER]
    return meta


def _dump(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True))


def documents(shape: Shape = Shape()) -> dict[str, list[dict[str, Any]]]:
    """``{relative file: [documents]}`` of the repository."""
    rng = random.Random(shape.seed)
    namespaces = [_ns(i) for i in range(shape.namespaces)]
    cluster = {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": CLUSTER},
        "spec": {
            "allowedNamespaces": namespaces,
            "macPool": {"start": "02:00:00:00:00:00", "end": "02:00:00:ff:ff:ff"},
        },
    }
    files: dict[str, list[dict[str, Any]]] = {"cluster.yaml": [cluster]}
    offered: dict[str, list[int]] = {ns: [] for ns in namespaces}
    for i in range(shape.networks):
        group, member = divmod(i, GROUP)
        nss = sorted({_ns((i + k) % shape.namespaces) for k in range(min(SPAN, shape.namespaces))})
        spec: dict[str, Any] = {"bridge": f"brg{group}", "nodeSelector": dict(WORKER)}
        if member == 0:
            spec["uplink"] = {"nic": f"ens{group}"}
        spec.update({"vlan": 100 + i, "subnet": f"10.{i}.0.0/24", "namespaces": nss})
        doc = {"apiVersion": API, "kind": "BridgeNetwork", "metadata": _meta(shape, f"net-{i:02d}"), "spec": spec}
        files.setdefault(f"networks/group-{group}.yaml", []).append(doc)
        for ns in nss:
            offered[ns].append(i)
    next_host = dict.fromkeys(range(shape.networks), 10)
    mac = 0
    for j in range(shape.vms):
        ns = namespaces[j % shape.namespaces]
        interfaces: list[dict[str, Any]] = []
        for net in rng.sample(offered[ns], 1 + j % 2):
            iface: dict[str, Any] = {"network": f"net-{net:02d}"}
            if rng.random() < 0.3:
                mac += 1
                iface["mac"] = "02:00:00:" + ":".join(f"{(mac >> s) & 0xFF:02x}" for s in (16, 8, 0))
                iface["ipv4"] = f"10.{net}.0.{next_host[net]}/24"
                next_host[net] += 1
            interfaces.append(iface)
        spec = {
            "cpu": rng.choice([1, 2]),
            "boot": {"containerDisk": "quay.io/containerdisks/fedora:40"},
            "interfaces": interfaces,
            "sshKeys": [SSH_KEY],
            "expose": [{"name": "ssh", "port": 22}],
        }
        if j % 5 == 0:
            spec["sshKeyDelivery"] = "accessCredentials"
        if j % 3 == 0:
            spec["expose"].append({"name": "http", "port": 80, "type": "NodePort", "nodePort": 30000 + j // 3})
        vm = {"apiVersion": API, "kind": "VM", "metadata": _meta(shape, f"vm-{j:03d}", ns), "spec": spec}
        files.setdefault(f"vms/{ns}.yaml", []).append(vm)
    return files


def write(root: Path, shape: Shape = Shape()) -> Path:
    for rel, docs in documents(shape).items():
        _dump(root / rel, docs)
    return root


def nodes(shape: Shape = Shape(), workers: int = 3) -> list[dict[str, Any]]:
    """Simulated workers carrying ``eth0`` and every uplink NIC, for the nmstate controller of the double."""
    return [node(f"worker-{i}", i, WORKER, ("eth0", *shape.nics)) for i in range(workers)]
