"""The resource registry of the API double, and the discovery documents built from it.

Everything the double serves is listed once in :data:`REGISTRY`, one line per resource, so adding a kind
is adding a line. Discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``) is *derived*
from that list, which keeps what the clients discover and what the double actually stores in step.

Storage is keyed by ``(group, plural)``, not by version: a resource served in several versions (HyperConverged
in ``hco.kubevirt.io`` ``v1beta1`` and ``v1``) is one set of objects, returned with the ``apiVersion`` of the
request, i.e. conversion is the identity. That is what a CRD with ``strategy: None`` does on a real server and
it is good enough for a double: the fields that differ between the HCO versions are not interpreted here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    """One served resource: ``group`` is ``""`` for the core group."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    storage_version: bool = True  # the version listed first in discovery (preferred)
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored per group and plural, shared by every served version."""
        return (self.group, self.plural)

    @property
    def resource_name(self) -> str:
        """``group/plural`` (or just ``plural`` for core): the resource part of request-count keys."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _r(
    gv: str, kind: str, plural: str, namespaced: bool, short: str = "", sub: str = "", *, storage: bool = True
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=tuple(s for s in short.split(",") if s),
        subresources=tuple(s for s in sub.split(",") if s),
        storage_version=storage,
    )


NS, CLUSTER = True, False

#: gv, kind, plural, namespaced, short names, subresources -- one line per served resource
REGISTRY: tuple[ResourceType, ...] = (
    _r("v1", "Namespace", "namespaces", CLUSTER, "ns", "status"),
    _r("v1", "Service", "services", NS, "svc", "status"),
    _r("v1", "Secret", "secrets", NS),
    _r("v1", "ConfigMap", "configmaps", NS, "cm"),
    _r("v1", "Event", "events", NS, "ev"),
    _r("v1", "Node", "nodes", CLUSTER, "no", "status"),
    _r("v1", "Pod", "pods", NS, "po", "status"),
    _r("v1", "ServiceAccount", "serviceaccounts", NS, "sa"),
    _r("events.k8s.io/v1", "Event", "events", NS, "ev"),
    _r("coordination.k8s.io/v1", "Lease", "leases", NS),
    _r("apps/v1", "Deployment", "deployments", NS, "deploy", "status"),
    _r("apps/v1", "DaemonSet", "daemonsets", NS, "ds", "status"),
    _r("rbac.authorization.k8s.io/v1", "Role", "roles", NS),
    _r("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", NS),
    _r("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", CLUSTER),
    _r("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER),
    _r("nmstate.io/v1", "NodeNetworkConfigurationPolicy", "nodenetworkconfigurationpolicies", CLUSTER,
       "nncp", "status"),
    _r("nmstate.io/v1beta1", "NodeNetworkConfigurationEnactment", "nodenetworkconfigurationenactments",
       CLUSTER, "nnce", "status"),
    _r("nmstate.io/v1beta1", "NodeNetworkState", "nodenetworkstates", CLUSTER, "nns", "status"),
    _r("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions", NS,
       "net-attach-def"),
    _r("sriovnetwork.openshift.io/v1", "SriovNetworkNodePolicy", "sriovnetworknodepolicies", NS, "", "status"),
    _r("sriovnetwork.openshift.io/v1", "SriovNetwork", "sriovnetworks", NS, "", "status"),
    _r("kubevirt.io/v1", "VirtualMachine", "virtualmachines", NS, "vm,vms", "status"),
    _r("kubevirt.io/v1", "VirtualMachineInstance", "virtualmachineinstances", NS, "vmi,vmis"),
    _r("kubevirt.io/v1", "VirtualMachineInstanceMigration", "virtualmachineinstancemigrations", NS, "vmim,vmims",
       "status"),
    _r("kubevirt.io/v1", "KubeVirt", "kubevirts", NS, "kv,kvs", "status"),
    _r("sriovnetwork.openshift.io/v1", "SriovNetworkNodeState", "sriovnetworknodestates", NS, "", "status"),
    _r("hco.kubevirt.io/v1beta1", "HyperConverged", "hyperconvergeds", NS, "hco", "status"),
    _r("hco.kubevirt.io/v1", "HyperConverged", "hyperconvergeds", NS, "hco", "status", storage=False),
    _r("config.openshift.io/v1", "DNS", "dnses", CLUSTER),  # OpenShift's DNS config: the cluster's base domain
    _r("metallb.io/v1beta1", "IPAddressPool", "ipaddresspools", NS),
    _r("metallb.io/v1beta1", "L2Advertisement", "l2advertisements", NS),
    _r("virtnet.io/v1alpha1", "ClusterSync", "clustersyncs", NS, "csync", "status"),  # charts/virtnet/crds
)


class Registry:
    """Lookups over a list of :class:`ResourceType` (by URL parts, by apiVersion+kind)."""

    def __init__(self, types: Iterable[ResourceType] = REGISTRY) -> None:
        self.types: tuple[ResourceType, ...] = tuple(types)
        self._by_path = {(t.group, t.version, t.plural): t for t in self.types}
        self._by_kind = {(t.api_version, t.kind): t for t in self.types}

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def by_storage_key(self, key: tuple[str, str]) -> ResourceType | None:
        """The preferred (storage) version's type of a ``(group, plural)``."""
        return next((t for t in self.types if t.storage_key == key and t.storage_version), None)

    def served_versions(self, group: str) -> list[str]:
        """Versions of ``group``, preferred (storage) version first."""
        ordered = sorted((t for t in self.types if t.group == group), key=lambda t: not t.storage_version)
        out: list[str] = []
        for t in ordered:
            if t.version not in out:
                out.append(t.version)
        return out

    def groups(self) -> list[str]:
        out: list[str] = []
        for t in self.types:
            if t.group and t.group not in out:
                out.append(t.group)
        return out

    # ---- discovery documents -------------------------------------------------------------------------------

    def core_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }

    def group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self.group(g) for g in self.groups()]}

    def group(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self.served_versions(group)]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
                "preferredVersion": versions[0]}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = [t for t in self.types if t.group == group and t.version == version]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for t in types:
            entry: dict[str, Any] = {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(ALL_VERBS),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            if t.categories:
                entry["categories"] = list(t.categories)
            resources.append(entry)
            for sub in t.subresources:
                resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                                  "kind": t.kind, "verbs": list(SUB_VERBS)})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": t.api_version,
                "resources": resources}
