"""A generated 1,000-VM change (``bench.generate`` size M), planned against an empty cluster whose third
worker lacks half the uplink NICs: every object is created and the safety checks block the plan. Built
once per session (about ten seconds): the PR-comment and picture tests measure their budgets on it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bench.generate import generate, worker_nodes
from reconciler.engine.live import LiveState
from reconciler.engine.plan import Plan, build_plan
from reconciler.errors import Problem
from reconciler.model import load_repo
from reconciler.objects import Obj
from reconciler.render import render
from reconciler.safety import SafetyReport
from reconciler.safety.analysis import analyze
from reconciler.safety.nodes import facts_from_state


@dataclass
class Outcome:
    """What ``reconciler.output.comment`` reads of a reconcile's outcome."""

    plan: Plan | None
    safety: SafetyReport | None
    desired: list[Obj]
    problems: list[Problem] = field(default_factory=list)
    failed: str | None = None
    message: str = ""


@pytest.fixture(scope="session")
def big_change(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = tmp_path_factory.mktemp("repo-M")
    generate("M", root)
    repo = load_repo(root, None)
    rendered = render(repo)
    plan = build_plan(rendered.objects, LiveState(), repo.cluster.name)
    nodes = worker_nodes("M")
    nodes[2]["interfaces"] = nodes[2]["interfaces"][: len(nodes[2]["interfaces"]) // 2]  # half the uplinks
    facts = [facts_from_state(n["name"], n["labels"], n, None) for n in nodes]
    report = analyze(plan, facts, rendered.objects, rendered.origins, cluster=repo.cluster)
    assert report.blocking, "the fixture must block: worker-2 lacks uplinks"
    return Outcome(plan, report, rendered.objects, failed="PlanBlocked", message=report.blocked_message())
