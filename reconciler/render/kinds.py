"""Per kind, the cheap constraints of the upstream schemas and of the API server, on rendered objects (pure).

Part of the last validation step (``reconciler.render.checks``): Service ports and selectors, ConfigMap and
Secret payloads, VM memory and disk sizes above zero and its node selector, NNCP interface names the kernel
takes, SR-IOV ranges and enums, NAD configs that are JSON. Only what the product knows by itself: the CRDs
are not read at run time (the cluster may not even serve them yet when a pull request is checked).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reconciler import nmstate
from reconciler.model.loader import Path_
from reconciler.model.types import PCI_ID
from reconciler.model.vm import hugepages_problem
from reconciler.objects import Obj
from reconciler.render import syntax
from reconciler.render.payload import config_data
from reconciler.render.shapes import (
    Finding,
    as_list,
    dig,
    mapping,
    must_be_list,
    must_be_mapping,
    short,
    utf8_size,
)

# label keys, label values and annotation keys already found valid: most objects carry the same few, and
# a 10,000-VM render checks some 300,000 of them (bounded, so a long-running controller does not grow)
GOOD_KEYS: set[str] = set()
GOOD_VALUES: set[str] = set()
_MEMO_LIMIT = 200_000


def remember(memo: set[str], value: str) -> None:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo.add(value)


def label_map(labels: Any, path: Path_, what: str = "label") -> Iterable[Finding]:
    if not labels:
        return ()
    try:  # the fast path hashes the values: a list among them is for the slow path to name
        if type(labels) is dict and GOOD_KEYS.issuperset(labels) and GOOD_VALUES.issuperset(labels.values()):
            return ()
    except TypeError:
        pass
    return list(_label_findings(labels, path, what))


def _label_findings(labels: Any, path: Path_, what: str) -> Iterator[Finding]:
    if not isinstance(labels, dict):
        yield Finding(path, f"{path[-1]} must map strings to strings")
        return
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            yield Finding((*path, str(key)), f"{what} {key!r}: keys and values must be strings", key)
            continue
        error = syntax.qualified_name(key)
        if error:
            yield Finding((*path, key), f"{what} key {error}", key)
        else:
            remember(GOOD_KEYS, key)
        error = syntax.label_value(value)
        if error:
            yield Finding((*path, key), f"{what} {key!r}: value {error}", value)
        else:
            remember(GOOD_VALUES, value)


# ---- per kind ----------------------------------------------------------------------------------------


def _service(obj: Obj) -> Iterator[Finding]:
    spec = obj.get("spec") or {}
    yield from label_map(spec.get("selector"), ("spec", "selector"), "selector")
    ports = spec.get("ports")
    yield from must_be_list(ports, ("spec", "ports"), "ports")
    ports = as_list(ports)
    names: set[str] = set()
    for i, port in enumerate(ports):
        path: Path_ = ("spec", "ports", i)
        if not isinstance(port, dict):
            yield from must_be_mapping(port, path)
            continue
        name = port.get("name")
        if name is None:
            if len(ports) > 1:
                yield Finding((*path, "name"), "a Service with several ports needs a name on each")
        elif not isinstance(name, str):
            yield Finding((*path, "name"), f"port name {short(name)} must be a string", name)
        else:
            error = syntax.port_name(name)
            if error:
                yield Finding((*path, "name"), f"port name {error}", name)
            if name in names:
                yield Finding((*path, "name"), f"port name {name!r} is used twice", name)
            names.add(name)
        yield from _port_number(port.get("port"), (*path, "port"), required=True)
        target = port.get("targetPort")
        if isinstance(target, str):
            error = syntax.port_name(target)
            if error:
                yield Finding((*path, "targetPort"), f"targetPort {error}", target)
        else:
            yield from _port_number(target, (*path, "targetPort"))
        yield from _port_number(port.get("nodePort"), (*path, "nodePort"))
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            yield Finding((*path, "protocol"), f"protocol {protocol!r} must be TCP, UDP or SCTP", protocol)


def _port_number(value: Any, path: Path_, required: bool = False) -> Iterator[Finding]:
    if value is None and not required:
        return
    if type(value) is not int or not 1 <= value <= 65535:
        yield Finding(path, f"{path[-1]} {value!r} must be a port number 1-65535", value)


def _positive_quantity(value: Any, path: Path_, what: str) -> Iterator[Finding]:
    if value is None:
        return
    amount = syntax.quantity(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if amount is None:
        yield Finding(path, f"{what} {value!r} is not a Kubernetes quantity like 2Gi", value)
    elif amount <= 0:
        yield Finding(path, f"{what} {value!r} must be more than zero", value)


def _virtual_machine(obj: Obj) -> Iterator[Finding]:
    template: Path_ = ("spec", "template")
    vmi: Path_ = (*template, "spec")
    yield from must_be_mapping(dig(obj, *template), template)
    tpl = mapping(dig(obj, *template))
    yield from label_map(dig(tpl, "metadata", "labels"), (*template, "metadata", "labels"))
    yield from must_be_mapping(tpl.get("spec"), vmi)
    vmi_spec = mapping(tpl.get("spec"))
    yield from must_be_mapping(vmi_spec.get("domain"), (*vmi, "domain"))
    domain = mapping(vmi_spec.get("domain"))
    yield from _positive_quantity(dig(domain, "memory", "guest"), (*vmi, "domain", "memory", "guest"), "memory")
    if "resources" in domain:
        for block in ("requests", "limits"):
            value = dig(domain, "resources", block, "memory")
            yield from _positive_quantity(value, (*vmi, "domain", "resources", block, "memory"), "memory")
    yield from _hugepages(domain, vmi)
    yield from _cloud_init_sizes(vmi_spec, vmi)
    yield from label_map(vmi_spec.get("nodeSelector"), (*vmi, "nodeSelector"), "nodeSelector")
    cpu = mapping(domain.get("cpu"))
    if "guestMappingPassthrough" in mapping(cpu.get("numa")) and not (
        cpu.get("dedicatedCpuPlacement") is True and dig(domain, "memory", "hugepages")
    ):
        yield Finding(
            (*vmi, "domain", "cpu", "numa"),
            "NUMA guestMappingPassthrough needs dedicatedCpuPlacement and hugepages (KubeVirt refuses it otherwise)",
        )
    templates = dig(obj, "spec", "dataVolumeTemplates")
    yield from must_be_list(templates, ("spec", "dataVolumeTemplates"), "dataVolumeTemplates")
    for i, dv in enumerate(as_list(templates)):
        path: Path_ = ("spec", "dataVolumeTemplates", i)
        name = dig(dv, "metadata", "name")
        error = syntax.dns_subdomain(name) if isinstance(name, str) else "is required"
        if error:
            yield Finding((*path, "metadata", "name"), f"DataVolume name {error}", name)
        for spec_key in ("storage", "pvc"):
            size = dig(dv, "spec", spec_key, "resources", "requests", "storage")
            yield from _positive_quantity(size, (*path, "spec", spec_key, "resources", "requests", "storage"), "size")


def _hugepages(domain: dict[str, Any], vmi: Path_) -> Iterator[Finding]:
    """KubeVirt checks the memory request against the page size, or the guest memory when nothing is requested."""
    page = dig(domain, "memory", "hugepages", "pageSize")
    requested = dig(domain, "resources", "requests", "memory")
    path: Path_ = (*vmi, "domain", "resources", "requests", "memory")
    if requested is None:
        requested, path = dig(domain, "memory", "guest"), (*vmi, "domain", "memory", "guest")
    if not isinstance(page, str) or not isinstance(requested, str | int) or isinstance(requested, bool):
        return
    problem = hugepages_problem(requested, page)
    if problem:
        yield Finding(path, problem, requested)


#: KubeVirt refuses inline cloud-init userData or networkData longer than this (bytes); a Secret reference
#: (userDataSecretRef) has no such limit
CLOUD_INIT_INLINE_MAX = 2048
#: the virtnet VM field that fills each cloud-init key most (where a finding on a rendered VM points), and how
#: to shrink it
_CLOUD_INIT_SOURCE = {
    "userData": ("sshKeys", "fewer or shorter SSH keys, or sshKeyDelivery accessCredentials or guestAgent"),
    "networkData": ("interfaces", "fewer addresses, routes or DNS servers"),
}


def _cloud_init_sizes(vmi_spec: dict[str, Any], vmi: Path_) -> Iterator[Finding]:
    volumes = vmi_spec.get("volumes")
    yield from must_be_list(volumes, (*vmi, "volumes"), "volumes")
    for i, volume in enumerate(as_list(volumes)):
        for source in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            inline = volume.get(source) if isinstance(volume, dict) else None
            if not isinstance(inline, dict):
                continue  # most volumes: disks
            for key, (origin, hint) in _CLOUD_INIT_SOURCE.items():
                text = inline.get(key)
                # 4 bytes at most per character in UTF-8: a short text needs no encoding to be measured
                size = utf8_size(text) if isinstance(text, str) and len(text) * 4 > CLOUD_INIT_INLINE_MAX else 0
                if size > CLOUD_INIT_INLINE_MAX:
                    yield Finding(
                        (*vmi, "volumes", i, source, key),
                        f"cloud-init {key} is {size} bytes: KubeVirt refuses inline {key} over "
                        f"{CLOUD_INIT_INLINE_MAX} bytes ({hint})",
                        origin,
                    )


def _nncp(obj: Obj) -> Iterator[Finding]:
    yield from label_map(dig(obj, "spec", "nodeSelector"), ("spec", "nodeSelector"), "nodeSelector")
    desired = dig(obj, "spec", "desiredState")
    yield from must_be_mapping(desired, ("spec", "desiredState"))
    interfaces = dig(desired, "interfaces")
    yield from must_be_list(interfaces, ("spec", "desiredState", "interfaces"), "interfaces")
    for i, iface in enumerate(as_list(interfaces)):
        path: Path_ = ("spec", "desiredState", "interfaces", i)
        if not isinstance(iface, dict):
            yield from must_be_mapping(iface, path, "interface")
            continue
        for block in ("bridge", "link-aggregation", "vlan"):
            yield from must_be_mapping(iface.get(block), (*path, block))
        yield from must_be_mapping(dig(iface, "link-aggregation", "options"), (*path, "link-aggregation", "options"))
        yield from _ifname(iface.get("name"), (*path, "name"), "interface name")
        bridge_ports = dig(iface, "bridge", "port")
        yield from must_be_list(bridge_ports, (*path, "bridge", "port"), "bridge.port")
        for k, port in enumerate(as_list(bridge_ports)):
            name = port.get("name") if isinstance(port, dict) else None
            yield from _ifname(name, (*path, "bridge", "port", k, "name"), "bridge port")
        bond_ports = dig(iface, "link-aggregation", "port")
        yield from must_be_list(bond_ports, (*path, "link-aggregation", "port"), "link-aggregation.port")
        for k, port in enumerate(as_list(bond_ports)):
            yield from _ifname(port, (*path, "link-aggregation", "port", k), "bond port")
        mode = dig(iface, "link-aggregation", "mode")
        for key in mapping(dig(iface, "link-aggregation", "options")):
            problem = nmstate.bond_option_problem(str(key), str(mode))
            if problem:
                yield Finding((*path, "link-aggregation", "options", key), problem, key)
        base = dig(iface, "vlan", "base-iface")
        if base is not None:
            yield from _ifname(base, (*path, "vlan", "base-iface"), "VLAN base")


def _ifname(name: Any, path: Path_, what: str) -> Iterator[Finding]:
    error = syntax.ifname(name) if isinstance(name, str) else "must be a string"
    if error:
        yield Finding(path, f"{what} {name!r} {error}", name)


def _sriov_policy(obj: Obj) -> Iterator[Finding]:
    spec = obj.get("spec") or {}
    yield from label_map(spec.get("nodeSelector"), ("spec", "nodeSelector"), "nodeSelector")
    yield from _resource_name(spec.get("resourceName"))
    yield from _int_range(spec, "numVfs", 0, None)
    yield from _int_range(spec, "priority", 0, 99)
    yield from _int_range(spec, "mtu", 1, None)
    yield from _enum(spec, "deviceType", ("netdevice", "vfio-pci"))
    if spec.get("isRdma") is True and spec.get("deviceType") == "vfio-pci":
        yield Finding(("spec", "isRdma"), "isRdma needs deviceType netdevice (the operator refuses it with vfio-pci)")
    selector = mapping(spec.get("nicSelector"))
    for key in ("vendor", "deviceID"):
        value = selector.get(key)
        if value is not None and not (isinstance(value, str) and PCI_ID.match(value)):
            message = f"nicSelector.{key} {value!r} must be 4 lower-case hex digits (as sysfs spells PCI ids)"
            yield Finding(("spec", "nicSelector", key), message, value)


def _json_object(spec: dict[str, Any], key: str) -> Iterator[Finding]:
    """A field the SR-IOV operator pastes into CNI JSON (``capabilities``, ``ipam``): a string of a JSON object."""
    value = spec.get(key)
    if value is None:
        return
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        parsed = None
    if not isinstance(parsed, dict):
        yield Finding(("spec", key), f"{key} must be a string holding a JSON object", value)


def _sriov_network(obj: Obj) -> Iterator[Finding]:
    spec = obj.get("spec") or {}
    yield from _resource_name(spec.get("resourceName"))
    yield from _int_range(spec, "vlan", 0, 4094)
    yield from _int_range(spec, "vlanQoS", 0, 7)
    yield from _enum(spec, "spoofChk", ("on", "off"))
    yield from _enum(spec, "trust", ("on", "off"))
    yield from _enum(spec, "linkState", ("auto", "enable", "disable"))
    yield from _json_object(spec, "capabilities")
    yield from _json_object(spec, "ipam")
    target = spec.get("networkNamespace")
    if target is not None:
        error = syntax.dns_label(target) if isinstance(target, str) else "must be a string"
        if error:
            yield Finding(("spec", "networkNamespace"), f"networkNamespace {error}", target)


def _resource_name(value: Any) -> Iterator[Finding]:
    if not isinstance(value, str) or not syntax.RESOURCE_NAME.match(value):
        yield Finding(("spec", "resourceName"), f"resourceName {value!r} must be letters, digits and '_'", value)


def _int_range(spec: dict[str, Any], key: str, low: int, high: int | None) -> Iterator[Finding]:
    value = spec.get(key)
    if value is None:
        return
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f"at least {low}"
        yield Finding(("spec", key), f"{key} {value!r} must be a whole number {bound}", value)


def _enum(spec: dict[str, Any], key: str, allowed: tuple[str, ...]) -> Iterator[Finding]:
    value = spec.get(key)
    if value is not None and value not in allowed:
        yield Finding(("spec", key), f"{key} {value!r} must be one of {', '.join(allowed)}", value)


def _nad(obj: Obj) -> Iterator[Finding]:
    config = dig(obj, "spec", "config")
    if config is None:
        return
    try:
        parsed = json.loads(config) if isinstance(config, str) else None
    except ValueError as exc:
        yield Finding(("spec", "config"), f"config is not JSON: {exc}")
        return
    except RecursionError:
        yield Finding(("spec", "config"), "config is JSON nested deeper than any CNI configuration")
        return
    if not isinstance(parsed, dict):
        yield Finding(("spec", "config"), "config must be a string holding a JSON object (the CNI configuration)")
        return
    plugins = parsed.get("plugins")
    yield from must_be_list(plugins, ("spec", "config"), "config's plugins")
    for k, plugin in enumerate(as_list(plugins)):
        yield from must_be_mapping(plugin, ("spec", "config"), f"config's plugins[{k}]")
    for plugin in [parsed, *[p for p in as_list(plugins) if isinstance(p, dict)]]:
        if plugin.get("type") == "bridge" and plugin.get("disableContainerInterface") is True and plugin.get("ipam"):
            yield Finding(
                ("spec", "config"),
                "the bridge CNI plugin refuses IPAM together with disableContainerInterface: true "
                '("cannot use IPAM when DisableContainerInterface flag is set"): drop one of them',
            )


KIND_CHECKS: dict[str, Callable[[Obj], Iterator[Finding]]] = {
    "ConfigMap": config_data,
    "Secret": config_data,
    "Service": _service,
    "VirtualMachine": _virtual_machine,
    "NodeNetworkConfigurationPolicy": _nncp,
    "SriovNetworkNodePolicy": _sriov_policy,
    "SriovNetwork": _sriov_network,
    "NetworkAttachmentDefinition": _nad,
}
