"""The ``VM`` document: a KubeVirt VirtualMachine described by what matters for its networking."""

from __future__ import annotations

from decimal import localcontext
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from reconciler.model.types import (
    DNSLabel,
    IfName,
    InterfaceCIDR,
    IPAddress,
    Mac,
    Model,
    Port,
    quantity,
)

SERVICE_SUFFIX = {"ClusterIP": "svc", "NodePort": "nodeport", "LoadBalancer": "lb"}
RunStrategy = Literal["Always", "RerunOnFailure", "Manual", "Halted", "Once"]


def hugepages_problem(memory: str | int, page_size: str) -> str | None:
    """Why KubeVirt refuses this guest memory on pages of this size (``validateHugepagesMemoryRequests``:
    at least one page, a whole number of pages), or None; the VM model and the checks of hand-written
    VirtualMachines share it. Unparseable values are left to the quantity checks."""
    amount, page = quantity(memory), quantity(page_size)
    if amount is None or page is None or amount <= 0 or page <= 0:
        return None
    if amount < page:
        return f"memory {memory} is smaller than one {page_size} hugepage: KubeVirt refuses it"
    try:
        with localcontext() as ctx:
            ctx.prec = 60  # a whole number of pages up to 10^60 of them, exactly
            whole = not amount % page
    except ArithmeticError:  # more pages than that: no machine has the memory
        return f"memory {memory} is more than {page_size} hugepages can count: KubeVirt refuses it"
    if not whole:
        return f"memory {memory} is not a whole number of {page_size} hugepages: KubeVirt refuses it"
    return None


class HttpSource(Model):
    url: str = Field(min_length=1)


class PvcSource(Model):
    name: DNSLabel
    namespace: DNSLabel


class DataVolumeBoot(Model):
    size: str = Field(pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)$")
    storage_class: str | None = None
    http: HttpSource | None = None
    registry: HttpSource | None = None
    pvc: PvcSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataVolumeBoot:
        if sum(s is not None for s in (self.http, self.registry, self.pvc)) != 1:
            raise ValueError("dataVolume needs exactly one source: http, registry or pvc")
        return self


class Boot(Model):
    container_disk: str | None = Field(default=None, description="a containerDisk image reference")
    data_volume: DataVolumeBoot | None = None

    @model_validator(mode="after")
    def _one(self) -> Boot:
        if (self.container_disk is None) == (self.data_volume is None):
            raise ValueError("boot needs exactly one of containerDisk or dataVolume")
        return self


class Interface(Model):
    """A secondary interface on a named network; addresses go into cloud-init networkData."""

    network: DNSLabel
    name: DNSLabel | None = Field(default=None, description="interface name in the VM spec; defaults to the network")
    mac: Mac | None = Field(default=None, description="left unset, KubeMacPool assigns one and keeps it")
    model: Literal["virtio", "e1000e"] = "virtio"
    ipv4: InterfaceCIDR | None = None
    ipv6: InterfaceCIDR | None = None
    gateway4: IPAddress | None = None
    gateway6: IPAddress | None = None
    dns: list[IPAddress] = Field(default_factory=list)
    dhcp: bool = Field(default=False, description="DHCPv4 on this interface in the guest (cloud-init networkData)")
    hotplug: bool = Field(default=False, description="add/remove on the running VM without a restart")

    @property
    def ifname(self) -> str:
        return self.name or self.network

    @model_validator(mode="after")
    def _families(self) -> Interface:
        # the values are valid addresses already (their types parsed them): an IPv6 one has a colon, an IPv4
        # one never does, so the family is read without parsing each address a second time
        for field, value, version in (
            ("ipv4", self.ipv4, 4),
            ("ipv6", self.ipv6, 6),
            ("gateway4", self.gateway4, 4),
            ("gateway6", self.gateway6, 6),
        ):
            if value and (6 if ":" in value else 4) != version:
                raise ValueError(f"{field} {value} is not an IPv{version} address")
        if (self.gateway4 or self.gateway6 or self.dns) and not (self.ipv4 or self.ipv6):
            raise ValueError("gateway and dns need a static ipv4 or ipv6 address on the interface")
        if (self.ipv4 or self.ipv6 or self.dhcp) and not self.mac:
            raise ValueError(
                "a static address needs an explicit mac (so does dhcp): cloud-init matches networkData by MAC"
            )
        if self.dhcp and (self.ipv4 or self.gateway4):
            raise ValueError("dhcp and a static ipv4/gateway4 exclude each other")
        return self

    @property
    def in_network_data(self) -> bool:
        """Whether cloud-init networkData configures this interface."""
        return bool(self.ipv4 or self.ipv6 or self.dhcp)


class Expose(Model):
    """One port of the VM published through a Service."""

    name: DNSLabel | None = None
    port: Port
    target_port: Port | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    node_port: int | None = Field(default=None, ge=30000, le=32767)
    pool: DNSLabel | None = Field(default=None, description="MetalLB pool for a LoadBalancer")
    service: DNSLabel | None = Field(default=None, description="Service name; defaults to <vm>-<type>")

    @model_validator(mode="after")
    def _type_fields(self) -> Expose:
        if self.node_port is not None and self.type == "ClusterIP":
            raise ValueError("nodePort needs type NodePort or LoadBalancer")
        if self.pool is not None and self.type != "LoadBalancer":
            raise ValueError("pool applies to type LoadBalancer only")
        return self

    @property
    def port_name(self) -> str:
        return self.name or f"{self.protocol.lower()}-{self.port}"

    def service_name(self, vm: str) -> str:
        """The Service this port lands in: ``service``, or one per VM and type (``web-1-nodeport``)."""
        return self.service or f"{vm}-{SERVICE_SUFFIX[self.type]}"


class VMSpec(Model):
    run_strategy: RunStrategy = "Always"
    cpu: int = Field(default=1, ge=1, le=512, description="vCPU cores (per socket)")
    sockets: int | None = Field(default=None, ge=1, le=64, description="CPU sockets (KubeVirt's default: 1)")
    threads: int | None = Field(default=None, ge=1, le=8, description="threads per core (KubeVirt's default: 1)")
    cpu_model: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="host-passthrough, host-model or a named CPU model",
    )
    dedicated_cpus: bool = Field(default=False, description="pinned CPUs (dedicatedCpuPlacement); dpdk implies it")
    hugepages: Literal["2Mi", "1Gi"] | None = Field(default=None, description="guest memory page size (dpdk: 1Gi)")
    memory: str = Field(default="2Gi", pattern=r"^[0-9]+(Mi|Gi|Ti)$")
    boot: Boot
    pod_network: bool = Field(default=True, description="the pod network with masquerade binding")
    pod_mac: Mac | None = Field(default=None, description="the pod interface's MAC (networkData matches it by MAC)")
    pod_guest_name: IfName = Field(
        default="enp1s0", description="the pod interface's name in the guest, matched when podMac is not set"
    )
    interfaces: list[Interface] = Field(default_factory=list)
    cloud_init: Literal["noCloud", "configDrive"] = Field(default="noCloud", description="cloud-init datasource")
    ssh_keys: list[str] = Field(default_factory=list)
    ssh_key_delivery: Literal["cloudInit", "accessCredentials", "guestAgent"] = Field(
        default="cloudInit",
        description="cloudInit: user-data; accessCredentials: a Secret read at boot; guestAgent: a Secret the "
        "QEMU guest agent keeps in authorized_keys while the VM runs (keys change without a restart)",
    )
    install_guest_agent: bool | None = Field(
        default=None,
        description="install and start qemu-guest-agent through cloud-init; default: when the VM needs it "
        "(guestAgent key delivery, or FQDNs from the cluster's secondary DNS)",
    )
    user: str = Field(default="cloud-user", pattern=r"^[a-z_][a-z0-9_-]*$")
    expose: list[Expose] = Field(default_factory=list)
    service_mesh: bool = Field(default=False, description="inject the Istio sidecar (pod network required)")
    dpdk: bool = Field(default=False, description="dedicated CPUs, 1Gi hugepages, multiqueue, crio annotations")
    numa: Literal["guestMappingPassthrough"] | None = Field(
        default=None, description="mirror the host NUMA topology into the guest (needs dedicated CPUs, hugepages)"
    )
    restart: Literal["never", "allowed"] | None = Field(
        default=None, description="may the engine restart this VM for a change that needs it (Cluster default)"
    )
    node_selector: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> VMSpec:
        names = [i.ifname for i in self.interfaces]
        dupes = sorted({n for n in names if names.count(n) > 1} | ({"default"} & set(names)))
        if dupes:
            raise ValueError(f"interface name(s) {', '.join(dupes)} used twice (or 'default', the pod network)")
        for key in self.ssh_keys:
            if not key.startswith(("ssh-", "ecdsa-", "sk-")) or len(key.split()) < 2:
                raise ValueError(f"ssh key {key[:20]!r}… is not an OpenSSH public key")
        if self.service_mesh and not self.pod_network:
            raise ValueError("serviceMesh needs the pod network (the sidecar lives there)")
        if self.expose and not self.pod_network:
            raise ValueError("expose needs the pod network (Services reach the VM through it)")
        if self.pod_mac and not self.pod_network:
            raise ValueError("podMac needs the pod network")
        if self.dpdk and self.hugepages == "2Mi":
            raise ValueError("dpdk uses 1Gi hugepages")
        return self

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str, info: ValidationInfo) -> str:
        """On the field, so the error points at ``memory`` (hugepages is declared before it)."""
        page = info.data.get("hugepages")
        problem = hugepages_problem(value, page) if page else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("dpdk")
    @classmethod
    def _dpdk_pages(cls, value: bool, info: ValidationInfo) -> bool:
        """dpdk implies 1Gi pages; an explicit page size is checked on ``memory`` already."""
        memory = info.data.get("memory")
        problem = hugepages_problem(memory, "1Gi") if value and memory and not info.data.get("hugepages") else None
        if problem:
            raise ValueError(f"dpdk uses 1Gi hugepages: {problem}")
        return value

    @field_validator("numa")
    @classmethod
    def _numa(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked on the field (declared after the ones it needs), so the error points at ``numa``."""
        data = info.data
        dedicated = data.get("dedicated_cpus") or data.get("dpdk")
        if value and not (dedicated and (data.get("hugepages") or data.get("dpdk"))):
            raise ValueError(
                "numa guestMappingPassthrough needs dedicated CPUs and hugepages (dedicatedCpus and hugepages, "
                "or dpdk: true): KubeVirt refuses it otherwise"
            )
        return value

    @property
    def dedicated(self) -> bool:
        """Pinned CPUs: asked for, or implied by DPDK."""
        return self.dedicated_cpus or self.dpdk

    @property
    def page_size(self) -> str | None:
        return self.hugepages or ("1Gi" if self.dpdk else None)
