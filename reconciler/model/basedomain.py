"""Which base domain secondary DNS serves: the repository's ``spec.baseDomain`` against the live cluster's (pure).

Why: KubeSecondaryDNS answers for ``vm.<the cluster's base domain>``, the domain OpenShift keeps in its DNS
config object (``dnses.config.openshift.io/cluster``, ``spec.baseDomain``), not one the user chooses. A
repository that states another domain would publish FQDNs nobody serves, so the two must agree; a repository
that leaves it out takes the cluster's. The pipeline reads the cluster's value (only when secondary DNS is
enabled) and hands it to :func:`resolve_base_domain` through ``load_repo``; offline (``virtnet validate``,
``render``) nothing is read and the repository must state the domain itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import Problem, SourceRef
from reconciler.model.types import dns_subdomain

#: the OpenShift object the cluster's base domain is read from
DNS_CONFIG = "dnses.config.openshift.io/cluster"


@dataclass(frozen=True)
class ClusterDomain:
    """What the live cluster says: its base domain, and whether it is OpenShift (serves the DNS config at all)."""

    value: str | None
    openshift: bool


#: what ``load_repo`` calls for the cluster's base domain, only for a cluster whose secondary DNS is enabled
DomainSource = Callable[[], ClusterDomain]

MISSING = "secondary DNS serves vm.<the cluster's base domain>: set spec.baseDomain"


def _same(a: str, b: str) -> bool:
    """DNS names compare without case and without a trailing root dot."""
    return a.rstrip(".").lower() == b.rstrip(".").lower()


def resolve_base_domain(
    stated: str | None, found: ClusterDomain | None, base_ref: SourceRef, dns_ref: SourceRef
) -> str | Problem:
    """The base domain to render with, or the problem that blocks the plan.

    ``stated`` is the repository's ``spec.baseDomain`` (at ``base_ref``), ``found`` what the cluster said (None:
    not read, as offline); ``dns_ref`` is ``spec.secondaryDNS``, where a missing domain is reported.
    """
    if found is not None and found.value:
        cluster = found.value.rstrip(".").lower()  # the cluster's spelling is not checked by anyone else
        try:
            dns_subdomain(cluster)
        except ValueError as exc:
            return Problem(
                base_ref if stated is not None else dns_ref,
                f"the cluster's base domain ({DNS_CONFIG} spec.baseDomain) {exc}: secondary DNS cannot serve "
                "names under it",
            )
        if stated is None:
            return cluster
        if _same(stated, cluster):
            return stated
        return Problem(
            base_ref,
            f"baseDomain {stated!r} is not the cluster's base domain {cluster!r} ({DNS_CONFIG} "
            f"spec.baseDomain): secondary DNS serves vm.{cluster}, so FQDNs under vm.{stated} would not "
            f"resolve; write baseDomain: {cluster} or leave it out to use the cluster's",
        )
    if stated is not None:
        return stated
    if found is None:
        return Problem(dns_ref, MISSING)
    why = (
        f"the cluster has no {DNS_CONFIG} with a spec.baseDomain"
        if found.openshift
        else f"the cluster is not OpenShift (it serves no {DNS_CONFIG}) so its base domain cannot be read"
    )
    return Problem(dns_ref, f"{MISSING} ({why})")
