"""Installing the CRDs an OpenShift Virtualization cluster has, and waiting until they are really usable.

Why wait for "served" as well as ``Established``: the condition flips before the apiserver's CR handler and
discovery have caught up, and the first apply of a custom resource right after it can still 404. Listing
each served version until it answers 200 is what envtest does too.

One change to an upstream CRD (:func:`store_as`): HyperConverged is stored as ``v1beta1``, not ``v1``. On a
cluster the HCO operator's conversion webhook turns a ``v1beta1`` write into the restructured ``v1`` and back;
the CRD file carries no webhook (``strategy: None``), so a ``v1beta1`` write stored as ``v1`` would be pruned
against the ``v1`` schema and lose ``liveMigrationConfig``, ``kubeMacPoolConfiguration`` and the rest of what
virtnet writes. Stored as ``v1beta1``, what virtnet (and the double) write and read round-trips as it does
through the webhook; only a ``v1`` read of it is pruned here, which nothing in virtnet does.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from reconciler.testing.controlplane import kubevirt
from reconciler.testing.controlplane.errors import ControlPlaneError, ControlPlaneUnavailable
from reconciler.testing.controlplane.procs import REPO
from reconciler.testing.controlplane.rest import Rest, poll

SHARED_ENV = "VIRTNET_SHARED"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def shared_dir() -> Path:
    """``$VIRTNET_SHARED`` or ``<repo>/../shared``, where the upstream CRD files are kept."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else REPO.parent / "shared"


def directory(shared: Path | None = None) -> Path:
    """The folder of upstream CRD files; :class:`ControlPlaneUnavailable` where it is absent.

    Why a skip and not an error: the CRDs are never copied into the project, so a checkout without them beside
    it (``$VIRTNET_SHARED``) cannot install them; the real tier then skips, saying where it looked.
    """
    crd_dir = (shared or shared_dir()) / "crds"
    if not crd_dir.is_dir():
        raise ControlPlaneUnavailable(
            f"upstream CRDs not found in {crd_dir}; set ${SHARED_ENV} to the folder that holds crds/")
    return crd_dir


def load(shared: Path | None = None) -> list[dict[str, Any]]:
    """Every CRD: the YAML files in ``shared/crds`` plus the KubeVirt ones generated from its swagger."""
    crd_dir = directory(shared)
    out: list[dict[str, Any]] = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out.append(doc)
    out.extend(kubevirt.crds(crd_dir))
    have = {crd["metadata"]["name"] for crd in out}
    out += [
        make()
        for name, make in ((SRIOV_NODE_STATES, sriov_node_state_crd), (DNSES, dns_config_crd))
        if name not in have
    ]
    return [store_as(crd, "hyperconvergeds.hco.kubevirt.io", "v1beta1") for crd in out]


SRIOV_NODE_STATES = "sriovnetworknodestates.sriovnetwork.openshift.io"


def sriov_node_state_crd() -> dict[str, Any]:
    """The SR-IOV operator's per-node state (``SriovNetworkNodeState``, one per node, in the operator's namespace).

    ``shared/crds`` holds no copy of it, so this is written from the operator's API types: the fields virtnet
    reads (``status.syncStatus``: ``InProgress``/``Succeeded``/``Failed``, ``status.lastSyncError``) typed, the
    per-interface lists kept free-form.
    """
    free: dict[str, Any] = {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    spec = {"dpConfigVersion": {"type": "string"}, "interfaces": free}
    status = {"interfaces": free, "syncStatus": {"type": "string"}, "lastSyncError": {"type": "string"}}
    return _generated_crd(
        "sriovnetwork.openshift.io", "Namespaced", "SriovNetworkNodeState", "sriovnetworknodestates", spec, status
    )


DNSES = "dnses.config.openshift.io"


def dns_config_crd() -> dict[str, Any]:
    """OpenShift's cluster DNS config (``DNS``, cluster-scoped, one object named ``cluster``), from which virtnet
    reads the base domain secondary DNS serves.

    ``shared/crds`` holds no copy of it (it is part of OpenShift's config API, not of an operator), so this is
    written from ``config.openshift.io/v1`` ``DNSSpec``: ``spec.baseDomain`` typed, the zones and platform
    settings virtnet never reads kept free-form.
    """
    free: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    spec = {"baseDomain": {"type": "string"}, "privateZone": free, "publicZone": free, "platform": free}
    return _generated_crd("config.openshift.io", "Cluster", "DNS", "dnses", spec, {})


def _generated_crd(
    group: str, scope: str, kind: str, plural: str, spec: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    """A one-version (``v1``) CRD whose ``spec`` and ``status`` have the given properties, marked as written by
    virtnet rather than taken from upstream."""
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": spec},
            "status": {"type": "object", "properties": status},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/generated-by": "virtnet"}},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def store_as(crd: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    """``crd`` with ``version`` as its storage version when it is CRD ``name`` (see the module docstring)."""
    if crd["metadata"]["name"] == name and any(v["name"] == version for v in crd["spec"]["versions"]):
        for v in crd["spec"]["versions"]:
            v["storage"] = v["name"] == version
    return crd


def _established(rest: Rest, name: str) -> dict[str, Any] | None:
    status, crd = rest.get(f"{CRD_PATH}/{name}")
    if status != 200:
        return None
    conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
    if conditions.get("NamesAccepted", {}).get("status") == "False":
        raise ControlPlaneError(f"CRD {name} names not accepted: {conditions['NamesAccepted'].get('message')}")
    return crd if conditions.get("Established", {}).get("status") == "True" else None


def _lists(rest: Rest, path: str) -> bool | None:
    return True if rest.get(path)[0] == 200 else None


def install(rest: Rest, crds: list[dict[str, Any]], *, timeout: float = 60.0) -> list[str]:
    """Apply all ``crds``, then wait until each is Established and every served version lists. Returns names."""
    for crd in crds:
        rest.apply(f"{CRD_PATH}/{crd['metadata']['name']}", crd)
    names = []
    for crd in crds:
        name = crd["metadata"]["name"]
        live = poll(f"CRD {name} Established", functools.partial(_established, rest, name), timeout=timeout)
        spec = live["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                path = f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}"
                poll(f"{path} served", functools.partial(_lists, rest, path), timeout=timeout)
        names.append(name)
    return names
