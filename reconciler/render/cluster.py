"""Cluster settings → Namespaces, MetalLB pools, and the HyperConverged patch (pure).

HyperConverged is not ours: the operator owns it and we set only a few fields with server-side apply.
It is therefore rendered as a *partial* object without ownership labels, which tells the engine to patch
it, never create or prune it.
"""

from __future__ import annotations

from typing import Any

from reconciler import labels
from reconciler.model.cluster import (
    ISTIO_INJECTION,
    ISTIO_REVISION,
    KUBEMACPOOL_IGNORE,
    METALLB_ADDRESS_POOL,
    ClusterSpec,
)
from reconciler.objects import Obj
from reconciler.render.networks import migration_nad_name

#: KubeSecondaryDNS's name server: its Deployment's pod label, and the port CoreDNS listens on (UDP)
SECONDARY_DNS_SELECTOR = {"k8s-app": "secondary-dns"}
SECONDARY_DNS_PORT = 5353
SECONDARY_DNS_SERVICE = "dns-lb"


def namespace_labels(cluster: ClusterSpec, name: str) -> dict[str, str]:
    """The labels a namespace's settings stand for: KubeMacPool's opt-out, mesh membership, the rest as given."""
    settings = cluster.namespace(name)
    out = dict(settings.labels)
    if not settings.kube_mac_pool:
        out[KUBEMACPOOL_IGNORE[0]] = KUBEMACPOOL_IGNORE[1]
    if settings.service_mesh:
        if settings.mesh_revision is not None:
            out[ISTIO_REVISION] = settings.mesh_revision
        else:
            out[ISTIO_INJECTION] = "enabled"
    return out


def namespaces(cluster: ClusterSpec) -> list[Obj]:
    """Namespaces are never pruned: deleting one deletes everything in it, including VMs and disks."""
    if not cluster.manage_namespaces:
        return []
    out: list[Obj] = []
    for ns in sorted(set(cluster.allowed_namespaces)):
        meta: Obj = {"name": ns, "annotations": {labels.PRUNE: "disabled"}}
        ns_labels = namespace_labels(cluster, ns)
        if ns_labels:
            meta["labels"] = ns_labels
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
    return out


def secondary_dns_service(cluster: ClusterSpec) -> list[Obj]:
    """The LoadBalancer Service that publishes KubeSecondaryDNS outside the cluster, at the address
    HyperConverged announces (``kubeSecondaryDNSNameServerIP``): the networking chapter's procedure,
    ``oc expose deployment/secondary-dns --type=LoadBalancer --port=53 --target-port=5353 --protocol=UDP``,
    with the address pinned so the two cannot disagree."""
    dns = cluster.secondary_dns
    if dns is None or not dns.enabled or not dns.publish:
        return []
    annotations = {"metallb.io/loadBalancerIPs": dns.name_server_ip}
    if dns.pool is not None:
        annotations[METALLB_ADDRESS_POOL] = dns.pool
    port = {"name": "dns", "port": 53, "targetPort": SECONDARY_DNS_PORT, "protocol": "UDP"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": SECONDARY_DNS_SERVICE,
                "namespace": cluster.hyper_converged.namespace,
                "annotations": annotations,
            },
            "spec": {"type": "LoadBalancer", "selector": dict(SECONDARY_DNS_SELECTOR), "ports": [port]},
        }
    ]


def metallb(cluster: ClusterSpec) -> list[Obj]:
    out: list[Obj] = []
    for pool in cluster.load_balancer_pools:
        meta = {"name": pool.name, "namespace": cluster.metallb_namespace}
        out.append(
            {
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": dict(meta),
                "spec": {"addresses": list(pool.addresses), "autoAssign": pool.auto_assign},
            }
        )
        out.append(
            {
                "apiVersion": "metallb.io/v1beta1",
                "kind": "L2Advertisement",
                "metadata": dict(meta),
                "spec": {"ipAddressPools": [pool.name]},
            }
        )
    return out


def hyperconverged(cluster: ClusterSpec, persistent_ips: bool = False) -> list[Obj]:
    """The HyperConverged fields the repository sets. ``persistent_ips``: some OVN network keeps VMs'
    addresses (``allowPersistentIPs``), which needs the kubevirt-ipam-controller HyperConverged deploys."""
    spec: dict[str, Any] = {}
    gates: dict[str, bool] = {}
    if cluster.live_migration is not None:
        spec["liveMigrationConfig"] = {"network": migration_nad_name(cluster)}
    if cluster.secondary_dns is not None:
        gates["deployKubeSecondaryDNS"] = cluster.secondary_dns.enabled
        if cluster.secondary_dns.enabled:
            spec["kubeSecondaryDNSNameServerIP"] = cluster.secondary_dns.name_server_ip
    if persistent_ips:
        gates["deployKubevirtIpamController"] = True
    if cluster.dpdk is not None:
        spec["defaultRuntimeClass"] = cluster.dpdk.runtime_class
        if cluster.dpdk.align_cpus:
            gates["alignCPUs"] = True
    if gates:
        spec["featureGates"] = dict(sorted(gates.items()))
    if cluster.mac_pool is not None:
        spec["kubeMacPoolConfiguration"] = {"rangeStart": cluster.mac_pool.start, "rangeEnd": cluster.mac_pool.end}
    if not spec:
        return []
    ref = cluster.hyper_converged
    return [
        {
            "apiVersion": "hco.kubevirt.io/v1beta1",
            "kind": "HyperConverged",
            "metadata": {"name": ref.name, "namespace": ref.namespace},
            "spec": spec,
        }
    ]
