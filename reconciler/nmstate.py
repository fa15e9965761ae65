"""What virtnet knows about kubernetes-nmstate's NodeNetworkConfigurationPolicy, in one place (pure).

The controller (plan-time safety, the apply order, prune) and the node agent read the same NNCPs and
must read them the same way. Every question they ask of a policy is answered here and nowhere else:

* :func:`policy_interfaces` — the interfaces a policy names (``spec.desiredState.interfaces``);
* :func:`listed_ports` / :func:`port_names` / :func:`vlan_base` / :func:`lower_names` — what one interface
  is built on: bridge ports, bond ports, the VLAN base;
* :func:`created_by` / :func:`referenced_by` / :func:`dependencies` — which interfaces a policy creates,
  which it only builds on, and so which policies must be Available before another one is applied;
* :func:`selects` — ``spec.nodeSelector`` matching;
* :func:`max_unavailable` — ``spec.maxUnavailable`` as a number of nodes (an invalid value is an error);
* :func:`absent_policy` — the policy that takes a removed policy's interfaces down (``state: absent``).

Interfaces are plain dicts in nmstate's shape (:data:`Interface`), the same for a ``desiredState`` and a
``currentState`` entry. No side effects.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.errors import VirtnetError
from reconciler.objects import Obj

NNCP = "NodeNetworkConfigurationPolicy"

#: one entry of ``desiredState.interfaces`` or ``currentState.interfaces``
Interface = dict[str, Any]

#: interface types a policy brings into existence (virtual links nmstate creates); other entries (``ethernet``,
#: an entry without a type) only tune a NIC that must already exist on the node
CREATED_TYPES = frozenset(
    {
        "linux-bridge",
        "bond",
        "vlan",
        "ovs-bridge",
        "ovs-interface",
        "vxlan",
        "veth",
        "dummy",
        "mac-vlan",
        "mac-vtap",
        "vrf",
    }
)

#: nmstate's default when a policy does not set ``spec.maxUnavailable``
DEFAULT_MAX_UNAVAILABLE = "50%"

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_COUNT = re.compile(r"^\s*(\d+)\s*$")


class PolicyError(VirtnetError, ValueError):
    """A NodeNetworkConfigurationPolicy field that kubernetes-nmstate would not accept."""


# --------------------------------------------------------------------------- interfaces
def policy_interfaces(policy: Mapping[str, Any]) -> list[Interface]:
    """``spec.desiredState.interfaces`` of a policy (``[]`` when it names none)."""
    return list(((policy.get("spec") or {}).get("desiredState") or {}).get("interfaces") or [])


def _names(entries: Iterable[Any]) -> list[str]:
    return [str(p.get("name", "")) if isinstance(p, Mapping) else str(p) for p in entries]


def listed_ports(iface: Mapping[str, Any]) -> list[str] | None:
    """The ports an interface lists: a bridge's ``bridge.port`` (``{name: ...}`` entries or plain names) and a
    bond's ``link-aggregation.port`` (``slaves`` in older nmstate), in their order.

    ``None`` when it lists none: a policy without a port list leaves the ports as they are, while an empty
    list takes every port away.
    """
    bridge = iface.get("bridge") or {}
    agg = iface.get("link-aggregation") or {}
    agg_key = "port" if "port" in agg else "slaves" if "slaves" in agg else None
    if "port" not in bridge and agg_key is None:
        return None
    return _names(bridge.get("port") or []) + _names(agg.get(agg_key) or [] if agg_key else [])


def port_names(iface: Mapping[str, Any]) -> list[str]:
    """Bridge and bond ports of an interface (``[]`` when it lists none)."""
    return listed_ports(iface) or []


def vlan_base(iface: Mapping[str, Any]) -> str | None:
    """The interface a VLAN sits on (``vlan.base-iface``), or None."""
    base = (iface.get("vlan") or {}).get("base-iface")
    return str(base) if base else None


def lower_names(iface: Mapping[str, Any]) -> list[str]:
    """The interfaces this one is built on, which must exist first: its ports, then its VLAN base."""
    base = vlan_base(iface)
    return port_names(iface) + ([base] if base else [])


# --------------------------------------------------------------------------- policies and their order
def creates(iface: Mapping[str, Any]) -> bool:
    """Whether applying ``iface`` brings a link into existence (a bridge, bond, VLAN, ...): naming a NIC, even
    with ``type: ethernet`` and settings like an MTU, does not make it exist."""
    return iface.get("type") in CREATED_TYPES and iface.get("state") != "absent"


def created_by(policy: Mapping[str, Any]) -> set[str]:
    """Interfaces the policy creates: its bridges, bonds and VLANs (NICs it names already exist)."""
    return {str(i["name"]) for i in policy_interfaces(policy) if i.get("type") in CREATED_TYPES and i.get("name")}


def referenced_by(policy: Mapping[str, Any]) -> set[str]:
    """Interfaces the policy builds on but does not create: ports and VLAN bases of its interfaces."""
    return {n for i in policy_interfaces(policy) for n in lower_names(i)} - created_by(policy)


def dependencies(policies: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """For each policy (by key), the keys of the other policies that create an interface it builds on.

    kubernetes-nmstate applies policies independently: a bridge over ``bond1.300`` applied together with
    the policy that creates ``bond1.300`` goes Degraded, so a policy waits for the ones listed here.
    """
    creators: dict[str, str] = {}
    for key, policy in policies.items():
        for name in created_by(policy):
            creators[name] = key
    return {
        key: {creators[n] for n in referenced_by(policy) if n in creators and creators[n] != key}
        for key, policy in policies.items()
    }


# --------------------------------------------------------------------------- nodes and rollout
def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """``spec.nodeSelector`` semantics: label equality on every key; empty or absent selects every node."""
    return all(labels.get(k) == str(v) for k, v in (selector or {}).items())


def max_unavailable(value: int | str | None, nodes: int) -> int:
    """``spec.maxUnavailable`` over ``nodes`` selected nodes: how many may be reconfigured at once.

    An integer or a string of one, or a percentage ``"N%"`` of ``nodes`` rounded up; absent means
    :data:`DEFAULT_MAX_UNAVAILABLE`. Always at least 1 (nmstate never stalls a rollout). Anything else
    (``"abc"``, ``-1``, ``true``, ``1.5``) raises :class:`PolicyError`: guessing a batch size would make the
    blast radius and the rollout disagree with what kubernetes-nmstate does.
    """
    value = DEFAULT_MAX_UNAVAILABLE if value is None else value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return max(1, value)
    if isinstance(value, str):
        if percent := _PERCENT.match(value):
            return max(1, math.ceil(nodes * float(percent.group(1)) / 100))
        if count := _COUNT.match(value):
            return max(1, int(count.group(1)))
    raise PolicyError(
        f"maxUnavailable {value!r} is not a number of nodes (such as 2) or a percentage of them (such as '25%')"
    )


# --------------------------------------------------------------------------- removal
def absent_policy(live: Obj) -> Obj:
    """The policy that takes a node network down: its bridges, bonds and VLANs set ``state: absent``.

    nmstate does not revert nodes when a policy is deleted, so a removed policy is first applied like this.
    Ethernet entries are dropped rather than set absent: they only tuned a physical NIC (MTU), and "absent"
    on a NIC would take the node's hardware down. OVN bridge mappings are set absent too; ``nodeSelector``
    and ``maxUnavailable`` are kept, so the same nodes change in the same batches.
    """
    desired = copy.deepcopy((live.get("spec") or {}).get("desiredState") or {})
    interfaces = [
        {"name": i["name"], "type": i["type"], "state": "absent"}
        for i in desired.get("interfaces") or []
        if i.get("type") != "ethernet"
    ]
    out: Obj = {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": live["metadata"]["name"], "labels": dict(live["metadata"].get("labels") or {})},
        "spec": {"desiredState": {"interfaces": interfaces}},
    }
    mappings = (desired.get("ovn") or {}).get("bridge-mappings")
    if mappings:
        out["spec"]["desiredState"]["ovn"] = {"bridge-mappings": [{**m, "state": "absent"} for m in mappings]}
    for key in ("nodeSelector", "maxUnavailable"):
        if key in (live.get("spec") or {}):
            out["spec"][key] = live["spec"][key]
    return out


# --------------------------------------------------------------------------- shapes virtnet writes
#: nmstate's bond options (``link-aggregation.options``), each with the bond modes it applies to (None: all)
BOND_OPTIONS: dict[str, frozenset[str] | None] = {
    **dict.fromkeys(
        ("miimon", "updelay", "downdelay", "use_carrier", "arp_interval", "arp_ip_target", "arp_validate"), None
    ),
    **dict.fromkeys(("arp_all_targets", "arp_missed_max", "ns_ip6_target", "peer_notif_delay", "resend_igmp"), None),
    **dict.fromkeys(("fail_over_mac", "num_grat_arp", "num_unsol_na", "all_slaves_active", "all_ports_active"), None),
    **dict.fromkeys(
        ("lacp_rate", "lacp_active", "ad_select", "ad_actor_sys_prio", "ad_actor_system", "ad_user_port_key"),
        frozenset({"802.3ad"}),
    ),
    "min_links": frozenset({"802.3ad"}),
    "primary": frozenset({"active-backup", "balance-tlb", "balance-alb"}),
    "primary_reselect": frozenset({"active-backup", "balance-tlb", "balance-alb"}),
    "xmit_hash_policy": frozenset({"balance-xor", "802.3ad", "balance-tlb"}),
    "packets_per_slave": frozenset({"balance-rr"}),
    "tlb_dynamic_lb": frozenset({"balance-tlb"}),
    "lp_interval": frozenset({"balance-tlb", "balance-alb"}),
}


def bond_option_problem(key: str, mode: str) -> str | None:
    """Why nmstate would refuse ``link-aggregation.options.<key>`` on a bond of ``mode``, or None."""
    if key not in BOND_OPTIONS:
        return f"{key!r} is not an nmstate bond option (known: {', '.join(sorted(BOND_OPTIONS))})"
    modes = BOND_OPTIONS[key]
    if modes is not None and mode not in modes:
        return f"bond option {key} applies to mode {' or '.join(sorted(modes))}, not {mode}"
    return None


def bond_aggregation(mode: str, ports: list[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """``link-aggregation`` of a bond: ports are plain names; numeric options are written as strings, as in
    nmstate's own examples (``miimon: '140'``), so a policy reads the same however the number was typed."""
    aggregation: dict[str, Any] = {"mode": mode, "port": list(ports)}
    if options:
        aggregation["options"] = {
            k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in sorted(options.items())
        }
    return aggregation


def port_vlan(mode: str, trunk: Iterable[int | tuple[int, int]], tag: int | None, native: bool) -> dict[str, Any]:
    """A linux-bridge port's ``vlan`` (which makes the bridge VLAN-filtering): ``mode`` trunk or access,
    ``trunk-tags`` as ``{id}`` or ``{id-range: {min, max}}`` entries, ``tag`` (the access VLAN, or a trunk's
    native VLAN with ``enable-native``)."""
    vlan: dict[str, Any] = {"mode": mode}
    if mode == "trunk":
        vlan["trunk-tags"] = [
            {"id-range": {"min": t[0], "max": t[1]}} if isinstance(t, tuple) else {"id": t} for t in trunk
        ]
        if native:
            vlan["enable-native"] = True
    if tag is not None:
        vlan["tag"] = tag
    return vlan
