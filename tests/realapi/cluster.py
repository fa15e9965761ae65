"""A real control plane for tests: started once per session, reset to its seed state before each test.

Why reset instead of a fresh control plane per test: a fresh one takes ~10 s on 2 idle cores (30 s and more
on a loaded machine), and the tests that run on both backends write fixed namespaces and cluster-scoped node
policies. :func:`reset` puts the server back where ``ControlPlane.start`` left it (objects of every kind virtnet
manages deleted, namespaces other than the seeded ones finalized away, HyperConverged seeded again, the
test's nodes) and checks that it got there, so a test never sees another's leftovers.

Two things a cluster has and the test server has not are made up for here: HCO's conversion webhook
(:func:`hyperconverged_v1beta1_storage`) and the controllers in :mod:`realapi.standins`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from realapi.standins import StandIns, release, revision
from reconciler.clients.kube import MANAGED_KINDS, RESOURCES
from reconciler.testing.controlplane import ControlPlane, ControlPlaneError, ControlPlaneUnavailable
from reconciler.testing.controlplane.rest import Rest, poll
from reconciler.testing.controlplane.seed import NAMESPACES, ApplyStore, seed_nodes
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged

HCO_CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/hyperconvergeds.hco.kubevirt.io"
HCO = "/apis/hco.kubevirt.io/v1beta1/namespaces/openshift-cnv/hyperconvergeds/kubevirt-hyperconverged"
#: namespaces the apiserver and the seed made; the apiserver's own objects live in the kube-* ones
KEPT_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", *NAMESPACES})
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
#: namespaced kinds a test may leave behind (virtnet's, look-alikes of them, and the VMIs of a simulation)
NAMESPACED = tuple(k for k in (*MANAGED_KINDS, "VirtualMachineInstance") if RESOURCES[k].namespaced)


@contextlib.contextmanager
def real_plane(tmp: Path, nodes: Sequence[dict[str, Any]] | None = None) -> Iterator[tuple[ControlPlane, StandIns]]:
    """A control plane of its own (``nodes``, default the demo cluster), HyperConverged lossless for v1beta1,
    the stand-ins running; skips the test where no control plane can be built (no Go)."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            # the binaries are cached under $HOME (scripts/kube-build); a test that isolated git moved HOME,
            # and a build into its temp dir would take many minutes
            mp.setenv("HOME", pwd.getpwuid(os.getuid()).pw_dir)
            cp = ControlPlane.start(tmp / "controlplane", nodes=nodes)
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)
    with cp:
        hyperconverged_v1beta1_storage(cp.rest())
        with StandIns(cp.rest()) as stand_ins:
            yield cp, stand_ins


_SHARED: dict[str, Any] = {}


def shared_plane(request: pytest.FixtureRequest) -> tuple[ControlPlane, StandIns]:
    """This session's control plane for the two-backend tests (not ``conftest.control_plane``, which other
    tests share and :func:`reset` would wipe), started on first use and stopped when the session ends."""
    if "skip" in _SHARED:
        pytest.skip(_SHARED["skip"])
    if "plane" not in _SHARED:
        tmp = request.getfixturevalue("tmp_path_factory").mktemp("realapi-backend")
        started = real_plane(tmp)
        try:
            _SHARED["plane"] = started.__enter__()
        except pytest.skip.Exception as exc:
            _SHARED["skip"] = str(exc)
            raise
        request.config.add_cleanup(lambda: started.__exit__(None, None, None))
    plane: tuple[ControlPlane, StandIns] = _SHARED["plane"]
    return plane


def hyperconverged_v1beta1_storage(rest: Rest) -> None:
    """Store HyperConverged as ``v1beta1``, the version virtnet writes.

    Why: the upstream CRD stores ``v1`` (a restructured spec) and converts with HCO's conversion webhook,
    which no test server runs; without it the conversion is ``None`` and every ``v1beta1`` field ``v1`` does
    not have (``liveMigrationConfig``, ``kubeMacPoolConfiguration``, ``kubeSecondaryDNSNameServerIP``, the
    ``featureGates`` object) is pruned silently on write, so virtnet's patch never converges. On a cluster the
    webhook makes ``v1beta1`` lossless; storing ``v1beta1`` does the same here.
    """
    status, crd = rest.get(HCO_CRD)
    if status != 200:
        raise ControlPlaneError(f"GET {HCO_CRD} -> {status}")
    for version in crd["spec"]["versions"]:
        version["storage"] = version["name"] == "v1beta1"
    status, out = rest.request("PUT", HCO_CRD, crd)
    if status != 200:
        raise ControlPlaneError(f"PUT {HCO_CRD} -> {status}: {out}")
    probe = {"apiVersion": "hco.kubevirt.io/v1beta1", "kind": "HyperConverged",
             "metadata": {"name": "kubevirt-hyperconverged", "namespace": "openshift-cnv"},
             "spec": {"kubeSecondaryDNSNameServerIP": "192.0.2.1"}}

    def kept() -> bool | None:  # the apiserver picks the new storage version up asynchronously
        status, out = rest.request("PATCH", HCO, probe, content_type="application/apply-patch+yaml",
                                   query={"fieldManager": "probe", "dryRun": "All"})
        return True if status == 200 and out["spec"].get("kubeSecondaryDNSNameServerIP") else None

    poll("HyperConverged stored as v1beta1", kept, timeout=30)


def _items(rest: Rest, path: str) -> list[dict[str, Any]]:
    status, out = rest.get(path)
    if status != 200:
        raise ControlPlaneError(f"GET {path} -> {status}: {out}")
    return list(out.get("items") or [])


def _delete(rest: Rest, kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    if meta.get("finalizers"):  # a Foreground delete the garbage collector did not finish, or a test's own
        release(rest, kind, obj)
    path = RESOURCES[kind].path(meta.get("namespace"), meta["name"])
    status, out = rest.request("DELETE", path, query={"propagationPolicy": "Background"})
    if status not in (200, 202, 404):
        raise ControlPlaneError(f"DELETE {path} -> {status}: {out}")


def _leftovers(rest: Rest, nodes: set[str]) -> list[str]:
    out = []
    for kind in NAMESPACED:
        for o in _items(rest, RESOURCES[kind].path()):
            ns, name = o["metadata"]["namespace"], o["metadata"]["name"]
            if ns not in SYSTEM_NAMESPACES and (kind, ns, name) != ("Service", "default", "kubernetes"):
                out.append(f"{kind}/{ns}/{name}")
    out += [f"NNCP/{o['metadata']['name']}" for o in _items(rest, RESOURCES["NodeNetworkConfigurationPolicy"].path())]
    out += [f"Namespace/{n}" for o in _items(rest, "/api/v1/namespaces")
            if (n := o["metadata"]["name"]) not in KEPT_NAMESPACES]
    out += [f"Node/{n}" for o in _items(rest, "/api/v1/nodes") if (n := o["metadata"]["name"]) not in nodes]
    return out


def reset(cp: ControlPlane, stand_ins: StandIns, nodes: Sequence[dict[str, Any]] | None = None) -> None:
    """Back to the seed state with ``nodes`` (default the demo cluster); raises if anything is left over."""
    rest, nodes = cp.rest(), demo_nodes() if nodes is None else nodes
    with stand_ins.lock:  # no status write races the deletes
        for kind in NAMESPACED:
            for obj in _items(rest, RESOURCES[kind].path()):
                meta = obj["metadata"]
                if meta["namespace"] not in SYSTEM_NAMESPACES and meta["name"] != "kubernetes":
                    _delete(rest, kind, obj)
        for obj in _items(rest, RESOURCES["NodeNetworkConfigurationPolicy"].path()):
            _delete(rest, "NodeNetworkConfigurationPolicy", obj)
        for ns in _items(rest, "/api/v1/namespaces"):
            name = ns["metadata"]["name"]
            if name not in KEPT_NAMESPACES:  # the namespace controller's part: emptied above, then finalized
                _delete(rest, "Namespace", ns)
                status, live = rest.get(f"/api/v1/namespaces/{name}")
                if status == 200:
                    live["spec"]["finalizers"] = []
                    rest.request("PUT", f"/api/v1/namespaces/{name}/finalize", live)
                    _delete(rest, "Namespace", live)  # with no finalizer left, this one removes it
        wanted = {n["name"] for n in nodes}
        for kind, path in (("Node", "/api/v1/nodes"), ("NodeNetworkState", RESOURCES["NodeNetworkState"].path())):
            for obj in _items(rest, path):
                if obj["metadata"]["name"] not in wanted:
                    _delete(rest, kind, obj)
        store = ApplyStore(rest)
        seed_nodes(store, nodes)
        status, hco = rest.get(HCO)
        if status == 200:
            _delete(rest, "HyperConverged", hco)
        seed_hyperconverged(store)
        stand_ins.revision = revision(rest)
    poll("a reset control plane", lambda: True if not _leftovers(rest, wanted) else None, timeout=30)
