"""What the agent tells the cluster: one ConfigMap of its own per node, never kubernetes-nmstate's objects.

Why: ``NodeNetworkState <node>`` and ``NodeNetworkConfigurationEnactment <node>.<policy>`` belong to nmstate's
handler (NNCP status is computed from them); a second writer of those objects would make nmstate's own
reports lie. So nmstate stays the source of truth and the agent publishes under a kind and name of its own:
the ConfigMap ``virtnet-agent-<node>`` in the agent's namespace (:func:`node_report`), labelled
``labels.AGENT_SELECTOR`` and ``labels.AGENT_NODE``, holding the observed state, the per-policy result and the
drift report (``reconciler.labels.AGENT_DRIFT_KEY``, which the controller reads with one LIST).

The observed state and per-policy results are built in nmstate's shapes (:func:`node_network_state`,
:func:`enactment`: the same conditions and reasons, so people read them as they read nmstate's), but only as
data inside that ConfigMap.

PURE: builds dicts; ``now`` is passed in (an RFC 3339 string) so output is deterministic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler import labels
from reconciler.agent.drift import DriftItem

API_VERSION = "nmstate.io/v1beta1"
CONDITION_TYPES = ("Available", "Failing", "Progressing", "Pending", "Aborted")
#: the reason each condition carries when it is the true one
REASONS = {
    "Available": "SuccessfullyConfigured",
    "Failing": "FailedToConfigure",
    "Progressing": "ConfigurationProgressing",
    "Pending": "MaxUnavailableLimitReached",
    "Aborted": "ConfigurationAborted",
}
MANAGED_BY = {labels.MANAGED_BY: labels.AGENT}


def rfc3339(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_network_state(node: str, current: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The node's observed state in ``NodeNetworkState`` shape (``status.currentState``,
    ``status.lastSuccessfulUpdateTime``): data for :func:`node_report`, never written as that kind."""
    return {
        "apiVersion": API_VERSION,
        "kind": "NodeNetworkState",
        "metadata": {"name": node, "labels": dict(MANAGED_BY)},
        "status": {"currentState": dict(current), "lastSuccessfulUpdateTime": now},
    }


def conditions(
    active: str, reason: str, message: str, now: str, previous: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """All five NNCE conditions; ``active`` is "True", the rest "False". ``lastTransitionTime`` only
    moves when a condition's status changes (taken from ``previous`` otherwise)."""
    if active not in CONDITION_TYPES:
        raise ValueError(f"unknown condition {active!r}")
    prev = {c.get("type"): c for c in previous}
    out = []
    for ctype in CONDITION_TYPES:
        status = "True" if ctype == active else "False"
        old = prev.get(ctype)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        out.append(
            {
                "type": ctype,
                "status": status,
                "reason": reason if status == "True" else "",
                "message": message if status == "True" else "",
                "lastTransitionTime": since,
            }
        )
    return out


def enactment(
    node: str,
    policy: Mapping[str, Any],
    active: str,
    message: str,
    now: str,
    *,
    reason: str | None = None,
    previous: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``NodeNetworkConfigurationEnactment/<node>.<policy>``. A malformed policy still gets one (its Failing
    condition says why): fields of the wrong type are left out (``desiredState`` only when a mapping, the
    generation only when an integer) instead of raising."""
    raw_meta, raw_spec = policy.get("metadata"), policy.get("spec")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    pname = str(meta.get("name", ""))
    desired = spec.get("desiredState")
    generation = meta.get("generation")
    owner = {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "name": pname,
        "uid": meta.get("uid") if isinstance(meta.get("uid"), str) else "",
    }
    obj: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "NodeNetworkConfigurationEnactment",
        "metadata": {
            "name": f"{node}.{pname}",
            "labels": {**MANAGED_BY, "nmstate.io/node": node, "nmstate.io/policy": pname},
        },
        "status": {
            "conditions": conditions(active, reason or REASONS[active], message, now, previous),
            "desiredState": dict(desired) if isinstance(desired, Mapping) else {},
            "policyGeneration": generation if isinstance(generation, int) and not isinstance(generation, bool) else 0,
        },
    }
    if owner["uid"]:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj


def drift_report(node: str, items: Iterable[DriftItem], policies: Iterable[str], now: str, mode: str) -> dict[str, Any]:
    rows = [d.as_dict() for d in items]
    return {
        "node": node,
        "mode": mode,
        "time": now,
        "policies": sorted(policies),
        "inSync": not rows,
        "drift": rows,
    }


def condition_of(nnce: Mapping[str, Any]) -> str | None:
    """The condition type that is "True" on an NNCE dict (None if none is)."""
    for c in (nnce.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True":
            return str(c["type"])
    return None


def _fit(value: str, limit: int) -> str:
    """``value`` within ``limit`` characters, still valid and still unique: a long one keeps its start and ends
    with a hash of the whole (a plain cut could end in "." or "-", which no name or label value may)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: limit - 9].rstrip('.-_')}-{digest}"


def report_name(node: str) -> str:
    """The agent's ConfigMap for ``node`` (a node name is a DNS subdomain, so the result is one too)."""
    return _fit(f"virtnet-agent-{node}", 253)


def node_report(
    node: str,
    namespace: str,
    nns: Mapping[str, Any],
    enactments: Iterable[Mapping[str, Any]],
    drift: Mapping[str, Any],
) -> dict[str, Any]:
    """The one object the agent writes: ``ConfigMap <namespace>/virtnet-agent-<node>`` with the node's observed
    state (``state.json``), one entry per policy with its conditions (``policies.json``) and the drift report
    (``drift.json``). JSON text, sorted keys: an unchanged node gives the same bytes (a no-op apply)."""
    policies = {
        str((e.get("metadata") or {}).get("labels", {}).get("nmstate.io/policy", "")): {
            "conditions": (e.get("status") or {}).get("conditions") or [],
            "policyGeneration": (e.get("status") or {}).get("policyGeneration", 0),
        }
        for e in enactments
    }
    state = (nns.get("status") or {}).get("currentState") or {}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": report_name(node),
            "namespace": namespace,
            "labels": {**MANAGED_BY, labels.AGENT_NODE: _fit(node, 63)},  # the node itself is in data
        },
        "data": {
            "node": node,
            "state.json": json.dumps(state, sort_keys=True),
            "policies.json": json.dumps(policies, sort_keys=True),
            labels.AGENT_DRIFT_KEY: json.dumps(drift, sort_keys=True),
        },
    }
