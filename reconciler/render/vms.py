"""VMs → KubeVirt VirtualMachines, their SSH-key Secrets and Services (pure).

Interfaces and networks are paired one-to-one by name, pod network first. Static addresses go into
cloud-init ``networkData`` (network-config v2) matched by MAC, which is why the model insists on a MAC
wherever an address is given. A MAC left unset is not rendered at all, so KubeMacPool's choice on the
live object stays the only one (the diff treats it as the cluster's field, not drift).
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any

import yaml

from reconciler import labels

try:  # libyaml: the same bytes for these plain documents, ~10x faster than the pure-Python emitter
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
from reconciler.model.cluster import METALLB_ADDRESS_POOL, ClusterSpec
from reconciler.model.repo import Entry
from reconciler.model.vm import DataVolumeBoot, Interface, VMSpec
from reconciler.objects import Obj
from reconciler.render.networks import sriov_network_name

DPDK_ANNOTATIONS = {
    "cpu-load-balancing.crio.io": "disable",
    "cpu-quota.crio.io": "disable",
    "irq-load-balancing.crio.io": "disable",
}


def _binding(kind: str) -> str:
    return "sriov" if kind == "SriovNetwork" else "bridge"


def _multus_name(iface: Interface, kind: str, namespace: str) -> str:
    if kind == "SriovNetwork":
        return sriov_network_name(iface.network, namespace)
    return iface.network


def _network_data(spec: VMSpec) -> str | None:
    """network-config v2 for the interfaces with a static address or DHCP, matched by MAC, and then for the
    pod interface too (DHCP): a guest that brings up only the NICs its networkData lists (netplan) would
    otherwise lose the pod network as soon as a secondary NIC is configured."""
    ethernets: dict[str, Any] = {}
    for iface in spec.interfaces:
        if not iface.in_network_data:
            continue
        eth: dict[str, Any] = {"match": {"macaddress": iface.mac}, "set-name": iface.ifname[:15]}
        if iface.dhcp:
            eth["dhcp4"] = True
        addresses = [a for a in (iface.ipv4, iface.ipv6) if a]
        if addresses:
            eth["addresses"] = addresses
        routes = [{"to": to, "via": gw} for to, gw in (("0.0.0.0/0", iface.gateway4), ("::/0", iface.gateway6)) if gw]
        if routes:
            eth["routes"] = routes
        if iface.dns:
            eth["nameservers"] = {"addresses": list(iface.dns)}
        ethernets[iface.ifname] = eth
    if not ethernets:
        return None
    if spec.pod_network:
        if spec.pod_mac:
            ethernets["default"] = {"match": {"macaddress": spec.pod_mac}, "dhcp4": True}
        else:
            ethernets[spec.pod_guest_name] = {"dhcp4": True}
    return _dump({"version": 2, "ethernets": ethernets})


def needs_guest_agent(spec: VMSpec, cluster: ClusterSpec) -> bool:
    """Whether cloud-init installs and starts qemu-guest-agent: asked for, or (by default) when something
    depends on it: SSH keys it propagates, or FQDNs, which KubeSecondaryDNS serves from the addresses the
    agent reports for secondary interfaces."""
    if spec.install_guest_agent is not None:
        return spec.install_guest_agent
    fqdn = cluster.fqdn_domain is not None and bool(spec.interfaces)
    return spec.ssh_key_delivery == "guestAgent" or fqdn


def _user_data(spec: VMSpec, agent: bool) -> str:
    keys = tuple(spec.ssh_keys) if spec.ssh_key_delivery == "cloudInit" else ()
    return _cloud_config(spec.user, keys, agent, spec.ssh_key_delivery == "guestAgent")


#: cloud-config that installs and starts the QEMU guest agent; on SELinux guests the agent may then write
#: authorized_keys (KubeVirt's qemuGuestAgent key propagation), elsewhere the guarded command does nothing
_AGENT_PACKAGES = ["qemu-guest-agent"]
_AGENT_START = ["systemctl", "enable", "--now", "qemu-guest-agent"]
_AGENT_SSH = ["sh", "-c", "command -v setsebool >/dev/null && setsebool -P virt_qemu_ga_manage_ssh on || true"]


@functools.lru_cache(maxsize=1024)
def _cloud_config(user: str, keys: tuple[str, ...], agent: bool = False, agent_keys: bool = False) -> str:
    """Most VMs of a team share a user and keys: render that text once (pure, so caching is safe)."""
    config: dict[str, Any] = {"user": user}
    if keys:
        config["ssh_authorized_keys"] = list(keys)
    if agent:
        config["packages"] = list(_AGENT_PACKAGES)
        config["runcmd"] = [list(_AGENT_START)] + ([list(_AGENT_SSH)] if agent_keys else [])
    return "#cloud-config\n" + _dump(config)


def _dump(data: dict[str, Any]) -> str:
    """cloud-init YAML for thousands of VMs: rendering spent half its time in the pure-Python emitter, then
    a fifth of it in PyYAML's representer. :func:`_block` writes the same bytes for the documents made here
    (mappings, lists, short plain scalars) and says when it cannot; then PyYAML does."""
    out: list[str] = []
    if _block(data, "", out):
        return "".join(out)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True)


#: scalars :func:`_block` writes itself, when PyYAML's resolver also reads them back as strings: no blank, no
#: quote or flow character, not starting with an indicator, not ending with ':' (libyaml quotes all of those)
_PLAIN = re.compile(r"(?:[0-9A-Za-z]|::)[0-9A-Za-z.:/_-]*(?<!:)\Z")
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


@functools.lru_cache(maxsize=1 << 16)
def _plain(value: str) -> bool:
    return bool(_PLAIN.match(value)) and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR


def _scalar(value: object) -> str | None:
    if type(value) is bool:  # before int: PyYAML's SafeDumper writes booleans as true/false
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is str and _plain(value):
        return value
    return None


def _block(data: dict[str, Any], pad: str, out: list[str], first: str | None = None) -> bool:
    """``data`` as PyYAML's block style with sorted keys (lists not indented under their key), into ``out``;
    False when a key or value is one it does not write exactly like PyYAML (``first``: the prefix of the
    first line, ``- `` for a mapping in a list)."""
    if not data:
        return False
    for key in sorted(data):
        name, value = _scalar(key), data[key]
        lead, first = (pad if first is None else first), None
        if name is None:
            return False
        if isinstance(value, dict):
            out.append(f"{lead}{name}:\n")
            if not _block(value, pad + "  ", out):
                return False
        elif isinstance(value, list):
            if not value:
                return False
            out.append(f"{lead}{name}:\n")
            for item in value:
                if isinstance(item, dict):
                    if not _block(item, pad + "  ", out, first=pad + "- "):
                        return False
                elif (text := _scalar(item)) is not None:
                    out.append(f"{pad}- {text}\n")
                else:
                    return False
        elif (text := _scalar(value)) is not None:
            out.append(f"{lead}{name}: {text}\n")
        else:
            return False
    return True


def ssh_secret_name(vm: str) -> str:
    return f"{vm}-ssh-keys"


def _networking(spec: VMSpec, networks: dict[str, Entry[Any]], ns: str) -> tuple[list[Obj], list[Obj]]:
    """The VM's ``interfaces`` and ``networks``, paired by name: the pod network first, then each NIC."""
    interfaces: list[Obj] = []
    nets: list[Obj] = []
    if spec.pod_network:
        pod: Obj = {"name": "default", "masquerade": {}}
        if spec.pod_mac:
            pod["macAddress"] = spec.pod_mac
        interfaces.append(pod)
        nets.append({"name": "default", "pod": {}})
    for iface in spec.interfaces:
        kind = networks[iface.network].kind
        binding = _binding(kind)
        rendered: Obj = {"name": iface.ifname, binding: {}}
        if binding == "bridge":
            rendered["model"] = iface.model
        if iface.mac:
            rendered["macAddress"] = iface.mac
        interfaces.append(rendered)
        nets.append({"name": iface.ifname, "multus": {"networkName": _multus_name(iface, kind, ns)}})
    return interfaces, nets


def _data_volume_source(dv: DataVolumeBoot) -> Obj:
    """The CDI source of the root disk: the model allows exactly one of http, registry and pvc."""
    if dv.http:
        return {"http": {"url": dv.http.url}}
    if dv.registry:
        return {"registry": {"url": dv.registry.url}}
    assert dv.pvc is not None
    return {"pvc": {"name": dv.pvc.name, "namespace": dv.pvc.namespace}}


def _disks(spec: VMSpec, name: str, agent: bool) -> tuple[list[Obj], list[Obj]]:
    """``volumes`` (root disk, cloud-init disk) and ``dataVolumeTemplates`` (a DataVolume root disk)."""
    volumes: list[Obj] = []
    data_volumes: list[Obj] = []
    if spec.boot.container_disk:
        volumes.append({"name": "rootdisk", "containerDisk": {"image": spec.boot.container_disk}})
    else:
        dv = spec.boot.data_volume
        assert dv is not None
        storage: Obj = {"resources": {"requests": {"storage": dv.size}}}
        if dv.storage_class:
            storage["storageClassName"] = dv.storage_class
        dv_spec = {"storage": storage, "source": _data_volume_source(dv)}
        data_volumes.append({"metadata": {"name": f"{name}-rootdisk"}, "spec": dv_spec})
        volumes.append({"name": "rootdisk", "dataVolume": {"name": f"{name}-rootdisk"}})
    cloud_init: Obj = {"userData": _user_data(spec, agent)}
    network_data = _network_data(spec)
    if network_data:
        cloud_init["networkData"] = network_data
    source = "cloudInitConfigDrive" if spec.cloud_init == "configDrive" else "cloudInitNoCloud"
    volumes.append({"name": "cloudinitdisk", source: cloud_init})
    return volumes, data_volumes


def _domain(spec: VMSpec, interfaces: list[Obj]) -> tuple[Obj, dict[str, str]]:
    """The VMI's ``domain`` and the pod annotations that go with it (DPDK tuning, the mesh sidecar)."""
    cpu: Obj = {"cores": spec.cpu}
    for key, value in (("sockets", spec.sockets), ("threads", spec.threads), ("model", spec.cpu_model)):
        if value is not None:
            cpu[key] = value
    if spec.dedicated:
        cpu["dedicatedCpuPlacement"] = True
    if spec.numa:
        cpu["numa"] = {spec.numa: {}}
    memory: Obj = {"guest": spec.memory}
    if spec.page_size:
        memory["hugepages"] = {"pageSize": spec.page_size}
    devices: Obj = {
        "disks": [
            {"name": "rootdisk", "disk": {"bus": "virtio"}},
            {"name": "cloudinitdisk", "disk": {"bus": "virtio"}},
        ],
        "interfaces": interfaces,
    }
    annotations: dict[str, str] = {}
    if spec.dpdk:
        cpu["isolateEmulatorThread"] = True
        devices["networkInterfaceMultiqueue"] = True
        annotations.update(DPDK_ANNOTATIONS)
    if spec.service_mesh:
        annotations["sidecar.istio.io/inject"] = "true"
    return {"cpu": cpu, "memory": memory, "devices": devices}, annotations


def _vm_annotations(entry: Entry[VMSpec], cluster: ClusterSpec) -> dict[str, str]:
    """The repo's annotations plus what the engine reads back: may it restart the VM, which NICs hotplug."""
    annotations = {**entry.meta.annotations, labels.RESTART: entry.spec.restart or cluster.vm_restart}
    hotplug = sorted(i.ifname for i in entry.spec.interfaces if i.hotplug)
    if hotplug:
        annotations[labels.HOTPLUG] = ",".join(hotplug)
    return annotations


def _propagation(spec: VMSpec) -> Obj:
    """How KubeVirt hands the key Secret to the guest: once at boot through the cloud-init disk, or kept in
    ``authorized_keys`` by the guest agent while the VM runs (a changed Secret reaches it without a restart)."""
    if spec.ssh_key_delivery == "guestAgent":
        return {"qemuGuestAgent": {"users": [spec.user]}}
    return {spec.cloud_init: {}}


def render_vm(entry: Entry[VMSpec], networks: dict[str, Entry[Any]], cluster: ClusterSpec) -> list[Obj]:
    """The VirtualMachine, its SSH-key Secret (``accessCredentials`` delivery) and its Services."""
    spec, name, ns = entry.spec, entry.name, entry.meta.namespace
    assert ns is not None
    interfaces, nets = _networking(spec, networks, ns)
    volumes, data_volumes = _disks(spec, name, needs_guest_agent(spec, cluster))
    domain, template_annotations = _domain(spec, interfaces)
    template_meta: Obj = {"labels": {labels.VM: name}}
    if template_annotations:
        template_meta["annotations"] = dict(sorted(template_annotations.items()))
    vmi_spec: Obj = {"domain": domain, "networks": nets, "volumes": volumes}
    if spec.node_selector:
        vmi_spec["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    key_secret = bool(spec.ssh_keys) and spec.ssh_key_delivery != "cloudInit"
    if key_secret:
        vmi_spec["accessCredentials"] = [
            {
                "sshPublicKey": {
                    "source": {"secret": {"secretName": ssh_secret_name(name)}},
                    "propagationMethod": _propagation(spec),
                }
            }
        ]
    vm_spec: Obj = {"runStrategy": spec.run_strategy, "template": {"metadata": template_meta, "spec": vmi_spec}}
    if data_volumes:
        vm_spec["dataVolumeTemplates"] = data_volumes
    metadata = {
        "name": name,
        "namespace": ns,
        "labels": dict(entry.meta.labels),
        "annotations": _vm_annotations(entry, cluster),
    }
    out: list[Obj] = [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": metadata, "spec": vm_spec}]
    if key_secret:
        out.append(_ssh_secret(name, ns, spec.ssh_keys))
    out += render_services(entry)
    return out


def _ssh_secret(vm: str, ns: str, keys: list[str]) -> Obj:
    data = {f"key{i}": base64.b64encode(k.encode()).decode() for i, k in enumerate(keys, 1)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ssh_secret_name(vm), "namespace": ns},
        "type": "Opaque",
        "data": data,
    }


def render_services(entry: Entry[VMSpec]) -> list[Obj]:
    """Group ``expose`` entries into Services: one per (name), all selecting the VM's launcher pod."""
    ns = entry.meta.namespace
    services: dict[str, Obj] = {}
    for exp in entry.spec.expose:
        name = exp.service_name(entry.name)
        svc = services.setdefault(
            name,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"type": exp.type, "selector": {labels.VM: entry.name}, "ports": []},
            },
        )
        port: dict[str, Any] = {
            "name": exp.port_name,
            "port": exp.port,
            "targetPort": exp.target_port or exp.port,
            "protocol": exp.protocol,
        }
        if exp.node_port is not None:
            port["nodePort"] = exp.node_port
        svc["spec"]["ports"].append(port)
        if exp.pool:
            svc["metadata"]["annotations"] = {METALLB_ADDRESS_POOL: exp.pool}
    return list(services.values())
