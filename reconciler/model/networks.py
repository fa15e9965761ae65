"""Network documents: Linux bridges, node interfaces (bonds, VLANs), SR-IOV and OVN-Kubernetes networks.

Each network is offered to a list of namespaces; a VM names a network by its ``metadata.name`` and the
renderer turns that into the right Multus reference.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reconciler.model.types import (
    DNSLabel,
    IfName,
    InterfaceCIDR,
    Model,
    Mtu,
    NetworkCIDR,
    NodeSelector,
    ResourceName,
    VlanId,
)

BondMode = Literal["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"]
MaxUnavailable = int | str


class Bond(Model):
    name: IfName
    mode: BondMode = "active-backup"
    nics: list[IfName] = Field(min_length=1)
    mtu: Mtu | None = None
    miimon: int | None = Field(default=None, ge=0, description="link monitoring interval in ms")

    @model_validator(mode="after")
    def _unique(self) -> Bond:
        dupes = sorted({n for n in self.nics if self.nics.count(n) > 1})
        if dupes:
            raise ValueError(f"bond {self.name} lists NIC(s) {', '.join(dupes)} more than once")
        if self.name in self.nics:
            raise ValueError(f"bond {self.name} cannot be its own port")
        return self


class Uplink(Model):
    """Exactly one of: a NIC (or any existing interface, e.g. a VLAN or bond from a NodeNetwork), or a bond."""

    nic: IfName | None = None
    bond: Bond | None = None

    @model_validator(mode="after")
    def _one(self) -> Uplink:
        if (self.nic is None) == (self.bond is None):
            raise ValueError("uplink needs exactly one of 'nic' or 'bond'")
        return self

    @property
    def port(self) -> str:
        return self.nic if self.nic is not None else self.bond.name  # type: ignore[union-attr]


class BridgeNetworkSpec(Model):
    bridge: IfName
    node_selector: NodeSelector = Field(default_factory=dict)
    uplink: Uplink | None = Field(
        default=None, description="makes this network create the bridge on the nodes (an NNCP)"
    )
    isolated: bool = Field(default=False, description="create the bridge without an uplink (node-local traffic)")
    vlan: VlanId | None = Field(default=None, description="VLAN tag the bridge CNI puts on the VMs' ports")
    mtu: Mtu | None = None
    stp: bool = False
    mac_spoof_check: bool = True
    subnet: NetworkCIDR | None = Field(default=None, description="not IPAM: lets validation check static IPs")
    namespaces: list[DNSLabel] = Field(
        default_factory=list, description="where VMs may use it; empty: only the bridge is made"
    )
    max_unavailable: MaxUnavailable | None = None

    @model_validator(mode="after")
    def _uplink_or_isolated(self) -> BridgeNetworkSpec:
        if self.uplink is not None and self.isolated:
            raise ValueError("a bridge with an uplink cannot also be isolated")
        return self

    @property
    def defines_bridge(self) -> bool:
        return self.uplink is not None or self.isolated


class Vlan(Model):
    base: IfName
    id: VlanId
    name: IfName | None = None
    mtu: Mtu | None = None
    addresses: list[InterfaceCIDR] = Field(default_factory=list)

    @property
    def ifname(self) -> str:
        return self.name or f"{self.base}.{self.id}"


class BridgeMapping(Model):
    """An OVN-Kubernetes localnet → OVS bridge mapping (NNCP ``ovn.bridge-mappings``)."""

    localnet: str = Field(min_length=1)
    bridge: str = "br-ex"


class NodeNetworkSpec(Model):
    node_selector: NodeSelector = Field(default_factory=dict)
    bonds: list[Bond] = Field(default_factory=list)
    vlans: list[Vlan] = Field(default_factory=list)
    ovn_bridge_mappings: list[BridgeMapping] = Field(default_factory=list)
    max_unavailable: MaxUnavailable | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> NodeNetworkSpec:
        if not (self.bonds or self.vlans or self.ovn_bridge_mappings):
            raise ValueError("a NodeNetwork needs at least one of bonds, vlans or ovnBridgeMappings")
        return self


class SriovNetworkSpec(Model):
    resource_name: ResourceName
    node_selector: NodeSelector = Field(default_factory=dict)
    pf_names: list[str] = Field(min_length=1, description="PF names, optionally with a VF range: ens1f0#0-7")
    num_vfs: int = Field(ge=1, le=256)
    device_type: Literal["vfio-pci", "netdevice"] = "vfio-pci"
    vlan: int | None = Field(default=None, ge=0, le=4094)
    mtu: Mtu | None = None
    spoof_check: bool = True
    trust: bool = False
    priority: int = Field(default=99, ge=0, le=99)
    namespaces: list[DNSLabel] = Field(min_length=1)


class OvnNetworkSpec(Model):
    topology: Literal["layer2", "localnet"]
    subnets: list[NetworkCIDR] = Field(default_factory=list)
    exclude_subnets: list[NetworkCIDR] = Field(default_factory=list)
    mtu: Mtu | None = None
    vlan: VlanId | None = Field(default=None, description="localnet only: the VLAN on the physical network")
    physical_network_name: str | None = Field(default=None, description="localnet only; defaults to the name")
    namespaces: list[DNSLabel] = Field(min_length=1)

    @model_validator(mode="after")
    def _topology_fields(self) -> OvnNetworkSpec:
        if self.topology == "layer2" and (self.vlan is not None or self.physical_network_name):
            raise ValueError("vlan and physicalNetworkName apply to topology 'localnet' only")
        return self
