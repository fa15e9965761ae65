"""Plans and results as text people read: terminal (with colour), Markdown (PR comments), JSON (tools).

Pure: takes a Plan / ChangeSet / problems and returns strings. Secrets never reach here in clear:
Secret data is shown as a digest, never decoded or printed. In Markdown, everything that comes from the
repository (names, reasons and messages quoting it, diff values, file paths) goes through
``reconciler.output.markdown``, so it cannot close a code block or start Markdown of its own.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import click

from reconciler.engine.changes import ChangeSet
from reconciler.engine.diff import Change
from reconciler.engine.plan import Action, Item, Plan, VMChange
from reconciler.errors import Problem
from reconciler.output import markdown as md
from reconciler.output.budget import Budget, fit, more_rows, more_table_row
from reconciler.output.safety import safety_markdown as safety_markdown  # re-exported: the "Blast radius" section
from reconciler.output.safety import safety_text as safety_text
from reconciler.safety import SafetyReport

SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.NOOP: "=", Action.SKIP: "!"}
COLOUR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.NOOP: None,
    Action.SKIP: "magenta",
}


def _redact(item: Item, change: Change) -> Change:
    """Secret values appear as short digests so reviewers see *that* they change, never *what* they are."""
    if not item.name.startswith("Secret/"):
        return change

    def digest(value: Any) -> Any:
        if value is None:
            return None
        text = json.dumps(value, sort_keys=True)
        return f"<redacted sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}>"

    return Change(change.op, change.path, digest(change.old), digest(change.new))


def summary(plan: Plan) -> str:
    c = plan.counts()
    return f"{c['create']} to create, {c['update']} to update, {c['delete']} to delete, {c['no-op']} unchanged" + (
        f", {c['skip']} skipped" if c["skip"] else ""
    )


def plan_text(plan: Plan, colour: bool = False, verbose: bool = False) -> str:
    """The terminal view: one line per changed object, then its field changes, then warnings and errors."""

    def style(text: str, fg: str | None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour and (fg or bold) else text

    lines = [style(f"Plan for cluster {plan.cluster}: {summary(plan)}", None, bold=True)]
    for item in plan.items:
        if item.action == Action.NOOP and not verbose:
            continue
        tag = f" [{item.vm_change.value}]" if item.vm_change.value else ""
        lines.append(style(f"{SYMBOL[item.action]} {item.name}{tag}: {item.reason}", COLOUR[item.action]))
        if item.action == Action.UPDATE:
            lines += [f"    {_redact(item, c)}" for c in item.changes]
    lines += [style(f"warning: {w}", "yellow") for w in plan.warnings]
    lines += [style(f"error: {e}", "red", bold=True) for e in plan.errors]
    if not plan.has_changes and not plan.errors:
        lines.append("No changes: the cluster matches the repository.")
    return "\n".join(lines) + "\n"


#: riskiest first: deletions, then VM updates that restart, then other updates, then creations
_RISK = {Action.DELETE: 0, Action.UPDATE: 3, Action.CREATE: 4}
_VM_RISK = {VMChange.RESTART: 1, VMChange.RESTART_REQUIRED: 2}
DIFF_LINES = 40  # field changes shown per object in Markdown; the rest are counted
COLLAPSE_ROWS = 20  # a longer table of changes is collapsed in a budgeted plan


def risk_order(items: list[Item]) -> list[Item]:
    """``items`` riskiest first (stable within a class, so apply order is kept)."""
    return sorted(items, key=lambda i: _VM_RISK.get(i.vm_change, _RISK.get(i.action, 5)))


def kinds_markdown(plan: Plan) -> list[str]:
    """A table of the changes by kind and action: how big the change is, at a glance, at any size."""
    counts: dict[str, dict[Action, int]] = {}
    for item in plan.changes:
        row = counts.setdefault(item.name.split("/", 1)[0], {})
        row[item.action] = row.get(item.action, 0) + 1
    if not counts:
        return []
    out = ["| kind | create | update | delete |", "|---|--:|--:|--:|"]
    for kind, row in sorted(counts.items()):
        cells = " | ".join(str(row.get(a, 0)) for a in (Action.CREATE, Action.UPDATE, Action.DELETE))
        out.append(f"| {md.code(kind, cell=True)} | {cells} |")
    return [*out, ""]


def _diff_block(item: Item) -> str:
    rows = [str(_redact(item, c)) for c in item.changes]
    if len(rows) > DIFF_LINES:
        rows = [*rows[:DIFF_LINES], f"… {len(rows) - DIFF_LINES} more field changes"]
    title = f"<details><summary><code>{md.html(item.name)}</code></summary>"
    return "\n".join([title, "", md.block("\n".join(rows), "diff"), "</details>", ""])


def plan_markdown(plan: Plan, budget: Budget | None = None) -> str:
    """The plan in Markdown: a heading, then :func:`plan_head_markdown` and :func:`plan_body_markdown`."""
    heading = [f"### virtnet plan for {md.code(plan.cluster)}", ""]
    return "\n".join([*heading, *plan_head_markdown(plan), *plan_body_markdown(plan, budget)]) + "\n"


def plan_head_markdown(plan: Plan) -> list[str]:
    """How big the change is: the counts, and the changes by kind and action."""
    return [f"**{summary(plan)}**", "", *kinds_markdown(plan)]


def plan_body_markdown(plan: Plan, budget: Budget | None = None) -> list[str]:
    """The plan's errors and warnings, a table of the changes and collapsible field diffs, riskiest first.
    With ``budget``, each list stops where the budget does and says how much it left out; a long table
    is collapsed."""
    out: list[str] = []
    if plan.errors:
        errors = [f"- {md.text(e)}" for e in plan.errors]
        out += ["#### :x: Errors", "", *fit(budget, errors, more_rows("errors"), keep=3), ""]
    if plan.warnings:
        warnings = [f"- {md.text(w)}" for w in plan.warnings]
        out += ["#### :warning: Warnings", "", *fit(budget, warnings, more_rows("warnings")), ""]
    changed = risk_order(plan.changes)
    if not changed:
        return [*out, "No changes: the cluster matches the repository."]
    rows = [
        f"| {SYMBOL[i.action]} {i.action.value} | {md.code(i.name, cell=True)} | {md.text(i.reason)}"
        + (f" ({i.vm_change.value})" if i.vm_change.value else "")
        + " |"
        for i in changed
    ]
    table = ["| | object | why |", "|---|---|---|", *fit(budget, rows, more_table_row(3, "objects")), ""]
    if budget is not None and len(changed) > COLLAPSE_ROWS:
        table = [f"<details><summary>{len(changed)} changes, riskiest first</summary>", "", *table, "</details>", ""]
    out += table
    out += fit(budget, [_diff_block(i) for i in changed if i.action == Action.UPDATE], more_rows("field diffs"))
    return out


def _plan_dict(plan: Plan, safety: SafetyReport | None) -> dict[str, Any]:
    data = plan.as_dict()
    if safety is not None:  # blast radius and findings (reconciler/safety/)
        data["safety"] = safety.as_dict()
    for raw, item in zip(data["items"], plan.items, strict=True):
        raw["changes"] = [_redact(item, c).as_dict() for c in item.changes]
    return data


def plan_json(plan: Plan, safety: SafetyReport | None = None) -> str:
    return json.dumps(_plan_dict(plan, safety), indent=2, sort_keys=True, default=str) + "\n"


def apply_json(
    plan: Plan | None, safety: SafetyReport | None, changes: ChangeSet | None, failed: str | None, message: str
) -> str:
    """An apply for tools: ``result`` (Applied, InSync or the stage that failed), the plan as ``plan -o json``
    gives it, and what was done object by object (``applied``)."""
    result = failed or ("Applied" if changes is not None and changes.results else "InSync")
    data = {
        "result": result,
        "message": message,
        "plan": _plan_dict(plan, safety) if plan is not None else None,
        "applied": changes.as_dict() if changes is not None else None,
    }
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def problems_text(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems) + "\n"


def problems_markdown(problems: list[Problem], link: str | None = None, budget: Budget | None = None) -> str:
    """Validation errors as a list; ``link`` is a URL prefix (``.../blob/<sha>/``) for file:line links."""
    lines = []
    for p in problems:
        where = f"{p.ref.file}:{p.ref.line}" if p.ref.line else p.ref.file
        target = f"[{md.code(where)}]({link}{md.link_path(p.ref.file)}#L{p.ref.line})" if link else md.code(where)
        field = f" {md.code(p.ref.field)}" if p.ref.field else ""
        lines.append(f"- {target}{field}: {md.text(p.message)}")
    if budget is not None:
        lines = budget.fit(lines, more_rows("problems", "`virtnet validate`"))
    return "\n".join(["#### :x: The repository does not validate; nothing will be applied", "", *lines]) + "\n"


def changes_text(changes: ChangeSet) -> str:
    ok = sum(1 for r in changes.results if r.ok)
    failed = [r for r in changes.results if not r.ok]
    lines = [f"Applied: {ok} ok, {len(failed)} failed"]
    lines += [f"  failed {r.action} {r.name}: {r.message}" for r in failed]
    if changes.error:
        lines.append(f"  stopped: {changes.error}")
    return "\n".join(lines) + "\n"


def progress_line(what: str, done: int, total: int, width: int = 30) -> str:
    """One line of progress: ``applying [#########.........] 512/2197 (23%)`` (a bar for terminals)."""
    share = done / total if total else 1.0
    filled = min(width, int(share * width))
    return f"{what} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({int(share * 100)}%)"
