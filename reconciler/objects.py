"""Identity and ordering of Kubernetes objects as plain dicts.

The apply order is data, not code: ``sort_key`` ranks every object by wave, then kind, then namespace and
name. Render output uses the same order, so a rendered file reads like the apply will run.
Waves: 0 node network and namespaces (nodes must have bridges before anything attaches), 1 networks and
cluster settings, 2 workloads (VMs and their Services).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler import labels

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiResource:
    """One kind virtnet can reach: the single apiVersion it speaks for it, its URL plural and its scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool


#: every kind virtnet reads or writes, keyed by kind (the client builds its paths from this, and validation
#: refuses a rendered object whose kind or apiVersion is not here: the engine could not send it)
API_RESOURCES: dict[str, ApiResource] = {
    r.kind: r
    for r in (
        ApiResource("v1", "Namespace", "namespaces", False),
        ApiResource("v1", "Service", "services", True),
        ApiResource("v1", "Secret", "secrets", True),
        ApiResource("v1", "ConfigMap", "configmaps", True),
        ApiResource("v1", "Node", "nodes", False),
        ApiResource("nmstate.io/v1", "NodeNetworkConfigurationPolicy", "nodenetworkconfigurationpolicies", False),
        ApiResource(
            "nmstate.io/v1beta1", "NodeNetworkConfigurationEnactment", "nodenetworkconfigurationenactments", False
        ),
        ApiResource("nmstate.io/v1beta1", "NodeNetworkState", "nodenetworkstates", False),
        ApiResource("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions", True),
        ApiResource("sriovnetwork.openshift.io/v1", "SriovNetworkNodePolicy", "sriovnetworknodepolicies", True),
        ApiResource("sriovnetwork.openshift.io/v1", "SriovNetwork", "sriovnetworks", True),
        ApiResource("metallb.io/v1beta1", "IPAddressPool", "ipaddresspools", True),
        ApiResource("metallb.io/v1beta1", "L2Advertisement", "l2advertisements", True),
        ApiResource("kubevirt.io/v1", "VirtualMachine", "virtualmachines", True),
        ApiResource("kubevirt.io/v1", "VirtualMachineInstance", "virtualmachineinstances", True),
        ApiResource("kubevirt.io/v1", "VirtualMachineInstanceMigration", "virtualmachineinstancemigrations", True),
        ApiResource("kubevirt.io/v1", "KubeVirt", "kubevirts", True),
        ApiResource("sriovnetwork.openshift.io/v1", "SriovNetworkNodeState", "sriovnetworknodestates", True),
        ApiResource("hco.kubevirt.io/v1beta1", "HyperConverged", "hyperconvergeds", True),
        ApiResource("config.openshift.io/v1", "DNS", "dnses", False),  # read only: the cluster's base domain
    )
}
#: kinds whose owned objects are listed on every reconcile (everything virtnet may create and prune)
MANAGED_KINDS: tuple[str, ...] = (
    "Namespace",
    "NodeNetworkConfigurationPolicy",
    "SriovNetworkNodePolicy",
    "NetworkAttachmentDefinition",
    "SriovNetwork",
    "IPAddressPool",
    "L2Advertisement",
    "ConfigMap",
    "Secret",
    "VirtualMachine",
    "Service",
)
#: kinds virtnet only patches (rendered without ownership labels, never created or pruned)
PATCH_ONLY_KINDS: tuple[str, ...] = ("HyperConverged",)

KIND_ORDER: tuple[tuple[str, int], ...] = (
    ("Namespace", 0),
    ("NodeNetworkConfigurationPolicy", 0),
    ("SriovNetworkNodePolicy", 0),
    ("NetworkAttachmentDefinition", 1),
    ("SriovNetwork", 1),
    ("IPAddressPool", 1),
    ("L2Advertisement", 1),
    ("HyperConverged", 1),
    ("ConfigMap", 1),
    ("Secret", 1),
    ("VirtualMachine", 2),
    ("Service", 2),
)
_RANK = {kind: (wave, i) for i, (kind, wave) in enumerate(KIND_ORDER)}
LAST_WAVE = 2


def group_of(obj: Obj) -> str:
    group, slash, _ = obj["apiVersion"].partition("/")  # one call: obj_id runs 140,000 times a run at L
    return group if slash else ""


def obj_id(obj: Obj) -> str:
    """``group/Kind/namespace/name`` (core group and cluster scope as empty parts): the inventory key."""
    meta = obj["metadata"]
    return f"{group_of(obj)}/{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def display(obj: Obj) -> str:
    """``Kind/ns/name`` or ``Kind/name``: how users see an object in messages."""
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{obj['kind']}/{ns}/{meta['name']}" if ns else f"{obj['kind']}/{meta['name']}"


def wave(obj: Obj) -> int:
    return _RANK.get(obj["kind"], (1, len(KIND_ORDER)))[0]


def sort_key(obj: Obj) -> tuple[int, int, str, str, str]:
    rank = _RANK.get(obj["kind"], (1, len(KIND_ORDER)))
    meta = obj["metadata"]
    return (rank[0], rank[1], obj["kind"], meta.get("namespace", ""), meta["name"])


def with_annotation(obj: Obj, key: str, value: str) -> Obj:
    """A copy of ``obj`` with one more annotation (annotations kept sorted, as render writes them); everything
    below ``metadata`` is shared, not copied."""
    meta = obj["metadata"]
    annotations = {**(meta.get("annotations") or {}), key: value}
    return {**obj, "metadata": {**meta, "annotations": dict(sorted(annotations.items()))}}


def is_owned(obj: Obj, cluster: str) -> bool:
    """Ours to update and prune: carries the managed-by label *and* this cluster's label."""
    lab = obj.get("metadata", {}).get("labels") or {}
    return lab.get(labels.MANAGED_BY) == labels.MANAGER and lab.get(labels.CLUSTER) == cluster


def is_patch_only(obj: Obj) -> bool:
    """Rendered without ownership labels: a shared object we only patch (e.g. HyperConverged)."""
    return labels.MANAGED_BY not in (obj.get("metadata", {}).get("labels") or {})
