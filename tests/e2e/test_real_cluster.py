"""render → plan → apply → plan-empty against the real cluster named by ``KUBECONFIG`` (``pytest -m e2e``).

The repository is tiny and isolated on purpose: a Cluster with a unique name (so the ownership selector can
never match anyone else's objects), one namespace of its own and a ConfigMap in it. Nothing touches nodes.
Everything created is deleted afterwards, whatever the outcome.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from reconciler import labels
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.pipeline import reconcile

pytestmark = pytest.mark.e2e

#: a cluster without these is not one virtnet is for; the test says so instead of failing
REQUIRED_KINDS = ("NodeNetworkConfigurationPolicy", "NetworkAttachmentDefinition", "VirtualMachine")


@pytest.fixture
def real_kube() -> Iterator[Kube]:
    path = os.environ.get("KUBECONFIG")
    if not path:
        pytest.skip("KUBECONFIG is not set: no real cluster to test against")
    try:
        kube = Kube.from_kubeconfig(path.split(os.pathsep)[0])
    except ConfigException as exc:
        pytest.skip(f"KUBECONFIG={path} cannot be loaded: {exc}")
    missing = []
    for kind in REQUIRED_KINDS:
        try:
            kube.list(kind, "virtnet.io/e2e-probe=none", page_size=1)
        except ApiException as exc:
            if exc.status != 404:
                raise
            missing.append(kind)
    if missing:
        pytest.skip(f"the cluster does not serve {', '.join(missing)}: install kubernetes-nmstate, Multus and KubeVirt")
    yield kube
    kube.api.close()


def small_repo(root: Path, cluster: str, namespace: str, value: str) -> Path:
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "cluster.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: virtnet.io/v1alpha1
            kind: Cluster
            metadata:
              name: {cluster}
            spec:
              allowedNamespaces: [{namespace}]
            """)
    )
    (root / "manifests" / "settings.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: virtnet-e2e
              namespace: {namespace}
            data:
              value: "{value}"
            """)
    )
    return root


def test_render_plan_apply_plan_empty(real_kube: Kube, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    cluster, namespace = f"e2e-{suffix}", f"virtnet-e2e-{suffix}"
    repo = small_repo(tmp_path / "repo", cluster, namespace, "1")
    options = ApplyOptions(timeout=120, poll=1.0)
    try:
        first = reconcile(repo, real_kube, apply=False)
        assert first.ok, first.message
        assert first.plan is not None and sorted(i.name for i in first.plan.changes) == [
            f"ConfigMap/{namespace}/virtnet-e2e",
            f"Namespace/{namespace}",
        ]

        applied = reconcile(repo, real_kube, apply_options=options)
        assert applied.ok, applied.message
        live = real_kube.get("ConfigMap", "virtnet-e2e", namespace)
        assert live is not None and live["data"] == {"value": "1"}
        assert live["metadata"]["labels"][labels.CLUSTER] == cluster

        again = reconcile(repo, real_kube, apply=False)
        assert again.ok and again.plan is not None
        assert [i.name for i in again.plan.changes] == []  # server defaults and managedFields are no drift

        small_repo(repo, cluster, namespace, "2")
        changed = reconcile(repo, real_kube, apply_options=options)
        assert changed.ok and changed.plan is not None
        assert [str(c) for i in changed.plan.changes for c in i.changes] == ["~ data.value: 1 → 2"]
        assert not reconcile(repo, real_kube, apply=False).plan.has_changes  # type: ignore[union-attr]
    finally:
        for kind, name, ns in (("ConfigMap", "virtnet-e2e", namespace), ("Namespace", namespace, None)):
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, **({"namespace": ns} if ns else {})}}
            real_kube.delete(obj)
