"""Prune guards end to end on the API double: what a commit may not delete, whatever it says.

The operator's share guard is a ceiling the repository cannot raise; a Namespace is never pruned without its
own opt-in, because deleting one deletes every VM and disk in it.
"""

from __future__ import annotations

from pathlib import Path

from engine.conftest import edit, run
from reconciler.clients.kube import Kube
from reconciler.testing import ApiDouble


def test_the_repository_cannot_raise_the_operators_share_guard(api: ApiDouble, kube: Kube, applied: Path) -> None:
    edit(applied / "clusters" / "prod.yaml", "spec:\n", "spec:\n  prune:\n    maxShare: 1\n")
    for path in (applied / "vms").iterdir():
        path.unlink()
    outcome = run(applied, kube)
    assert outcome.failed == "PlanBlocked"
    assert "refusing to prune 10 of 35 owned objects (29% > 25%)" in outcome.message
    assert api.writes() == 0 and len(kube.list("VirtualMachine")) == 4


def test_the_repository_may_tighten_the_share_guard(api: ApiDouble, kube: Kube, applied: Path) -> None:
    edit(applied / "clusters" / "prod.yaml", "spec:\n", "spec:\n  prune:\n    maxShare: 0.01\n")
    (applied / "manifests" / "web-config.yaml").unlink()  # 1 of 35: 3 % > 1 %
    outcome = run(applied, kube)
    assert outcome.failed == "PlanBlocked" and "(3% > 1%)" in outcome.message
    assert api.writes() == 0


RAW_NAMESPACES = (
    "spec:\n  manageNamespaces: false\n  allowedRawKinds: [ConfigMap, Secret, Service, NetworkAttachmentDefinition,"
    " NodeNetworkConfigurationPolicy, SriovNetwork, SriovNetworkNodePolicy, VirtualMachine, IPAddressPool,"
    " L2Advertisement, Namespace]\n"
)


def allow_raw_namespaces(repo: Path) -> None:
    """The Cluster opts into plain Namespace manifests (not rendered from allowedNamespaces): its namespace
    settings, labels on the Namespaces it would render, go with them."""
    edit(repo / "clusters" / "prod.yaml", "[apps, db, nfv]", "[apps, db, nfv, lab]")
    edit(repo / "clusters" / "prod.yaml", "spec:\n", RAW_NAMESPACES)
    text = (repo / "clusters" / "prod.yaml").read_text()
    start = text.index("  namespaces:\n")
    end = text.index("  # The cluster's base domain")
    (repo / "clusters" / "prod.yaml").write_text(text[:start] + text[end:])


NAMESPACE = """apiVersion: v1
kind: Namespace
metadata:
  name: lab
"""
CONFIG = """apiVersion: v1
kind: ConfigMap
metadata:
  name: lab-settings
  namespace: lab
data:
  A: "1"
"""


def test_removing_a_namespace_manifest_never_deletes_the_namespace(api: ApiDouble, kube: Kube, applied: Path) -> None:
    allow_raw_namespaces(applied)
    (applied / "manifests" / "lab-ns.yaml").write_text(NAMESPACE)
    (applied / "manifests" / "lab-config.yaml").write_text(CONFIG)
    assert run(applied, kube).ok
    (applied / "manifests" / "lab-ns.yaml").unlink()
    (applied / "manifests" / "lab-config.yaml").unlink()
    outcome = run(applied, kube)
    assert outcome.ok, outcome.message
    assert kube.get("Namespace", "lab") is not None
    assert kube.get("ConfigMap", "lab-settings", "lab") is None  # what virtnet made in it is pruned as usual
    assert any("Namespace/lab" in w and "prune-namespace" in w for w in outcome.plan.warnings)  # type: ignore[union-attr]


def test_an_opted_in_namespace_is_kept_while_it_holds_what_virtnet_does_not_own(
    api: ApiDouble, kube: Kube, applied: Path
) -> None:
    allow_raw_namespaces(applied)
    opted = NAMESPACE + "  annotations:\n    virtnet.io/prune-namespace: allowed\n"
    (applied / "manifests" / "lab-ns.yaml").write_text(opted)
    assert run(applied, kube).ok
    Kube(api.api_client(), field_manager="someone").apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "lab"}}
    )
    (applied / "manifests" / "lab-ns.yaml").unlink()
    held = run(applied, kube)
    assert held.ok and kube.get("Namespace", "lab") is not None
    assert any("Namespace/lab" in w and "ConfigMap/lab/theirs" in w for w in held.plan.warnings)  # type: ignore[union-attr]

    kube.delete({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs", "namespace": "lab"}})
    emptied = run(applied, kube)
    assert emptied.ok, emptied.message
    assert kube.get("Namespace", "lab") is None
