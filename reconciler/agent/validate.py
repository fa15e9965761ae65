"""The shape of a policy, checked before the agent reads it (pure).

Why: the agent reads NNCPs straight from the API server, where nothing guarantees their shape (the CRD
schema preserves unknown fields; an object can be written by hand). ``mtu: abc``, ``interfaces`` that is
not a list, an interface without a name, a string where a mapping belongs: each used to raise in the
middle of a pass, on every node, every interval, and no policy got applied at all. :func:`screen` sorts
the policies first: the well-formed ones that select this node go on; a malformed one is reported
Failing with every problem found (``spec.desiredState.interfaces[1].mtu: 'abc' is not an integer``) and
the others proceed; an entry without a usable ``metadata.name`` cannot even be reported and is only
logged and named in the pass error.

A policy naming the loopback interface (``lo``, or ``type: loopback``) is refused here too: the node's
own traffic (kubelet to a local API server, etcd, health checks on 127.0.0.1) runs over it, and setting
it down, absent or stripping its addresses breaks the node while every probe of the uplink still passes.
(``reconciler.agent.hazards`` refuses any *step* on a loopback link as well, whatever produced it.)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import nmstate

IFNAMSIZ = 15  # the kernel's limit on an interface name (16 bytes with the NUL)
#: RFC 791: every internet module must forward a 68-octet datagram unfragmented, so no IP link is smaller;
#: 65535 is the largest IPv4/IPv6 (non-jumbogram) packet. Safe floors per interface: reconciler.agent.hazards
MTU_RANGE = (68, 65535)
STATES = ("up", "down", "absent")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}$")
_MAX_LISTED = 6


@dataclass
class Screened:
    """Policies sorted by :func:`screen`."""

    selected: list[dict[str, Any]] = field(default_factory=list)  # well-formed, selecting this node, by name
    failing: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (policy, why), malformed
    unnamed: list[str] = field(default_factory=list)  # entries that cannot be reported: why


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def policy_name(policy: Any) -> str | None:
    """``metadata.name`` when it is a non-empty string, else None."""
    meta = policy.get("metadata") if isinstance(policy, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else None


def screen(policies: Iterable[Any], labels: Mapping[str, str]) -> Screened:
    """Sort ``policies`` for this node (``labels``): a well-formed one is selected when its ``nodeSelector``
    matches; a malformed one is failing when it selects the node or its selector itself is malformed (the
    node cannot tell, so it says so); one without a name is only reported in ``unnamed``."""
    out = Screened()
    for i, policy in enumerate(policies):
        name = policy_name(policy)
        if name is None:
            out.unnamed.append(f"policy #{i + 1} has no metadata.name (it is {_what(policy)}): skipped")
            continue
        found = problems(policy)
        spec = policy.get("spec")
        selector = spec.get("nodeSelector") if isinstance(spec, Mapping) else None
        selector_ok = not _selector_problems(selector)
        if selector_ok and not nmstate.selects(selector, labels):
            continue
        if found:
            shown = found[:_MAX_LISTED] + ([f"and {len(found) - _MAX_LISTED} more"] if len(found) > _MAX_LISTED else [])
            out.failing.append((dict(policy), "malformed policy, not applied: " + "; ".join(shown)))
        else:
            out.selected.append(dict(policy))
    out.selected.sort(key=lambda p: str(p["metadata"]["name"]))
    return out


def problems(policy: Mapping[str, Any]) -> list[str]:
    """Every shape problem of one policy, each as ``path: what is wrong`` (empty = well-formed)."""
    spec = policy.get("spec")
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        return [f"spec: {_what(spec)}, not a mapping"]
    out = [f"spec.nodeSelector: {p}" for p in _selector_problems(spec.get("nodeSelector"))]
    mu = spec.get("maxUnavailable")
    if mu is not None:
        try:
            nmstate.max_unavailable(mu, 1)
        except nmstate.PolicyError as e:
            out.append(f"spec.maxUnavailable: {e}")
    desired = spec.get("desiredState")
    if desired is None:
        return out
    if not isinstance(desired, Mapping):
        return [*out, f"spec.desiredState: {_what(desired)}, not a mapping"]
    interfaces = desired.get("interfaces")
    if interfaces is None:
        return out
    if not isinstance(interfaces, list):
        return [*out, f"spec.desiredState.interfaces: {_what(interfaces)}, not a list"]
    seen: set[str] = set()
    for i, iface in enumerate(interfaces):
        out += [f"spec.desiredState.interfaces[{i}]{p}" for p in _interface_problems(iface)]
        name = iface.get("name") if isinstance(iface, Mapping) else None
        if isinstance(name, str) and name in seen:
            out.append(f"spec.desiredState.interfaces[{i}].name: {name!r} is listed twice")
        seen.add(str(name))
    return out


def _selector_problems(selector: Any) -> list[str]:
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        return [f"{_what(selector)}, not a mapping of labels"]
    return [f"label {k!r}: {_what(v)}, not a string" for k, v in selector.items() if not isinstance(v, str)]


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a Linux interface name (None when it can)."""
    if not isinstance(name, str) or not name:
        return f"{_what(name)} is not an interface name"
    if len(name) > IFNAMSIZ:
        return f"{name!r} is longer than {IFNAMSIZ} characters"
    if name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        return f"{name!r} is not a valid interface name (no '/', ':' or spaces)"
    return None


def _interface_problems(iface: Any) -> list[str]:
    """Problems of one entry, each starting with the path below the entry (``.mtu: ...``) or ``: ...``."""
    if not isinstance(iface, Mapping):
        return [f": {_what(iface)}, not a mapping with a name"]
    name = iface.get("name")
    if name is None:
        return [": an interface has no name"]
    if (bad := name_problem(name)) is not None:
        return [f".name: {bad}"]
    out: list[str] = []
    if name == "lo" or iface.get("type") == "loopback":
        out.append(
            f" ({name}): the loopback interface is never changed by a policy: the node's own traffic runs over it"
        )
    for key in ("type", "state", "description"):
        if iface.get(key) is not None and not isinstance(iface[key], str):
            out.append(f".{key}: {_what(iface[key])}, not a string")
    if isinstance(iface.get("state"), str) and iface["state"] not in STATES:
        out.append(f".state: {iface['state']!r} is not up, down or absent")
    out += _number(iface, "mtu", *MTU_RANGE)
    mac = iface.get("mac-address")
    if mac is not None and not (isinstance(mac, str) and _MAC.match(mac)):
        out.append(f".mac-address: {_what(mac)} is not a MAC address")
    out += _bridge_problems(iface.get("bridge"))
    out += _bond_problems(iface.get("link-aggregation"))
    out += _section(iface, "vlan", {"base-iface": "name", "id": (0, 4094)})
    out += _section(iface, "veth", {"peer": "name"})
    out += _section(iface, "vxlan", {"id": (0, 2**24 - 1)})
    for fam in (4, 6):
        out += _ip_problems(iface.get(f"ipv{fam}"), fam)
    return out


def _number(block: Mapping[str, Any], key: str, low: int, high: int, path: str = "") -> list[str]:
    value = block.get(key)
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [f"{path}.{key}: {_what(value)} is not an integer"]
    if not low <= value <= high:
        return [f"{path}.{key}: {value} is not between {low} and {high}"]
    return []


def _mapping(value: Any, path: str) -> tuple[Mapping[str, Any], list[str]]:
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [f".{path}: {_what(value)}, not a mapping"]
    return value, []


def _section(iface: Mapping[str, Any], key: str, fields: Mapping[str, Any]) -> list[str]:
    """A mapping whose fields are interface names (``"name"``) or integers in a range (``(low, high)``)."""
    block, out = _mapping(iface.get(key), key)
    for sub, rule in fields.items():
        if rule == "name":
            if block.get(sub) is not None and (bad := name_problem(block[sub])) is not None:
                out.append(f".{key}.{sub}: {bad}")
        else:
            low, high = rule
            out += _number(block, sub, low, high, path=f".{key}")
    return out


def _ports(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f".{path}: {_what(value)}, not a list of ports"]
    out = []
    for i, entry in enumerate(value):
        port = entry.get("name") if isinstance(entry, Mapping) else entry
        if (bad := name_problem(port)) is not None:
            out.append(f".{path}[{i}]: {bad}")
    return out


def _bridge_problems(value: Any) -> list[str]:
    bridge, out = _mapping(value, "bridge")
    options, more = _mapping(bridge.get("options"), "bridge.options")
    stp, most = _mapping(options.get("stp"), "bridge.options.stp")
    out += more + most
    if stp.get("enabled") is not None and not isinstance(stp["enabled"], bool):
        out.append(f".bridge.options.stp.enabled: {_what(stp['enabled'])}, not true/false")
    return out + _ports(bridge.get("port"), "bridge.port")


def _bond_problems(value: Any) -> list[str]:
    agg, out = _mapping(value, "link-aggregation")
    if agg.get("mode") is not None and not isinstance(agg["mode"], str):
        out.append(f".link-aggregation.mode: {_what(agg['mode'])}, not a string")
    return out + _ports(agg.get("port"), "link-aggregation.port") + _ports(agg.get("slaves"), "link-aggregation.slaves")


def _ip_problems(value: Any, fam: int) -> list[str]:
    key = f"ipv{fam}"
    block, out = _mapping(value, key)
    for flag in ("enabled", "dhcp", "autoconf"):
        if block.get(flag) is not None and not isinstance(block[flag], bool):
            out.append(f".{key}.{flag}: {_what(block[flag])}, not true/false")
    addresses = block.get("address")
    if addresses is None:
        return out
    if not isinstance(addresses, list):
        return [*out, f".{key}.address: {_what(addresses)}, not a list"]
    for i, entry in enumerate(addresses):
        where = f".{key}.address[{i}]"
        if not isinstance(entry, Mapping):
            out.append(f"{where}: {_what(entry)}, not {{ip, prefix-length}}")
            continue
        try:
            ip = ipaddress.ip_address(str(entry.get("ip")))
        except ValueError:
            out.append(f"{where}.ip: {_what(entry.get('ip'))} is not an IP address")
            continue
        if ip.version != fam:
            out.append(f"{where}.ip: {ip} is not an IPv{fam} address")
            continue
        out += _number(entry, "prefix-length", 0, 32 if fam == 4 else 128, path=where)
        if entry.get("prefix-length") is None:
            out.append(f"{where}.prefix-length: missing")
    return out
