"""Cross-document rules about the Cluster document's settings (pure): the kinds it lets plain manifests have,
its namespace settings, and secondary DNS (what one VM needs from it is ``reconciler.model.vmrules``).

Each rule yields every finding with the file, line and field at fault; ``reconciler.model.rules`` runs them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from reconciler import labels
from reconciler.errors import Problem
from reconciler.model.cluster import ISTIO_INJECTION, ISTIO_REVISION, KUBEMACPOOL_IGNORE, LoadBalancerPool
from reconciler.model.facts import Facts
from reconciler.model.repo import Repo
from reconciler.objects import MANAGED_KINDS

#: Namespace labels a settings entry may not set by hand: ownership marks, the API server's own, and the
#: ones the first-class settings write (two spellings of one setting would disagree)
_FIRST_CLASS = {
    KUBEMACPOOL_IGNORE[0]: "kubeMacPool: false",
    ISTIO_INJECTION: "serviceMesh: true",
    ISTIO_REVISION: "meshRevision",
    "kubernetes.io/metadata.name": "the namespace's name (the API server sets it)",
    labels.MANAGED_BY: "virtnet's ownership mark",
}


def rule_raw_kinds(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A kind the Cluster allows for plain manifests must be one the engine can write: otherwise the
    repository validates and then the apply fails half way, with no VM applied."""
    for i, kind in enumerate(repo.cluster.spec.allowed_raw_kinds):
        if kind not in MANAGED_KINDS:
            yield Problem(
                repo.cluster.ref("spec", "allowedRawKinds", i),
                f"virtnet cannot apply kind {kind!r}: the engine writes only {', '.join(sorted(MANAGED_KINDS))}",
            )


def rule_namespace_settings(repo: Repo, facts: Facts) -> Iterator[Problem]:
    spec = repo.cluster.spec
    seen: set[str] = set()
    for i, ns in enumerate(spec.namespaces):
        ref = repo.cluster.ref("spec", "namespaces", i, "name")
        if ns.name not in spec.allowed_namespaces:
            yield Problem(ref, f"namespace {ns.name!r} has settings but is not in allowedNamespaces")
        if ns.name in seen:
            yield Problem(ref, f"namespace {ns.name!r} has settings twice")
        seen.add(ns.name)
        if not spec.manage_namespaces:
            yield Problem(
                ref, "namespace settings are labels on the Namespace virtnet renders: manageNamespaces is false"
            )
        for key in ns.labels:
            owner = _FIRST_CLASS.get(key) or ("virtnet's own key" if key.startswith("virtnet.io/") else None)
            if owner is not None:
                yield Problem(
                    repo.cluster.ref("spec", "namespaces", i, "labels", key),
                    f"label {key} is not set by hand here: it is {owner}",
                )


def rule_secondary_dns(repo: Repo, facts: Facts) -> Iterator[Problem]:
    spec = repo.cluster.spec
    dns = spec.secondary_dns
    if dns is None or not dns.enabled:
        return
    # a missing or mismatched baseDomain is decided in reconciler.model.basedomain, against the live cluster
    if dns.pool is None:
        return
    pool = next((p for p in spec.load_balancer_pools if p.name == dns.pool), None)
    ref = repo.cluster.ref("spec", "secondaryDNS", "pool")
    if pool is None:
        yield Problem(ref, f"MetalLB pool {dns.pool!r} is not defined in loadBalancerPools")
    elif not _in_pool(pool, ipaddress.ip_address(dns.name_server_ip)):
        yield Problem(
            repo.cluster.ref("spec", "secondaryDNS", "nameServerIP"),
            f"nameServerIP {dns.name_server_ip} is not in MetalLB pool {pool.name}: the Service could not get it",
        )


def _in_pool(pool: LoadBalancerPool, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for entry in pool.addresses:
        if "-" in entry:
            first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-"))
            if first.version == ip.version and int(first) <= int(ip) <= int(last):
                return True
        elif ip in ipaddress.ip_network(entry, strict=False):
            return True
    return False
