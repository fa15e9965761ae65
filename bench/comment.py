"""The PR comment's size at scale: ``python -m bench.comment M`` (sizes, not speed).

Why: GitHub refuses a comment over 65,536 characters, and a refused plan comment is a plan nobody sees. A
generated repository is planned against an empty cluster (everything is created) whose third worker lacks
half the uplink NICs, so the safety checks block it: the comment must still fit and name every blocking
finding. Prints the comment, the full plan (the status branch's ``plan.md``) and the picture's boxes,
arrows and characters against Mermaid's defaults (maxTextSize 50,000, maxEdges 500).
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from bench.generate import SIZES, generate, worker_nodes
from reconciler.engine.live import LiveState
from reconciler.engine.plan import build_plan
from reconciler.model import load_repo
from reconciler.output.budget import COMMENT_LIMIT
from reconciler.output.comment import full_plan_markdown, pull_request_comment
from reconciler.pipeline import Outcome
from reconciler.render import render
from reconciler.safety.analysis import analyze
from reconciler.safety.nodes import facts_from_state

HEAD = "0" * 40
BOX = re.compile(r'^  \w+\["', re.M)
ARROW = re.compile(r" (?:-->|-\.->) ")


def blocked_change(size: str, root: Path) -> Outcome:
    """``size``'s repository written to ``root`` and planned as the module docstring says (no cluster)."""
    generate(size, root)
    repo = load_repo(root, None)
    rendered = render(repo)
    plan = build_plan(rendered.objects, LiveState(), repo.cluster.name)
    nodes = worker_nodes(size)
    nodes[2]["interfaces"] = nodes[2]["interfaces"][: len(nodes[2]["interfaces"]) // 2]  # half the uplinks
    facts = [facts_from_state(n["name"], n["labels"], n, None) for n in nodes]
    report = analyze(plan, facts, rendered.objects, rendered.origins, cluster=repo.cluster)
    outcome = Outcome(cluster=repo.cluster.name, desired=rendered.objects, plan=plan, safety=report)
    outcome.failed, outcome.message = "PlanBlocked", report.blocked_message()
    return outcome


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The PR comment's size for a generated repository.")
    parser.add_argument("size", choices=sorted(SIZES))
    size = parser.parse_args(argv).size
    with tempfile.TemporaryDirectory(prefix="virtnet-comment-") as tmp:
        outcome = blocked_change(size, Path(tmp))
    cluster = outcome.cluster or "bench"
    body = pull_request_comment(outcome, cluster, HEAD)
    full = full_plan_markdown(outcome, cluster, HEAD)
    picture = re.search(r"```mermaid\n(.*?)\n```", body, re.S)
    text = picture[1] if picture else ""
    blocking = outcome.safety.blocking if outcome.safety else []
    named = sum(1 for f in blocking if f.ref and f"`{f.ref.file}:{f.ref.line}`" in body)
    boxes = len(BOX.findall(text))
    arrows = len(ARROW.findall(text))
    print(
        f"{size}: {len(outcome.desired)} objects; comment {len(body):,} characters (limit {COMMENT_LIMIT:,}); "
        f"full plan {len(full):,}; blocking findings named {named}/{len(blocking)}; picture {boxes} boxes, "
        f"{arrows} arrows, {len(text):,} characters"
    )


if __name__ == "__main__":
    main()
