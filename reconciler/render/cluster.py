"""Cluster settings → Namespaces, MetalLB pools, and the HyperConverged patch (pure).

HyperConverged is not ours: the operator owns it and we set only a few fields with server-side apply.
It is therefore rendered as a *partial* object without ownership labels, which tells the engine to patch
it, never create or prune it.
"""

from __future__ import annotations

from typing import Any

from reconciler import labels
from reconciler.model.cluster import ClusterSpec
from reconciler.objects import Obj
from reconciler.render.networks import migration_nad_name


def namespaces(cluster: ClusterSpec) -> list[Obj]:
    """Namespaces are never pruned: deleting one deletes everything in it, including VMs and disks."""
    if not cluster.manage_namespaces:
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "annotations": {labels.PRUNE: "disabled"}},
        }
        for ns in sorted(set(cluster.allowed_namespaces))
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


def hyperconverged(cluster: ClusterSpec) -> list[Obj]:
    spec: dict[str, Any] = {}
    if cluster.live_migration is not None:
        spec["liveMigrationConfig"] = {"network": migration_nad_name(cluster)}
    if cluster.secondary_dns is not None:
        spec["featureGates"] = {"deployKubeSecondaryDNS": cluster.secondary_dns.enabled}
        if cluster.secondary_dns.enabled:
            spec["kubeSecondaryDNSNameServerIP"] = cluster.secondary_dns.name_server_ip
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
