"""Prune accidents that have cost GitOps users namespaces, replayed against the API double: nothing is deleted.

Every test starts from a cluster where a generated repository (about 65 objects) is applied, then makes one of
the classic mistakes: a deleted directory, a render emptied of everything but the Cluster, a wrong path, the
wrong ``--cluster``, objects that share names with ours but are not ours. The guards must hold with zero
DELETE requests; only ``--allow-mass-prune`` deletes, and then only what carries this cluster's labels.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.clients.kube import MANAGED_KINDS, RESOURCES, Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.objects import is_owned, obj_id
from reconciler.pipeline import reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import seed_hyperconverged
from reliability import bigrepo

SHAPE = bigrepo.Shape(vms=16, networks=6, namespaces=3, scoped=True)
FAST = ApplyOptions(poll=0.02, timeout=20, wait_for_vms=False)
OTHER_CLUSTER = """\
apiVersion: virtnet.io/v1alpha1
kind: Cluster
metadata:
  name: other
spec:
  allowedNamespaces: [lab]
---
apiVersion: virtnet.io/v1alpha1
kind: BridgeNetwork
metadata:
  name: lab-net
  clusters: [other]
spec:
  bridge: brlab
  isolated: true
  namespaces: [lab]
---
apiVersion: virtnet.io/v1alpha1
kind: VM
metadata:
  name: vm-000
  namespace: lab
  clusters: [other]
spec:
  runStrategy: Halted
  boot:
    containerDisk: quay.io/containerdisks/fedora:40
  interfaces:
    - network: lab-net
"""


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    with ApiDouble(controllers=("nmstate",), nodes=bigrepo.nodes(SHAPE)) as double:
        seed_hyperconverged(double.store)
        yield double


@pytest.fixture
def kube(api: ApiDouble) -> Iterator[Kube]:
    k = Kube(api.api_client())
    yield k
    k.api.close()


@pytest.fixture
def repo(tmp_path: Path, api: ApiDouble, kube: Kube) -> Path:
    """The generated repository, applied: the cluster holds exactly its objects."""
    root = bigrepo.write(tmp_path / "repo", SHAPE)
    first = reconcile(root, kube, apply_options=FAST)
    assert first.ok and first.changes is not None and len(first.changes.results) > 60
    api.reset_counts()
    return root


def snapshot(api: ApiDouble, cluster: str = bigrepo.CLUSTER) -> dict[str, str]:
    """id → resourceVersion of every object carrying ``cluster``'s ownership labels."""
    out = {}
    for kind in MANAGED_KINDS:
        res = RESOURCES[kind]
        for o in api.store.objects(res.api_version, kind):
            if is_owned(o, cluster):
                out[obj_id(o)] = o["metadata"]["resourceVersion"]
    return out


def deletes(api: ApiDouble) -> list[str]:
    return [r.path for r in api.requests if r.verb == "delete"]


def apply_cli(api: ApiDouble, tmp_path: Path, path: Path, *args: str) -> tuple[int, str]:
    config = api.kubeconfig(tmp_path / "kubeconfig")
    result = CliRunner().invoke(main, ["apply", str(path), "--kubeconfig", str(config), "--timeout", "20", *args])
    return result.exit_code, result.output


def test_deleted_directory_is_a_mass_prune_and_is_blocked(repo: Path, api: ApiDouble, tmp_path: Path) -> None:
    before = snapshot(api)
    shutil.rmtree(repo / "vms")  # VMs, Services and Secrets: most of what we own
    code, output = apply_cli(api, tmp_path, repo)
    assert code == 1
    assert "refusing to prune" in output and "--allow-mass-prune" in output
    assert deletes(api) == [] and api.writes() == 0
    assert snapshot(api) == before


def test_allow_mass_prune_deletes_only_what_is_ours(repo: Path, api: ApiDouble, tmp_path: Path) -> None:
    # look-alikes: an unlabelled VM and a VM of another cluster, named like VMs the repository had
    api.store.put(
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": "vm-000", "namespace": "ns-02"},
            "spec": {"runStrategy": "Halted"},
        },
        manager="someone-else",
    )
    api.store.put(
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {
                "name": "vm-001",
                "namespace": "ns-00",
                "labels": {"app.kubernetes.io/managed-by": "virtnet", "virtnet.io/cluster": "other"},
            },
            "spec": {"runStrategy": "Halted"},
        },
        manager="virtnet",
    )
    before = snapshot(api)
    gone = {k for k in before if k.split("/")[1] in ("VirtualMachine", "Service", "Secret")}
    shutil.rmtree(repo / "vms")
    code, output = apply_cli(api, tmp_path, repo, "--allow-mass-prune")
    assert code == 0, output
    after = snapshot(api)
    assert set(after) == set(before) - gone
    assert len(deletes(api)) == len(gone) > 16
    for name, ns in (("vm-000", "ns-02"), ("vm-001", "ns-00")):
        assert api.store.find("kubevirt.io/v1", "VirtualMachine", name, ns) is not None


def test_render_with_only_the_cluster_deletes_nothing(repo: Path, api: ApiDouble, kube: Kube) -> None:
    before = snapshot(api)
    shutil.rmtree(repo / "vms")
    shutil.rmtree(repo / "networks")
    outcome = reconcile(repo, kube, apply_options=FAST)
    assert outcome.failed == "PlanBlocked" and "refusing to prune" in outcome.message
    assert deletes(api) == [] and api.writes() == 0
    assert snapshot(api) == before


def test_truly_empty_render_deletes_nothing(repo: Path, api: ApiDouble, kube: Kube) -> None:
    """No Namespaces, no HyperConverged patch either: the render is empty, which is never a reason to prune."""
    before = snapshot(api)
    shutil.rmtree(repo / "vms")
    shutil.rmtree(repo / "networks")
    cluster = (repo / "cluster.yaml").read_text().split("  macPool:")[0] + "  manageNamespaces: false\n"
    (repo / "cluster.yaml").write_text(cluster)
    outcome = reconcile(repo, kube, apply_options=FAST)
    assert outcome.desired == []
    assert outcome.failed == "PlanBlocked" and "rendered no objects" in outcome.message
    assert deletes(api) == [] and api.writes() == 0
    assert snapshot(api) == before


def test_wrong_path_deletes_nothing(repo: Path, api: ApiDouble, tmp_path: Path) -> None:
    before = snapshot(api)
    code, output = apply_cli(api, tmp_path, repo / "vms")  # a typo'd --path: only one folder of the repo
    assert code == 1 and "no Cluster document found" in output
    assert api.requests == [] and snapshot(api) == before


def test_other_cluster_selected_touches_nothing_of_the_first(repo: Path, api: ApiDouble, tmp_path: Path) -> None:
    (repo / "other.yaml").write_text(OTHER_CLUSTER)
    before = snapshot(api)
    code, output = apply_cli(api, tmp_path, repo, "--cluster", "other")
    assert code == 0, output
    assert deletes(api) == []
    assert snapshot(api) == before  # not deleted, not relabelled, not even rewritten
    theirs = snapshot(api, "other")
    assert "kubevirt.io/VirtualMachine/lab/vm-000" in theirs
    # and back: the first cluster is still exactly in sync, the other's objects are not its to prune
    code, output = apply_cli(api, tmp_path, repo, "--cluster", bigrepo.CLUSTER)
    assert code == 0 and "No changes" in output, output
    assert snapshot(api, "other") == theirs


def test_look_alikes_are_never_pruned(repo: Path, api: ApiDouble, kube: Kube) -> None:
    """Objects that were ours but lost our labels (or carry another cluster's) stay when the repo drops them."""
    vm = api.store.find("kubevirt.io/v1", "VirtualMachine", "vm-001", "ns-01")
    assert vm is not None
    del vm["metadata"]["labels"]["app.kubernetes.io/managed-by"]  # someone took it over by hand
    api.store.put(vm, manager="kubectl-edit")
    svc = api.store.find("v1", "Service", "vm-002-svc", "ns-02")
    assert svc is not None
    svc["metadata"]["labels"]["virtnet.io/cluster"] = "other"
    api.store.put(svc, manager="kubectl-edit")
    text = (repo / "vms" / "ns-01.yaml").read_text()
    docs = text.split("---\n")
    (repo / "vms" / "ns-01.yaml").write_text("---\n".join(d for d in docs if "name: vm-001\n" not in d))
    text = (repo / "vms" / "ns-02.yaml").read_text()
    (repo / "vms" / "ns-02.yaml").write_text("---\n".join(d for d in text.split("---\n") if "name: vm-002\n" not in d))
    api.reset_counts()
    outcome = reconcile(repo, kube, apply_options=FAST)
    assert outcome.ok, outcome.message
    deleted = sorted(p.rsplit("/", 3)[-3] + "/" + p.rsplit("/", 1)[-1] for p in deletes(api))
    # vm-001 lost its VM to a human; vm-002's Service moved to another cluster: only the rest is pruned
    assert deleted == ["ns-01/vm-001-svc", "ns-02/vm-002"], deleted
    assert api.store.find("kubevirt.io/v1", "VirtualMachine", "vm-001", "ns-01") is not None
    assert api.store.find("v1", "Service", "vm-002-svc", "ns-02") is not None
