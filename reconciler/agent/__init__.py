"""The virtnet node agent (a DaemonSet in production).

It reads the kernel's real network state (``netlink``, pyroute2), maps it to nmstate's
``currentState`` (``state``), compares it with the NNCPs that select the node (``desired``), reports
drift, and in enforce mode applies the difference with a checkpoint, probes and exact rollback
(``enforce``, ``probes``). ``runner`` runs a pass and the loop and publishes NNS/NNCE (``report``);
``cli`` exposes ``virtnet agent``.

Only ``netlink``, ``enforce``, ``probes``, ``runner`` and ``capabilities`` touch the world;
``state``, ``desired`` and ``report`` are pure. Importing this package has no side effects.
"""

from __future__ import annotations

from reconciler.agent.desired import DriftItem, Op, Step, diff, drift, merge_desired, select_policies
from reconciler.agent.enforce import EnforceResult, enforce, precheck_default_route
from reconciler.agent.netlink import Netlink, total_writes
from reconciler.agent.runner import AgentConfig, PassResult, run_once
from reconciler.agent.state import Dumps, current_state

__all__ = [
    "AgentConfig",
    "DriftItem",
    "Dumps",
    "EnforceResult",
    "Netlink",
    "Op",
    "PassResult",
    "Step",
    "current_state",
    "diff",
    "drift",
    "enforce",
    "merge_desired",
    "precheck_default_route",
    "run_once",
    "select_policies",
    "total_writes",
]
