"""The ``Cluster`` document: what one target cluster allows and its cluster-wide networking settings."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

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
        value = int(mac.replace(":", ""), 16)
        return int(self.start.replace(":", ""), 16) <= value <= int(self.end.replace(":", ""), 16)


class LiveMigration(Model):
    """A dedicated network for live migration: a BridgeNetwork plus the address range migrations use."""

    network: DNSLabel = Field(description="name of a BridgeNetwork whose bridge carries migration traffic")
    ip_range: NetworkCIDR = Field(description="whereabouts range handed to virt-handler pods")


class SecondaryDNS(Model):
    """KubeSecondaryDNS: FQDNs ``<iface>.<vm>.<ns>.vm.<domain>`` for VMs on secondary networks."""

    enabled: bool = True
    name_server_ip: IPAddress = Field(alias="nameServerIP")
    domain: DNSSubdomain


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
    mac_pool: MacPool | None = None
    live_migration: LiveMigration | None = None
    secondary_dns: SecondaryDNS | None = Field(default=None, alias="secondaryDNS")
    load_balancer_pools: list[LoadBalancerPool] = Field(default_factory=list)
    metallb_namespace: DNSLabel = "metallb-system"
    sriov_operator_namespace: DNSLabel = "openshift-sriov-network-operator"
    hyper_converged: HyperConvergedRef = Field(default_factory=HyperConvergedRef)
    allowed_raw_kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_RAW_KINDS))
    prune: PruneSettings = Field(default_factory=PruneSettings)
    vm_restart: Literal["never", "allowed"] = Field(
        default="never", description="default for VMs: may the engine restart a VM for a change that needs it"
    )
