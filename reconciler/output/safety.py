"""The "Blast radius" section of plans: terminal text and a PR-comment-ready Markdown block (pure).

Why a section of its own: reviewers decide on a network change by where it lands (nodes, rollout
batches, VMs, Services) and by what could go wrong (findings with ``file:line``), not by object diffs.
``reconciler.output.text`` re-exports these functions next to ``plan_text``/``plan_markdown``. No side effects.
In Markdown every name, message and interface change comes from the repository (or the nodes) and goes
through ``reconciler.output.markdown``.
"""

from __future__ import annotations

from collections.abc import Iterable

import click

from reconciler.engine.plan import Plan
from reconciler.objects import Obj
from reconciler.output import markdown as md
from reconciler.output.budget import Budget, fit, more_rows, more_table_row
from reconciler.output.connectivity import connectivity_markdown, connectivity_text
from reconciler.output.topology import topology_mermaid
from reconciler.safety.checks import Finding
from reconciler.safety.radius import PolicyImpact, VMImpact
from reconciler.safety.report import ACCEPT_ANNOTATION, SafetyReport

RISKY_VM = ("restart", "restart-required", "deleted")
MD_WARNINGS = 30  # warnings named in a PR comment (a repository without a current revision may have thousands)


def _by_same_changes(policy: PolicyImpact) -> list[tuple[list[str], tuple[str, ...]]]:
    """Nodes grouped by identical interface changes (3 workers changing alike read as one line)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for node, rows in policy.interfaces.items():
        groups.setdefault(rows, []).append(node)
    return [(nodes, rows) for rows, nodes in groups.items()]


def _batches(policy: PolicyImpact) -> str:
    return " → ".join("[" + ", ".join(b) + "]" for b in policy.batches) or "none"


def _where(f: Finding) -> str:
    if f.ref is None:
        return ""
    return f"{f.ref.file}:{f.ref.line}" if f.ref.line else f.ref.file


def _vms(vms: Iterable[VMImpact]) -> str:
    return ", ".join(f"{v.name} ({v.impact})" for v in vms) or "none"


def safety_text(report: SafetyReport | None, colour: bool = False) -> str:
    """Terminal view: policies with nodes/batches/interface changes, networks with VMs, then findings."""
    if report is None or report.empty:
        return ""

    def style(text: str, fg: str | None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour and (fg or bold) else text

    lines = [style("Blast radius:", None, bold=True)]
    for p in report.policies:
        lines.append(
            f"  NodeNetworkConfigurationPolicy/{p.name} ({p.action}): {len(p.nodes)} node(s)"
            + (f" {', '.join(p.nodes)}" if p.nodes else "")
            + (f" [control plane: {', '.join(p.control_plane)}]" if p.control_plane else "")
            + f"; maxUnavailable {p.max_unavailable} → batches {_batches(p)}"
        )
        for nodes, rows in _by_same_changes(p):
            lines.append(f"    {', '.join(nodes)}: {'; '.join(rows)}")
    for n in report.networks:
        lines.append(f"  {n.name} ({n.action}, via {n.via}): VMs {_vms(n.vms)}")
    for s in report.services:
        lines.append(f"  {s.name}: endpoints change ({s.vm}: {s.why})")
    for sr in report.sriov:
        lines.append(style(f"  {sr}", "yellow"))
    lines += connectivity_text(report.connectivity)
    if report.note:
        lines.append(style(f"  note: {report.note}", "yellow"))
    for f in report.findings:
        accepted = report.is_accepted(f) and f.severity == "error"
        label = f"accepted error [{f.check}]" if accepted else f"{f.severity} [{f.check}]"
        colour_of = "yellow" if accepted or f.severity == "warning" else "red"
        where = _where(f)
        lines.append(style(f"  {label} {where + ': ' if where else ''}{f.message}", colour_of, bold=not accepted))
    if report.blocking:
        lines.append(
            style(
                f"  {len(report.blocking)} safety error(s) block apply: fix them, or accept with --accept-risk "
                f"or the Cluster annotation {ACCEPT_ANNOTATION}",
                "red",
                bold=True,
            )
        )
    elif report.accepted and any(report.is_accepted(f) for f in report.errors):
        lines.append(style(f"  risks accepted by {report.accepted_by}", "yellow"))
    return "\n".join(lines) + "\n"


def _md_finding(f: Finding, report: SafetyReport, link: str | None, short: bool = False) -> str:
    """One finding as a list item; ``short`` drops the message (check, place, node and interface stay)."""
    where = _where(f)
    if where and link and f.ref is not None:
        target = f"[{md.code(where)}]({link}{md.link_path(f.ref.file)}#L{f.ref.line})"
    else:
        target = md.code(where) if where else ""
    extra = [f"node {md.code(f.node)}" if f.node else "", f"interface {md.code(f.interface)}" if f.interface else ""]
    tail = ", ".join(e for e in extra if e)
    accepted = " _(accepted)_" if f.severity == "error" and report.is_accepted(f) else ""
    message = "" if short else f": {md.text(f.message)}"
    return f"- **{md.text(f.check)}**{accepted} {target}{message}" + (f" ({tail})" if tail else "")


def _md_list(names: Iterable[str]) -> str:
    return ", ".join(md.code(n, cell=True) for n in names)


def _md_policies(report: SafetyReport, cell: int | None) -> list[str]:
    """One row per changed node policy; ``cell`` caps the names listed in one cell (the rest counted)."""

    def cap(names: Iterable[str]) -> list[str]:
        names = list(names)
        return names if cell is None or len(names) <= cell else [*names[:cell], f"… {len(names) - cell} more"]

    out = []
    for p in report.policies:
        nodes = f"{len(p.nodes)}: {_md_list(cap(p.nodes))}" if p.nodes else "0"
        if p.control_plane:
            nodes += f" (control plane: {', '.join(md.text(n) for n in p.control_plane)})"
        batches = " → ".join("[" + ", ".join(md.text(n) for n in cap(b)) + "]" for b in _cap_batches(p, cell))
        groups = _by_same_changes(p)
        changes = "<br>".join(f"{_md_list(cap(ns))}: {md.text('; '.join(rows))}" for ns, rows in groups[:cell])
        if cell is not None and len(groups) > cell:
            changes += f"<br>… {len(groups) - cell} more groups of nodes"
        out.append(
            f"| {md.code(p.name, cell=True)} | {md.text(p.action)} | {nodes} | {batches or 'none'} "
            f"(maxUnavailable {md.text(p.max_unavailable)}) | {changes or '—'} |"
        )
    return out


def _cap(names: Iterable[str], cell: int | None) -> list[str]:
    names = list(names)
    return names if cell is None or len(names) <= cell else [*names[:cell], f"… {len(names) - cell} more"]


def _cap_batches(policy: PolicyImpact, cell: int | None) -> list[tuple[str, ...]]:
    batches = list(policy.batches)
    if cell is None or len(batches) <= cell:
        return batches
    return [*batches[:cell], (f"… {len(batches) - cell} more batches",)]


def _md_networks(report: SafetyReport, cell: int | None) -> list[str]:
    out = []
    for n in report.networks:
        risky = sorted(n.vms, key=lambda v: v.impact not in RISKY_VM)  # the VMs that restart or go first
        shown = risky if cell is None else risky[:cell]
        vms = ", ".join(f"{md.text(v.name)} ({md.text(v.impact)})" for v in shown) or "none"
        if len(shown) < len(risky):
            vms += f", … {len(risky) - len(shown)} more"
        out.append(f"| {md.code(n.name, cell=True)} | {md.text(n.action)} | {md.text(n.via)} | {vms} |")
    return out


def findings_markdown(report: SafetyReport, link: str | None = None, budget: Budget | None = None) -> list[str]:
    """The findings, blocking errors first. Every blocking error is always named (in a short form when
    the long one would not fit the budget); accepted errors and warnings are cut to the budget, warnings
    to :data:`MD_WARNINGS` in any case."""
    out: list[str] = []
    errors = sorted((f for f in report.findings if f.severity == "error"), key=report.is_accepted)
    if report.blocking:
        checks = ",".join(sorted({f.check for f in report.blocking}))
        annotation = md.code(f'{ACCEPT_ANNOTATION}: "{checks}"')
        out += [
            f"#### :x: Safety: {len(report.blocking)} error(s) block apply",
            "",
            f"Fix the change, or accept the risk in this pull request with the Cluster annotation "
            f"{annotation} (or `--accept-risk` for one manual run).",
            "",
        ]
    elif errors:
        out += [f"#### :warning: Safety: {len(errors)} error(s) accepted by {md.code(report.accepted_by)}", ""]
    lines = [_md_finding(f, report, link) for f in errors]
    blocking = len(report.blocking)
    if budget is not None and sum(len(x) + 1 for x in lines[:blocking]) > budget.left // 2:
        lines[:blocking] = [_md_finding(f, report, link, short=True) for f in errors[:blocking]]
    out += fit(budget, lines, more_rows("accepted errors"), keep=blocking)
    if errors:
        out.append("")
    if report.warnings:
        shown = report.warnings[:MD_WARNINGS]  # a comment has a size limit; the JSON plan has them all
        more = len(report.warnings) - len(shown)
        warnings = [_md_finding(f, report, link) for f in shown]
        out += ["#### :warning: Safety warnings", "", *fit(budget, warnings, more_rows("warnings"))]
        out += [f"- … and {more} more warning(s): see `virtnet plan -o json`", ""] if more else [""]
    return out


def radius_markdown(
    report: SafetyReport,
    budget: Budget | None = None,
    cell: int | None = None,
    link: str | None = None,
    connectivity: bool = True,
) -> list[str]:
    """The tables of node policies, networks and Services a plan reaches (cut to ``budget``), and (with
    ``connectivity``) who gains or loses reachability (``reconciler.output.connectivity``, bounded itself)."""
    out: list[str] = []
    if report.policies:
        out += ["| node policy | action | nodes | rollout batches | interface changes |", "|---|---|---|---|---|"]
        out += [*fit(budget, _md_policies(report, cell), more_table_row(5, "node policies")), ""]
    if report.networks:
        out += ["| network | action | via | VMs (impact) |", "|---|---|---|---|"]
        out += [*fit(budget, _md_networks(report, cell), more_table_row(4, "networks")), ""]
    if report.services:
        rows = [f"- {md.code(s.name)} ({md.code(s.vm)}: {md.text(s.why)})" for s in report.services]
        out += ["Services whose endpoints change:", "", *fit(budget, rows, more_rows("Services")), ""]
    if report.sriov:
        out += [
            "| SR-IOV node policy | action | nodes | drain or reboot | SR-IOV VMs stopped |",
            "|---|---|---|---|---|",
        ]
        rows = [
            f"| {md.code(s.name, cell=True)} | {md.text(s.action)} | {_md_list(_cap(s.nodes, cell)) or 'none known'} "
            f"| **{md.text(s.disruption)}**: {md.text('; '.join(s.why))} | {_md_list(_cap(s.vms, cell)) or 'none'} |"
            for s in report.sriov
        ]
        out += [*fit(budget, rows, more_table_row(5, "SR-IOV node policies")), ""]
    if connectivity:
        out += connectivity_markdown(report.connectivity, link)
    if report.note:
        out += [f":warning: {md.text(report.note)}", ""]
    return out


def safety_markdown(
    report: SafetyReport | None, plan: Plan | None = None, desired: Iterable[Obj] = (), link: str | None = None
) -> str:
    """The whole block (no budget): blast-radius tables, connectivity, findings, and (with ``plan``) a
    topology picture with the objects at risk marked. ``link`` is a blob URL prefix for ``file:line`` links."""
    if report is None or report.empty:
        return ""
    out = ["#### Blast radius", "", *radius_markdown(report, link=link), *findings_markdown(report, link)]
    if plan is not None and plan.has_changes:
        out += [md.block(safety_mermaid(report, plan, desired).rstrip(), "mermaid"), ""]
    return "\n".join(out) + "\n"


def safety_marked(report: SafetyReport) -> list[str]:
    """Object ids the picture marks at risk: those a finding names, and the VMs that restart or go."""
    marked = set(report.marked_ids())
    marked |= {v.id for n in report.networks for v in n.vms if v.impact in RISKY_VM}
    return sorted(marked)


def safety_mermaid(report: SafetyReport, plan: Plan, desired: Iterable[Obj]) -> str:
    """The topology picture (``reconciler.output.topology``) with policies, networks and VMs at risk marked."""
    return topology_mermaid(plan, desired, safety_marked(report))
