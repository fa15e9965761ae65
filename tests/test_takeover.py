"""Two Cluster documents pointed at one API server by mistake: the second never takes the first's objects.

Runs on the API double and on a real kube-apiserver (tests/backends.py).
"""

from __future__ import annotations

from pathlib import Path

from backends import Backend, backend_fixture
from repos import CLUSTER, write_repo

from reconciler.pipeline import reconcile
from reconciler.testing.nodes import demo_nodes

backend = backend_fixture(nodes=demo_nodes(workers=2, control_plane=0))


def test_second_cluster_refuses_to_take_over(tmp_path: Path, backend: Backend) -> None:
    other = CLUSTER.replace("name: test", "name: other")
    repo = write_repo(tmp_path / "repo", {"other.yaml": other})  # documents without metadata.clusters: both
    first = reconcile(repo, backend.kube, cluster="test", apply_options=backend.options())
    assert first.ok, first.message
    backend.log.reset()
    second = reconcile(repo, backend.kube, cluster="other")
    assert second.failed == "PlanBlocked" and backend.log.writes() == 0
    assert "VirtualMachine/apps/web-1 is managed by virtnet for cluster 'test', not 'other'" in second.message
    vm = backend.find("VirtualMachine", "web-1", "apps")
    assert vm is not None and vm["metadata"]["labels"]["virtnet.io/cluster"] == "test"
