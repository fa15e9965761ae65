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
from reconciler.engine.plan import Action, Item, Plan
from reconciler.errors import Problem
from reconciler.output import markdown as md
from reconciler.output.safety import safety_markdown as safety_markdown  # re-exported: the "Blast radius" section
from reconciler.output.safety import safety_mermaid as safety_mermaid
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


def plan_markdown(plan: Plan) -> str:
    """The PR-comment body for one cluster: counts, a table of changes, collapsible field diffs."""
    out = [f"### virtnet plan for {md.code(plan.cluster)}", "", f"**{summary(plan)}**", ""]
    if plan.errors:
        out += ["#### :x: Errors", ""] + [f"- {md.text(e)}" for e in plan.errors] + [""]
    if plan.warnings:
        out += ["#### :warning: Warnings", ""] + [f"- {md.text(w)}" for w in plan.warnings] + [""]
    changed = plan.changes
    if changed:
        out += ["| | object | why |", "|---|---|---|"]
        out += [
            f"| {SYMBOL[i.action]} {i.action.value} | {md.code(i.name, cell=True)} | {md.text(i.reason)}"
            + (f" ({i.vm_change.value})" if i.vm_change.value else "")
            + " |"
            for i in changed
        ]
        out.append("")
        for item in changed:
            if item.action != Action.UPDATE:
                continue
            body = "\n".join(str(_redact(item, c)) for c in item.changes)
            out += [
                f"<details><summary><code>{md.html(item.name)}</code></summary>",
                "",
                md.block(body, "diff"),
                "</details>",
                "",
            ]
    else:
        out.append("No changes: the cluster matches the repository.")
    return "\n".join(out) + "\n"


def plan_json(plan: Plan, safety: SafetyReport | None = None) -> str:
    data = plan.as_dict()
    if safety is not None:  # blast radius and findings (reconciler/safety/)
        data["safety"] = safety.as_dict()
    for raw, item in zip(data["items"], plan.items, strict=True):
        raw["changes"] = [_redact(item, c).as_dict() for c in item.changes]
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def problems_text(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems) + "\n"


def problems_markdown(problems: list[Problem], link: str | None = None) -> str:
    """Validation errors as a list; ``link`` is a URL prefix (``.../blob/<sha>/``) for file:line links."""
    lines = ["#### :x: The repository does not validate; nothing will be applied", ""]
    for p in problems:
        where = f"{p.ref.file}:{p.ref.line}" if p.ref.line else p.ref.file
        target = f"[{md.code(where)}]({link}{md.link_path(p.ref.file)}#L{p.ref.line})" if link else md.code(where)
        field = f" {md.code(p.ref.field)}" if p.ref.field else ""
        lines.append(f"- {target}{field}: {md.text(p.message)}")
    return "\n".join(lines) + "\n"


def changes_text(changes: ChangeSet) -> str:
    ok = sum(1 for r in changes.results if r.ok)
    failed = [r for r in changes.results if not r.ok]
    lines = [f"Applied: {ok} ok, {len(failed)} failed"]
    lines += [f"  failed {r.action} {r.name}: {r.message}" for r in failed]
    if changes.error:
        lines.append(f"  stopped: {changes.error}")
    return "\n".join(lines) + "\n"
