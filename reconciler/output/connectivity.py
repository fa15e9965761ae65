"""The "Connectivity" section of plans: who gains or loses reachability, for terminals and PR comments (pure).

Why bounded: a change to a bridge's VLAN can cut thousands of pairs. Counts come first, then the biggest
losses, each with the line that causes it and a few pairs by name; the rest is counted, never listed (the
JSON plan carries every group). In Markdown every name and message goes through
``reconciler.output.markdown``.
"""

from __future__ import annotations

from reconciler.model import Repo
from reconciler.output import markdown as md
from reconciler.safety.connectivity import ConnectivityReport
from reconciler.safety.dataplane import build
from reconciler.safety.matrix import MatrixRow, namespace_matrix
from reconciler.safety.reach import Cause, ReachChange

TEXT_GROUPS = 20  # change groups listed in the terminal
MD_GROUPS = 10  # ... and in a PR comment
MD_VMS = 10  # VMs named per list in a PR comment


def _pairs(n: int) -> str:
    return f"{n:,} pair{'s' if n != 1 else ''}"


def headline(report: ConnectivityReport) -> str:
    if not report.compared:
        return f"{report.domains} layer-2 domain(s); no current revision to compare with"
    merged = sum(1 for d in report.domain_changes if d.kind == "merged")
    split = len(report.domain_changes) - merged
    lost_services = sum(1 for s in report.services if s.direction == "lost")
    return (
        f"{_pairs(report.lost)} lost, {_pairs(report.gained)} gained; {len(report.gateways)} VM(s) lose their only "
        f"gateway path; {merged} domain(s) merged, {split} split; {lost_services} Service port(s) lost, "
        f"{len(report.services) - lost_services} gained"
    )


def _where(cause: Cause) -> str:
    return f"{cause.where}: " if cause.where else ""


def _group_text(c: ReachChange) -> list[str]:
    nets = f" ({', '.join(c.networks)})" if c.networks else ""
    lines = [f"  {c.direction} {_pairs(c.count)} on {c.domain}{nets}: {_where(c.cause)}{c.cause.text}"]
    lines += [f"    {p}" for p in c.examples]
    if c.count > len(c.examples):
        lines.append(f"    … and {c.count - len(c.examples):,} more")
    return lines


def connectivity_text(report: ConnectivityReport | None) -> list[str]:
    """Lines for the terminal's safety section (empty when there is nothing to say)."""
    if report is None or (report.empty and not report.shared):
        return []
    lines = [f"Connectivity: {headline(report)}"]
    for label, networks in report.shared:
        lines.append(f"  one domain: {label} carries networks {', '.join(networks)}")
    for c in report.changes[:TEXT_GROUPS]:
        lines += _group_text(c)
    if len(report.changes) > TEXT_GROUPS:
        lines.append(f"  … {len(report.changes) - TEXT_GROUPS} more change group(s) in the JSON plan")
    for vm, cause in report.gateways:
        lines.append(f"  {vm} loses its only path to a gateway: {_where(cause)}{cause.text}")
    for d in report.domain_changes:
        groups = " + ".join("/".join(g) for g in d.groups)
        lines.append(f"  domain {d.kind}: {d.domain}: {groups}: {_where(d.cause)}{d.cause.text}")
    for s in report.services:
        lines.append(f"  Service {s.service} port {s.port} {s.direction} for {s.vm}")
    return lines


def _md_cause(cause: Cause, link: str | None) -> str:
    if not cause.where:
        return md.text(cause.text)
    if link and cause.ref is not None and cause.ref.line:
        target = f"[{md.code(cause.where)}]({link}{md.link_path(cause.ref.file)}#L{cause.ref.line})"
    else:
        target = md.code(cause.where)
    return f"{target} {md.text(cause.text)}"


def _md_names(names: list[str]) -> str:
    shown = ", ".join(md.code(n, cell=True) for n in names[:MD_VMS])
    return shown + (f" and {len(names) - MD_VMS} more" if len(names) > MD_VMS else "")


def connectivity_markdown(report: ConnectivityReport | None, link: str | None = None) -> list[str]:
    """PR-comment lines: counts first, then the biggest losses (and gains) named, within fixed caps."""
    if report is None or (report.empty and not report.shared):
        return []
    out = ["#### Connectivity", "", f"**{md.text(headline(report))}**", ""]
    if report.changes:
        out += ["| | pairs | domain | cause | e.g. |", "|---|---|---|---|---|"]
        for c in report.changes[:MD_GROUPS]:
            sign = ":x: lost" if c.direction == "lost" else ":heavy_plus_sign: gained"
            example = md.text(str(c.examples[0])) if c.examples else ""
            out.append(f"| {sign} | {c.count:,} | {md.text(c.domain)} | {_md_cause(c.cause, link)} | {example} |")
        if len(report.changes) > MD_GROUPS:
            out.append(f"\n{len(report.changes) - MD_GROUPS} more change group(s): see `virtnet plan -o json`.")
        out.append("")
    if report.gateways:
        out += [f"VMs losing their only path to a gateway: {_md_names([vm for vm, _ in report.gateways])}", ""]
    for d in report.domain_changes:
        groups = " + ".join(md.text("/".join(g)) for g in d.groups)
        out.append(f"- domain {md.text(d.kind)}: {md.text(d.domain)} ({groups}): {_md_cause(d.cause, link)}")
    lost = [f"{s.service} {s.port} → {s.vm}" for s in report.services if s.direction == "lost"]
    if lost:
        out.append(f"- Service ports lost: {_md_names(lost)}")
    if report.shared:
        shared = "; ".join(f"{d}: {', '.join(n)}" for d, n in report.shared[:MD_VMS])
        out.append(f"- one broadcast domain, several network names: {md.text(shared)}")
    return [*out, ""]


MATRIX_COLUMNS = 25  # up to this many VMs a namespace's matrix is a table; beyond, one line per VM


def _matrix_table(names: list[str], rows: list[MatrixRow]) -> list[str]:
    short = [n.partition("/")[2] for n in names]
    out = [
        "| VM | pod network | gateway | pairs elsewhere | " + " | ".join(md.code(s, cell=True) for s in short) + " |"
    ]
    out.append("|---" * (4 + len(names)) + "|")
    for row in rows:
        cells = [
            "·" if peer == row.vm else md.text(", ".join(row.peers[peer])) if peer in row.peers else ""
            for peer in names
        ]
        out.append(
            f"| {md.code(row.vm.partition('/')[2], cell=True)} | {'yes' if row.pod else 'no'} | "
            f"{'yes' if row.gateway else 'no'} | {row.elsewhere:,} | " + " | ".join(cells) + " |"
        )
    return out


def matrix_markdown(namespace: str, rows: list[MatrixRow]) -> str:
    """Who reaches whom in one namespace on the secondary networks (a status-branch file)."""
    names = [r.vm for r in rows]
    out = [
        f"# Reachability in namespace `{namespace}`",
        "",
        "Secondary networks only, from the repository at this revision: two "
        "interfaces reach each other in one layer-2 domain and subnet, or across subnets when both have a "
        "gateway present in the domain. Every VM with the pod network reaches every other on it.",
        "",
    ]
    if len(rows) <= MATRIX_COLUMNS:
        out += _matrix_table(names, rows)
    else:
        for row in rows:
            peers = "; ".join(f"{p.partition('/')[2]} ({', '.join(n)})" for p, n in sorted(row.peers.items()))
            flags = f"pod network {'yes' if row.pod else 'no'}, gateway {'yes' if row.gateway else 'no'}"
            out.append(
                f"- {md.code(row.vm.partition('/')[2])} ({flags}, {row.elsewhere:,} pairs elsewhere): "
                + (md.text(peers) if peers else "no peer in the namespace")
            )
    return "\n".join(out) + "\n"


def matrix_files(repo: Repo) -> dict[str, str]:
    """``reachability/<namespace>.md`` for every namespace with VMs (namespaces are DNS labels: safe names)."""
    return {
        f"reachability/{ns}.md": matrix_markdown(ns, rows) for ns, rows in sorted(namespace_matrix(build(repo)).items())
    }
