"""Networks → NetworkAttachmentDefinitions and SR-IOV operator objects (pure).

NAD configs are CNI JSON strings; they are serialised with sorted keys so that the same network always
renders to the same bytes (the diff compares strings, and a reordered key would be a false change).
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.model.cluster import ClusterSpec
from reconciler.model.networks import BridgeNetworkSpec, OvnNetworkSpec, SriovNetworkSpec
from reconciler.model.repo import Entry
from reconciler.objects import Obj

CNI_VERSION = "0.3.1"
BRIDGE_RESOURCE_ANNOTATION = "k8s.v1.cni.cncf.io/resourceName"
SRIOV_CAPABLE = {"feature.node.kubernetes.io/network-sriov.capable": "true"}


def nad(name: str, namespace: str, config: dict[str, Any], annotations: dict[str, str] | None = None) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": {"config": _json(config)},
    }


def _bridge_config(name: str, spec: BridgeNetworkSpec) -> dict[str, Any]:
    config: dict[str, Any] = {
        "cniVersion": CNI_VERSION,
        "name": name,
        "type": "bridge",
        "bridge": spec.bridge,
        "macspoofchk": spec.mac_spoof_check,
        "disableContainerInterface": True,
        "preserveDefaultVlan": False,
    }
    if spec.vlan is not None:
        config["vlan"] = spec.vlan
    if spec.mtu is not None:
        config["mtu"] = spec.mtu
    return config


def bridge_nads(entry: Entry[BridgeNetworkSpec]) -> list[Obj]:
    """One NAD per namespace; the resourceName annotation keeps VMs off nodes without the bridge."""
    annotations = {BRIDGE_RESOURCE_ANNOTATION: f"bridge.network.kubevirt.io/{entry.spec.bridge}"}
    config = _bridge_config(entry.name, entry.spec)
    return [nad(entry.name, ns, config, annotations) for ns in entry.spec.namespaces]


def migration_nad(cluster: ClusterSpec, bridge: Entry[BridgeNetworkSpec]) -> Obj:
    """The dedicated live-migration network: a bridge NAD with whereabouts IPAM in the HCO namespace.

    virt-handler pods, not VMs, attach to it, and they need an address on it (the IPAM): so the container
    side of the veth keeps its interface (no ``disableContainerInterface``, which the bridge plugin refuses
    together with IPAM) and MAC spoof checking, a VM setting, is left out.
    """
    assert cluster.live_migration is not None
    name = migration_nad_name(cluster)
    config = _bridge_config(name, bridge.spec)
    for vm_only in ("macspoofchk", "disableContainerInterface"):
        config.pop(vm_only)
    config["ipam"] = {"type": "whereabouts", "range": cluster.live_migration.ip_range}
    return nad(name, cluster.hyper_converged.namespace, config)


def migration_nad_name(cluster: ClusterSpec) -> str:
    assert cluster.live_migration is not None
    return cluster.live_migration.network


def ovn_nads(entry: Entry[OvnNetworkSpec]) -> list[Obj]:
    spec = entry.spec
    out = []
    for ns in spec.namespaces:
        config: dict[str, Any] = {
            "cniVersion": CNI_VERSION,
            "name": entry.name,  # cluster-wide: the same name is the same network in every namespace
            "type": "ovn-k8s-cni-overlay",
            "topology": spec.topology,
            "netAttachDefName": f"{ns}/{entry.name}",
        }
        if spec.subnets:
            config["subnets"] = ",".join(spec.subnets)
        if spec.exclude_subnets:
            config["excludeSubnets"] = ",".join(spec.exclude_subnets)
        if spec.mtu is not None:
            config["mtu"] = spec.mtu
        if spec.allow_persistent_ips:
            config["allowPersistentIPs"] = True
        if spec.topology == "localnet":
            config["physicalNetworkName"] = spec.physical_network_name or entry.name
            if spec.vlan is not None:
                config["vlanID"] = spec.vlan
        out.append(nad(entry.name, ns, config))
    return out


def sriov_network_name(network: str, namespace: str) -> str:
    """SriovNetworks all live in the operator namespace, so the name carries the target namespace."""
    return f"{network}-{namespace}"


def _nic_selector(spec: SriovNetworkSpec) -> dict[str, Any]:
    """``nicSelector``: the PFs by name, PCI address, or vendor and device id (all given must match)."""
    selector: dict[str, Any] = {}
    if spec.pf_names:
        selector["pfNames"] = list(spec.pf_names)
    if spec.root_devices:
        selector["rootDevices"] = list(spec.root_devices)
    if spec.vendor:
        selector["vendor"] = spec.vendor
    if spec.device_id:
        selector["deviceID"] = spec.device_id
    return selector


def _sriov_network_spec(spec: SriovNetworkSpec, ns: str) -> dict[str, Any]:
    """A SriovNetwork's spec; ``capabilities`` and ``ipam`` are CNI JSON strings (sorted keys, stable bytes)."""
    net_spec: dict[str, Any] = {
        "resourceName": spec.resource_name,
        "networkNamespace": ns,
        "spoofChk": "on" if spec.spoof_check else "off",
        "trust": "on" if spec.trust else "off",
    }
    if spec.vlan:
        net_spec["vlan"] = spec.vlan
    if spec.link_state is not None:
        net_spec["linkState"] = spec.link_state
    if spec.capabilities:
        net_spec["capabilities"] = _json(dict.fromkeys(sorted(spec.capabilities), True))
    if spec.ipam is not None:
        ipam: dict[str, Any] = {"type": spec.ipam.type}
        if spec.ipam.range:
            ipam["range"] = spec.ipam.range
        if spec.ipam.exclude:
            ipam["exclude"] = list(spec.ipam.exclude)
        if spec.ipam.gateway:
            ipam["gateway"] = spec.ipam.gateway
        net_spec["ipam"] = _json(ipam)
    return net_spec


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sriov_objects(entry: Entry[SriovNetworkSpec], operator_ns: str) -> list[Obj]:
    spec = entry.spec
    policy_spec: dict[str, Any] = {
        "resourceName": spec.resource_name,
        "nodeSelector": dict(sorted((spec.node_selector or SRIOV_CAPABLE).items())),
        "numVfs": spec.num_vfs,
        "nicSelector": _nic_selector(spec),
        "deviceType": spec.device_type,
        "priority": spec.priority,
    }
    if spec.is_rdma:
        policy_spec["isRdma"] = True
    if spec.mtu is not None:
        policy_spec["mtu"] = spec.mtu
    out: list[Obj] = [
        {
            "apiVersion": "sriovnetwork.openshift.io/v1",
            "kind": "SriovNetworkNodePolicy",
            "metadata": {"name": entry.name, "namespace": operator_ns},
            "spec": policy_spec,
        }
    ]
    for ns in spec.namespaces:
        out.append(
            {
                "apiVersion": "sriovnetwork.openshift.io/v1",
                "kind": "SriovNetwork",
                "metadata": {"name": sriov_network_name(entry.name, ns), "namespace": operator_ns},
                "spec": _sriov_network_spec(spec, ns),
            }
        )
    return out
