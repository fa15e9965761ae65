"""The ClusterSync status a run leaves behind, with kstatus conditions (pure).

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) reads three condition types; what each means here:

* ``Ready``: the cluster matches the revision (the last run was ``Applied`` or ``InSync``);
* ``Reconciling``: the controller is still working toward it: a transient failure (source, observe,
  apply) that the next run retries;
* ``Stalled``: it cannot progress without a person: the repository does not validate or a guard blocked
  the plan, so a commit (or ``--accept-risk``/an operator) is needed.

A suspended run changes no condition's status (the last state still stands) but says so in ``Reconciling``
and in ``suspended``. ``lastTransitionTime`` only moves when a condition's status changes, as the API
conventions ask; ``lastHandledTime`` moves every run, so a controller that stopped is seen to stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler import labels


@dataclass(frozen=True)
class RunReport:
    """What one run says about itself, in the shared vocabulary (``reconciler.labels``)."""

    cluster: str
    result: str  # Applied, InSync, Suspended or a failure reason
    message: str = ""
    revision: str | None = None  # the revision this run attempted
    source: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    suspended: bool = False
    pinned: str = ""
    generation: int = 0


def _condition(kind: str, status: bool, reason: str, message: str, now: str, generation: int) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": now,
        "observedGeneration": generation,
    }


def _conditions(report: RunReport, previous: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in previous}
    message = report.message or {labels.APPLIED: "applied", labels.IN_SYNC: "in sync"}.get(report.result, "")
    gen = report.generation
    if report.result == labels.SUSPENDED:
        ready = before.get("Ready") or _condition("Ready", False, labels.SUSPENDED, message, now, gen)
        fresh = [
            {**ready, "observedGeneration": gen},
            _condition("Reconciling", False, labels.SUSPENDED, message, now, gen),
            _condition("Stalled", False, labels.SUSPENDED, message, now, gen),
        ]
    else:
        ok = report.result in (labels.APPLIED, labels.IN_SYNC)
        stalled = report.result in labels.STALLED_FAILURES
        retrying = not ok and not stalled
        fresh = [
            _condition("Ready", ok, report.result, message, now, gen),
            _condition(
                "Reconciling", retrying, report.result if retrying else "Idle", message if retrying else "", now, gen
            ),
            _condition(
                "Stalled", stalled, report.result if stalled else "Progressing", message if stalled else "", now, gen
            ),
        ]
    for condition in fresh:  # the time of the last change of status, not of the last run
        old = before.get(condition["type"])
        if old is not None and old.get("status") == condition["status"]:
            condition["lastTransitionTime"] = old.get("lastTransitionTime", now)
    return fresh


def sync_status(report: RunReport, previous: dict[str, Any] | None, now: str) -> dict[str, Any]:
    """The ClusterSync ``status`` after ``report``; ``previous`` is the status before it (kept: the last
    applied revision and its time, transition times)."""
    previous = previous or {}
    ok = report.result in (labels.APPLIED, labels.IN_SYNC)
    status: dict[str, Any] = {
        "observedGeneration": report.generation,
        "cluster": report.cluster,
        "source": report.source,
        "result": report.result,
        "lastHandledTime": now,
        "suspended": report.suspended,
        "pinnedRevision": report.pinned,
        "counts": {k: int(v) for k, v in report.counts.items()} or previous.get("counts", {}),
        "conditions": _conditions(report, list(previous.get("conditions") or []), now),
    }
    attempted = report.revision or previous.get("lastAttemptedRevision")
    if attempted:
        status["lastAttemptedRevision"] = attempted
    if ok and report.revision:  # the time the cluster reached this revision, not of every no-op run since
        moved = report.result == labels.APPLIED or report.revision != previous.get("lastAppliedRevision")
        status["lastAppliedRevision"] = report.revision
        status["lastAppliedTime"] = now if moved else previous.get("lastAppliedTime", now)
    elif previous.get("lastAppliedRevision"):
        status["lastAppliedRevision"] = previous["lastAppliedRevision"]
        status["lastAppliedTime"] = previous.get("lastAppliedTime", now)
    return status
