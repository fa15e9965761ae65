"""The pull-request comment: what merging would change on one cluster, with a picture (pure).

One comment per PR and cluster, found again by its hidden marker and edited in place on every push.
Sections: the plan (counts, table, collapsible field diffs), the blast radius and safety findings, and a
mermaid topology of the affected networks with changed and at-risk objects highlighted. Text from the
repository goes through ``reconciler.output.markdown``: the comment's structure is ours alone.
"""

from __future__ import annotations

import re
from typing import Protocol

from reconciler.engine.plan import Plan
from reconciler.errors import Problem
from reconciler.objects import Obj
from reconciler.output import markdown as md
from reconciler.output import text as report
from reconciler.output.topology import topology_mermaid
from reconciler.safety import SafetyReport


class PlannedOutcome(Protocol):
    """What a comment reads of a reconcile's outcome (``reconciler.pipeline.Outcome`` has it), named here so
    that output does not import the pipeline that produces it."""

    plan: Plan | None
    safety: SafetyReport | None
    desired: list[Obj]
    problems: list[Problem]
    failed: str | None
    message: str


def plan_marker(cluster: str) -> str:
    """The hidden line that finds this cluster's comment again on the next push (one comment per PR and cluster).

    The format is what earlier versions wrote: changing it would orphan the comments already on open PRs."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", cluster):
        raise ValueError("cluster name must be [A-Za-z0-9_.-]+")
    return f"<!-- virtnet:plan cluster={cluster} -->"


def _failure(outcome: PlannedOutcome) -> list[str]:
    """Why nothing could be planned: the message (git's, the API's, quoting the repository) as a block."""
    return [f":x: **{md.text(outcome.failed)}**", "", md.block(outcome.message or "no details"), ""]


def pull_request_comment(outcome: PlannedOutcome, cluster: str, head_sha: str, link: str | None = None) -> str:
    at = md.code(head_sha[:12])
    parts = [plan_marker(cluster)]
    if outcome.problems:
        parts.append(f"### virtnet plan for {md.code(cluster)} at {at}\n")
        parts.append(report.problems_markdown(outcome.problems, link))
    elif outcome.plan is None:
        parts.append(f"### virtnet plan for {md.code(cluster)} at {at}\n")
        parts += _failure(outcome)
    else:
        parts.append(report.plan_markdown(outcome.plan))
        radius = report.safety_markdown(outcome.safety, outcome.plan, outcome.desired, link=link)
        if radius:  # includes the topology, with the objects at risk marked
            parts.append(radius)
        elif outcome.plan.has_changes:
            picture = topology_mermaid(outcome.plan, outcome.desired).rstrip()
            parts += ["#### Topology of the change", "", md.block(picture, "mermaid"), ""]
        if outcome.failed:
            parts += _failure(outcome)
        parts.append(f"<sub>planned at {at}; nothing is applied until the pull request is merged.</sub>\n")
    return "\n".join(parts)
