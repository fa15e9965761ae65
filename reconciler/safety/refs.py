"""Where in the repository a part of a rendered object comes from, for safety findings (pure).

Why: a finding is only actionable when it names the line to change. Rendered objects carry their
document's ``file:line`` in the ``virtnet.io/source`` annotation; the render's origins (the document behind
each object) give the exact field (``spec.uplink.nic``, ``spec.vlans[0].mtu`` ...). No side effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import labels, nmstate
from reconciler.errors import SourceRef
from reconciler.model import Entry, Raw
from reconciler.objects import Obj, obj_id
from reconciler.render import Origin


def annotation_ref(obj: Obj | None) -> SourceRef | None:
    """``virtnet.io/source: file:line`` → SourceRef (None when absent or malformed)."""
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(labels.SOURCE)
    if not value:
        return None
    file, _, line = str(value).rpartition(":")
    return SourceRef(file, int(line)) if file and line.isdigit() else SourceRef(str(value))


class Refs:
    """Source locations for policies, networks and VMs: the exact field of the document each object was
    rendered from (``Rendered.origins``), else the object's provenance annotation (objects being deleted)."""

    def __init__(self, origins: Mapping[str, Origin] | None = None) -> None:
        self.origins: Mapping[str, Origin] = origins or {}

    def _entry(self, obj: Obj, *kinds: str) -> Entry[Any] | None:
        origin = self.origins.get(obj_id(obj))
        return origin if isinstance(origin, Entry) and origin.kind in kinds else None

    def _raw(self, obj: Obj) -> Raw | None:
        origin = self.origins.get(obj_id(obj))
        return origin if isinstance(origin, Raw) else None

    def policy(self, policy: Obj, iface: str, what: str, nic: str | None = None) -> SourceRef | None:
        """``what``: port (``nic`` is the port), base, mtu, iface, nodeSelector, maxUnavailable."""
        bridge = self._entry(policy, "BridgeNetwork")
        if bridge is not None:
            return bridge.ref(*_bridge_path(bridge, iface, what, nic))
        node = self._entry(policy, "NodeNetwork")
        if node is not None:
            return node.ref(*_node_path(node, iface, what, nic))
        raw = self._raw(policy)
        if raw is not None:
            if what in ("nodeSelector", "maxUnavailable"):
                return raw.ref("spec", what)
            for i, entry in enumerate(nmstate.policy_interfaces(raw.obj)):
                if isinstance(entry, dict) and entry.get("name") == iface:
                    sub = {"mtu": ("mtu",), "base": ("vlan", "base-iface"), "port": ()}.get(what, ())
                    return raw.ref("spec", "desiredState", "interfaces", i, *sub)
            return raw.ref("spec", "desiredState")
        return annotation_ref(policy)

    def network(self, nad: Obj, what: str = "") -> SourceRef | None:
        """The network document a NAD was rendered from (``spec.<what>``), else its annotation."""
        entry = self._entry(nad, "BridgeNetwork", "OvnNetwork", "SriovNetwork")
        if entry is not None:
            return entry.ref("spec", what) if what else entry.ref("metadata", "name")
        raw = self._raw(nad)
        if raw is not None:
            return raw.ref("spec", "config")
        return annotation_ref(nad)

    def vm(self, vm: Obj, iface: str) -> SourceRef | None:
        """The VM document's interface ``iface`` (by its rendered name), else the VM's annotation."""
        entry = self._entry(vm, "VM")
        if entry is not None:
            for i, spec in enumerate(entry.spec.interfaces):
                if spec.ifname == iface:
                    return entry.ref("spec", "interfaces", i, "network")
            return entry.ref("spec", "interfaces")
        raw = self._raw(vm)
        if raw is not None:
            nets = ((((raw.obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("networks")) or []
            for i, net in enumerate(nets):
                if isinstance(net, dict) and net.get("name") == iface:
                    return raw.ref("spec", "template", "spec", "networks", i)
            return raw.ref("metadata", "name")
        return annotation_ref(vm)


def _bridge_path(entry: Entry[Any], iface: str, what: str, nic: str | None) -> tuple[str | int, ...]:
    spec = entry.spec
    if what in ("nodeSelector", "maxUnavailable"):
        return ("spec", what)
    uplink = spec.uplink
    bond = uplink.bond if uplink is not None else None
    if bond is not None and (iface == bond.name or nic in bond.nics):
        if what == "port" and nic in bond.nics and iface == bond.name:
            return ("spec", "uplink", "bond", "nics", bond.nics.index(nic))
        if what == "mtu":
            return ("spec", "uplink", "bond", "mtu") if bond.mtu else ("spec", "mtu")
        return ("spec", "uplink", "bond", "name")
    if what == "port":
        return ("spec", "uplink", "nic") if uplink is not None and uplink.nic is not None else ("spec", "uplink")
    if what == "mtu":
        return ("spec", "mtu")
    if uplink is not None and uplink.nic == iface:
        return ("spec", "uplink", "nic")
    return ("spec", "bridge")


def _node_path(entry: Entry[Any], iface: str, what: str, nic: str | None) -> tuple[str | int, ...]:
    spec = entry.spec
    if what in ("nodeSelector", "maxUnavailable"):
        return ("spec", what)
    for i, bond in enumerate(spec.bonds):
        if bond.name == iface:
            if what == "port" and nic in bond.nics:
                return ("spec", "bonds", i, "nics", bond.nics.index(nic))
            return ("spec", "bonds", i, "mtu" if what == "mtu" else "name")
    for i, vlan in enumerate(spec.vlans):
        if vlan.ifname == iface:
            field = {"mtu": "mtu", "base": "base"}.get(what)
            return ("spec", "vlans", i, field) if field else ("spec", "vlans", i)
    return ("spec",)
