"""The PR comment fits GitHub's limit whatever the change, and still names what blocks it."""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

from reconciler.engine.plan import Action, Item, Plan, VMChange
from reconciler.errors import SourceRef
from reconciler.output.budget import COMMENT_LIMIT
from reconciler.output.comment import full_plan_markdown, markdown_plan, pull_request_comment
from reconciler.safety.checks import Finding
from reconciler.safety.report import SafetyReport

HEAD = "0123456789abcdef0123456789abcdef01234567"
FULL = "https://forge.test/o/r/blob/virtnet-status/pull-requests/7/bench/plan.md"


def mermaid_of(body: str) -> str:
    return re.search(r"```mermaid\n(.*?)\n```", body, re.S)[1]  # type: ignore[index]


def test_a_1000_vm_change_fits_and_names_every_blocking_finding(big_change) -> None:  # type: ignore[no-untyped-def]
    body = pull_request_comment(big_change, "bench", HEAD, full_plan=FULL)
    full = full_plan_markdown(big_change, "bench", HEAD)
    assert len(full) > 4 * COMMENT_LIMIT  # the change is far too big to show whole
    assert len(body) <= COMMENT_LIMIT
    blocking = big_change.safety.blocking
    assert len(blocking) >= 5
    cli = markdown_plan(big_change, "bench")  # what `virtnet plan -o markdown` prints
    assert len(cli) <= COMMENT_LIMIT
    for text in (body, cli):
        for finding in blocking:
            where = f"`{finding.ref.file}:{finding.ref.line}`"
            line = next((ln for ln in text.splitlines() if where in ln), None)
            assert line is not None and finding.check in line and f"`{finding.interface}`" in line
    # the summary by kind and action, and the counts of what the lists leave out
    assert "| `VirtualMachine` | 1000 | 0 | 0 |" in body and "| `NetworkAttachmentDefinition` | 800 | 0 | 0 |" in body
    left_out = re.search(r"\| … \| and (\d+) more objects \|", body)
    rows = len(re.findall(r"^\| \+ create \| `", body, re.M))
    assert left_out and rows + int(left_out[1]) == len(big_change.plan.changes)
    assert f"]({FULL})" in body
    # the picture inside stays under Mermaid's default limits
    picture = mermaid_of(body)
    assert len(picture) <= 50_000 and len(re.findall(r" (?:-->|-\.->) ", picture)) <= 500
    # a blocked plan names each safety error once (the failure's message repeats them all)
    first = blocking[0]
    assert body.count(first.message) == 1 and "PlanBlocked" in body


def test_thousands_of_blocking_findings_still_fit(big_change) -> None:  # type: ignore[no-untyped-def]
    many = tuple(
        Finding("error", "missing-nic", f"port eth{i} missing " + "x" * 80, node=f"worker-{i}", interface=f"eth{i}",
                ref=SourceRef("nodes/uplinks.yaml", i + 1))
        for i in range(3000)
    )  # fmt: skip
    outcome = replace(big_change, safety=replace(big_change.safety, findings=many))
    body = pull_request_comment(outcome, "bench", HEAD)
    assert len(body) <= COMMENT_LIMIT
    assert "`nodes/uplinks.yaml:1`" in body and "x" * 80 not in body  # named, in the short form
    assert body.endswith("the full plan has everything.\n") and body.count("```") % 2 == 0


def test_the_riskiest_changes_come_first() -> None:
    creates = [Item(Action.CREATE, f"/ConfigMap/a/c{i}", f"ConfigMap/a/c{i}", 2, "new") for i in range(30)]
    items = (
        *creates,
        Item(Action.UPDATE, "kubevirt.io/VirtualMachine/a/vm", "VirtualMachine/a/vm", 3, "spec changed",
             vm_change=VMChange.RESTART),
        Item(Action.DELETE, "/ConfigMap/a/old", "ConfigMap/a/old", 2, "no longer in the repository"),
    )  # fmt: skip
    outcome = SimpleNamespace(plan=Plan("prod", items), safety=SafetyReport(), desired=[], problems=[], failed=None)
    rows = [ln for ln in pull_request_comment(outcome, "prod", HEAD).splitlines() if ln.startswith("| ")]
    objects = [r.split("|")[2].strip() for r in rows if r.split("|")[1].strip()[:1] in ("+", "~", "-")]
    assert objects[:3] == ["`ConfigMap/a/old`", "`VirtualMachine/a/vm`", "`ConfigMap/a/c0`"]


def test_a_blocked_plan_says_each_error_once_but_never_hides_a_dry_run_refusal() -> None:
    item = Item(Action.CREATE, "/ConfigMap/a/c", "ConfigMap/a/c", 2, "new")
    errors = ("HyperConverged/openshift-cnv/x does not exist",)
    by_errors = SimpleNamespace(plan=Plan("prod", (item,), errors=errors), safety=SafetyReport(), desired=[],
                                problems=[], failed="PlanBlocked", message="; ".join(errors))  # fmt: skip
    body = pull_request_comment(by_errors, "prod", HEAD)
    assert body.count("does not exist") == 1 and "PlanBlocked" in body
    refused = "ConfigMap/a/c: the API server refuses it: admission webhook denied the request"
    by_server = SimpleNamespace(plan=Plan("prod", (item,)), safety=SafetyReport(), desired=[], problems=[],
                                failed="PlanBlocked", message=refused)  # fmt: skip
    assert "admission webhook denied the request" in pull_request_comment(by_server, "prod", HEAD)
