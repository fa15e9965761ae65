"""Network documents: Linux bridges, node interfaces (bonds, VLANs), SR-IOV and OVN-Kubernetes networks.

Each network is offered to a list of namespaces; a VM names a network by its ``metadata.name`` and the
renderer turns that into the right Multus reference.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from reconciler.model.types import (
    PCI_ID,
    DNSLabel,
    IfName,
    InterfaceCIDR,
    IPAddress,
    Model,
    Mtu,
    NetworkCIDR,
    NodeSelector,
    ResourceName,
    VlanId,
)

BondMode = Literal["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"]
MaxUnavailable = int | str


_VLAN_RANGE = re.compile(r"^([0-9]{1,4})-([0-9]{1,4})$")


class Bond(Model):
    name: IfName
    mode: BondMode = "active-backup"
    nics: list[IfName] = Field(min_length=1)
    mtu: Mtu | None = None
    miimon: int | None = Field(default=None, ge=0, description="link monitoring interval in ms")
    options: dict[str, str | int | bool] = Field(
        default_factory=dict, description="nmstate link-aggregation.options (lacp_rate, xmit_hash_policy, ...)"
    )

    @model_validator(mode="after")
    def _unique(self) -> Bond:
        dupes = sorted({n for n in self.nics if self.nics.count(n) > 1})
        if dupes:
            raise ValueError(f"bond {self.name} lists NIC(s) {', '.join(dupes)} more than once")
        if self.name in self.nics:
            raise ValueError(f"bond {self.name} cannot be its own port")
        if self.miimon is not None and "miimon" in self.options:
            raise ValueError(f"bond {self.name} sets miimon twice (miimon and options.miimon): keep one")
        primary = self.options.get("primary")
        if primary is not None and primary not in self.nics:
            raise ValueError(f"bond {self.name}: primary {primary!r} is not one of its nics")
        return self

    @property
    def all_options(self) -> dict[str, str | int | bool]:
        """``miimon`` and ``options`` as the one mapping nmstate reads."""
        return {**self.options, **({"miimon": self.miimon} if self.miimon is not None else {})}


class PortVlan(Model):
    """VLAN filtering on a bridge port (nmstate ``bridge.port[].vlan``): a trunk carrying ``trunkTags``
    (ids, or ranges written ``"200-299"``), optionally with ``tag`` as its untagged native VLAN; or an
    access port in VLAN ``tag``."""

    mode: Literal["trunk", "access"]
    trunk_tags: list[VlanId | str] = Field(default_factory=list)
    tag: VlanId | None = None
    enable_native: bool = False

    @model_validator(mode="after")
    def _shape(self) -> PortVlan:
        if self.mode == "access":
            if self.tag is None or self.trunk_tags or self.enable_native:
                raise ValueError("an access port needs tag, and takes no trunkTags or enableNative")
        elif not self.trunk_tags:
            raise ValueError("a trunk port needs trunkTags")
        elif self.enable_native and self.tag is None:
            raise ValueError("enableNative needs tag (the native VLAN)")
        elif self.tag is not None and not self.enable_native:
            raise ValueError("on a trunk, tag is the native VLAN: set enableNative: true with it")
        self.ranges()
        return self

    def ranges(self) -> list[int | tuple[int, int]]:
        """The trunk tags as ids and (min, max) ranges; a malformed range raises ValueError."""
        out: list[int | tuple[int, int]] = []
        for tag in self.trunk_tags:
            if isinstance(tag, int):
                out.append(tag)
                continue
            m = _VLAN_RANGE.match(tag)
            low, high = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            if not (m and 1 <= low < high <= 4094):
                raise ValueError(f"trunk tag {tag!r} is neither a VLAN id nor a range like '200-299' within 1-4094")
            out.append((low, high))
        return out

    def carried(self) -> set[int]:
        """The VLAN ids the port lets through: the trunk's tags, the access VLAN, a trunk's native VLAN."""
        out: set[int] = set()
        for tag in self.ranges():
            out.update(range(tag[0], tag[1] + 1) if isinstance(tag, tuple) else (tag,))
        if self.tag is not None:
            out.add(self.tag)
        return out


class Uplink(Model):
    """Exactly one of: a NIC (or any existing interface, e.g. a VLAN or bond from a NodeNetwork), or a bond."""

    nic: IfName | None = None
    bond: Bond | None = None
    vlan: PortVlan | None = Field(default=None, description="VLAN filtering on the uplink port (trunk/access)")

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


_PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def _pci_id(value: str) -> str:
    if not PCI_ID.match(value):
        raise ValueError(f"{value!r} is not a PCI id: 4 lower-case hex digits, like 8086 (vendor) or 1592 (device)")
    return value


def _pci_address(value: str) -> str:
    if not _PCI_ADDRESS.match(value):
        raise ValueError(f"{value!r} is not a PCI address like 0000:3b:00.0")
    return value


PciId = Annotated[str, AfterValidator(_pci_id)]
PciAddress = Annotated[str, AfterValidator(_pci_address)]


class SriovIpam(Model):
    """IPAM of the NAD the SR-IOV operator writes (``SriovNetwork.spec.ipam``, CNI JSON)."""

    type: Literal["whereabouts", "dhcp", "static"]
    range: NetworkCIDR | None = None
    exclude: list[NetworkCIDR] = Field(default_factory=list)
    gateway: IPAddress | None = None

    @model_validator(mode="after")
    def _fields(self) -> SriovIpam:
        if self.type == "whereabouts" and self.range is None:
            raise ValueError("whereabouts IPAM needs range")
        if self.type != "whereabouts" and (self.range or self.exclude or self.gateway):
            raise ValueError(f"range, exclude and gateway apply to whereabouts IPAM only, not {self.type}")
        return self


class SriovNetworkSpec(Model):
    resource_name: ResourceName
    node_selector: NodeSelector = Field(default_factory=dict)
    pf_names: list[str] = Field(default_factory=list, description="PF names, optionally with a VF range: ens1f0#0-7")
    vendor: PciId | None = Field(default=None, description="nicSelector.vendor: the PF's PCI vendor id")
    device_id: PciId | None = Field(
        default=None, alias="deviceID", description="nicSelector.deviceID: the PF's PCI device id"
    )
    root_devices: list[PciAddress] = Field(
        default_factory=list, description="nicSelector.rootDevices: PF PCI addresses"
    )
    num_vfs: int = Field(ge=1, le=256)
    device_type: Literal["vfio-pci", "netdevice"] = "vfio-pci"
    is_rdma: bool = Field(default=False, description="RDMA-capable VFs (netdevice only)")
    vlan: int | None = Field(default=None, ge=0, le=4094)
    mtu: Mtu | None = None
    spoof_check: bool = True
    trust: bool = False
    link_state: Literal["auto", "enable", "disable"] | None = None
    capabilities: list[Literal["ips", "mac"]] = Field(
        default_factory=list, description="CNI runtime capabilities the SriovNetwork enables"
    )
    ipam: SriovIpam | None = None
    priority: int = Field(default=99, ge=0, le=99)
    namespaces: list[DNSLabel] = Field(min_length=1)

    @field_validator("is_rdma")
    @classmethod
    def _rdma(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("device_type") == "vfio-pci":
            raise ValueError("isRdma needs deviceType netdevice: the SR-IOV operator refuses RDMA with vfio-pci")
        return value

    @model_validator(mode="after")
    def _selector(self) -> SriovNetworkSpec:
        if not (self.pf_names or self.root_devices or self.vendor or self.device_id):
            raise ValueError("the NIC selector needs at least one of pfNames, rootDevices, vendor or deviceID")
        if len(set(self.capabilities)) != len(self.capabilities):
            raise ValueError("capabilities lists an entry twice")
        return self


class OvnNetworkSpec(Model):
    topology: Literal["layer2", "localnet"]
    subnets: list[NetworkCIDR] = Field(default_factory=list)
    exclude_subnets: list[NetworkCIDR] = Field(default_factory=list)
    mtu: Mtu | None = None
    vlan: VlanId | None = Field(default=None, description="localnet only: the VLAN on the physical network")
    physical_network_name: str | None = Field(default=None, description="localnet only; defaults to the name")
    allow_persistent_ips: bool = Field(
        default=False,
        alias="allowPersistentIPs",
        description="a VM keeps its IPAM address across restarts and migrations (needs subnets)",
    )
    namespaces: list[DNSLabel] = Field(min_length=1)

    @field_validator("allow_persistent_ips")
    @classmethod
    def _persistent(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("subnets"):
            raise ValueError("allowPersistentIPs needs subnets: the addresses it keeps come from OVN-Kubernetes IPAM")
        return value

    @model_validator(mode="after")
    def _topology_fields(self) -> OvnNetworkSpec:
        if self.topology == "layer2" and (self.vlan is not None or self.physical_network_name):
            raise ValueError("vlan and physicalNetworkName apply to topology 'localnet' only")
        return self
