"""The data plane a repository describes: layer-2 domains, the VM interfaces in each, their subnets and
gateways, the pod network and the Services in front of it (pure).

Why a model of its own: the plan says which objects change and the blast radius where they land; neither
says *who can still talk to whom*. That needs the networks as broadcast domains (two network names on one
bridge and VLAN are one domain: ``reconciler.model.segments``), each interface's addresses, and the
gateways a VM was told to use. ``reconciler.safety.reach`` computes reachability over this model and the
difference between two revisions; ``reconciler.safety.connectivity`` turns that into the plan's report.

What is assumed (the repository does not say more):

* An interface with a static address is in that address's subnet. One without is in its network's declared
  subnets (an OVN network's IPAM ranges; a bridge network's ``subnet``, where DHCP or the guest configures
  it); with neither, its address is unknown: it sits in the domain but pairs with nobody.
* A gateway is *present* in a domain when an interface in the domain holds its address (a VM router), or
  when the domain reaches outside the cluster (a bridge with an uplink, a localnet, SR-IOV) and the
  gateway lies in a subnet declared for the domain (a router on the physical network). A domain that
  declares no subnet has no known gateway.
* Every VM with the pod network is in one domain with every other (Kubernetes' flat pod network).
* A Linux bridge and VLAN is one domain across all the nodes it is made on: with an uplink, the physical
  network joins them (the switch is taken to carry the VLAN). An isolated bridge is really one domain per
  node; where VMs run is not in the repository, so it is counted as one domain too (optimistic).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from reconciler.errors import SourceRef
from reconciler.model import Entry, Repo
from reconciler.model.segments import Subnet, segment, segment_label, subnets

DomainKey = tuple[Any, ...]
POD: DomainKey = ("pod",)
POD_SUBNET = "pod network"
POD_IFACE = "default"
_POD_SUBNETS = frozenset({POD_SUBNET})


def _v4(value: str) -> tuple[int, int] | None:
    """``a.b.c.d/n`` → (address as an integer, prefix length); None for IPv6. The model has validated the
    value with ``ipaddress`` already (no leading zeros, prefix in range), so a dotted quad is canonical."""
    ip, _, prefix = value.partition("/")
    if ":" in ip:
        return None
    return int.from_bytes(socket.inet_aton(ip), "big"), int(prefix or 32)


def host(value: str) -> str:
    """The address of ``ip/prefix`` (or of a bare IP) as one spelling: IPv6 compressed, IPv4 as given."""
    ip = value.partition("/")[0]
    return ip if ":" not in ip else str(ipaddress.ip_address(ip))


@lru_cache(maxsize=1 << 16)
def network_key(value: str) -> str:
    """``192.0.2.10/24`` → ``192.0.2.0/24``: the subnet an interface address is in. IPv4 with integer
    arithmetic: ``ipaddress`` costs more than the rest of building a 10,000-VM data plane."""
    v4 = _v4(value)
    if v4 is None:
        return str(ipaddress.ip_interface(value).network)
    ip, prefix = v4
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return f"{socket.inet_ntoa((ip & mask).to_bytes(4, 'big'))}/{prefix}"


@lru_cache(maxsize=1 << 14)
def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(value.partition("/")[0])


@dataclass
class Domain:
    """One broadcast domain: the networks on it, the subnets they declare, whether it leaves the cluster."""

    key: DomainKey
    networks: list[str] = field(default_factory=list)
    subnets: list[tuple[str, Subnet]] = field(default_factory=list)  # (network, subnet) as declared
    external: bool = False
    addresses: set[str] = field(default_factory=set)  # static IPs held by interfaces in the domain (``host``)

    @property
    def label(self) -> str:
        return segment_label(self.key)

    def has_gateway(self, gateway: str) -> bool:
        if host(gateway) in self.addresses:
            return True
        if not self.external or not self.subnets:
            return False
        ip = parse_ip(gateway)
        return any(ip in s for _, s in self.subnets if s.version == ip.version)


class Endpoint(NamedTuple):
    """One VM interface in one domain. ``ident`` keeps it the same endpoint across revisions when it moves
    network (its MAC when it has one, else its name). A named tuple: a large repository has 40,000 of
    them per revision, and a frozen dataclass costs several times as much to build."""

    vm: str  # namespace/name
    iface: str
    ident: str
    network: str  # "" for the pod network
    domain: DomainKey
    addresses: tuple[str, ...]  # static, as written: "ip/prefix"
    subnets: frozenset[str]
    gateways: tuple[str, ...]
    slot: int  # index in spec.interfaces; -1 for the pod network

    @property
    def key(self) -> tuple[str, str]:
        return (self.vm, self.ident)

    @property
    def namespace(self) -> str:
        return self.vm.partition("/")[0]


@dataclass(frozen=True)
class Exposure:
    """One Service port in front of one VM's pod network."""

    service: str  # namespace/name
    port: int
    protocol: str
    type: str
    vm: str

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.service, self.port, self.protocol, self.vm)


@dataclass
class DataPlane:
    domains: dict[DomainKey, Domain] = field(default_factory=dict)
    endpoints: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    exposures: dict[tuple[str, int, str, str], Exposure] = field(default_factory=dict)
    networks: dict[str, Entry[Any]] = field(default_factory=dict)
    vms: dict[str, Entry[Any]] = field(default_factory=dict)
    domain_of: dict[str, DomainKey] = field(default_factory=dict)  # network name -> its domain
    subnets_of: dict[str, frozenset[str]] = field(default_factory=dict)  # network name -> declared subnets
    #: each VM's endpoints and exposures, for the next revision's plane to take over where the VM did not change
    by_vm: dict[str, tuple[tuple[Endpoint, ...], tuple[Exposure, ...]]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)  # derived data (``reach.positions``), computed once

    def ref(self, ep: Endpoint, what: str = "network") -> SourceRef:
        """The line of an interface's field in its VM document (looked up only for what a report names)."""
        vm = self.vms[ep.vm]
        return vm.ref("spec", "podNetwork") if ep.slot < 0 else vm.ref("spec", "interfaces", ep.slot, what)

    def routed(self, ep: Endpoint) -> bool:
        """Whether one of the endpoint's declared gateways is present in its domain."""
        domain = self.domains.get(ep.domain)
        return domain is not None and any(domain.has_gateway(g) for g in ep.gateways)


def _external(net: Entry[Any], bridged: dict[str, bool]) -> bool:
    if net.kind == "BridgeNetwork":
        return bridged.get(net.spec.bridge, True)  # a bridge no BridgeNetwork makes: a node policy's, uplinked
    return not (net.kind == "OvnNetwork" and net.spec.topology == "layer2")


def _domains(repo: Repo, plane: DataPlane) -> None:
    networks = repo.networks
    # which bridges leave the node: made with an uplink (True) or isolated (False) by some BridgeNetwork
    bridged: dict[str, bool] = {}
    for net in repo.of("BridgeNetwork"):
        if net.spec.defines_bridge:
            bridged[net.spec.bridge] = bridged.get(net.spec.bridge, False) or net.spec.uplink is not None
    for name in sorted(networks):
        net = networks[name]
        key = segment(net, name)
        domain = plane.domains.setdefault(key, Domain(key))
        domain.networks.append(name)
        declared = subnets(net)
        domain.subnets += [(name, s) for s in declared]
        plane.subnets_of[name] = frozenset(str(s) for s in declared)
        domain.external = domain.external or _external(net, bridged)
        plane.domain_of[name] = key
    plane.networks = networks
    plane.domains[POD] = Domain(POD, subnets=[])


def _vm_endpoints(vm: Entry[Any], plane: DataPlane) -> list[Endpoint]:
    name = f"{vm.meta.namespace}/{vm.name}"
    out = []
    if vm.spec.pod_network:
        out.append(Endpoint(name, POD_IFACE, POD_IFACE, "", POD, (), _POD_SUBNETS, (), -1))
    for i, iface in enumerate(vm.spec.interfaces):
        key = plane.domain_of.get(iface.network, ("network", iface.network))
        given = tuple(a for a in (iface.ipv4, iface.ipv6) if a)
        declared = plane.subnets_of.get(iface.network, frozenset())
        nets = frozenset(network_key(a) for a in given) if given else declared
        gateways = tuple(g for g in (iface.gateway4, iface.gateway6) if g)
        out.append(
            Endpoint(name, iface.ifname, iface.mac or iface.ifname, iface.network, key, given, nets, gateways, i)
        )
    return out


_MEMO: list[tuple[Repo, DataPlane]] = []  # the last planes built: a reconcile's revision is the next one's base


def build(repo: Repo, prior: DataPlane | None = None) -> DataPlane:
    """The data plane of one revision of the repository (pure; one pass over its networks and VMs).

    The two most recent are kept: the controller compares each revision with the one before, so every
    plane would otherwise be built twice. A Repo is not changed once loaded, so the memo cannot go stale.
    ``prior`` (the current revision's plane, when the proposed one is compared with it) lends its endpoints:
    a VM whose document (the same entry, which the parse cache gives back for an unchanged file) and
    networks did not change has the same endpoints. Given, not taken from the memo: pull-request plans build
    planes on other threads."""
    for known, plane in _MEMO:
        if known is repo:
            return plane
    plane = _build(repo, prior)
    _MEMO[:] = [*_MEMO[-1:], (repo, plane)]
    return plane


def _build(repo: Repo, prior: DataPlane | None = None) -> DataPlane:
    plane = DataPlane()
    _domains(repo, plane)
    # networks that are not the very same entries as in ``prior``: a VM on one of them is worked out again
    moved = (
        {n for n in prior.networks.keys() | plane.networks.keys() if prior.networks.get(n) is not plane.networks.get(n)}
        if prior is not None
        else set()
    )
    for vm in repo.of("VM"):
        name = f"{vm.meta.namespace}/{vm.name}"
        plane.vms[name] = vm
        kept = prior.by_vm.get(name) if prior is not None and prior.vms.get(name) is vm else None
        if kept is None or (moved and any(i.network in moved for i in vm.spec.interfaces)):
            exposures = (
                Exposure(f"{vm.meta.namespace}/{exp.service_name(vm.name)}", exp.port, exp.protocol, exp.type, name)
                for exp in vm.spec.expose
            )
            kept = (tuple(_vm_endpoints(vm, plane)), tuple(exposures))
        plane.by_vm[name] = kept
        for ep in kept[0]:
            plane.endpoints[(name, ep.ident)] = ep
            domain = plane.domains.get(ep.domain) or plane.domains.setdefault(
                ep.domain, Domain(ep.domain, networks=[ep.network])
            )
            if ep.addresses:
                domain.addresses.update(host(a) for a in ep.addresses)
        for found in kept[1]:
            plane.exposures[found.key] = found
    return plane


def equivalent(a: DataPlane, b: DataPlane) -> bool:
    """Two revisions' planes that no check can tell apart: the same domains, endpoints, exposures and VM names,
    on the very same network documents. (A commit that changes no VM's networking, say one VM's CPU count.)"""
    return (
        a.networks.keys() == b.networks.keys()
        and all(b.networks[n] is net for n, net in a.networks.items())
        and a.vms.keys() == b.vms.keys()
        and a.domains == b.domains
        and a.endpoints == b.endpoints
        and a.exposures == b.exposures
    )
