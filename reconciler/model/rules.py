"""Network-aware validation across documents: the rules one document cannot check alone.

Pure: takes a ``Repo`` and the facts ``reconciler.model.facts`` reads from its documents and plain
manifests alike, and returns problems (the rules about node interfaces are ``reconciler.model.noderules``).
Every rule reports *all* its findings with the file, line and field of the value at fault, so a reviewer
fixes a pull request in one round. Rules are small functions listed in ``RULES``; each is tested on its own
failing input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.errors import Problem, SourceRef
from reconciler.model.clusterrules import rule_namespace_settings, rule_raw_kinds, rule_secondary_dns
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
from reconciler.model.segments import segment, segment_text
from reconciler.model.types import ip_interface
from reconciler.model.vmrules import VmContext, VmMemo, vm_problems

# kinds a plain manifest may have in a namespace that is not in allowedNamespaces, and where
OPERATOR_NAMESPACE_KINDS = {
    "SriovNetworkNodePolicy": "sriov_operator_namespace",
    "SriovNetwork": "sriov_operator_namespace",
    "IPAddressPool": "metallb_namespace",
    "L2Advertisement": "metallb_namespace",
}
CLUSTER_SCOPED_RAW = {"NodeNetworkConfigurationPolicy", "Namespace"}


def rule_namespaces(repo: Repo, facts: Facts) -> Iterator[Problem]:
    allowed = set(repo.cluster.spec.allowed_namespaces)
    hint = f"allowed: {', '.join(sorted(allowed))}"
    for e in repo.entries:
        if e.kind in NETWORK_KINDS:
            for i, ns in enumerate(e.spec.namespaces):
                if ns not in allowed:
                    yield Problem(e.ref("spec", "namespaces", i), f"namespace {ns!r} is not allowed ({hint})")
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
    """What the Cluster and the networks name (a VM's references are ``vmrules.vm_references``)."""
    networks = repo.networks
    migration = repo.cluster.spec.live_migration
    if migration is not None:
        target = networks.get(migration.network)
        if target is None or target.kind != "BridgeNetwork":
            yield Problem(
                repo.cluster.ref("spec", "liveMigration", "network"),
                f"live migration network {migration.network!r} must name a BridgeNetwork",
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
    """One address per layer-2 segment, across all VMs (each address against its own network is
    ``vmrules.vm_addresses``)."""
    networks = repo.networks
    # where each address was seen first: the VM, the interface and the family (its line is looked up only
    # for a problem; 30,000 eager look-ups were a tenth of validating 10,000 VMs)
    seen: dict[tuple[Any, ...], tuple[Entry[Any], int, str, str]] = {}
    segments: dict[str, tuple[Any, ...]] = {}  # per network name, worked out once
    for vm in repo.of("VM"):
        for i, iface in enumerate(vm.spec.interfaces):
            if iface.ipv4 is None and iface.ipv6 is None:
                continue  # most interfaces: no static address
            net = networks.get(iface.network)
            seg = segments.get(iface.network)
            if seg is None:
                seg = segments[iface.network] = segment(net, iface.network)
            for fam in ("ipv4", "ipv6"):
                value = getattr(iface, fam)
                if value is None:
                    continue
                key = (seg, _address_key(value))
                if key in seen:
                    first_vm, first_i, first_fam, name = seen[key]
                    first = first_vm.ref("spec", "interfaces", first_i, first_fam)
                    same = "" if name == iface.network else f" (the same {segment_text(net)} as {name})"
                    yield Problem(
                        vm.ref("spec", "interfaces", i, fam),
                        f"IP {ip_interface(value).ip} is already used on network {iface.network}{same} at {first}",
                    )
                else:
                    seen[key] = (vm, i, fam, iface.network)


@functools.lru_cache(maxsize=1 << 16)
def _address_key(value: str) -> tuple[int, int]:
    """An interface address's IP as (version, integer): one spelling per address, hashed in C (an
    ``ipaddress`` object hashes through Python code, 5,000 times a load at 10,000 VMs)."""
    ip = ip_interface(value).ip
    return ip.version, int(ip)


def rule_node_ports(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A nodePort once across all VMs (a VM's own Services are ``vmrules.vm_services``)."""
    node_ports: dict[int, SourceRef] = {}
    for vm in repo.of("VM"):
        for i, exp in enumerate(vm.spec.expose):
            if exp.node_port is not None:
                np_ref = vm.ref("spec", "expose", i, "nodePort")
                if exp.node_port in node_ports:
                    yield Problem(np_ref, f"nodePort {exp.node_port} is already taken at {node_ports[exp.node_port]}")
                node_ports.setdefault(exp.node_port, np_ref)


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
    rule_node_ports,
    rule_node_mtu,
    rule_uplink_vlans,
    rule_raw_kinds,
    rule_namespace_settings,
    rule_secondary_dns,
]


def validate_repo(repo: Repo, memo: VmMemo | None = None) -> list[Problem]:
    """Run every rule over the repository and the facts read from it, and the VM rules over each VM (through
    ``memo``, kept across loads, only for the VMs that changed); the result is sorted by file and line."""
    facts = facts_of(repo)
    ctx, vms = VmContext.of(repo), repo.of("VM")
    problems = [p for rule in RULES for p in rule(repo, facts)]
    problems += memo.problems(vms, ctx) if memo is not None else [p for vm in vms for p in vm_problems(vm, ctx)]
    return sorted(problems)
