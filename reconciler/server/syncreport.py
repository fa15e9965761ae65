"""One run's report on its ClusterSync object: the counts, the conditions (``reconciler.output.conditions``)
and the write through the status subresource (``reconciler.clients.syncstatus``).

Side effects: one GET (the previous status, for transition times) and one status apply. Best effort: a
report that cannot be written is logged; the reconcile itself stands.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from reconciler.clients.syncstatus import Switches, SyncObject
from reconciler.errors import VirtnetError
from reconciler.logs import redact
from reconciler.output import summary
from reconciler.output.conditions import RunReport, sync_status
from reconciler.pipeline import Outcome

log = logging.getLogger(__name__)


def counts_of(outcome: Outcome) -> dict[str, int]:
    """The object counts the ClusterSync shows; empty when the run made no plan (the last counts stay)."""
    if outcome.plan is None:
        return {}
    states = summary.object_states(outcome.plan, outcome.changes)
    return {
        "objects": len(states),
        "inSync": sum(1 for o in states if o["state"] == "in-sync"),
        "changed": sum(1 for r in outcome.changes.results if r.ok) if outcome.changes else 0,
        "failed": sum(1 for o in states if o["state"] in ("failed", "prune-failed")),
        "drifted": len(outcome.live.node_drift) if outcome.live else 0,
        "blocking": len(outcome.safety.blocking) if outcome.safety else 0,
    }


def report_run(sync: SyncObject, outcome: Outcome, result: str, switches: Switches, source: str) -> None:
    report = RunReport(
        cluster=sync.name,
        result=result,
        message=redact(outcome.message)[:4000],
        revision=outcome.revision,
        source=source,
        counts=counts_of(outcome),
        suspended=switches.suspend,
        pinned=switches.pinned,
        generation=switches.generation,
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        previous = (sync.known() or {}).get("status")  # read at the run's start, with the switches
        sync.report(sync_status(report, previous, now))
    except VirtnetError as exc:
        log.warning("%s", exc)
