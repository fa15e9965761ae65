"""Deterministic synthetic repositories at scale, valid under ``virtnet validate``.

Why synthetic: a benchmark needs repositories of known size that exercise every expensive path (bridge
and OVN networks, static IPs checked against subnets, explicit MACs checked against the pool, Services,
SSH-key Secrets) and that are byte-identical for the same seed, so figures from two runs compare.

Shape of a generated repository (sizes in :data:`SIZES`):

* one ``Cluster`` (``bench``) allowing ``ns-000``..; a MAC pool (so HyperConverged is patched too) and a
  MetalLB pool;
* networks ``net-000``..: every third one an OVN layer-2 network, the others Linux-bridge VLAN networks in
  groups of ten that share a bridge ``brgN`` whose first network owns the uplink NIC ``ensN`` (one NIC per
  bridge, never shared); every network is offered in a few consecutive namespaces;
* VMs ``vm-00000``.. spread round-robin over the namespaces, each with 3 interfaces on distinct networks
  offered in its namespace; about a quarter of the interfaces on networks with a subnet get a unique
  static IPv4 (and so an explicit MAC), some more get an explicit MAC; some VMs expose ports (ClusterIP,
  NodePort with unique ports, LoadBalancer) or deliver SSH keys through a Secret.

``generate(size, out)`` writes the files; ``bump_cpu_of=k`` writes the same repository except that VM ``k``
has one more vCPU (the "one-VM change" of the benchmark). ``worker_nodes(size)`` are simulated nodes that
carry every uplink NIC, for the API double's nmstate controller.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.testing.nodes import node

try:  # libyaml writes a 10,000-VM repository several times faster
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

API = "virtnet.io/v1alpha1"
CLUSTER = "bench"
DEFAULT_SEED = 20240601
BRIDGE_GROUP = 10  # bridge networks sharing one bridge (one uplink NIC)
NAMESPACE_SPAN = 4  # namespaces each network is offered in
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq9m0a9pZp0nP3jY9bX8kR6w2lZ1s7y2S0d4QvKx3Lm bench@example.com"
WORKER_LABELS = {"node-role.kubernetes.io/worker": ""}


@dataclass(frozen=True)
class Size:
    name: str
    vms: int
    networks: int
    namespaces: int
    interfaces: int = 3


SIZES: dict[str, Size] = {
    "XS": Size("XS", vms=12, networks=9, namespaces=3),
    "S": Size("S", vms=100, networks=50, namespaces=10),
    "M": Size("M", vms=1_000, networks=200, namespaces=50),
    "L": Size("L", vms=10_000, networks=500, namespaces=100),
}


@dataclass
class Summary:
    """What was written: counts a test or the benchmark table can show."""

    size: str
    files: int = 0
    documents: int = 0
    vms: int = 0
    networks: int = 0
    bridge_networks: int = 0
    ovn_networks: int = 0
    bridges: int = 0
    namespaces: int = 0
    interfaces: int = 0
    static_ips: int = 0
    macs: int = 0
    exposes: int = 0
    secrets: int = 0
    uplinks: list[str] = field(default_factory=list)


@dataclass
class _Net:
    name: str
    kind: str
    namespaces: list[str]
    subnet: ipaddress.IPv4Network | None
    doc: dict[str, Any]
    next_host: int = 10


def _namespace(i: int) -> str:
    return f"ns-{i:03d}"


def _subnet(i: int, ovn: bool) -> ipaddress.IPv4Network:
    """A distinct /20 per network: 10.0.0.0/20.. for bridges, 100.64.0.0/20.. for OVN."""
    base = ipaddress.ip_address("100.64.0.0" if ovn else "10.0.0.0")
    return ipaddress.IPv4Network(f"{base + i * 4096}/20")


def _networks(size: Size) -> list[_Net]:
    nets: list[_Net] = []
    span = min(size.namespaces, NAMESPACE_SPAN)
    bridge_index = 0
    for i in range(size.networks):
        name = f"net-{i:03d}"
        namespaces = sorted(_namespace((i + j) % size.namespaces) for j in range(span))
        if i % 3 == 2:
            subnet = _subnet(i, ovn=True)
            spec: dict[str, Any] = {"topology": "layer2", "subnets": [str(subnet)], "namespaces": namespaces}
            if i % 2:
                spec["mtu"] = 1400
            doc = {"apiVersion": API, "kind": "OvnNetwork", "metadata": {"name": name}, "spec": spec}
            nets.append(_Net(name, "OvnNetwork", namespaces, subnet, doc))
            continue
        group, member = divmod(bridge_index, BRIDGE_GROUP)
        bridge_index += 1
        spec = {"bridge": f"brg{group}", "nodeSelector": dict(WORKER_LABELS), "vlan": 100 + member}
        if member == 0:  # the first network of a group creates the bridge over its own NIC
            spec["uplink"] = {"nic": f"ens{group}"}
            if group % 2 == 0:
                spec["mtu"] = 9000
        bridge_subnet = _subnet(i, ovn=False) if bridge_index % 2 else None
        if bridge_subnet is not None:
            spec["subnet"] = str(bridge_subnet)
        spec["namespaces"] = namespaces
        doc = {"apiVersion": API, "kind": "BridgeNetwork", "metadata": {"name": name}, "spec": spec}
        nets.append(_Net(name, "BridgeNetwork", namespaces, bridge_subnet, doc))
    return nets


def _mac(n: int) -> str:
    return "02:00:00:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (16, 8, 0))


def _vm(
    j: int, ns: str, offered: list[_Net], rng: random.Random, counters: dict[str, int], size: Size
) -> dict[str, Any]:
    interfaces: list[dict[str, Any]] = []
    for net in rng.sample(offered, size.interfaces):
        iface: dict[str, Any] = {"network": net.name}
        static = net.subnet is not None and rng.random() < 0.25
        if static or rng.random() < 0.3:
            counters["mac"] += 1
            iface["mac"] = _mac(counters["mac"])
        if static:
            assert net.subnet is not None
            ip = net.subnet.network_address + net.next_host
            net.next_host += 1
            iface["ipv4"] = f"{ip}/{net.subnet.prefixlen}"
            if rng.random() < 0.5:
                iface["gateway4"] = str(net.subnet.network_address + 1)
        elif net.kind == "BridgeNetwork" and rng.random() < 0.1:
            iface["hotplug"] = True
        interfaces.append(iface)
    spec: dict[str, Any] = {"cpu": rng.choice([1, 2, 4]), "memory": rng.choice(["2Gi", "4Gi", "8Gi"])}
    if rng.random() < 0.2:
        spec["boot"] = {
            "dataVolume": {"size": "20Gi", "registry": {"url": "docker://quay.io/containerdisks/centos-stream:9"}}
        }
    else:
        spec["boot"] = {"containerDisk": "quay.io/containerdisks/fedora:40"}
    spec["interfaces"] = interfaces
    spec["sshKeys"] = [SSH_KEY]
    if j % 10 == 0:
        spec["sshKeyDelivery"] = "accessCredentials"
    expose: list[dict[str, Any]] = []
    if j % 5 == 0:
        expose.append({"name": "ssh", "port": 22})
    if j % 50 == 0:
        expose.append({"name": "http", "port": 80, "type": "NodePort", "nodePort": 30000 + j // 50})
    if j % 100 == 7:
        expose.append({"name": "https", "port": 443, "type": "LoadBalancer", "pool": "public"})
    if expose:
        spec["expose"] = expose
    meta = {"name": f"vm-{j:05d}", "namespace": ns, "labels": {"tier": rng.choice(["web", "app", "db"])}}
    return {"apiVersion": API, "kind": "VM", "metadata": meta, "spec": spec}


def _write(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True)
    path.write_text(text)


def generate(size: Size | str, out: Path, *, seed: int = DEFAULT_SEED, bump_cpu_of: int | None = None) -> Summary:
    """Write the repository for ``size`` under ``out`` (created; existing files of the same names replaced)."""
    size = SIZES[size] if isinstance(size, str) else size
    rng = random.Random(seed)
    summary = Summary(size.name, vms=size.vms, networks=size.networks, namespaces=size.namespaces)
    namespaces = [_namespace(i) for i in range(size.namespaces)]
    cluster = {
        "apiVersion": API,
        "kind": "Cluster",
        "metadata": {"name": CLUSTER},
        "spec": {
            "allowedNamespaces": namespaces,
            "macPool": {"start": "02:00:00:00:00:00", "end": "02:00:00:ff:ff:ff"},
            "loadBalancerPools": [{"name": "public", "addresses": ["192.0.2.100-192.0.2.200"]}],
        },
    }
    files: dict[str, list[dict[str, Any]]] = {"clusters/bench.yaml": [cluster]}
    nets = _networks(size)
    files["networks/bridges.yaml"] = [n.doc for n in nets if n.kind == "BridgeNetwork"]
    files["networks/ovn.yaml"] = [n.doc for n in nets if n.kind == "OvnNetwork"]
    offered: dict[str, list[_Net]] = {ns: [] for ns in namespaces}
    for net in nets:
        for ns in net.namespaces:
            offered[ns].append(net)
    counters = {"mac": 0}
    for j in range(size.vms):
        ns = namespaces[j % size.namespaces]
        vm = _vm(j, ns, offered[ns], rng, counters, size)
        if j == bump_cpu_of:
            vm["spec"]["cpu"] += 1
        files.setdefault(f"vms/{ns}.yaml", []).append(vm)
        ifaces = vm["spec"]["interfaces"]
        summary.interfaces += len(ifaces)
        summary.static_ips += sum(1 for i in ifaces if "ipv4" in i)
        summary.macs += sum(1 for i in ifaces if "mac" in i)
        summary.exposes += len(vm["spec"].get("expose", []))
        summary.secrets += vm["spec"].get("sshKeyDelivery") == "accessCredentials"
    for rel, docs in files.items():
        _write(out / rel, docs)
    summary.files = len(files)
    summary.documents = sum(len(d) for d in files.values())
    summary.bridge_networks = len(files["networks/bridges.yaml"])
    summary.ovn_networks = len(files["networks/ovn.yaml"])
    summary.uplinks = [n.doc["spec"]["uplink"]["nic"] for n in nets if "uplink" in n.doc["spec"]]
    summary.bridges = len(summary.uplinks)
    return summary


def worker_nodes(size: Size | str, workers: int = 3) -> list[dict[str, Any]]:
    """Simulated workers carrying ``eth0`` and every uplink NIC the repository of ``size`` uses."""
    size = SIZES[size] if isinstance(size, str) else size
    uplinks = [n.doc["spec"]["uplink"]["nic"] for n in _networks(size) if "uplink" in n.doc["spec"]]
    nics = ("eth0", *uplinks)
    return [node(f"worker-{i}", i, WORKER_LABELS, nics) for i in range(workers)]


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.generate L /tmp/repo-L [--seed N] [--bump-cpu-of K]``."""
    parser = argparse.ArgumentParser(description="Write a synthetic virtnet repository.")
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--bump-cpu-of", type=int)
    opts = parser.parse_args(argv)
    s = generate(opts.size, opts.out, seed=opts.seed, bump_cpu_of=opts.bump_cpu_of)
    print(f"{opts.out}: {s.documents} documents in {s.files} files ({s.vms} VMs, {s.networks} networks)")


if __name__ == "__main__":
    main()
