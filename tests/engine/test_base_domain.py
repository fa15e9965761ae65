"""The base domain secondary DNS serves, checked against (or taken from) the live cluster at plan time.

KubeSecondaryDNS serves ``vm.<the cluster's base domain>``, which OpenShift keeps in
``dnses.config.openshift.io/cluster``. examples/repo enables secondary DNS and states ``baseDomain:
prod.example.com``; these reconciles seed the cluster's DNS config (or not) and edit that line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from backends import Backend, backend_fixture
from kubernetes.client.exceptions import ApiException

from engine.conftest import edit, run
from reconciler.clients.kube import Kube
from reconciler.model import Repo
from reconciler.objects import Obj
from reconciler.output.summary import vm_access
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import seed_cluster_dns

STATED = "  baseDomain: prod.example.com\n"
DNS_GET = ("get", "config.openshift.io/dnses")
#: web-1 as KubeVirt reports it once the guest agent is up (the names DNS serves are the agent's addresses)
VMI = {
    "metadata": {"namespace": "apps", "name": "web-1"},
    "status": {
        "interfaces": [{"name": "vlan100", "ipAddress": "192.168.100.11"}, {"name": "default"}],
        "conditions": [{"type": "AgentConnected", "status": "True"}],
    },
}

backend = backend_fixture()


def cluster_file(repo: Path) -> Path:
    return repo / "clusters" / "prod.yaml"


def omit_base_domain(repo: Path) -> None:
    """The line becomes a comment, so every other document line (and source annotation) stays where it was."""
    edit(cluster_file(repo), STATED, "  # baseDomain: the cluster's\n")


def dns_config(domain: str) -> Obj:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "DNS",
        "metadata": {"name": "cluster"},
        "spec": {"baseDomain": domain},
    }


def web_1_fqdn(repo: Repo) -> str:
    """The FQDN the status document gives web-1's vlan100 (``reconciler.output.summary``)."""
    [web] = [v for v in vm_access(repo, [VMI], []) if v["vm"] == "apps/web-1"]
    [vlan100] = [i for i in web["interfaces"] if i["name"] == "vlan100"]
    return str(vlan100.get("fqdn"))


def test_an_omitted_base_domain_is_the_clusters(backend: Backend, repo: Path, tmp_path: Path) -> None:
    """Both backends: on the real server the DNS config is a CRD object (reconciler.testing's minimal CRD)."""
    stated = run(repo, backend.kube, apply=False)  # the example as written, on a cluster that is not OpenShift
    assert stated.ok, stated.message
    omit_base_domain(repo)
    backend.put(dns_config("lab.example.org"), "openshift-installer")
    backend.log.reset()
    taken = run(repo, backend.kube, apply=False)
    assert taken.ok, taken.message
    assert taken.repo is not None and taken.repo.cluster.spec.base_domain == "lab.example.org"
    assert backend.log.counts()[DNS_GET] == 1
    # what depends on the domain renders as if it had been written (VMs with secondary NICs get the guest agent)
    assert taken.desired == stated.desired
    assert web_1_fqdn(taken.repo) == "vlan100.web-1.apps.vm.lab.example.org"


def test_a_base_domain_the_cluster_does_not_have_blocks_the_plan(api: ApiDouble, kube: Kube, repo: Path) -> None:
    seed_cluster_dns(api.store, "ocp.corp.example.net")
    api.reset_counts()
    outcome = run(repo, kube)
    assert outcome.failed == "ValidationFailed" and outcome.plan is None
    [problem] = outcome.problems
    line = cluster_file(repo).read_text().splitlines().index(STATED.rstrip("\n")) + 1
    assert (problem.ref.file, problem.ref.line, problem.ref.field) == ("clusters/prod.yaml", line, "spec.baseDomain")
    assert "'prod.example.com'" in problem.message and "'ocp.corp.example.net'" in problem.message
    assert f"clusters/prod.yaml:{line}: spec.baseDomain" in outcome.message
    assert api.writes() == 0 and dict(api.counts) == {DNS_GET: 1}  # nothing observed, nothing written


def test_an_agreeing_base_domain_plans_as_usual(api: ApiDouble, kube: Kube, repo: Path) -> None:
    seed_cluster_dns(api.store, "PROD.example.com.")  # DNS names compare without case and root dot
    outcome = run(repo, kube, apply=False)
    assert outcome.ok, outcome.message
    assert outcome.repo is not None and outcome.repo.cluster.spec.base_domain == "prod.example.com"
    assert web_1_fqdn(outcome.repo) == "vlan100.web-1.apps.vm.prod.example.com"


def test_no_base_domain_anywhere_is_the_model_error_saying_the_cluster_is_not_openshift(
    api: ApiDouble, kube: Kube, repo: Path
) -> None:
    omit_base_domain(repo)
    outcome = run(repo, kube)
    assert outcome.failed == "ValidationFailed"
    [problem] = outcome.problems
    assert problem.ref.field == "spec.secondaryDNS" and problem.ref.line > 0
    assert "set spec.baseDomain" in problem.message and "not OpenShift" in problem.message


def test_the_cluster_is_not_asked_when_secondary_dns_is_off(api: ApiDouble, kube: Kube, repo: Path) -> None:
    edit(cluster_file(repo), "  secondaryDNS:\n", "  secondaryDNS:\n    enabled: false\n")
    seed_cluster_dns(api.store, "ocp.corp.example.net")  # would block the plan if it were read
    api.reset_counts()
    outcome = run(repo, kube, apply=False)
    assert outcome.ok, outcome.message
    assert api.counts[DNS_GET] == 0


def test_a_dns_config_the_controller_may_not_read_stops_the_run(
    api: ApiDouble, kube: Kube, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """403 (a chart older than this code) is not "not OpenShift": rendering with an unchecked domain is refused."""
    answered = kube.get

    def get(kind: str, name: str, namespace: str | None = None) -> Obj | None:
        if kind == "DNS":
            raise ApiException(status=403, reason="Forbidden")
        return answered(kind, name, namespace)

    monkeypatch.setattr(kube, "get", get)
    api.reset_counts()
    outcome = run(repo, kube)
    assert outcome.failed == "ObserveFailed" and "base domain" in outcome.message and "403" in outcome.message
    assert outcome.plan is None and api.writes() == 0
