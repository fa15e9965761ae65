"""Cross-document rules about node interfaces: bridges, bonds, VLANs, their ports and SR-IOV PFs (pure).

They read ``reconciler.model.facts``, so a plain NNCP or SriovNetworkNodePolicy is held to the same rules as
a ``BridgeNetwork``, ``NodeNetwork`` or ``SriovNetwork`` document. Two policies meet only on nodes both
selectors can pick (:func:`selectors_overlap`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from reconciler.errors import Problem
from reconciler.model.facts import Claim, Created, Facts
from reconciler.model.repo import Repo


def selectors_overlap(a: dict[str, str], b: dict[str, str]) -> bool:
    """Two equality selectors can match the same node unless they require different values for a key."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def rule_bridges(repo: Repo, facts: Facts) -> Iterator[Problem]:
    bridges = repo.of("BridgeNetwork")
    definers = [b for b in bridges if b.spec.defines_bridge]
    for i, a in enumerate(definers):
        for b in definers[i + 1 :]:
            if a.spec.bridge == b.spec.bridge and selectors_overlap(a.spec.node_selector, b.spec.node_selector):
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
            if d.spec.bridge == b.spec.bridge and selectors_overlap(d.spec.node_selector, b.spec.node_selector)
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


def rule_nic_conflicts(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A port belongs to one bridge or bond; a VLAN base or an SR-IOV PF may be shared, but not with a port."""
    by_iface: dict[str, list[Claim]] = defaultdict(list)
    for claim in facts.claims:
        for other in by_iface[claim.iface]:
            if (claim.exclusive or other.exclusive) and selectors_overlap(claim.selector, other.selector):
                yield Problem(
                    claim.ref,
                    f"NIC {claim.iface} would be {claim.what} but is already {other.what} ({other.ref})",
                )
                break
        by_iface[claim.iface].append(claim)


def rule_created_once(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """One interface name, one interface per node: a bridge named like a bond, a bond two policies create,
    a VLAN named like a bridge. (Two BridgeNetworks creating one bridge is ``rule_bridges``' message.)"""
    by_name: dict[str, list[Created]] = defaultdict(list)
    for made in facts.created:
        for other in by_name[made.name]:
            if made.from_bridge_network and other.from_bridge_network:
                continue
            if selectors_overlap(made.selector, other.selector):
                yield Problem(
                    made.ref,
                    f"interface {made.name} ({made.type}) is already created on the same nodes as a "
                    f"{other.type} at {other.ref}: one name is one interface on a node",
                )
                break
        by_name[made.name].append(made)


def rule_bridge_ports(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A bridge's uplink is not the bridge itself, nor another Linux bridge (the kernel refuses to enslave a
    bridge to a bridge)."""
    bridges: dict[str, list[Created]] = defaultdict(list)
    for made in facts.created:
        if made.type == "linux-bridge":
            bridges[made.name].append(made)
    for port in facts.ports:
        if port.port == port.bridge:
            yield Problem(port.ref, f"bridge {port.bridge} cannot be its own uplink")
            continue
        other = next((b for b in bridges[port.port] if selectors_overlap(b.selector, port.selector)), None)
        if other is not None:
            yield Problem(
                port.ref,
                f"uplink {port.port} of bridge {port.bridge} is itself a Linux bridge ({other.ref}); "
                "a bridge cannot be a port of another bridge",
            )


def rule_node_mtu(repo: Repo, facts: Facts) -> Iterator[Problem]:
    for nn in repo.of("NodeNetwork"):
        bond_mtu = {b.name: b.mtu for b in nn.spec.bonds}
        for i, vlan in enumerate(nn.spec.vlans):
            parent = bond_mtu.get(vlan.base)
            if vlan.mtu and parent and vlan.mtu > parent:
                yield Problem(
                    nn.ref("spec", "vlans", i, "mtu"),
                    f"VLAN {vlan.ifname} MTU {vlan.mtu} is above its parent {vlan.base}'s MTU {parent}",
                )


def rule_uplink_vlans(repo: Repo, facts: Facts) -> Iterator[Problem]:
    """A bridge whose uplink port filters VLANs (trunk or access) carries only those VLANs off the node: a
    network on that bridge with another VLAN would reach no one outside it."""
    bridges = repo.of("BridgeNetwork")
    for owner in bridges:
        up = owner.spec.uplink
        if up is None or up.vlan is None:
            continue
        carried = up.vlan.carried()
        for net in bridges:
            if net.spec.bridge != owner.spec.bridge or net.spec.vlan is None or net.spec.vlan in carried:
                continue
            if selectors_overlap(net.spec.node_selector, owner.spec.node_selector):
                yield Problem(
                    net.ref("spec", "vlan"),
                    f"VLAN {net.spec.vlan} is not carried by bridge {owner.spec.bridge}'s uplink "
                    f"({owner.ref('spec', 'uplink', 'vlan')}): add it to trunkTags",
                )
