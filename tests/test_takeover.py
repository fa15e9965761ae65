"""Two Cluster documents pointed at one API server by mistake: the second never takes the first's objects."""

from __future__ import annotations

from pathlib import Path

from repos import CLUSTER, write_repo

from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.pipeline import reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged


def test_second_cluster_refuses_to_take_over(tmp_path: Path) -> None:
    other = CLUSTER.replace("name: test", "name: other")
    repo = write_repo(tmp_path / "repo", {"other.yaml": other})  # documents without metadata.clusters: both
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api:
        seed_hyperconverged(api.store)
        kube = Kube(api.api_client())
        first = reconcile(repo, kube, cluster="test", apply_options=ApplyOptions(poll=0.02, timeout=20))
        assert first.ok
        api.reset_counts()
        second = reconcile(repo, kube, cluster="other")
        assert second.failed == "PlanBlocked" and api.writes() == 0
        assert "VirtualMachine/apps/web-1 is managed by virtnet for cluster 'test', not 'other'" in second.message
        vm = api.store.find("kubevirt.io/v1", "VirtualMachine", "web-1", "apps")
        assert vm is not None and vm["metadata"]["labels"]["virtnet.io/cluster"] == "test"
