"""A real Kubernetes control plane (etcd + kube-apiserver built from Go modules) for tests, envtest-style.

Why: the API double re-implements apiserver semantics; this runs the real ones so tests can check the double
and the engine against them. ``ControlPlane.start(dir)`` (or ``scripts/kube-up DIR``) builds the binaries once
per version (``scripts/kube-build``), starts them on free loopback ports, writes ``DIR/kubeconfig``, installs
the OpenShift Virtualization CRDs (KubeVirt's generated from its swagger) and seeds the double's nodes.
Where it cannot run (no Go, no ``cryptography``) it raises :class:`ControlPlaneUnavailable` for a skip.

    with ControlPlane.start(tmp_path) as cp:
        config.load_kube_config(str(cp.kubeconfig))
"""

from __future__ import annotations

from reconciler.testing.controlplane.cluster import ControlPlane, Hook, stop_dir
from reconciler.testing.controlplane.errors import ControlPlaneError, ControlPlaneUnavailable

__all__ = ["ControlPlane", "ControlPlaneError", "ControlPlaneUnavailable", "Hook", "stop_dir"]
