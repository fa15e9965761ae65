"""The ``VM`` document: a KubeVirt VirtualMachine described by what matters for its networking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reconciler.model.types import DNSLabel, InterfaceCIDR, IPAddress, Mac, Model, Port, ip_address, ip_interface

SERVICE_SUFFIX = {"ClusterIP": "svc", "NodePort": "nodeport", "LoadBalancer": "lb"}
RunStrategy = Literal["Always", "RerunOnFailure", "Manual", "Halted", "Once"]


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
    hotplug: bool = Field(default=False, description="add/remove on the running VM without a restart")

    @property
    def ifname(self) -> str:
        return self.name or self.network

    @model_validator(mode="after")
    def _families(self) -> Interface:
        for field, value, version in (("ipv4", self.ipv4, 4), ("ipv6", self.ipv6, 6)):
            if value and ip_interface(value).version != version:
                raise ValueError(f"{field} {value} is not an IPv{version} address")
        for field, value, version in (("gateway4", self.gateway4, 4), ("gateway6", self.gateway6, 6)):
            if value and ip_address(value).version != version:
                raise ValueError(f"{field} {value} is not an IPv{version} address")
        if (self.gateway4 or self.gateway6 or self.dns) and not (self.ipv4 or self.ipv6):
            raise ValueError("gateway and dns need a static ipv4 or ipv6 address on the interface")
        if (self.ipv4 or self.ipv6) and not self.mac:
            raise ValueError("a static address needs an explicit mac: cloud-init matches networkData by MAC")
        return self


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
    cpu: int = Field(default=1, ge=1, le=512, description="vCPU cores")
    memory: str = Field(default="2Gi", pattern=r"^[0-9]+(Mi|Gi|Ti)$")
    boot: Boot
    pod_network: bool = Field(default=True, description="the pod network with masquerade binding")
    interfaces: list[Interface] = Field(default_factory=list)
    ssh_keys: list[str] = Field(default_factory=list)
    ssh_key_delivery: Literal["cloudInit", "accessCredentials"] = "cloudInit"
    user: str = Field(default="cloud-user", pattern=r"^[a-z_][a-z0-9_-]*$")
    expose: list[Expose] = Field(default_factory=list)
    service_mesh: bool = Field(default=False, description="inject the Istio sidecar (pod network required)")
    dpdk: bool = Field(default=False, description="dedicated CPUs, 1Gi hugepages, multiqueue, crio annotations")
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
        return self
