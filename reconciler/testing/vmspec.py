"""What KubeVirt's controllers read from a VM template: hot-pluggable interfaces, what needs a restart, addresses.

Why apart from :mod:`.controllers`: these are pure functions of VM/VMI specs (no store, no writes), the rules the
simulated virt-controller applies on every pass; kept here they can be read, and tested, without a controller.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from reconciler.testing.yamlload import load_yaml

Obj = dict[str, Any]


def template_spec(vm: Obj) -> dict[str, Any]:
    """A copy of ``spec.template.spec``: what a new VMI's spec is made from."""
    return copy.deepcopy(((vm.get("spec") or {}).get("template") or {}).get("spec") or {})


def interfaces(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """``domain.devices.interfaces`` of a VM template or VMI spec (the list itself, not a copy)."""
    return ((spec.get("domain") or {}).get("devices") or {}).get("interfaces") or []


def hot_names(spec: dict[str, Any]) -> set[str]:
    """Bridge interfaces on multus networks: what hot-plug adds, and unplugs when set ``state: absent``."""
    multus = {n["name"] for n in spec.get("networks") or [] if "multus" in n}
    return {i["name"] for i in interfaces(spec) if "bridge" in i and i.get("name") in multus}


def cold_part(spec: dict[str, Any], hot: set[str]) -> dict[str, Any]:
    """The template without the interfaces named in ``hot`` and their networks."""
    spec = copy.deepcopy(spec)
    devices = (spec.get("domain") or {}).get("devices") or {}
    if "interfaces" in devices:
        devices["interfaces"] = [i for i in devices["interfaces"] if i.get("name") not in hot]
    if "networks" in spec:
        spec["networks"] = [n for n in spec["networks"] if n.get("name") not in hot]
    return spec


def with_hot_parts(vmi_spec: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``vmi_spec`` with the desired bridge interfaces/networks plugged, or unplugged when ``state: absent``."""
    out = copy.deepcopy(vmi_spec)
    unplugged = hot_names(desired)  # replaced by the desired version below, unless absent
    desired_multus = {n["name"]: n for n in desired.get("networks") or [] if "multus" in n}
    plugged = [copy.deepcopy(i) for i in interfaces(desired)
               if "bridge" in i and i.get("name") in desired_multus and i.get("state") != "absent"]
    devices = out.setdefault("domain", {}).setdefault("devices", {})
    devices["interfaces"] = [i for i in interfaces(out) if i.get("name") not in unplugged] + plugged
    out["networks"] = [n for n in out.get("networks") or [] if n.get("name") not in unplugged] + [
        copy.deepcopy(desired_multus[i["name"]]) for i in plugged]
    return out


def static_addresses(spec: dict[str, Any]) -> dict[str, str]:
    """cloud-init networkData (v2) static addresses by lower-case MAC and by interface name."""
    out: dict[str, str] = {}
    for vol in spec.get("volumes") or []:
        data = (vol.get("cloudInitNoCloud") or vol.get("cloudInitConfigDrive") or {}).get("networkData")
        if not data:
            continue
        try:
            doc = load_yaml(data) or {}
        except yaml.YAMLError:
            continue
        for ifname, eth in (doc.get("ethernets") or {}).items():
            addrs = [str(a).split("/")[0] for a in eth.get("addresses") or []]
            if not addrs:
                continue
            mac = str((eth.get("match") or {}).get("macaddress", "")).lower()
            if mac:
                out[mac] = addrs[0]
            out[ifname] = addrs[0]
    return out


def stop_requested(vm: Obj, vmi: Obj) -> bool:
    """virt-api's restart asks for a Stop of this VMI (by uid) then a Start, in the VM's status."""
    requests = (vm.get("status") or {}).get("stateChangeRequests") or []
    return any(r.get("action") == "Stop" and r.get("uid") in (None, vmi["metadata"].get("uid")) for r in requests)


def running(vm: Obj) -> bool:
    """Whether the VM should have a VMI (runStrategy Always/RerunOnFailure, or the older ``running: true``)."""
    spec = vm.get("spec") or {}
    return spec.get("runStrategy") in ("Always", "RerunOnFailure") or spec.get("running") is True


def reported_names(vmi: Obj) -> set[str]:
    """Interfaces a VMI's status lists: the ones its launcher pod (and so the guest) has."""
    return {i["name"] for i in (vmi.get("status") or {}).get("interfaces") or [] if i.get("name")}
