"""Prune accidents that have cost GitOps users namespaces, replayed on the API double and a real apiserver.

Every test starts from a cluster where a generated repository (about 65 objects) is applied, then makes one of
the classic mistakes: a deleted directory, a render emptied of everything but the Cluster, a wrong path, the
wrong ``--cluster``, objects that share names with ours but are not ours. The guards must hold with zero
DELETE requests; only ``--allow-mass-prune`` deletes, and then only what carries this cluster's labels.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from backends import Backend, backend_fixture, eventually
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.clients.kube import MANAGED_KINDS
from reconciler.objects import is_owned, obj_id
from reconciler.pipeline import reconcile
from reliability import bigrepo

SHAPE = bigrepo.Shape(vms=16, networks=6, namespaces=3, scoped=True)
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


# Every test runs on the API double and on a real kube-apiserver (tests/backends.py).
backend = backend_fixture(nodes=bigrepo.nodes(SHAPE), controllers=("nmstate",))


@pytest.fixture
def repo(tmp_path: Path, backend: Backend) -> Path:
    """The generated repository, applied: the cluster holds exactly its objects."""
    root = bigrepo.write(tmp_path / "repo", SHAPE)
    first = reconcile(root, backend.kube, apply_options=backend.options(wait_for_vms=False))
    assert first.ok and first.changes is not None and len(first.changes.results) > 60, first.message
    backend.quiesce()  # a real server's simulators write status after the apply: before any snapshot
    backend.log.reset()
    return root


def snapshot(backend: Backend, cluster: str = bigrepo.CLUSTER) -> dict[str, str]:
    """id → resourceVersion of every object carrying ``cluster``'s ownership labels."""
    out = {}
    for kind in MANAGED_KINDS:
        for o in backend.objects(kind):
            if is_owned(o, cluster):
                out[obj_id(o)] = o["metadata"]["resourceVersion"]
    return out


def deletes(backend: Backend) -> list[str]:
    return backend.log.deletes()


def apply_cli(backend: Backend, path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["apply", str(path), "--kubeconfig", str(backend.kubeconfig), "--timeout", "20", *args]
    )
    return result.exit_code, result.output


def gone(backend: Backend, ids: set[str]) -> bool:
    """Pruned objects are gone: at once on the double, once the garbage collector let go on a real server."""
    return eventually(lambda: not ids & set(snapshot(backend)))


def test_deleted_directory_is_a_mass_prune_and_is_blocked(repo: Path, backend: Backend) -> None:
    before = snapshot(backend)
    shutil.rmtree(repo / "vms")  # VMs, Services and Secrets: most of what we own
    code, output = apply_cli(backend, repo)
    assert code == 1
    assert "refusing to prune" in output and "--allow-mass-prune" in output
    assert deletes(backend) == [] and backend.log.writes() == 0
    assert snapshot(backend) == before


def test_allow_mass_prune_deletes_only_what_is_ours(repo: Path, backend: Backend) -> None:
    # look-alikes: an unlabelled VM and a VM of another cluster, named like VMs the repository had
    backend.put(
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": "vm-000", "namespace": "ns-02"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}},
        },
        manager="someone-else",
    )
    backend.put(
        {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {
                "name": "vm-001",
                "namespace": "ns-00",
                "labels": {"app.kubernetes.io/managed-by": "virtnet", "virtnet.io/cluster": "other"},
            },
            "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}},
        },
        manager="virtnet",
    )
    before = snapshot(backend)
    leaving = {k for k in before if k.split("/")[1] in ("VirtualMachine", "Service", "Secret")}
    shutil.rmtree(repo / "vms")
    code, output = apply_cli(backend, repo, "--allow-mass-prune")
    assert code == 0, output
    assert gone(backend, leaving)
    after = snapshot(backend)
    assert set(after) == set(before) - leaving
    assert len(deletes(backend)) == len(leaving) > 16
    for name, ns in (("vm-000", "ns-02"), ("vm-001", "ns-00")):
        assert backend.find("VirtualMachine", name, ns) is not None


def test_render_with_only_the_cluster_deletes_nothing(repo: Path, backend: Backend) -> None:
    before = snapshot(backend)
    shutil.rmtree(repo / "vms")
    shutil.rmtree(repo / "networks")
    outcome = reconcile(repo, backend.kube, apply_options=backend.options(wait_for_vms=False))
    assert outcome.failed == "PlanBlocked" and "refusing to prune" in outcome.message
    assert deletes(backend) == [] and backend.log.writes() == 0
    assert snapshot(backend) == before


def test_truly_empty_render_deletes_nothing(repo: Path, backend: Backend) -> None:
    """No Namespaces, no HyperConverged patch either: the render is empty, which is never a reason to prune."""
    before = snapshot(backend)
    shutil.rmtree(repo / "vms")
    shutil.rmtree(repo / "networks")
    cluster = (repo / "cluster.yaml").read_text().split("  macPool:")[0] + "  manageNamespaces: false\n"
    (repo / "cluster.yaml").write_text(cluster)
    outcome = reconcile(repo, backend.kube, apply_options=backend.options(wait_for_vms=False))
    assert outcome.desired == []
    assert outcome.failed == "PlanBlocked" and "rendered no objects" in outcome.message
    assert deletes(backend) == [] and backend.log.writes() == 0
    assert snapshot(backend) == before


def test_wrong_path_deletes_nothing(repo: Path, backend: Backend) -> None:
    before = snapshot(backend)
    code, output = apply_cli(backend, repo / "vms")  # a typo'd --path: only one folder of the repo
    assert code == 1 and "no Cluster document found" in output
    assert backend.log.calls == [] and snapshot(backend) == before


def test_other_cluster_selected_touches_nothing_of_the_first(repo: Path, backend: Backend) -> None:
    (repo / "other.yaml").write_text(OTHER_CLUSTER)
    before = snapshot(backend)
    code, output = apply_cli(backend, repo, "--cluster", "other")
    assert code == 0, output
    backend.quiesce()  # a real server's KubeVirt simulator writes the new VM's status: before the snapshots
    assert deletes(backend) == []
    assert snapshot(backend) == before  # not deleted, not relabelled, not even rewritten
    theirs = snapshot(backend, "other")
    assert "kubevirt.io/VirtualMachine/lab/vm-000" in theirs
    # and back: the first cluster is still exactly in sync, the other's objects are not its to prune
    code, output = apply_cli(backend, repo, "--cluster", bigrepo.CLUSTER)
    assert code == 0 and "No changes" in output, output
    assert snapshot(backend, "other") == theirs


def test_look_alikes_are_never_pruned(repo: Path, backend: Backend) -> None:
    """Objects that were ours but lost our labels (or carry another cluster's) stay when the repo drops them."""
    vm = backend.find("VirtualMachine", "vm-001", "ns-01")
    assert vm is not None
    del vm["metadata"]["labels"]["app.kubernetes.io/managed-by"]  # someone took it over by hand
    backend.replace(vm, manager="kubectl-edit")
    svc = backend.find("Service", "vm-002-svc", "ns-02")
    assert svc is not None
    svc["metadata"]["labels"]["virtnet.io/cluster"] = "other"
    backend.replace(svc, manager="kubectl-edit")
    text = (repo / "vms" / "ns-01.yaml").read_text()
    docs = text.split("---\n")
    (repo / "vms" / "ns-01.yaml").write_text("---\n".join(d for d in docs if "name: vm-001\n" not in d))
    text = (repo / "vms" / "ns-02.yaml").read_text()
    (repo / "vms" / "ns-02.yaml").write_text("---\n".join(d for d in text.split("---\n") if "name: vm-002\n" not in d))
    backend.log.reset()
    outcome = reconcile(repo, backend.kube, apply_options=backend.options(wait_for_vms=False))
    assert outcome.ok, outcome.message
    deleted = sorted(p.rsplit("/", 3)[-3] + "/" + p.rsplit("/", 1)[-1] for p in deletes(backend))
    # vm-001 lost its VM to a human; vm-002's Service moved to another cluster: only the rest is pruned
    assert deleted == ["ns-01/vm-001-svc", "ns-02/vm-002"], deleted
    assert backend.find("VirtualMachine", "vm-001", "ns-01") is not None
    assert backend.find("Service", "vm-002-svc", "ns-02") is not None
