"""Node shapes for the simulated nmstate controller: the cluster the demo and the engine tests run on.

Three workers with the NICs ``examples/repo`` uses (eth0 carries the node IP and default route; eth1 VM
traffic; eth2/eth3 the storage bond; eth4/eth5 the migration bond; ens5f0 an SR-IOV PF) and three
control-plane nodes with a single NIC.
"""

from __future__ import annotations

from typing import Any

WORKER_NICS = ("eth0", "eth1", "eth2", "eth3", "eth4", "eth5", "ens5f0")


def _nic(name: str, index: int, node: int, address: str | None = None) -> dict[str, Any]:
    nic: dict[str, Any] = {
        "name": name,
        "type": "ethernet",
        "state": "up",
        "mtu": 9000 if name != "eth0" else 1500,
        "mac-address": f"52:54:00:{node:02x}:00:{index:02x}",
        "ipv4": {"enabled": False},
    }
    if address:
        nic["ipv4"] = {"enabled": True, "dhcp": False, "address": [{"ip": address, "prefix-length": 24}]}
    return nic


def node(name: str, number: int, labels: dict[str, str], nics: tuple[str, ...]) -> dict[str, Any]:
    ip = f"192.0.2.{10 + number}"
    return {
        "name": name,
        "labels": {"kubernetes.io/hostname": name, **labels},
        "interfaces": [_nic(n, i, number, ip if n == "eth0" else None) for i, n in enumerate(nics)],
        "routes": {
            "running": [{"destination": "0.0.0.0/0", "next-hop-address": "192.0.2.1", "next-hop-interface": "eth0"}]
        },
    }


def demo_nodes(workers: int = 3, control_plane: int = 3) -> list[dict[str, Any]]:
    worker_labels = {"node-role.kubernetes.io/worker": "", "feature.node.kubernetes.io/network-sriov.capable": "true"}
    out = [node(f"worker-{i}", i, worker_labels, WORKER_NICS) for i in range(workers)]
    out += [
        node(
            f"master-{i}",
            50 + i,
            {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""},
            ("eth0",),
        )
        for i in range(control_plane)
    ]
    return out


#: namespaces the operators of an OpenShift Virtualization cluster have made before virtnet runs
CLUSTER_NAMESPACES = ("openshift-cnv", "openshift-nmstate", "openshift-sriov-network-operator", "metallb-system")


def seed_hyperconverged(store: Any, name: str = "kubevirt-hyperconverged", namespace: str = "openshift-cnv") -> None:
    """The operators' namespaces and the HyperConverged CR the operator would have made (virtnet only patches it).

    The namespaces first: the API server refuses objects in a namespace that does not exist, as a real one does.
    """
    for ns in dict.fromkeys((*CLUSTER_NAMESPACES, namespace)):
        store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    store.put(
        {
            "apiVersion": "hco.kubevirt.io/v1beta1",
            "kind": "HyperConverged",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {},  # the CRD's defaults, which no manager owns
        }
    )


def seed_cluster_dns(store: Any, base_domain: str) -> None:
    """OpenShift's cluster DNS config (``dnses.config.openshift.io/cluster``) with ``base_domain``: what the
    installer writes, and where virtnet reads the domain secondary DNS serves. Unseeded, the cluster is not
    OpenShift (the GET answers 404), as the double is by default."""
    store.put(
        {
            "apiVersion": "config.openshift.io/v1",
            "kind": "DNS",
            "metadata": {"name": "cluster"},
            "spec": {"baseDomain": base_domain},
        }
    )
