"""What the agent asks of the Kubernetes API, and the rollout slots that keep ``maxUnavailable``.

Why: the agent needs six things from the cluster — the policies, its node's labels, how many nodes a selector picks,
publishing its report (a ConfigMap of its own, ``reconciler.agent.publish.node_report``), and taking and giving back
a rollout slot. :class:`AgentApi` is exactly that (the runner's tests pass a fake); :class:`KubeAgentApi` is the
real one, through the same :class:`~reconciler.clients.kube.Kube` client the controller uses (static paths, retries;
field manager ``labels.AGENT``) and the same :class:`~reconciler.clients.lease.Lease` leader election uses.

A slot is a ``coordination.k8s.io/v1`` Lease ``virtnet-nncp-<policy>-<i>`` (``i < maxUnavailable``) in
the agent's namespace, held by the node while it changes that policy and deleted afterwards; a node that
dies holding one frees it when the lease expires.

Side effects: API requests (:class:`KubeAgentApi` only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kubernetes import client

from reconciler import labels
from reconciler.clients.kube import Kube
from reconciler.clients.lease import Lease, utc_now
from reconciler.errors import AgentError
from reconciler.nmstate import NNCP


class AgentApi(Protocol):
    #: where the agent's own objects live: its report ConfigMap and the slot Leases
    namespace: str

    def list_policies(self) -> list[dict[str, Any]]: ...
    def node_labels(self, node: str) -> dict[str, str]: ...
    def count_nodes(self, selector: Mapping[str, str]) -> int: ...
    def apply(self, obj: dict[str, Any]) -> None: ...
    def try_lease(self, name: str, holder: str, ttl: int) -> bool: ...
    def release_lease(self, name: str, holder: str) -> None: ...


def lease_name(policy: str, i: int) -> str:
    return f"virtnet-nncp-{policy}-{i}"


def acquire_slot(api: AgentApi, policy: str, node: str, limit: int, ttl: int = 300) -> str | None:
    """The name of a slot lease this node now holds for ``policy``, or None when all ``limit`` are taken."""
    for i in range(limit):
        name = lease_name(policy, i)
        if api.try_lease(name, node, ttl):
            return name
    return None


class KubeAgentApi:
    """The real :class:`AgentApi`: objects through :class:`Kube`, slots through :class:`Lease`."""

    def __init__(self, api_client: client.ApiClient, lease_namespace: str = "virtnet-system") -> None:
        self.kube = Kube(api_client, field_manager=labels.AGENT)
        self.coordination = client.CoordinationV1Api(api_client)
        self.namespace = lease_namespace

    def list_policies(self) -> list[dict[str, Any]]:
        return self.kube.list(NNCP)

    def node_labels(self, node: str) -> dict[str, str]:
        found = self.kube.get("Node", node)
        if found is None:
            raise AgentError(f"Node {node} does not exist: is --node the node's name?")
        return dict((found.get("metadata") or {}).get("labels") or {})

    def count_nodes(self, selector: Mapping[str, str]) -> int:
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return len(self.kube.list("Node", sel or None))

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply ``obj`` (taking over conflicting fields: these objects are the agent's), then
        its ``status`` through the status subresource when it has one."""
        self.kube.apply({k: v for k, v in obj.items() if k != "status"}, force=True)
        if "status" in obj:
            meta = {"name": obj["metadata"]["name"]}
            status = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "status": obj["status"]}
            self.kube.apply(status, force=True, subresource="status")

    def try_lease(self, name: str, holder: str, ttl: int) -> bool:
        return Lease(self.coordination, name, self.namespace).acquire(holder, ttl, utc_now())

    def release_lease(self, name: str, holder: str) -> None:
        Lease(self.coordination, name, self.namespace).delete(holder)
