"""Network-aware validation across documents: the rules one document cannot check alone.

Pure: takes a ``Repo`` and the facts ``reconciler.model.facts`` reads from its documents and plain
manifests alike, and returns problems (the rules about node interfaces are ``reconciler.model.noderules``).
Every rule reports *all* its findings with the file, line and field of the value at fault, so a reviewer
fixes a pull request in one round. Rules are small functions listed in ``RULES``; each is tested on its own
failing input.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.errors import Problem, SourceRef
from reconciler.model.clusterrules import rule_namespace_settings, rule_raw_kinds, rule_secondary_dns, rule_vm_needs
from reconciler.model.facts import Facts, Mac, facts_of
from reconciler.model.noderules import (
    rule_bridge_ports,
    rule_bridges,
    rule_created_once,
    rule_nic_conflicts,
    rule_node_mtu,
    rule_uplink_vlans,
)
from reconciler.model.repo import NETWORK_KINDS, Entry, Repo
from reconciler.model.segments import segment, segment_text, subnets
from reconciler.model.types import ip_address, ip_interface

# kinds a plain manifest may have in a namespace that is not in allowedNamespaces, and where
OPERATOR_NAMESPACE_KINDS = {
    "SriovNetworkNodePolicy": "sriov_operator_namespace",
    "SriovNetwork": "sriov_operator_namespace",
    "IPAddressPool": "metallb_namespace",
    "L2Advertisement": "metallb_namespace",
}
CLUSTER_SCOPED_RAW = {"NodeNetworkConfigurationPolicy", "Namespace"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # line breaks, NUL, escape, DEL (a tab separates fields)


def rule_namespaces(repo: Repo, facts: Facts) -> Iterator[Problem]:
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
    for target, ref in facts.sriov_targets:  # plain SriovNetworks: where the operator would create the NAD
        if target not in allowed:
            yield Problem(ref, f"SriovNetwork would offer its network in namespace {target!r}, not allowed ({hint})")


def rule_unique_names(repo: Repo, facts: Facts) -> Iterator[Problem]:
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


def rule_references(repo: Repo, facts: Facts) -> Iterator[Problem]:
    networks = repo.networks
    offered = {name: frozenset(net.spec.namespaces) for name, net in networks.items()}  # not a list scan per NIC
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
            elif vm.meta.namespace not in offered[iface.network]:
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


def rule_macs(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """One MAC, one interface, inside the pool: VM documents and plain VirtualMachines alike. A namespace that
    opts out of KubeMacPool (``kubeMacPool: false``) is outside the pool's range rule, not the uniqueness one."""
    pool = repo.cluster.spec.mac_pool
    opted_out = {n.name for n in repo.cluster.spec.namespaces if not n.kube_mac_pool}
    seen: dict[str, Mac] = {}
    for use in facts.macs:
        if use.mac in seen:
            yield Problem(use.ref, f"MAC {use.mac} is already used at {seen[use.mac].ref}")
        else:
            seen[use.mac] = use
        if use.namespace in opted_out:
            continue
        if pool is not None and _is_mac(use.mac) and not pool.contains(use.mac):
            yield Problem(use.ref, f"MAC {use.mac} is outside the MAC pool {pool.start}-{pool.end}")


_LOWER_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}\Z")


def _is_mac(value: str) -> bool:
    return _LOWER_MAC.match(value) is not None


def rule_plain_attachments(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A plain VirtualMachine's Multus networks are in its own namespace, as a VM document's are. (A NAD the
    repository does not define may exist on the cluster; removing one that a VM uses is a safety check.)"""
    for att in facts.attachments:
        if att.namespace != att.vm_namespace:
            yield Problem(
                att.ref,
                f"network {att.namespace}/{att.name} is in another namespace than the VM ({att.vm_namespace}); "
                "a VM attaches only to networks offered in its own namespace",
            )


def rule_static_ips(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """One address per layer-2 segment, inside its subnet, not one OVN-Kubernetes keeps out, gateway on-link."""
    networks = repo.networks
    subnets_of = {name: subnets(net) for name, net in networks.items()}  # parsed once, not per VM
    excluded_of = {
        name: [ipaddress.ip_network(s) for s in net.spec.exclude_subnets]
        for name, net in networks.items()
        if net.kind == "OvnNetwork"
    }
    # where each address was seen first: the VM, the interface and the family (its line is looked up only
    # for a problem; 30,000 eager look-ups were a tenth of validating 10,000 VMs)
    seen: dict[tuple[Any, ...], tuple[Entry[Any], int, str, str]] = {}
    for vm in repo.of("VM"):
        for i, iface in enumerate(vm.spec.interfaces):
            if iface.ipv4 is None and iface.ipv6 is None:
                continue  # most interfaces: no static address
            net = networks.get(iface.network)
            for fam, gw_field in (("ipv4", "gateway4"), ("ipv6", "gateway6")):
                value = getattr(iface, fam)
                if value is None:
                    continue
                addr = ip_interface(value)
                key = (*segment(net, iface.network), addr.ip)
                if key in seen:
                    first_vm, first_i, first_fam, name = seen[key]
                    first = first_vm.ref("spec", "interfaces", first_i, first_fam)
                    same = "" if name == iface.network else f" (the same {segment_text(net)} as {name})"
                    yield Problem(
                        vm.ref("spec", "interfaces", i, fam),
                        f"IP {addr.ip} is already used on network {iface.network}{same} at {first}",
                    )
                else:
                    seen[key] = (vm, i, fam, iface.network)
                for message in _address_problems(addr, iface.network, subnets_of, excluded_of):
                    yield Problem(vm.ref("spec", "interfaces", i, fam), message)
                gateway = getattr(iface, gw_field)
                if gateway and ip_address(gateway) not in addr.network:
                    yield Problem(
                        vm.ref("spec", "interfaces", i, gw_field),
                        f"gateway {gateway} is not in the interface's subnet {addr.network}",
                    )


def _address_problems(
    addr: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
    network: str,
    subnets_of: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]],
    excluded_of: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]],
) -> Iterator[str]:
    if addr.ip in (addr.network.network_address, addr.network.broadcast_address) and (
        addr.network.prefixlen < addr.max_prefixlen - 1
    ):
        yield f"{addr.ip} is the network or broadcast address of {addr.network}"
    subnets = [s for s in subnets_of.get(network, []) if s.version == addr.version]
    if subnets and not any(addr.ip in s for s in subnets):
        yield f"IP {addr.ip} is outside network {network}'s subnet {', '.join(map(str, subnets))}"
    excluded = next((s for s in excluded_of.get(network, []) if s.version == addr.version and addr.ip in s), None)
    if excluded is not None:
        yield (
            f"IP {addr.ip} is in network {network}'s excludeSubnets {excluded}: those addresses are kept for "
            "hosts outside the cluster"
        )


def rule_bindings(repo: Repo, facts: Facts) -> Iterator[Problem]:
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


def rule_services(repo: Repo, facts: Facts) -> Iterator[Problem]:
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


def rule_vm_interface_names(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """Two interfaces whose names share their first 15 characters are one name in the guest (cloud-init
    renames a NIC to at most 15 characters, Linux's IFNAMSIZ); and networkData keys the pod interface by its
    guest name when it has no MAC, so a secondary interface of that name would lose its own entry."""
    for vm in repo.of("VM"):
        first: dict[str, tuple[int, str]] = {}
        pod_name = vm.spec.pod_guest_name if vm.spec.pod_network and not vm.spec.pod_mac else None
        for i, iface in enumerate(vm.spec.interfaces):
            ifname = iface.ifname
            short = ifname[:15]
            if short in first and first[short][1] != ifname:
                j, other = first[short]
                field = "name" if iface.name else "network"
                yield Problem(
                    vm.ref("spec", "interfaces", i, field),
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


def rule_ssh_keys(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """One key per entry: a line break would smuggle a second authorized key (or cloud-config) in."""
    for vm in repo.of("VM"):
        for i, key in enumerate(vm.spec.ssh_keys):
            if _CONTROL.search(key):
                yield Problem(
                    vm.ref("spec", "sshKeys", i),
                    "ssh key contains a line break or control character: give each key its own entry",
                )


Rule = Callable[[Repo, Facts], Iterator[Problem]]
RULES: list[Rule] = [
    rule_namespaces,
    rule_unique_names,
    rule_references,
    rule_plain_attachments,
    rule_bridges,
    rule_nic_conflicts,
    rule_created_once,
    rule_bridge_ports,
    rule_macs,
    rule_static_ips,
    rule_bindings,
    rule_services,
    rule_node_mtu,
    rule_vm_interface_names,
    rule_ssh_keys,
    rule_uplink_vlans,
    rule_raw_kinds,
    rule_namespace_settings,
    rule_vm_needs,
    rule_secondary_dns,
]


def validate_repo(repo: Repo) -> list[Problem]:
    """Run every rule over the repository and the facts read from it; the result is sorted by file and line."""
    facts = facts_of(repo)
    return sorted(p for rule in RULES for p in rule(repo, facts))
