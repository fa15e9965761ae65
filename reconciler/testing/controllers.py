"""Simulated cluster controllers for the API double: just enough nmstate and KubeVirt to test health checks.

They are test fixtures, not products. Each controller is a ``tick()`` that looks at the store and writes what
the real controller would eventually write (through the store, so writes bump resourceVersions and emit
watch events, but are not counted as client requests). ``ApiDouble`` calls ``tick()`` on a background thread
every ``tick_interval`` seconds, or, with ``tick_interval=None``, only when a test calls ``api.tick()``,
which makes the sequence of states fully deterministic.

Nodes are given as ``nodes=[{"name": "worker-0", "labels": {...}, "interfaces": [{"name": "eth0",
"type": "ethernet", "state": "up", "mac-address": "...", "mtu": 1500, "ipv4": {...}}], "routes": {...}}]``.

nmstate: a new NNCP generation is ``Progressing`` (with per-node NNCEs ``<node>.<policy>`` Progressing) for
``delay_ticks`` ticks, then ``Available`` (SuccessfullyConfigured) and the NodeNetworkStates gain/lose the
interfaces -- or ``Degraded`` (FailedToConfigure, message naming node and NIC) when a bridge port, bond port
or VLAN base-iface exists neither on the node nor in the same policy. No matching node: ``Ignored``
(NoMatchingNode).

kubevirt: the simulated KubeMacPool (:mod:`.kubemacpool`) gives every VM interface without one a ``macAddress``,
refuses a MAC another VM holds and releases a deleted VM's MACs (in-process over the double's Store; against a real
server the same pool is an admission webhook, :mod:`reconciler.testing.controlplane.kubemacpool`). A VM with
``runStrategy`` Always/RerunOnFailure (or ``running: true``) gets a VMI (status.interfaces with name, mac, IPs:
10.128.x.y on the pod network, static addresses from cloud-init networkData on secondary ones) and is Ready/Running;
stopping removes the VMI. Hot-plug: adding a bridge interface+multus network, or setting it ``state: absent``, is
applied to the running VMI's spec; a plugged one reaches ``status.interfaces`` (the guest) only after a migration
(:mod:`.migrations`), unless the KubeVirt CR says ``vmRolloutStrategy: LiveUpdate``; once an unplug is done virt-
controller drops the absent interface and its network from the VM spec itself. Any other template change (removing an
interface without ``state: absent`` first, too) adds ``RestartRequired``. Known gap: changing attributes of an
existing bridge interface counts as hot-pluggable. A restart (virt-api's ``stateChangeRequests`` Stop with the VMI's
uid on the VM status) deletes the VMI and starts a fresh one. The VMI is written by virt-controller, its status by
virt-handler, the VM status by virt-controller, as on a real cluster.

The controllers see the objects through :class:`~reconciler.testing.objectstore.ObjectStore`, so the same code runs
in the double and, as ``python -m reconciler.testing.controlplane.simulate``, against a real apiserver.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Sequence
from typing import Any

from reconciler.testing import vmspec
from reconciler.testing.errors import ApiError
from reconciler.testing.kubemacpool import KubeMacPool
from reconciler.testing.migrations import MigrationController
from reconciler.testing.objectstore import ObjectStore
from reconciler.testing.sriov import SriovController
from reconciler.testing.statuswrite import condition, set_status
from reconciler.testing.statuswrite import rt as _rt
from reconciler.testing.store import Obj, Store, now
from reconciler.testing.store import ResourceType as _RT

NMSTATE_V1, NMSTATE_V1B1, KUBEVIRT = "nmstate.io/v1", "nmstate.io/v1beta1", "kubevirt.io/v1"
HANDLER = "virt-handler"  # the node agent that reports a running VMI's interfaces


def build_controllers(names: Sequence[str], store: ObjectStore, nodes: Sequence[dict[str, Any]], *,
                      delay_ticks: int = 2, seed_nodes: bool = True) -> list[Any]:
    """The controllers named in ``names`` (``"nmstate"``, ``"kubevirt"``, ``"sriov"``), wired to ``store``.

    ``seed_nodes=False`` when the Nodes and NodeNetworkStates already exist (a real control plane seeds them).
    """
    known = {"nmstate", "kubevirt", "sriov"}
    if unknown := set(names) - known:
        raise ValueError(f"unknown simulated controllers {sorted(unknown)}; known: {sorted(known)}")
    out: list[Any] = []
    if "nmstate" in names:
        out.append(NmstateController(store, nodes, delay_ticks=delay_ticks, seed_nodes=seed_nodes))
    if "kubevirt" in names:
        kubevirt = KubevirtController(store)
        out += [kubevirt, MigrationController(store, kubevirt)]
    if "sriov" in names:
        out.append(SriovController(store, nodes, delay_ticks=delay_ticks))
    return out


# ---- nmstate ---------------------------------------------------------------------------------------------------


def missing_nics(desired: list[dict[str, Any]], present: set[str]) -> list[str]:
    """NICs the desired interfaces need (bridge/bond ports, VLAN base) that neither exist nor are created."""
    # a policy creates bridges, bonds and VLANs; an ethernet entry only configures a NIC that must exist
    created = {i.get("name") for i in desired if i.get("state") != "absent" and i.get("type") != "ethernet"}
    needed: list[str] = []
    for iface in desired:
        if iface.get("state") == "absent":
            continue
        if iface.get("type") == "ethernet":
            needed.append(iface.get("name", ""))
        ports = (iface.get("bridge") or {}).get("port") or []
        needed += [p.get("name", "") if isinstance(p, dict) else str(p) for p in ports]
        agg = iface.get("link-aggregation") or {}
        needed += [str(p) for p in agg.get("port") or agg.get("slaves") or []]
        if base := (iface.get("vlan") or {}).get("base-iface"):
            needed.append(base)
    return [n for n in dict.fromkeys(needed) if n not in present and n not in created]


class NmstateController:
    """Simulates kubernetes-nmstate: NNCP -> NNCEs -> NodeNetworkState."""

    manager = "nmstate-handler"

    def __init__(self, store: ObjectStore, nodes: Sequence[dict[str, Any]], *, delay_ticks: int = 2,
                 seed_nodes: bool = True) -> None:
        self.store, self.delay_ticks = store, delay_ticks
        self.nodes = {n["name"]: n for n in nodes}
        self._progress: dict[str, tuple[int, int]] = {}  # policy -> (generation, ticks left)
        for n in nodes if seed_nodes else ():
            store.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n["name"],
                                                                        "labels": n.get("labels", {})},
                       "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
                      manager="kubelet")
            store.put({"apiVersion": NMSTATE_V1B1, "kind": "NodeNetworkState", "metadata": {"name": n["name"]},
                       "status": {"currentState": {"interfaces": copy.deepcopy(n.get("interfaces", [])),
                                                   "routes": copy.deepcopy(n.get("routes", {}))},
                                  "lastSuccessfulUpdateTime": now()}}, manager=self.manager)

    def selected(self, policy: Obj) -> list[str]:
        selector = (policy.get("spec") or {}).get("nodeSelector") or {}
        return [name for name, n in sorted(self.nodes.items())
                if all((n.get("labels") or {}).get(k) == v for k, v in selector.items())]

    def tick(self) -> None:
        # names and generations only: a policy is read whole when something is to be done with it
        policies = self.store.heads(NMSTATE_V1, "NodeNetworkConfigurationPolicy")
        live = {name for name, _, _ in policies}
        for nnce, _, labels in self.store.heads(NMSTATE_V1B1, "NodeNetworkConfigurationEnactment"):
            if labels.get("nmstate.io/policy") not in live:
                self.store.delete(_rt(self.store, NMSTATE_V1B1, "NodeNetworkConfigurationEnactment"), "", nnce)
        for name, gen, _ in policies:
            seen = self._progress.get(name)
            if seen is None or seen[0] != gen:
                policy = self.store.find(NMSTATE_V1, "NodeNetworkConfigurationPolicy", name)
                if policy is not None:  # deleted since the heads were read: the next tick forgets it
                    self._start(policy, int(policy["metadata"].get("generation", 1)))
            elif seen[1] > 0:
                self._progress[name] = (gen, seen[1] - 1)
                if seen[1] == 1:
                    policy = self.store.find(NMSTATE_V1, "NodeNetworkConfigurationPolicy", name)
                    if policy is not None:
                        self._finish(policy)
        for gone in set(self._progress) - live:
            del self._progress[gone]

    def _policy_status(self, policy: Obj, available: bool, degraded: bool, progressing: bool, reason: str,
                       message: str, ignored: bool = False) -> None:
        prev = (policy.get("status") or {}).get("conditions") or []
        conds = [condition(prev, "Available", available, reason if available else "", message if available else ""),
                 condition(prev, "Degraded", degraded, reason if degraded else "", message if degraded else ""),
                 condition(prev, "Progressing", progressing, reason if progressing else "",
                           message if progressing else "")]
        if ignored:
            conds.append(condition(prev, "Ignored", True, reason, message))
        set_status(self.store, NMSTATE_V1, "NodeNetworkConfigurationPolicy", policy,
                   {"conditions": conds, "lastUnavailableNodeCountUpdate": now()}, self.manager)

    def _enactment(self, policy: Obj, node: str, state: str, message: str) -> None:
        """``state`` is one of Available, Failing, Progressing, Pending, Aborted."""
        pname = policy["metadata"]["name"]
        existing = self.store.find(NMSTATE_V1B1, "NodeNetworkConfigurationEnactment", f"{node}.{pname}")
        prev = ((existing or {}).get("status") or {}).get("conditions") or []
        reasons = {"Available": "SuccessfullyConfigured", "Failing": "FailedToConfigure",
                   "Progressing": "ConfigurationProgressing", "Pending": "MaxUnavailableLimitReached",
                   "Aborted": "ConfigurationAborted"}
        conds = [condition(prev, t, t == state, reasons[t] if t == state else "", message if t == state else "")
                 for t in reasons]
        self.store.put({"apiVersion": NMSTATE_V1B1, "kind": "NodeNetworkConfigurationEnactment",
                        "metadata": {"name": f"{node}.{pname}",
                                     "labels": {"nmstate.io/policy": pname, "nmstate.io/node": node}},
                        "status": {"conditions": conds, "desiredState": (policy.get("spec") or {}).get(
                            "desiredState", {}), "policyGeneration": policy["metadata"].get("generation", 1)}},
                       manager=self.manager)

    def _start(self, policy: Obj, gen: int) -> None:
        name = policy["metadata"]["name"]
        nodes = self.selected(policy)
        if not nodes:
            self._progress[name] = (gen, 0)
            self._policy_status(policy, False, False, False, "NoMatchingNode",
                                "Policy does not match any node", ignored=True)
            return
        self._progress[name] = (gen, max(self.delay_ticks, 0))
        self._policy_status(policy, False, False, True, "ConfigurationProgressing",
                            f"Policy is progressing 0/{len(nodes)} nodes finished")
        for node in nodes:
            self._enactment(policy, node, "Progressing", "Applying desired state")
        if self.delay_ticks <= 0:
            self._finish(policy)

    def _finish(self, policy: Obj) -> None:
        policy = self.store.find(NMSTATE_V1, "NodeNetworkConfigurationPolicy", policy["metadata"]["name"]) or policy
        desired = ((policy.get("spec") or {}).get("desiredState") or {}).get("interfaces") or []
        nodes, failures = self.selected(policy), []
        for node in nodes:
            nns = self.store.find(NMSTATE_V1B1, "NodeNetworkState", node) or {}
            current = ((nns.get("status") or {}).get("currentState") or {}).get("interfaces") or []
            missing = missing_nics(desired, {i.get("name", "") for i in current})
            if missing:
                msg = f"failed to configure node {node}: interface {', '.join(missing)} not found on the node"
                failures.append(msg)
                self._enactment(policy, node, "Failing", msg)
                continue
            self._enactment(policy, node, "Available", "successfully reconciled")
            self._apply_to_node(nns, current, desired)
        if failures:
            self._policy_status(policy, False, True, False, "FailedToConfigure",
                                f"{len(failures)}/{len(nodes)} nodes failed to configure: " + "; ".join(failures))
        else:
            self._policy_status(policy, True, False, False, "SuccessfullyConfigured",
                                f"{len(nodes)}/{len(nodes)} nodes successfully configured")

    def _apply_to_node(self, nns: Obj, current: list[dict[str, Any]], desired: list[dict[str, Any]]) -> None:
        by_name = {i.get("name"): copy.deepcopy(i) for i in current}
        for iface in desired:
            if iface.get("state") == "absent":
                by_name.pop(iface.get("name"), None)
            else:
                merged = {**by_name.get(iface.get("name"), {}), **copy.deepcopy(iface)}
                merged.setdefault("state", "up")
                by_name[iface.get("name")] = merged
        status = copy.deepcopy(nns.get("status") or {})
        status.setdefault("currentState", {})["interfaces"] = list(by_name.values())
        if list(by_name.values()) != current:
            status["lastSuccessfulUpdateTime"] = now()
            set_status(self.store, NMSTATE_V1B1, "NodeNetworkState", nns, status, self.manager)


# ---- kubevirt ---------------------------------------------------------------------------------------------------


class KubevirtController:
    """Simulates virt-controller (VM -> VMI, status) and KubeMacPool (MACs) for ``kubevirt.io/v1``."""

    manager = "virt-controller"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        # in-process admission over the double's Store; a real apiserver calls the pool as a webhook instead
        self.macpool = KubeMacPool(store) if isinstance(store, Store) else None

    def tick(self) -> None:
        vms = self.store.objects(KUBEVIRT, "VirtualMachine")
        names = {(v["metadata"]["namespace"], v["metadata"]["name"]) for v in vms}
        vmi_rt = _rt(self.store, KUBEVIRT, "VirtualMachineInstance")
        for vmi in self.store.objects(KUBEVIRT, "VirtualMachineInstance"):
            key = (vmi["metadata"]["namespace"], vmi["metadata"]["name"])
            if key not in names:
                self.store.delete(vmi_rt, *key)
        # read once per tick, not per VM: on a real server each read is an HTTP LIST
        live = bool(vms) and self.live_update()
        for vm in vms:
            self._reconcile(vm, vmi_rt, live)

    def _reconcile(self, vm: Obj, vmi_rt: _RT, live: bool) -> None:
        """One VM's pass; ``live``: the cluster's rollout strategy is LiveUpdate (see ``live_update``)."""
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        vmi = self.store.find(KUBEVIRT, "VirtualMachineInstance", name, ns)
        prev = (vm.get("status") or {}).get("conditions") or []
        if vmi is not None and (vmspec.stop_requested(vm, vmi) or vm["metadata"].get("deletionTimestamp")):
            self.store.delete(vmi_rt, ns, name)  # virt-api's restart (a fresh VMI follows), or the VM is going
            vmi = None
        if vm["metadata"].get("deletionTimestamp"):
            return
        if not vmspec.running(vm):
            if vmi:
                self.store.delete(vmi_rt, ns, name)
            set_status(self.store, KUBEVIRT, "VirtualMachine", vm, {
                "printableStatus": "Stopped", "ready": False, "created": False,
                "observedGeneration": vm["metadata"].get("generation", 1),
                "conditions": [condition(prev, "Ready", False, "VMINotExists", "VMI does not exist")]},
                self.manager)
            return
        desired = vmspec.template_spec(vm)
        restart = False
        reported: set[str] | None = None  # a new VMI's pod has every interface
        if vmi is None:
            vmi_spec = desired
        else:  # running: hot-plug what can be, flag the rest
            vmi_spec = copy.deepcopy(vmi["spec"])
            # an interface dropped from the VM without ``state: absent`` first is not unplugged: restart
            hot = vmspec.hot_names(desired)
            restart = vmspec.cold_part(desired, hot) != vmspec.cold_part(vmi_spec, hot)
            vmi_spec = vmspec.with_hot_parts(vmi_spec, desired)
            # without LiveUpdate a plugged interface waits in the VMI spec for a migration to a pod that has it
            reported = None if live else vmspec.reported_names(vmi)
        self._write_vmi(vm, vmi_spec, vmi, reported)
        conds = [condition(prev, "Ready", True, "", "")]
        if restart:
            conds.append(condition(prev, "RestartRequired", True, "",
                                   "a non-live-updatable field was changed in the template spec"))
        set_status(self.store, KUBEVIRT, "VirtualMachine", vm, {
            "printableStatus": "Running", "ready": True, "created": True, "conditions": conds,
            "observedGeneration": vm["metadata"].get("generation", 1)}, self.manager)
        self._drop_unplugged(vm, vmi_spec)

    def live_update(self) -> bool:
        """The KubeVirt CR's ``vmRolloutStrategy``: with LiveUpdate KubeVirt migrates a hot-plugged VM itself."""
        return any(((kv.get("spec") or {}).get("configuration") or {}).get("vmRolloutStrategy") == "LiveUpdate"
                   for kv in self.store.objects(KUBEVIRT, "KubeVirt"))

    def _drop_unplugged(self, vm: Obj, vmi_spec: dict[str, Any]) -> None:
        """virt-controller, once an unplug is done, removes the ``state: absent`` interface and its network from
        the VM spec (an update of its own: it then owns those atomic lists on a real server)."""
        spec = (vm.get("spec") or {}).get("template", {}).get("spec") or {}
        in_vmi = {i.get("name") for i in vmspec.interfaces(vmi_spec)}
        done = {i["name"] for i in vmspec.interfaces(spec) if i.get("state") == "absent" and i["name"] not in in_vmi}
        if not done:
            return
        body = copy.deepcopy(vm)
        body.pop("status", None)
        tspec = body["spec"]["template"]["spec"]
        tspec["domain"]["devices"]["interfaces"] = [i for i in vmspec.interfaces(tspec) if i["name"] not in done]
        tspec["networks"] = [n for n in tspec.get("networks") or [] if n.get("name") not in done]
        with contextlib.suppress(ApiError):  # someone wrote the VM in between (a 409): the next pass sees it
            self.store.update(_rt(self.store, KUBEVIRT, "VirtualMachine"), vm["metadata"]["namespace"],
                              vm["metadata"]["name"], body, manager=self.manager)

    def _write_vmi(self, vm: Obj, spec: dict[str, Any], vmi: Obj | None, reported: set[str] | None) -> None:
        """virt-controller writes the VMI (its old status carried along), virt-handler then writes its status:
        the interfaces the launcher pod has (``reported``; None: all of the spec's)."""
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        obj = {"apiVersion": KUBEVIRT, "kind": "VirtualMachineInstance",
               # like virt-controller: the VMI carries the template's labels (Services select them)
               "metadata": {"name": name, "namespace": ns,
                            "labels": {**((vm["spec"].get("template") or {}).get("metadata") or {})
                                       .get("labels", {}), "kubevirt.io/vm": name},
                            "ownerReferences": [{"apiVersion": KUBEVIRT, "kind": "VirtualMachine", "name": name,
                                                 "uid": vm["metadata"]["uid"], "controller": True}]},
               "spec": spec, "status": (vmi or {}).get("status") or {}}
        live = self.store.put(obj, manager=self.manager)
        self.report(live, reported)

    def report(self, vmi: Obj, reported: set[str] | None) -> None:
        """virt-handler's status of a running VMI: phase, node, and the interfaces in ``reported`` (all when
        None) that the spec still has."""
        ns, name, spec = vmi["metadata"]["namespace"], vmi["metadata"]["name"], vmi["spec"]
        live_ifaces = [i for i in vmspec.interfaces(spec)
                       if i.get("state") != "absent" and (reported is None or i["name"] in reported)]
        # the guest agent answers (the images the tests boot run qemu-guest-agent): addresses come from it
        prev = (vmi.get("status") or {}).get("conditions") or []
        status = {**(vmi.get("status") or {}), "phase": "Running", "nodeName": "worker-0",
                  "conditions": [condition(prev, "Ready", True), condition(prev, "AgentConnected", True)],
                  "interfaces": self._iface_status(ns, name, spec, live_ifaces)}
        set_status(self.store, KUBEVIRT, "VirtualMachineInstance", vmi, status, HANDLER)

    def _iface_status(self, ns: str, name: str, spec: dict[str, Any],
                      ifaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
        networks = {n["name"]: n for n in spec.get("networks") or []}
        static = vmspec.static_addresses(spec)
        digest = hashlib.sha256(f"{ns}/{name}".encode()).digest()
        out = []
        for idx, iface in enumerate(ifaces):
            mac = iface.get("macAddress", "")
            entry: dict[str, Any] = {"name": iface["name"], "mac": mac, "interfaceName": f"eth{idx}"}
            if "pod" in networks.get(iface["name"], {}):
                ip = f"10.128.{digest[0]}.{digest[1] % 254 + 1}"
            else:
                ip = static.get(mac.lower()) or static.get(f"eth{idx}", "")
            if ip:
                entry.update(ipAddress=ip, ipAddresses=[ip], infoSource="domain, guest-agent")
            out.append(entry)
        return out


