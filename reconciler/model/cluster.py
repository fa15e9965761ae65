"""The ``Cluster`` document: what one target cluster allows and its cluster-wide networking settings."""

from __future__ import annotations

import functools
import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from reconciler.model.types import DNSLabel, DNSSubdomain, IPAddress, Mac, Model, NetworkCIDR

DEFAULT_RAW_KINDS = (
    "ConfigMap",
    "Secret",
    "Service",
    "NetworkAttachmentDefinition",
    "NodeNetworkConfigurationPolicy",
    "SriovNetwork",
    "SriovNetworkNodePolicy",
    "VirtualMachine",
    "IPAddressPool",
    "L2Advertisement",
)


#: the Namespace label with which a namespace opts out of KubeMacPool (its VMs keep the MACs they are given)
KUBEMACPOOL_IGNORE = ("mutatevirtualmachines.kubemacpool.io", "ignore")
#: Namespace labels that make a namespace a member of the Istio / OpenShift Service Mesh data plane
ISTIO_INJECTION = "istio-injection"
ISTIO_REVISION = "istio.io/rev"
#: the Service annotation that makes MetalLB take a LoadBalancer's address from one named pool
METALLB_ADDRESS_POOL = "metallb.io/address-pool"


class MacPool(Model):
    """The KubeMacPool range; explicit MACs in the repo must fall inside it."""

    start: Mac
    end: Mac

    @model_validator(mode="after")
    def _ordered(self) -> MacPool:
        if int(self.start.replace(":", ""), 16) > int(self.end.replace(":", ""), 16):
            raise ValueError(f"macPool start {self.start} is after end {self.end}")
        return self

    def contains(self, mac: str) -> bool:
        return _mac_value(self.start) <= _mac_value(mac) <= _mac_value(self.end)


@functools.lru_cache(maxsize=1 << 16)
def _mac_value(mac: str) -> int:
    """A MAC as a number, worked out once per spelling (a 10,000-VM repository checks 12,000 against the pool
    on every load)."""
    return int(mac.replace(":", ""), 16)


class LiveMigration(Model):
    """A dedicated network for live migration: a BridgeNetwork plus the address range migrations use."""

    network: DNSLabel = Field(description="name of a BridgeNetwork whose bridge carries migration traffic")
    ip_range: NetworkCIDR = Field(description="whereabouts range handed to virt-handler pods")


class SecondaryDNS(Model):
    """KubeSecondaryDNS: FQDNs ``<iface>.<vm>.<ns>.vm.<baseDomain>`` for VMs on secondary networks.

    The domain is not chosen here: KubeSecondaryDNS serves ``vm.<the cluster's base domain>``, which the
    Cluster document states once as ``spec.baseDomain``. The name server is reached from outside the cluster
    through a LoadBalancer Service at ``nameServerIP`` (the networking chapter's procedure), which virtnet
    renders unless ``publish: false``.
    """

    enabled: bool = True
    name_server_ip: IPAddress = Field(alias="nameServerIP")
    publish: bool = Field(default=True, description="a LoadBalancer Service publishing the name server")
    pool: DNSLabel | None = Field(default=None, description="MetalLB pool the Service's address comes from")

    domain: str | None = Field(default=None, description="refused: the domain is vm.<spec.baseDomain>")

    @field_validator("domain")
    @classmethod
    def _no_domain(cls, value: str | None) -> None:
        """The old free-text field, kept only to say what replaced it (at its own line)."""
        if value is not None:
            raise ValueError(
                "secondaryDNS.domain is no longer set by hand: KubeSecondaryDNS serves vm.<the cluster's base "
                "domain>; write the cluster's base domain once as spec.baseDomain"
            )
        return None


class NamespaceSettings(Model):
    """Settings of one virtnet-managed namespace, rendered as labels on its Namespace."""

    name: DNSLabel
    kube_mac_pool: bool = Field(default=True, description="false: KubeMacPool leaves this namespace's VMs alone")
    service_mesh: bool = Field(default=False, description="a member of the service mesh (sidecar injection)")
    mesh_revision: DNSLabel | None = Field(
        default=None, description="the Istio revision to join (istio.io/rev); default: istio-injection=enabled"
    )
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _revision(self) -> NamespaceSettings:
        if self.mesh_revision is not None and not self.service_mesh:
            raise ValueError("meshRevision needs serviceMesh: true")
        return self


class DpdkSettings(Model):
    """Cluster-wide settings DPDK VMs need: the performance profile's runtime class (KubeVirt takes it from
    HyperConverged ``defaultRuntimeClass``; a VM has no field of its own) and CPU parity alignment."""

    runtime_class: DNSSubdomain = Field(description="the performance profile's RuntimeClass, performance-<profile>")
    align_cpus: bool = Field(default=False, alias="alignCPUs", description="HyperConverged featureGates.alignCPUs")


class LoadBalancerPool(Model):
    """A MetalLB layer-2 address pool."""

    name: DNSLabel
    addresses: list[str] = Field(min_length=1, description="CIDRs or ranges like 192.0.2.10-192.0.2.20")
    auto_assign: bool = True

    @model_validator(mode="after")
    def _addresses(self) -> LoadBalancerPool:
        for entry in self.addresses:
            parts = entry.split("-") if "-" in entry else None
            try:
                if parts:
                    first, last = (ipaddress.ip_address(p.strip()) for p in parts)
                    if first.version != last.version or int(first) > int(last):
                        raise ValueError
                else:
                    ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"address {entry!r} is neither a CIDR nor a range a-b") from None
        return self


class HyperConvergedRef(Model):
    name: DNSSubdomain = "kubevirt-hyperconverged"
    namespace: DNSLabel = "openshift-cnv"


class PruneSettings(Model):
    """Guards that keep a bad commit from deleting a cluster's networks."""

    enabled: bool = True
    max_share: float = Field(default=0.25, ge=0, le=1, description="refuse a plan deleting more than this share")


class ClusterSpec(Model):
    allowed_namespaces: list[DNSLabel] = Field(min_length=1)
    manage_namespaces: bool = Field(default=True, description="render Namespace objects (never pruned)")
    namespaces: list[NamespaceSettings] = Field(default_factory=list, description="per-namespace settings")
    base_domain: DNSSubdomain | None = Field(
        default=None, description="the cluster's base domain (OpenShift: dnses.config.openshift.io/cluster)"
    )
    mac_pool: MacPool | None = None
    live_migration: LiveMigration | None = None
    secondary_dns: SecondaryDNS | None = Field(default=None, alias="secondaryDNS")
    dpdk: DpdkSettings | None = None
    load_balancer_pools: list[LoadBalancerPool] = Field(default_factory=list)
    metallb_namespace: DNSLabel = "metallb-system"
    sriov_operator_namespace: DNSLabel = "openshift-sriov-network-operator"
    hyper_converged: HyperConvergedRef = Field(default_factory=HyperConvergedRef)
    allowed_raw_kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_RAW_KINDS))
    prune: PruneSettings = Field(default_factory=PruneSettings)
    vm_restart: Literal["never", "allowed"] = Field(
        default="never", description="default for VMs: may the engine restart a VM for a change that needs it"
    )

    def namespace(self, name: str) -> NamespaceSettings:
        """The settings of namespace ``name`` (the defaults when it has none)."""
        return next((n for n in self.namespaces if n.name == name), NamespaceSettings(name=name))

    @property
    def fqdn_domain(self) -> str | None:
        """The domain KubeSecondaryDNS serves, ``vm.<baseDomain>``, when it is deployed; else None."""
        dns = self.secondary_dns
        if dns is None or not dns.enabled or self.base_domain is None:
            return None
        return f"vm.{self.base_domain}"
