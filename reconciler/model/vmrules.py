"""The rules about one VM document against the repository's networks and Cluster (pure).

Why apart from ``reconciler.model.rules``: these read one VM and its *context* (the Cluster's settings, the
network documents, the names of documents that failed their schema), nothing about other VMs. So a later
load whose context is the same takes over the problems of every VM whose document did not change
(:class:`VmMemo`; the parse cache gives back the very same entry for an unchanged file): a commit that
changes one of 10,000 VMs checks one. What is about several VMs at once (one MAC, one address, one name,
one nodePort each) stays in ``rules``, over all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import Problem, SourceRef
from reconciler.model.cluster import ClusterSpec
from reconciler.model.repo import Entry, Repo
from reconciler.model.segments import subnets
from reconciler.model.types import ip_address, ip_interface

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # line breaks, NUL, escape, DEL (a tab separates fields)


@dataclass(frozen=True)
class VmContext:
    """Everything the VM rules read besides the VM, worked out once per load."""

    cluster: Entry[ClusterSpec]
    networks: dict[str, Entry[Any]]
    broken: frozenset[str]
    offered: dict[str, frozenset[str]] = field(default_factory=dict)  # network -> namespaces it is offered in
    subnets_of: dict[str, list[Network]] = field(default_factory=dict)
    excluded_of: dict[str, list[Network]] = field(default_factory=dict)  # OVN networks' excludeSubnets
    pools: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()

    @classmethod
    def of(cls, repo: Repo) -> VmContext:
        networks, spec = repo.networks, repo.cluster.spec
        return cls(
            repo.cluster,
            networks,
            frozenset(repo.broken),
            {name: frozenset(net.spec.namespaces) for name, net in networks.items()},
            {name: subnets(net) for name, net in networks.items()},
            {
                name: [ipaddress.ip_network(s) for s in net.spec.exclude_subnets]
                for name, net in networks.items()
                if net.kind == "OvnNetwork"
            },
            frozenset(p.name for p in spec.load_balancer_pools),
            frozenset(spec.allowed_namespaces),
        )

    def same_as(self, other: VmContext) -> bool:
        """The same Cluster document and settings, the very same network documents, the same broken names:
        every VM rule then answers as it did."""
        return (
            self.cluster.doc is other.cluster.doc
            and self.cluster.spec == other.cluster.spec
            and self.broken == other.broken
            and self.networks.keys() == other.networks.keys()
            and all(other.networks[name] is net for name, net in self.networks.items())
        )


def vm_namespace(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """A VM lives in a namespace the Cluster allows (``allowedNamespaces``)."""
    if vm.meta.namespace not in ctx.allowed:
        hint = f"allowed: {', '.join(sorted(ctx.allowed))}"
        yield Problem(vm.ref("metadata", "namespace"), f"namespace {vm.meta.namespace!r} is not allowed ({hint})")


def vm_references(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """Each interface's network exists and is offered in the VM's namespace; each exposed pool exists."""
    for i, iface in enumerate(vm.spec.interfaces):
        net = ctx.networks.get(iface.network)
        if net is None and (iface.network in ctx.broken or "*" in ctx.broken):
            continue  # its own schema problem is reported; "not defined" would mislead
        if net is None:
            known = ", ".join(sorted(ctx.networks)) or "none"
            yield Problem(
                vm.ref("spec", "interfaces", i, "network"),
                f"network {iface.network!r} is not defined (known: {known})",
            )
        elif vm.meta.namespace not in ctx.offered[iface.network]:
            yield Problem(
                vm.ref("spec", "interfaces", i, "network"),
                f"network {iface.network!r} is not offered in namespace {vm.meta.namespace!r} "
                f"(offered in: {', '.join(net.spec.namespaces)}, see {net.ref('spec', 'namespaces')})",
            )
    for i, exp in enumerate(vm.spec.expose):
        if exp.pool is not None and exp.pool not in ctx.pools:
            yield Problem(
                vm.ref("spec", "expose", i, "pool"),
                f"MetalLB pool {exp.pool!r} is not defined in the Cluster's loadBalancerPools",
            )


def vm_addresses(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """Each static address inside its network's subnet, not one OVN-Kubernetes keeps out, gateway on-link (one
    address per segment is a rule over all VMs: ``rules.rule_static_ips``)."""
    for i, iface in enumerate(vm.spec.interfaces):
        if iface.ipv4 is None and iface.ipv6 is None:
            continue  # most interfaces: no static address
        for fam, gw_field in (("ipv4", "gateway4"), ("ipv6", "gateway6")):
            value = getattr(iface, fam)
            if value is None:
                continue
            addr = ip_interface(value)
            for message in _address_problems(addr, iface.network, ctx):
                yield Problem(vm.ref("spec", "interfaces", i, fam), message)
            gateway = getattr(iface, gw_field)
            if gateway and ip_address(gateway) not in addr.network:
                yield Problem(
                    vm.ref("spec", "interfaces", i, gw_field),
                    f"gateway {gateway} is not in the interface's subnet {addr.network}",
                )


def _address_problems(
    addr: ipaddress.IPv4Interface | ipaddress.IPv6Interface, network: str, ctx: VmContext
) -> Iterator[str]:
    if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and (
        addr.network.prefixlen < addr.max_prefixlen - 1
    ):
        yield f"{addr.ip} is the network or broadcast address of {addr.network}"
    declared = [s for s in ctx.subnets_of.get(network, []) if s.version == addr.version]
    if declared and not any(addr.ip in s for s in declared):
        yield f"IP {addr.ip} is outside network {network}'s subnet {', '.join(map(str, declared))}"
    excluded = next((s for s in ctx.excluded_of.get(network, []) if s.version == addr.version and addr.ip in s), None)
    if excluded is not None:
        yield (
            f"IP {addr.ip} is in network {network}'s excludeSubnets {excluded}: those addresses are kept for "
            "hosts outside the cluster"
        )


def vm_bindings(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """SR-IOV interfaces: vfio-pci only and never hot-plugged; DPDK needs one of them."""
    vfio = False
    for i, iface in enumerate(vm.spec.interfaces):
        net = ctx.networks.get(iface.network)
        if net is None or net.kind != "SriovNetwork":
            continue
        if iface.hotplug:
            yield Problem(
                vm.ref("spec", "interfaces", i, "hotplug"),
                f"SR-IOV interface {iface.ifname} cannot be hot-plugged as asked: SR-IOV plugs only "
                "through a live migration and cannot be unplugged; only bridge bindings hot-plug",
            )
        if net.spec.device_type != "vfio-pci":
            yield Problem(
                vm.ref("spec", "interfaces", i, "network"),
                f"SR-IOV network {net.name} has deviceType {net.spec.device_type}; VMs need vfio-pci "
                f"({net.ref('spec', 'deviceType')})",
            )
        else:
            vfio = True
    if vm.spec.dpdk and not vfio:
        yield Problem(vm.ref("spec", "dpdk"), "dpdk needs at least one interface on an SR-IOV network with vfio-pci")


def vm_services(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """A VM's Services: each port once, each port name once, one type each (a nodePort once across all VMs is
    ``rules.rule_node_ports``)."""
    ports: dict[tuple[str, int, str], SourceRef] = {}
    names: dict[tuple[str, str], SourceRef] = {}
    types: dict[str, str] = {}
    for i, exp in enumerate(vm.spec.expose):
        service = exp.service_name(vm.name)
        ref = vm.ref("spec", "expose", i, "port")
        if (service, exp.port, exp.protocol) in ports:
            first = ports[(service, exp.port, exp.protocol)]
            yield Problem(ref, f"port {exp.port}/{exp.protocol} is already exposed on Service {service} at {first}")
        ports.setdefault((service, exp.port, exp.protocol), ref)
        if (service, exp.port_name) in names:
            yield Problem(vm.ref("spec", "expose", i), f"port name {exp.port_name} is used twice in Service {service}")
        names.setdefault((service, exp.port_name), ref)
        if types.setdefault(service, exp.type) != exp.type:
            yield Problem(
                vm.ref("spec", "expose", i, "type"),
                f"Service {service} mixes types {types[service]} and {exp.type}",
            )


def vm_interface_names(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """Two interfaces whose names share their first 15 characters are one name in the guest (cloud-init
    renames a NIC to at most 15 characters, Linux's IFNAMSIZ); and networkData keys the pod interface by its
    guest name when it has no MAC, so a secondary interface of that name would lose its own entry."""
    first: dict[str, tuple[int, str]] = {}
    pod_name = vm.spec.pod_guest_name if vm.spec.pod_network and not vm.spec.pod_mac else None
    for i, iface in enumerate(vm.spec.interfaces):
        ifname = iface.ifname
        short = ifname[:15]
        if short in first and first[short][1] != ifname:
            j, other = first[short]
            field_name = "name" if iface.name else "network"
            yield Problem(
                vm.ref("spec", "interfaces", i, field_name),
                f"interface name {ifname} shares its first 15 characters with {other} "
                f"({vm.ref('spec', 'interfaces', j)}): in the guest both would be {short}",
            )
        first.setdefault(short, (i, ifname))
        if ifname == pod_name:
            yield Problem(
                vm.ref("spec", "interfaces", i, "name" if iface.name else "network"),
                f"interface name {iface.ifname} is the pod interface's guest name (podGuestName): its "
                "networkData entry would be replaced by the pod network's DHCP one; rename it, or set "
                "podMac or podGuestName",
            )


def vm_ssh_keys(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """One key per entry: a line break would smuggle a second authorized key (or cloud-config) in."""
    for i, key in enumerate(vm.spec.ssh_keys):
        if _CONTROL.search(key):
            yield Problem(
                vm.ref("spec", "sshKeys", i),
                "ssh key contains a line break or control character: give each key its own entry",
            )


def vm_needs(vm: Entry[Any], ctx: VmContext) -> Iterator[Problem]:
    """What a VM asks of its cluster: a mesh member namespace for the sidecar, DPDK's runtime class."""
    spec = ctx.cluster.spec
    ns = vm.meta.namespace or ""
    if vm.spec.service_mesh and spec.manage_namespaces and not spec.namespace(ns).service_mesh:
        yield Problem(
            vm.ref("spec", "serviceMesh"),
            f"namespace {ns} is not a service mesh member, so the sidecar would never be injected: set "
            f"serviceMesh: true in the Cluster's spec.namespaces entry for {ns}",
        )
    if vm.spec.dpdk and spec.dpdk is None:
        yield Problem(
            vm.ref("spec", "dpdk"),
            "dpdk VMs run under the performance profile's runtime class: set the Cluster's "
            "spec.dpdk.runtimeClass (HyperConverged defaultRuntimeClass)",
        )


VmRule = Callable[[Entry[Any], VmContext], Iterator[Problem]]
VM_RULES: list[VmRule] = [
    vm_namespace,
    vm_references,
    vm_addresses,
    vm_bindings,
    vm_services,
    vm_interface_names,
    vm_ssh_keys,
    vm_needs,
]


def vm_problems(vm: Entry[Any], ctx: VmContext) -> list[Problem]:
    """Every VM rule's problems with one VM, in ``VM_RULES`` order (the load sorts all problems by place)."""
    return [p for rule in VM_RULES for p in rule(vm, ctx)]


@dataclass
class VmMemo:
    """The VM rules' problems of the last load, per VM entry, and the context they were found in."""

    context: VmContext | None = None
    found: dict[int, tuple[Entry[Any], list[Problem]]] = field(default_factory=dict)
    hits: int = 0

    def problems(self, vms: list[Entry[Any]], ctx: VmContext) -> list[Problem]:
        """Every VM's problems: taken over for the very same entry in the same context, else found anew."""
        prior = self.found if self.context is not None and ctx.same_as(self.context) else {}
        found: dict[int, tuple[Entry[Any], list[Problem]]] = {}
        out: list[Problem] = []
        for vm in vms:
            seen = prior.get(id(vm))
            if seen is not None and seen[0] is vm:
                self.hits += 1
                got = seen[1]
            else:
                got = vm_problems(vm, ctx)
            found[id(vm)] = (vm, got)
            out += got
        self.context, self.found = ctx, found
        return out
