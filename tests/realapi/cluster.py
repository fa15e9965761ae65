"""A real control plane for tests: started once per session, reset to its seed state before each test.

Why reset instead of a fresh control plane per test: a fresh one takes ~10 s on 2 idle cores (30 s and more
on a loaded machine), and the tests that run on both backends write fixed namespaces and cluster-scoped node
policies. :func:`reset` stops the simulators (their in-memory state, the MAC pool and the policies' progress,
goes with them), puts the server back where ``ControlPlane.start`` left it (objects of every kind virtnet
manages or the simulators make deleted, namespaces other than the seeded ones finalized away, HyperConverged
seeded again, the test's nodes and their NodeNetworkStates), checks that it got there, and starts the
simulators again (~1 s), so a test never sees another's leftovers and the simulated nmstate knows its nodes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.clients.kube import MANAGED_KINDS, RESOURCES
from reconciler.testing.controlplane import ControlPlane, ControlPlaneError, ControlPlaneUnavailable, launch
from reconciler.testing.controlplane.rest import Rest, poll
from reconciler.testing.controlplane.seed import NAMESPACES, ApplyStore, seed_nodes
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged

HCO = "/apis/hco.kubevirt.io/v1beta1/namespaces/openshift-cnv/hyperconvergeds/kubevirt-hyperconverged"
SIMULATE = launch.DEFAULT  # nmstate, KubeVirt (with KubeMacPool and virt-api's restart), the garbage collector
#: namespaces the apiserver and the seed made; the apiserver's own objects live in the kube-* ones
KEPT_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", *NAMESPACES})
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
#: namespaced kinds a test may leave behind (virtnet's, look-alikes of them, and the simulators' VMIs)
NAMESPACED = tuple(k for k in (*MANAGED_KINDS, "VirtualMachineInstance", "VirtualMachineInstanceMigration", "KubeVirt",
                                "SriovNetworkNodeState") if RESOURCES[k].namespaced)
#: cluster-scoped kinds a test may leave behind (DNS: a test that seeded OpenShift's base domain)
CLUSTER_SCOPED = ("NodeNetworkConfigurationPolicy", "NodeNetworkConfigurationEnactment", "DNS")


@contextlib.contextmanager
def real_plane(tmp: Path, nodes: Sequence[dict[str, Any]] | None = None,
               simulate: Sequence[str] = SIMULATE) -> Iterator[ControlPlane]:
    """A control plane of its own (``nodes``, default the demo cluster) with the ``simulate`` controllers;
    skips the test where no control plane can be built (no Go)."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            # the binaries are cached under $HOME (scripts/kube-build); a test that isolated git moved HOME,
            # and a build into its temp dir would take many minutes
            mp.setenv("HOME", pwd.getpwuid(os.getuid()).pw_dir)
            cp = ControlPlane.start(tmp / "controlplane", nodes=nodes, simulate=simulate)
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)
    with cp:
        yield cp


_SHARED: dict[str, Any] = {}


def shared_plane(request: pytest.FixtureRequest) -> ControlPlane:
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
    plane: ControlPlane = _SHARED["plane"]
    return plane


def revision(rest: Rest) -> str:
    """The cluster's current resourceVersion (etcd's revision): it moves with every write, anywhere."""
    _, head = rest.get("/api/v1/namespaces?limit=1")
    return str(head["metadata"]["resourceVersion"])


def quiet(rest: Rest, still: float = 1.5, timeout: float = 30.0) -> None:
    """Wait until nothing has been written for ``still`` seconds: the simulators (polling every 0.2 s, the
    garbage collector every 1 s) have caught up with everything so far."""
    deadline, last, since = time.monotonic() + timeout, revision(rest), time.monotonic()
    while time.monotonic() - since < still:
        if time.monotonic() > deadline:
            raise AssertionError(f"the cluster kept changing for {timeout:.0f} s")
        time.sleep(0.2)
        now = revision(rest)
        if now != last:
            last, since = now, time.monotonic()


def _items(rest: Rest, path: str) -> list[dict[str, Any]]:
    status, out = rest.get(path)
    if status != 200:
        raise ControlPlaneError(f"GET {path} -> {status}: {out}")
    return list(out.get("items") or [])


def _delete(rest: Rest, kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    path = RESOURCES[kind].path(meta.get("namespace"), meta["name"])
    if meta.get("finalizers"):  # a Foreground delete the garbage collector did not finish, or a test's own
        rest.request("PATCH", path, {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    status, out = rest.request("DELETE", path, query={"propagationPolicy": "Background"})
    if status not in (200, 202, 404):
        raise ControlPlaneError(f"DELETE {path} -> {status}: {out}")


def _ours(kind: str, obj: dict[str, Any]) -> bool:
    """Whether a reset removes ``obj``: not the apiserver's own (kube-* namespaces, Service default/kubernetes)."""
    meta = obj["metadata"]
    return meta["namespace"] not in SYSTEM_NAMESPACES and (kind, meta["name"]) != ("Service", "kubernetes")


def _leftovers(rest: Rest, nodes: set[str]) -> list[str]:
    out = [f"{k}/{o['metadata']['namespace']}/{o['metadata']['name']}"
           for k in NAMESPACED for o in _items(rest, RESOURCES[k].path()) if _ours(k, o)]
    out += [f"{k}/{o['metadata']['name']}" for k in CLUSTER_SCOPED for o in _items(rest, RESOURCES[k].path())]
    out += [f"Namespace/{n}" for o in _items(rest, "/api/v1/namespaces")
            if (n := o["metadata"]["name"]) not in KEPT_NAMESPACES]
    out += [f"Node/{n}" for o in _items(rest, "/api/v1/nodes") if (n := o["metadata"]["name"]) not in nodes]
    return out


def _wipe(rest: Rest, wanted: set[str]) -> None:
    for kind in NAMESPACED:
        for obj in _items(rest, RESOURCES[kind].path()):
            if _ours(kind, obj):
                _delete(rest, kind, obj)
    for kind in CLUSTER_SCOPED:
        for obj in _items(rest, RESOURCES[kind].path()):
            _delete(rest, kind, obj)
    for ns in _items(rest, "/api/v1/namespaces"):
        name = ns["metadata"]["name"]
        if name not in KEPT_NAMESPACES:  # the namespace controller's part: emptied above, then finalized
            _delete(rest, "Namespace", ns)
            status, live = rest.get(f"/api/v1/namespaces/{name}")
            if status == 200:
                live["spec"]["finalizers"] = []
                rest.request("PUT", f"/api/v1/namespaces/{name}/finalize", live)
                _delete(rest, "Namespace", live)  # with no finalizer left, this one removes it
    for kind, path in (("Node", "/api/v1/nodes"), ("NodeNetworkState", RESOURCES["NodeNetworkState"].path())):
        for obj in _items(rest, path):
            if obj["metadata"]["name"] not in wanted:
                _delete(rest, kind, obj)


def reset(cp: ControlPlane, nodes: Sequence[dict[str, Any]] | None = None, simulate: Sequence[str] = SIMULATE) -> None:
    """Back to the seed state with ``nodes`` (default the demo cluster) and fresh ``simulate`` simulators; raises
    if anything is left over."""
    rest, nodes = cp.rest(), demo_nodes() if nodes is None else nodes
    wanted = {n["name"] for n in nodes}
    launch.stop(cp.dir)  # SIGTERM: it unregisters its webhook and APIService
    _wipe(rest, wanted)
    store = ApplyStore(rest)
    seed_nodes(store, nodes)  # labels and NICs as the test wants them (the simulated nmstate changed them)
    status, hco = rest.get(HCO)
    if status == 200:
        _delete(rest, "HyperConverged", hco)
    seed_hyperconverged(store)
    try:
        poll("a reset control plane", lambda: None if _leftovers(rest, wanted) else True, timeout=30)
    except ControlPlaneError as exc:
        raise ControlPlaneError(f"{exc}; left over: {_leftovers(rest, wanted)}") from exc
    launch.start(cp, simulate)
