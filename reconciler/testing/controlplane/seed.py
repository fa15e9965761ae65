"""What an OpenShift Virtualization cluster already has before virtnet runs, written to the real apiserver.

Why the double's shapes: the engine tests and the demo run against :class:`~reconciler.testing.ApiDouble`
seeded with :func:`~reconciler.testing.nodes.demo_nodes` and
:func:`~reconciler.testing.nodes.seed_hyperconverged`; using the same nodes, NICs, labels and HyperConverged
here means a test can move from the double to the real apiserver without its fixtures changing. Status is
written through the ``/status`` subresource (a create ignores it) with the managers the double uses.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from reconciler.testing.controllers import NMSTATE_V1B1, NmstateController
from reconciler.testing.controlplane.rest import Rest
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from reconciler.testing.store import now

NAMESPACES = ("openshift-cnv", "openshift-nmstate", "openshift-sriov-network-operator", "metallb-system")
KUBELET = "kubelet"

# kind -> (plural, namespaced): the few kinds seeded here, so paths need no discovery round-trip.
_PLURALS = {"Namespace": ("namespaces", False), "Node": ("nodes", False),
            "NodeNetworkState": ("nodenetworkstates", False), "HyperConverged": ("hyperconvergeds", True),
            "DNS": ("dnses", False)}


def path_of(obj: dict[str, Any], subresource: str = "") -> str:
    """REST path of ``obj`` (one of the seeded kinds)."""
    plural, namespaced = _PLURALS[obj["kind"]]
    api = obj["apiVersion"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    meta = obj["metadata"]
    ns = f"/namespaces/{meta['namespace']}" if namespaced else ""
    return f"{base}{ns}/{plural}/{meta['name']}" + (f"/{subresource}" if subresource else "")


class ApplyStore:
    """The one ``Store.put`` call :func:`seed_hyperconverged` makes, done as server-side apply.

    Lets the double's own seeding function write to the real apiserver instead of being copied here.
    """

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def put(self, obj: dict[str, Any], manager: str | None = None) -> dict[str, Any]:
        body = copy.deepcopy(obj)
        status = body.pop("status", None)
        out = self.rest.apply(path_of(body), body, **({"manager": manager} if manager else {}))
        if status is not None:
            out = self.status(body, status, manager or KUBELET)
        return out

    def status(self, obj: dict[str, Any], status: dict[str, Any], manager: str) -> dict[str, Any]:
        body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": dict(obj["metadata"]),
                "status": status}
        return self.rest.apply(path_of(obj, "status"), body, manager=manager)


def _node_address(node: dict[str, Any]) -> str | None:
    for nic in node.get("interfaces", []):
        if nic["name"] == "eth0" and nic.get("ipv4", {}).get("enabled"):
            return nic["ipv4"]["address"][0]["ip"]
    return None


def seed_nodes(store: ApplyStore, nodes: Sequence[dict[str, Any]]) -> None:
    """A Ready Node and a NodeNetworkState (eth0 with the node IP and default route, the other NICs) per node."""
    for n in nodes:
        addresses = [{"type": "Hostname", "address": n["name"]}]
        if ip := _node_address(n):
            addresses.insert(0, {"type": "InternalIP", "address": ip})
        store.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n["name"], "labels": n["labels"]},
                   "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                              "addresses": addresses}}, manager=KUBELET)
        store.put({"apiVersion": NMSTATE_V1B1, "kind": "NodeNetworkState", "metadata": {"name": n["name"]},
                   "status": {"currentState": {"interfaces": copy.deepcopy(n.get("interfaces", [])),
                                               "routes": copy.deepcopy(n.get("routes", {}))},
                              "lastSuccessfulUpdateTime": now()}}, manager=NmstateController.manager)


def seed(rest: Rest, nodes: Sequence[dict[str, Any]] | None = None) -> None:
    """Namespaces, the HyperConverged CR and the nodes (default: :func:`demo_nodes`, as the double uses)."""
    store = ApplyStore(rest)
    for name in NAMESPACES:
        store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    seed_hyperconverged(store)
    seed_nodes(store, demo_nodes() if nodes is None else nodes)
