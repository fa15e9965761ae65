"""What a VM on an SR-IOV network needs before it is applied: the SR-IOV operator's node sync (pure).

Why: a VM's ``sriov`` interface asks the device plugin for a VF of the SriovNetwork's ``resourceName``; the VFs
exist only once the operator's config daemon has configured the nodes the SriovNetworkNodePolicy selects. Until
then the launcher pod stays Pending ("Insufficient <resource>"), or lands on a node that is about to be drained.
The operator reports each node's progress in ``SriovNetworkNodeState <node>`` (in its namespace):
``status.syncStatus`` ``InProgress``, ``Succeeded`` or ``Failed`` (with ``lastSyncError``). A node the policy
selects that has no such state is not one the operator manages (no SR-IOV capable NIC): nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reconciler.nmstate import selects
from reconciler.objects import Obj

POLICY, NETWORK, STATE = "SriovNetworkNodePolicy", "SriovNetwork", "SriovNetworkNodeState"
SUCCEEDED, FAILED = "Succeeded", "Failed"


def vm_sriov_networks(vm: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of the networks a VM reaches through ``sriov`` interfaces that are not being unplugged."""
    tspec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    ifaces = ((tspec.get("domain") or {}).get("devices") or {}).get("interfaces") or []
    sriov = {i.get("name") for i in ifaces if "sriov" in i and i.get("state") != "absent"}
    out = set()
    for net in tspec.get("networks") or []:
        target = str((net.get("multus") or {}).get("networkName") or "")
        if net.get("name") in sriov and target:
            ns, _, name = target.rpartition("/")
            out.add((ns or (vm.get("metadata") or {}).get("namespace", ""), name))
    return out


def network_resources(objects: Iterable[Obj]) -> dict[tuple[str, str], str | None]:
    """(namespace, name) of each SriovNetwork's NAD (it appears in ``spec.networkNamespace`` under the network's
    own name) → the ``resourceName`` whose VFs it hands out: how a VM's interface leads to a node policy."""
    return {
        ((n.get("spec") or {}).get("networkNamespace", ""), n["metadata"]["name"]): (n.get("spec") or {}).get(
            "resourceName"
        )
        for n in objects
        if n["kind"] == NETWORK
    }


def policies_for(vm: Obj, resources: dict[tuple[str, str], str | None], policies: Iterable[Obj]) -> list[Obj]:
    """The SriovNetworkNodePolicies (among ``policies``) that provide the VFs of ``vm``'s SR-IOV networks,
    matched by resourceName through ``resources`` (:func:`network_resources`). A VM without an SR-IOV
    network costs no scan."""
    wanted = vm_sriov_networks(vm)
    if not wanted:
        return []
    names = {resources[key] for key in wanted if key in resources}
    return [p for p in policies if (p.get("spec") or {}).get("resourceName") in names]


def unsynced(policies: Iterable[Obj], nodes: Iterable[Obj], states: Iterable[Obj]) -> tuple[list[str], list[str]]:
    """(nodes still syncing, nodes that failed) among those the policies select, as ``node: status`` texts."""
    by_node: dict[tuple[str, str], Obj] = {
        ((s.get("metadata") or {}).get("namespace", ""), s["metadata"]["name"]): s for s in states
    }
    waiting: list[str] = []
    failed: list[str] = []
    for policy in policies:
        ns = policy["metadata"].get("namespace", "")
        selector: dict[str, Any] = (policy.get("spec") or {}).get("nodeSelector") or {}
        for node in nodes:
            name = node["metadata"]["name"]
            if not selects(selector, (node["metadata"].get("labels") or {})) or (ns, name) not in by_node:
                continue
            status = by_node[(ns, name)].get("status") or {}
            sync = str(status.get("syncStatus") or "not reported")
            if sync == FAILED:
                failed.append(f"{name}: {status.get('lastSyncError') or 'sync failed'}")
            elif sync != SUCCEEDED:
                waiting.append(f"{name}: {sync}")
    return sorted(set(waiting)), sorted(set(failed))
