"""The pull-request comment: what merging would change on one cluster, with a picture (pure).

One comment per PR and cluster, found again by its hidden marker and edited in place on every push.
Sections, most important first: what stops the plan (validation problems, a failure, blocking safety
findings, each named), the changes by kind and action, the changes themselves riskiest first, the
field diffs (collapsed), the blast radius (collapsed), and a mermaid topology of what changed with the
objects at risk highlighted.

Always within :data:`reconciler.output.budget.COMMENT_LIMIT` (GitHub's 65,536 characters), whatever the
size of the change: each section gets a share of the budget, lists what fits and says how much it left
out; the full plan (``full_plan_markdown``) goes to the status branch and the comment links to it.
Text from the repository goes through ``reconciler.output.markdown``: the comment's structure is ours.
"""

from __future__ import annotations

import re
from typing import Protocol

from reconciler.engine.plan import Plan
from reconciler.errors import Problem
from reconciler.objects import Obj
from reconciler.output import markdown as md
from reconciler.output import text as report
from reconciler.output.budget import COMMENT_LIMIT, Budget
from reconciler.output.connectivity import connectivity_markdown
from reconciler.output.safety import findings_markdown, radius_markdown, safety_marked
from reconciler.output.topology import Picture, topology_picture
from reconciler.safety import SafetyReport

#: shares of the comment's budget (``COMMENT_TARGET`` in all, with the picture's ~12,000 at most)
_FINDINGS, _PLAN, _RADIUS = 20_000, 20_000, 8_000
_MESSAGE = 4_000  # a failure's message (git's, the API's), in a code block
_CELL = 10  # names listed in one cell of the blast-radius tables


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


def listed_with_the_plan(outcome: PlannedOutcome) -> bool:
    """Whether the failure's message only repeats what the plan shows already: the plan's own errors, or
    its blocking safety findings (each with its ``file:line``). A server-side dry run's refusals are not."""
    plan, safety = outcome.plan, outcome.safety
    if outcome.failed != "PlanBlocked" or plan is None:
        return False
    if plan.errors and outcome.message == "; ".join(plan.errors):
        return True
    return bool(safety is not None and safety.blocking and outcome.message == safety.blocked_message())


def _failure(outcome: PlannedOutcome) -> list[str]:
    """Why nothing could be planned or applied. A blocked plan's message may repeat every finding and
    error the comment lists already: then only its reason is written."""
    headline = f":x: **{md.text(outcome.failed)}**"
    if listed_with_the_plan(outcome):
        return [f"{headline}: see the errors above; nothing is applied until they are resolved.", ""]
    return [headline, "", md.block(Budget(_MESSAGE).text(outcome.message or "no details", "\n…")), ""]


def _picture(outcome: PlannedOutcome) -> list[str]:
    assert outcome.plan is not None
    marked = safety_marked(outcome.safety) if outcome.safety is not None else []
    picture = topology_picture(outcome.plan, outcome.desired, marked)
    return ["#### Topology of the change", "", md.block(picture.text.rstrip(), "mermaid"), "", *_caption(picture)]


def _caption(picture: Picture) -> list[str]:
    if picture.drawn == picture.relevant:
        return []
    return [f"<sub>{picture.drawn} of {picture.relevant} boxes drawn, the riskiest first.</sub>", ""]


def _details(title: str, lines: list[str]) -> list[str]:
    """``lines`` collapsed under ``title`` (our own words: no repository text in a summary)."""
    return [f"<details><summary>{md.html(title)}</summary>", "", *lines, "</details>", ""]


def _planned(outcome: PlannedOutcome, link: str | None) -> list[str]:
    assert outcome.plan is not None
    parts: list[str] = []
    safety = outcome.safety if outcome.safety is not None and not outcome.safety.empty else None
    parts += report.plan_head_markdown(outcome.plan)
    if safety is not None:
        parts += findings_markdown(safety, link, Budget(_FINDINGS))
        parts += connectivity_markdown(safety.connectivity, link)  # bounded on its own; not collapsed
    parts += report.plan_body_markdown(outcome.plan, Budget(_PLAN))
    if safety is not None:
        radius = radius_markdown(safety, Budget(_RADIUS), cell=_CELL, link=link, connectivity=False)
        if radius:
            parts += _details("Blast radius", radius)
    if outcome.plan.has_changes:
        parts += _picture(outcome)
    if outcome.failed:
        parts += _failure(outcome)
    return parts


def pull_request_comment(
    outcome: PlannedOutcome, cluster: str, head_sha: str, link: str | None = None, full_plan: str | None = None
) -> str:
    """The comment for ``cluster`` at ``head_sha``: its marker, then :func:`markdown_plan`."""
    return _within_limit(f"{plan_marker(cluster)}\n{markdown_plan(outcome, cluster, head_sha, link, full_plan)}")


def markdown_plan(
    outcome: PlannedOutcome,
    cluster: str,
    head_sha: str | None = None,
    link: str | None = None,
    full_plan: str | None = None,
) -> str:
    """The plan in Markdown within the forge's limit (``virtnet plan -o markdown`` and the PR comment).
    ``link`` is a blob URL prefix for ``file:line`` links, ``full_plan`` the URL of the whole plan."""
    at = f" at {md.code(head_sha[:12])}" if head_sha else ""
    parts = [f"### virtnet plan for {md.code(cluster)}{at}", ""]
    if outcome.problems:
        parts.append(report.problems_markdown(outcome.problems, link, Budget(_FINDINGS + _PLAN)))
    elif outcome.plan is None:
        parts += _failure(outcome)
    else:
        parts += _planned(outcome, link)
    if full_plan:
        parts.append(f"The full plan: [{md.text('plan.md')} on the status branch]({full_plan})\n")
    if head_sha and outcome.plan is not None and not outcome.problems:
        parts.append(f"<sub>planned{at}; nothing is applied until the pull request is merged.</sub>\n")
    return _within_limit("\n".join(parts))


def full_plan_markdown(outcome: PlannedOutcome, cluster: str, head_sha: str, link: str | None = None) -> str:
    """The whole plan, nothing left out (for the status branch, where no size limit applies)."""
    at = md.code(head_sha[:12])
    parts = [f"# virtnet plan for {md.code(cluster)} at {at}", ""]
    if outcome.problems:
        parts.append(report.problems_markdown(outcome.problems, link))
    elif outcome.plan is None:
        parts += [f":x: **{md.text(outcome.failed)}**", "", md.block(outcome.message or "no details"), ""]
    else:
        parts.append(report.plan_markdown(outcome.plan))
        parts.append(report.safety_markdown(outcome.safety, outcome.plan, outcome.desired, link=link))
    return "\n".join(parts)


def _within_limit(body: str) -> str:
    """The last guard: the sections' shares keep a comment far below the limit, but a pathological
    repository (thousands of blocking findings) is still cut, at a line, with a note, never refused."""
    if len(body) <= COMMENT_LIMIT:
        return body
    note = "\n\n… the comment was cut here to fit the forge's limit; the full plan has everything.\n"
    head = body[: COMMENT_LIMIT - len(note) - 8]
    head = head[: head.rfind("\n")] if "\n" in head else head
    if head.count("```") % 2:  # an open code block would swallow the note
        head += "\n" + "`" * 3
    return head + note
