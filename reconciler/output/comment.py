"""The pull-request comment: what merging would change on one cluster, with a picture (pure).

One comment per PR and cluster, found again by its hidden marker and edited in place on every push.
Sections: the plan (counts, table, collapsible field diffs), the blast radius and safety findings, and a
mermaid topology of the affected networks with changed and at-risk objects highlighted.
"""

from __future__ import annotations

from reconciler.clients.forge import plan_marker
from reconciler.output import text as report
from reconciler.output.topology import topology_mermaid
from reconciler.pipeline import Outcome


def pull_request_comment(outcome: Outcome, cluster: str, head_sha: str, link: str | None = None) -> str:
    parts = [plan_marker(cluster)]
    if outcome.problems:
        parts.append(f"### virtnet plan for `{cluster}` at `{head_sha[:12]}`\n")
        parts.append(report.problems_markdown(outcome.problems, link))
    elif outcome.plan is None:
        parts.append(f"### virtnet plan for `{cluster}` at `{head_sha[:12]}`\n")
        parts.append(f":x: **{outcome.failed}**: {outcome.message}\n")
    else:
        parts.append(report.plan_markdown(outcome.plan))
        radius = report.safety_markdown(outcome.safety, outcome.plan, outcome.desired, link=link)
        if radius:  # includes the topology, with the objects at risk marked
            parts.append(radius)
        elif outcome.plan.has_changes:
            parts += [
                "#### Topology of the change",
                "",
                "```mermaid",
                topology_mermaid(outcome.plan, outcome.desired).rstrip(),
                "```",
                "",
            ]
        if outcome.failed:
            parts.append(f":x: **{outcome.failed}**: {outcome.message}\n")
        parts.append(f"<sub>planned at `{head_sha[:12]}`; nothing is applied until the pull request is merged.</sub>\n")
    return "\n".join(parts)
