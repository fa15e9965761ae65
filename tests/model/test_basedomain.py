"""The pure decision between the repository's ``spec.baseDomain`` and the live cluster's (model.basedomain)."""

from __future__ import annotations

from reconciler.errors import Problem, SourceRef
from reconciler.model.basedomain import DNS_CONFIG, MISSING, ClusterDomain, resolve_base_domain

BASE = SourceRef("clusters/prod.yaml", 23, "spec.baseDomain")
DNS = SourceRef("clusters/prod.yaml", 37, "spec.secondaryDNS")
OPENSHIFT = ClusterDomain("prod.example.com", openshift=True)


def decide(stated: str | None, found: ClusterDomain | None) -> str | Problem:
    return resolve_base_domain(stated, found, BASE, DNS)


def test_agreeing_domains_keep_the_repositorys_spelling() -> None:
    assert decide("prod.example.com", OPENSHIFT) == "prod.example.com"
    assert decide("Prod.Example.com.", OPENSHIFT) == "Prod.Example.com."  # case and the root dot do not differ


def test_an_omitted_domain_is_the_clusters() -> None:
    assert decide(None, OPENSHIFT) == "prod.example.com"
    assert decide(None, ClusterDomain("lab.example.org", openshift=True)) == "lab.example.org"


def test_a_different_domain_names_the_line_and_both_values() -> None:
    found = decide("staging.example.com", OPENSHIFT)
    assert isinstance(found, Problem) and found.ref == BASE
    assert "'staging.example.com'" in found.message and "'prod.example.com'" in found.message
    assert "dnses.config.openshift.io/cluster" in found.message


def test_a_stated_domain_stands_where_the_cluster_has_none() -> None:
    assert decide("prod.example.com", ClusterDomain(None, openshift=False)) == "prod.example.com"
    assert decide("prod.example.com", ClusterDomain(None, openshift=True)) == "prod.example.com"
    assert decide("prod.example.com", None) == "prod.example.com"


def test_neither_is_the_model_error_saying_why_the_cluster_could_not_help() -> None:
    offline = decide(None, None)
    assert offline == Problem(DNS, MISSING)  # offline: the message it always was
    not_openshift = decide(None, ClusterDomain(None, openshift=False))
    assert isinstance(not_openshift, Problem) and not_openshift.ref == DNS
    assert not_openshift.message.startswith(MISSING) and "not OpenShift" in not_openshift.message
    empty = decide(None, ClusterDomain(None, openshift=True))
    assert isinstance(empty, Problem) and "not OpenShift" not in empty.message and "no " in empty.message


def test_the_clusters_domain_is_normalised_and_must_be_a_dns_subdomain() -> None:
    assert decide(None, ClusterDomain("Prod.Example.COM.", openshift=True)) == "prod.example.com"
    assert decide("prod.example.com", ClusterDomain("PROD.example.com.", openshift=True)) == "prod.example.com"
    for stated, ref in ((None, DNS), ("prod.example.com", BASE)):
        bad = decide(stated, ClusterDomain("prod_example.com", openshift=True))
        assert isinstance(bad, Problem) and bad.ref == ref
        assert "'prod_example.com' is not a DNS-1123 subdomain" in bad.message and DNS_CONFIG in bad.message
