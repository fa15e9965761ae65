"""Simulated SR-IOV network operator for the test clusters: per node, a SriovNetworkNodeState whose sync follows
the policies that select the node.

Why: virtnet holds VMs on SR-IOV networks back until the operator's config daemon reports the nodes synced
(``reconciler.engine.sriov``). Like the real operator, this keeps one ``SriovNetworkNodeState <node>`` in each
policy's namespace for every node a SriovNetworkNodePolicy selects; when the set of policies (and their specs)
selecting a node changes, the node's ``status.syncStatus`` goes ``InProgress`` for ``delay_ticks`` ticks (the
daemon drains the node and configures the VFs), then ``Succeeded``. A policy whose ``nicSelector.pfNames`` names
a NIC the node does not have goes ``Failed`` with ``lastSyncError`` saying so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from reconciler.testing.objectstore import ObjectStore
from reconciler.testing.statuswrite import set_status

SRIOV = "sriovnetwork.openshift.io/v1"
MANAGER = "sriov-network-config-daemon"


class SriovController:
    """One ``tick()`` per pass, as the other simulated controllers (:mod:`.controllers`)."""

    def __init__(self, store: ObjectStore, nodes: Sequence[dict[str, Any]], *, delay_ticks: int = 2) -> None:
        self.store, self.delay_ticks = store, delay_ticks
        self.nodes = {n["name"]: n for n in nodes}
        self._progress: dict[tuple[str, str], tuple[str, int]] = {}  # (ns, node) -> (policies digest, ticks left)

    def tick(self) -> None:
        wanted: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for policy in self.store.objects(SRIOV, "SriovNetworkNodePolicy"):
            selector = (policy.get("spec") or {}).get("nodeSelector") or {}
            for name, facts in sorted(self.nodes.items()):
                if all((facts.get("labels") or {}).get(k) == v for k, v in selector.items()):
                    wanted.setdefault((policy["metadata"]["namespace"], name), []).append(policy)
        for (ns, node), policies in sorted(wanted.items()):
            digest = hashlib.sha256(json.dumps([p.get("spec") for p in policies], sort_keys=True).encode()).hexdigest()
            seen = self._progress.get((ns, node))
            if seen is None or seen[0] != digest:
                self._progress[(ns, node)] = (digest, self.delay_ticks)
                status: dict[str, Any] = {"syncStatus": "InProgress"}
            elif seen[1] > 0:
                self._progress[(ns, node)] = (digest, seen[1] - 1)
                status = {"syncStatus": "InProgress"}
            else:
                status = self._finished(node, policies)
            state = self.store.find(SRIOV, "SriovNetworkNodeState", node, ns)
            if state is None:
                state = self.store.put({"apiVersion": SRIOV, "kind": "SriovNetworkNodeState",
                                        "metadata": {"name": node, "namespace": ns}}, manager=MANAGER)
            if (state.get("status") or {}) != status:
                set_status(self.store, SRIOV, "SriovNetworkNodeState", state, status, MANAGER)

    def _finished(self, node: str, policies: list[dict[str, Any]]) -> dict[str, Any]:
        nics = {i.get("name") for i in self.nodes[node].get("interfaces") or []}
        missing = sorted({pf for p in policies for pf in ((p.get("spec") or {}).get("nicSelector") or {})
                          .get("pfNames") or [] if pf.split("#")[0] not in nics})
        if missing:
            return {"syncStatus": "Failed", "lastSyncError": f"no such PF on {node}: {', '.join(missing)}"}
        return {"syncStatus": "Succeeded"}
