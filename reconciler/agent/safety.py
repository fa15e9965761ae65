"""The controller's danger checks, run by the agent on its own observed state before the first write.

Why: the plan-time analysis (``reconciler.safety.analysis``) sees the node through its NodeNetworkState, which
may be stale, and can be accepted away. The agent is the last line: right before enforcing a policy it
runs the same checks (``reconciler.safety.checks.node_findings``: disconnect, missing-nic, enslaved, VLAN
mtu) against what the kernel reports *now* and refuses errors, so the node is never cut off and nothing
is written (the NNCE says Failing with the reason). Warnings (``enslaved``) are logged, not refused.

Pure apart from logging: builds a :data:`~reconciler.agent.enforce.Precheck` for one policy and node.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.agent.steps import Step
from reconciler.nmstate import creates, policy_interfaces
from reconciler.safety.checks import ERROR, node_findings
from reconciler.safety.nodes import facts_from_state

log = logging.getLogger(__name__)


def precheck_for(policy: Mapping[str, Any], node: str) -> Callable[[dict[str, Any], list[Step]], list[str]]:
    """A precheck running checks a to d of ``policy`` against the observed ``currentState`` of ``node``."""
    name = str((policy.get("metadata") or {}).get("name", ""))
    interfaces = policy_interfaces(policy)

    def check(observed: dict[str, Any], steps: list[Step]) -> list[str]:
        if not steps:
            return []
        facts = facts_from_state(node, {}, observed)
        merged = {str(i["name"]): i for i in interfaces if i.get("name")}
        created = {n for n, i in merged.items() if creates(i)}
        findings = node_findings(name, interfaces, facts, created=created, merged=merged, ref=lambda *_: None)
        for f in findings:
            if f.severity != ERROR:
                log.warning("policy %s on %s: %s", name, node, f.message)
        return [f"[{f.check}] {f.message}" for f in findings if f.severity == ERROR]

    return check
