"""Network-aware validation across documents: the rules one document cannot check alone.

Pure: takes a ``Repo`` and returns problems. Every rule reports *all* its findings with the file, line
and field of the value at fault, so a reviewer fixes a pull request in one round. Rules are small
functions listed in ``RULES``; each is tested on its own failing input.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.errors import Problem, SourceRef
from reconciler.model.repo import NETWORK_KINDS, Entry, Repo

# kinds a plain manifest may have in a namespace that is not in allowedNamespaces, and where
OPERATOR_NAMESPACE_KINDS = {
    "SriovNetworkNodePolicy": "sriov_operator_namespace",
    "SriovNetwork": "sriov_operator_namespace",
    "IPAddressPool": "metallb_namespace",
    "L2Advertisement": "metallb_namespace",
}
CLUSTER_SCOPED_RAW = {"NodeNetworkConfigurationPolicy", "Namespace"}


def _selectors_overlap(a: dict[str, str], b: dict[str, str]) -> bool:
    """Two equality selectors can match the same node unless they require different values for a key."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def rule_namespaces(repo: Repo) -> Iterator[Problem]:
    allowed = set(repo.cluster.spec.allowed_namespaces)
    hint = f"allowed: {', '.join(sorted(allowed))}"
    for e in repo.entries:
        if e.kind in NETWORK_KINDS:
            for i, ns in enumerate(e.spec.namespaces):
                if ns not in allowed:
                    yield Problem(e.ref("spec", "namespaces", i), f"namespace {ns!r} is not allowed ({hint})")
        elif e.kind == "VM" and e.meta.namespace not in allowed:
            yield Problem(e.ref("metadata", "namespace"), f"namespace {e.meta.namespace!r} is not allowed ({hint})")
    for raw in repo.raw:
        kind, meta = raw.obj["kind"], raw.obj["metadata"]
        if kind not in repo.cluster.spec.allowed_raw_kinds:
            yield Problem(raw.ref("kind"), f"kind {kind!r} may not be managed from this repository")
            continue
        ns = meta.get("namespace")
        if kind in CLUSTER_SCOPED_RAW:
            if ns is not None:
                yield Problem(raw.ref("metadata", "namespace"), f"{kind} is cluster-scoped: drop namespace")
            continue
        operator_ns = getattr(repo.cluster.spec, OPERATOR_NAMESPACE_KINDS.get(kind, ""), None)
        if ns is None:
            yield Problem(raw.ref("metadata", "namespace"), f"{kind} needs metadata.namespace")
        elif ns not in allowed and ns != operator_ns:
            yield Problem(raw.ref("metadata", "namespace"), f"namespace {ns!r} is not allowed ({hint})")


def rule_unique_names(repo: Repo) -> Iterator[Problem]:
    seen: dict[tuple[str, ...], Entry[Any]] = {}
    for e in repo.entries:
        key = ("network", e.name) if e.kind in NETWORK_KINDS else (e.kind, e.meta.namespace or "", e.name)
        if key in seen:
            first = seen[key]
            yield Problem(
                e.ref("metadata", "name"),
                f"{e.kind} {e.name!r} is already defined as a {first.kind} at {first.ref('metadata', 'name')}",
            )
        else:
            seen[key] = e


def rule_references(repo: Repo) -> Iterator[Problem]:
    networks = repo.networks
    known = ", ".join(sorted(networks)) or "none"
    for vm in repo.of("VM"):
        for i, iface in enumerate(vm.spec.interfaces):
            net = networks.get(iface.network)
            if net is None and (iface.network in repo.broken or "*" in repo.broken):
                continue  # its own schema problem is reported; "not defined" would mislead
            if net is None:
                yield Problem(
                    vm.ref("spec", "interfaces", i, "network"),
                    f"network {iface.network!r} is not defined (known: {known})",
                )
            elif vm.meta.namespace not in net.spec.namespaces:
                yield Problem(
                    vm.ref("spec", "interfaces", i, "network"),
                    f"network {iface.network!r} is not offered in namespace {vm.meta.namespace!r} "
                    f"(offered in: {', '.join(net.spec.namespaces)}, see {net.ref('spec', 'namespaces')})",
                )
    migration = repo.cluster.spec.live_migration
    if migration is not None:
        target = networks.get(migration.network)
        if target is None or target.kind != "BridgeNetwork":
            yield Problem(
                repo.cluster.ref("spec", "liveMigration", "network"),
                f"live migration network {migration.network!r} must name a BridgeNetwork",
            )
    pools = {p.name for p in repo.cluster.spec.load_balancer_pools}
    for vm in repo.of("VM"):
        for i, exp in enumerate(vm.spec.expose):
            if exp.pool is not None and exp.pool not in pools:
                yield Problem(
                    vm.ref("spec", "expose", i, "pool"),
                    f"MetalLB pool {exp.pool!r} is not defined in the Cluster's loadBalancerPools",
                )
    mappings = {m.localnet for nn in repo.of("NodeNetwork") for m in nn.spec.ovn_bridge_mappings}
    for net in repo.of("OvnNetwork"):
        if net.spec.topology == "localnet":
            physical = net.spec.physical_network_name or net.name
            if physical not in mappings:
                field = "physicalNetworkName" if net.spec.physical_network_name else "topology"
                yield Problem(
                    net.ref("spec", field),
                    f"localnet {physical!r} has no ovnBridgeMappings entry in any NodeNetwork",
                )


def rule_bridges(repo: Repo) -> Iterator[Problem]:
    bridges = repo.of("BridgeNetwork")
    definers = [b for b in bridges if b.spec.defines_bridge]
    for i, a in enumerate(definers):
        for b in definers[i + 1 :]:
            if a.spec.bridge == b.spec.bridge and _selectors_overlap(a.spec.node_selector, b.spec.node_selector):
                yield Problem(
                    b.ref("spec", "bridge"),
                    f"bridge {b.spec.bridge} is already created on the same nodes by {a.ref('spec', 'bridge')}",
                )
    for b in bridges:
        if b.spec.defines_bridge:
            continue
        owners = [
            d
            for d in definers
            if d.spec.bridge == b.spec.bridge and _selectors_overlap(d.spec.node_selector, b.spec.node_selector)
        ]
        if not owners:
            yield Problem(
                b.ref("spec", "bridge"),
                f"bridge {b.spec.bridge} is not created by any BridgeNetwork "
                "(give one network on this bridge an uplink, or isolated: true)",
            )
        elif b.spec.mtu and owners[0].spec.mtu and b.spec.mtu > owners[0].spec.mtu:
            yield Problem(
                b.ref("spec", "mtu"),
                f"MTU {b.spec.mtu} is above the bridge's MTU {owners[0].spec.mtu} ({owners[0].ref('spec', 'mtu')})",
            )


@dataclass(frozen=True)
class _Claim:
    iface: str
    exclusive: bool  # a bridge/bond port is exclusive; a VLAN base may carry several VLANs
    what: str
    selector: dict[str, str]
    ref: SourceRef


def _claims(repo: Repo) -> Iterator[_Claim]:
    for b in repo.of("BridgeNetwork"):
        up, sel = b.spec.uplink, b.spec.node_selector
        if up is None:
            continue
        if up.nic is not None:
            yield _Claim(up.nic, True, f"port of bridge {b.spec.bridge}", sel, b.ref("spec", "uplink", "nic"))
        else:
            for k, nic in enumerate(up.bond.nics):
                where = b.ref("spec", "uplink", "bond", "nics", k)
                yield _Claim(nic, True, f"port of bond {up.bond.name}", sel, where)
    for nn in repo.of("NodeNetwork"):
        sel = nn.spec.node_selector
        for i, bond in enumerate(nn.spec.bonds):
            for k, nic in enumerate(bond.nics):
                where = nn.ref("spec", "bonds", i, "nics", k)
                yield _Claim(nic, True, f"port of bond {bond.name}", sel, where)
        for i, vlan in enumerate(nn.spec.vlans):
            yield _Claim(vlan.base, False, f"base of VLAN {vlan.ifname}", sel, nn.ref("spec", "vlans", i, "base"))


def rule_nic_conflicts(repo: Repo) -> Iterator[Problem]:
    by_iface: dict[str, list[_Claim]] = defaultdict(list)
    for claim in _claims(repo):
        for other in by_iface[claim.iface]:
            if (claim.exclusive or other.exclusive) and _selectors_overlap(claim.selector, other.selector):
                yield Problem(
                    claim.ref,
                    f"NIC {claim.iface} would be {claim.what} but is already {other.what} ({other.ref})",
                )
                break
        by_iface[claim.iface].append(claim)


def rule_macs(repo: Repo) -> Iterator[Problem]:
    pool = repo.cluster.spec.mac_pool
    seen: dict[str, SourceRef] = {}
    for vm in repo.of("VM"):
        for i, iface in enumerate(vm.spec.interfaces):
            if iface.mac is None:
                continue
            ref = vm.ref("spec", "interfaces", i, "mac")
            if iface.mac in seen:
                yield Problem(ref, f"MAC {iface.mac} is already used at {seen[iface.mac]}")
            else:
                seen[iface.mac] = ref
            if pool is not None and not pool.contains(iface.mac):
                yield Problem(ref, f"MAC {iface.mac} is outside the MAC pool {pool.start}-{pool.end}")


def _subnets(net: Entry[Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if net.kind == "BridgeNetwork" and net.spec.subnet:
        return [ipaddress.ip_network(net.spec.subnet)]
    if net.kind == "OvnNetwork":
        return [ipaddress.ip_network(s) for s in net.spec.subnets]
    return []


def rule_static_ips(repo: Repo) -> Iterator[Problem]:
    networks = repo.networks
    subnets_of = {name: _subnets(net) for name, net in networks.items()}  # parsed once, not per VM
    seen: dict[tuple[str, Any], SourceRef] = {}
    for vm in repo.of("VM"):
        for i, iface in enumerate(vm.spec.interfaces):
            for fam, gw_field in (("ipv4", "gateway4"), ("ipv6", "gateway6")):
                value = getattr(iface, fam)
                if value is None:
                    continue
                addr = ipaddress.ip_interface(value)
                ref = vm.ref("spec", "interfaces", i, fam)
                key = (iface.network, addr.ip)
                if key in seen:
                    yield Problem(ref, f"IP {addr.ip} is already used on network {iface.network} at {seen[key]}")
                else:
                    seen[key] = ref
                if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and (
                    addr.network.prefixlen < addr.max_prefixlen - 1
                ):
                    yield Problem(ref, f"{addr.ip} is the network or broadcast address of {addr.network}")
                subnets = [s for s in subnets_of.get(iface.network, []) if s.version == addr.version]
                if subnets and not any(addr.ip in s for s in subnets):
                    yield Problem(
                        ref,
                        f"IP {addr.ip} is outside network {iface.network}'s subnet {', '.join(map(str, subnets))}",
                    )
                gateway = getattr(iface, gw_field)
                if gateway and ipaddress.ip_address(gateway) not in addr.network:
                    yield Problem(
                        vm.ref("spec", "interfaces", i, gw_field),
                        f"gateway {gateway} is not in the interface's subnet {addr.network}",
                    )


def rule_bindings(repo: Repo) -> Iterator[Problem]:
    networks = repo.networks
    for vm in repo.of("VM"):
        vfio = False
        for i, iface in enumerate(vm.spec.interfaces):
            net = networks.get(iface.network)
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
            yield Problem(
                vm.ref("spec", "dpdk"), "dpdk needs at least one interface on an SR-IOV network with vfio-pci"
            )


def rule_services(repo: Repo) -> Iterator[Problem]:
    node_ports: dict[int, SourceRef] = {}
    for vm in repo.of("VM"):
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
                yield Problem(
                    vm.ref("spec", "expose", i), f"port name {exp.port_name} is used twice in Service {service}"
                )
            names.setdefault((service, exp.port_name), ref)
            if types.setdefault(service, exp.type) != exp.type:
                yield Problem(
                    vm.ref("spec", "expose", i, "type"),
                    f"Service {service} mixes types {types[service]} and {exp.type}",
                )
            if exp.node_port is not None:
                np_ref = vm.ref("spec", "expose", i, "nodePort")
                if exp.node_port in node_ports:
                    yield Problem(np_ref, f"nodePort {exp.node_port} is already taken at {node_ports[exp.node_port]}")
                node_ports.setdefault(exp.node_port, np_ref)


def rule_node_mtu(repo: Repo) -> Iterator[Problem]:
    for nn in repo.of("NodeNetwork"):
        bond_mtu = {b.name: b.mtu for b in nn.spec.bonds}
        for i, vlan in enumerate(nn.spec.vlans):
            parent = bond_mtu.get(vlan.base)
            if vlan.mtu and parent and vlan.mtu > parent:
                yield Problem(
                    nn.ref("spec", "vlans", i, "mtu"),
                    f"VLAN {vlan.ifname} MTU {vlan.mtu} is above its parent {vlan.base}'s MTU {parent}",
                )


RULES: list[Callable[[Repo], Iterator[Problem]]] = [
    rule_namespaces,
    rule_unique_names,
    rule_references,
    rule_bridges,
    rule_nic_conflicts,
    rule_macs,
    rule_static_ips,
    rule_bindings,
    rule_services,
    rule_node_mtu,
]


def validate_repo(repo: Repo) -> list[Problem]:
    """Run every rule; the result is sorted by file and line."""
    return sorted(p for rule in RULES for p in rule(repo))
