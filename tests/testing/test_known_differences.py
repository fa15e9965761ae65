"""Where the API double and the real-server tier differ on purpose: each difference asserted on both backends.

Every test here runs against both backends and asserts each backend's own answer, so a difference that goes
away (or a new one that appears) fails loudly instead of hiding. docs/testing.md lists them with the reasons.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kubernetes import client

from tests.testing.conftest import Backend
from tests.testing.test_apiserver_contract import cm

KUBECTL = shutil.which("kubectl")


def test_namespace_controller(backend: Backend) -> None:
    """A real cluster's namespace controller (kube-controller-manager) empties and removes a deleted namespace.

    The double runs one inside the DELETE; the real-server tier runs no controller manager, so there the
    namespace stays Terminating with its content (objects are not even marked for deletion).
    """
    v1 = client.CoreV1Api(backend.client)
    doomed = backend.name("doomed")
    v1.create_namespace({"metadata": {"name": doomed}})
    v1.create_namespaced_config_map(doomed, cm("plain"))
    v1.delete_namespace(doomed)
    names = {n.metadata.name for n in v1.list_namespace().items}
    if backend.kind == "double":
        assert doomed not in names
        assert v1.list_namespaced_config_map(doomed).items == []
    else:
        assert v1.read_namespace(doomed).status.phase == "Terminating"
        assert [c.metadata.name for c in v1.list_namespaced_config_map(doomed).items] == ["plain"]


def test_foreground_deletion_needs_the_garbage_collector(backend: Backend) -> None:
    """``propagationPolicy: Foreground`` (what virtnet's prune sends) leaves the deletion to the garbage collector.

    The double has none and deletes at once, as a cluster's collector would for an object without dependents;
    the real-server tier has no collector, so the object stays, marked for deletion, with ``foregroundDeletion``.
    """
    v1 = client.CoreV1Api(backend.client)
    v1.create_namespaced_config_map(backend.ns, cm("fg"))
    v1.delete_namespaced_config_map("fg", backend.ns, propagation_policy="Foreground")
    left = v1.list_namespaced_config_map(backend.ns).items
    if backend.kind == "double":
        assert left == []
    else:
        assert [(c.metadata.name, c.metadata.finalizers) for c in left] == [("fg", ["foregroundDeletion"])]
        assert left[0].metadata.deletion_timestamp is not None


def test_openapi_v2(backend: Backend) -> None:
    """The double serves only OpenAPI v3 (kubectl reads v3); a real server serves v2 too."""
    code, _, _ = backend.raw("GET", "/openapi/v2")
    assert code == (404 if backend.kind == "double" else 200)


def test_aggregated_discovery(backend: Backend) -> None:
    """Asked for aggregated discovery, the double answers the plain form, which every client falls back to."""
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    code, data, _ = backend.raw("GET", "/apis", {"Accept": accept})
    assert code == 200
    assert data["kind"] == ("APIGroupList" if backend.kind == "double" else "APIGroupDiscoveryList")


def test_defaulting(backend: Backend) -> None:
    """The double applies no schema or registry defaults (Service type, clusterIP, port protocol, targetPort)."""
    v1 = client.CoreV1Api(backend.client)
    out = v1.create_namespaced_service(backend.ns, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    if backend.kind == "double":
        assert (out.spec.type, out.spec.cluster_ip, out.spec.ports[0].protocol) == (None, None, None)
    else:
        assert (out.spec.type, out.spec.ports[0].protocol, out.spec.ports[0].target_port) == ("ClusterIP", "TCP", 80)
        assert out.spec.cluster_ip


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_protobuf_request_bodies_of_other_kinds(backend: Backend) -> None:
    """kubectl sends built-in objects as protobuf; the double decodes only Namespace, ConfigMap, Secret and
    ServiceAccount (``kubectl create namespace/configmap/secret/serviceaccount``), and answers 415 for others,
    which kubectl does not retry as JSON. ``kubectl apply`` and ``kubectl create -f`` send JSON and work on both.
    """
    out = subprocess.run([str(KUBECTL), "--kubeconfig", str(backend.kubeconfig_file), "create", "deployment", "d",
                          "--image=registry.invalid/x", "-n", backend.ns], capture_output=True, text=True, timeout=60)
    if backend.kind == "double":
        assert out.returncode != 0 and "the double decodes protobuf only for" in out.stderr
    else:
        assert out.returncode == 0, out.stderr
