"""The pull-request flow (issue #16): the cluster that tracks the base plans, a status per cluster that is
set even when the comment is refused, the full plan on the status branch with links, ``/virtnet plan``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitutil import git, push_commit
from repos import BASE, VM

from reconciler.clients.forge import ForgeError, GitHubForge
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.server import pullrequests
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.run import start
from reconciler.server.webhooks import PlanCommand, PullRequestEvent
from reconciler.testing import ApiDouble
from reconciler.testing.forge_double import ForgeDouble

SECRET = "canary-webhook-secret-77aa"
FORGE_TOKEN = "canary-forge-token-41bd"
WEB = "https://forge.test/ops/config"


class RefusingForge(GitHubForge):
    """A forge that refuses every comment, as GitHub refuses one over 65,536 characters."""

    def upsert_comment(self, repo: str, pr_number: int, marker: str, body: str) -> int:
        raise ForgeError("github POST /repos/ops/config/issues/7/comments: HTTP 422: Body is too long", 422)


@pytest.fixture
def forge() -> Iterator[ForgeDouble]:
    with ForgeDouble(token=FORGE_TOKEN) as double:
        yield double


def controller(remote: Path, api: ApiDouble, tmp_path: Path, forge: GitHubForge, **kw: object) -> Controller:
    settings = Settings(
        repo_url=remote.as_uri(), cache_root=tmp_path / "cache", apply=ApplyOptions(poll=0.02, timeout=20), **kw
    )
    return Controller(settings, Kube(api.api_client()), Metrics(), forge)


def pr_head(remote: Path) -> str:
    change = {**BASE, "vms/web.yaml": VM.replace("00:00:10", "00:00:52")}
    head = push_commit(remote, change, "pr", branch="feature")
    git("update-ref", "refs/pull/7/head", head, cwd=remote)
    return head


def event(remote: Path, head: str, base: str = "main") -> PullRequestEvent:
    return PullRequestEvent("github", "opened", 7, head, "feature", remote.as_uri(), base, "ops/config", "d", WEB)


def test_a_refused_comment_still_sets_the_status_and_says_why(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    head = pr_head(remote)
    ctl = controller(remote, api, tmp_path, RefusingForge(forge.url, FORGE_TOKEN), status_branch=None)
    outcome = ctl.plan_pull_request(event(remote, head))
    assert outcome.ok and outcome.plan is not None and outcome.plan.has_changes
    assert forge.comments("ops/config", 7) == []
    [status] = forge.statuses("ops/config", head)
    assert status["state"] == "success" and status["context"] == "virtnet/plan/test"
    assert "the plan comment failed: 422" in status["description"] and len(status["description"]) <= 140
    assert status["target_url"] == f"{WEB}/pull/7"  # the details link, without a status branch


def test_the_full_plan_goes_to_the_status_branch_and_both_link_to_it(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    head = pr_head(remote)
    ctl = controller(remote, api, tmp_path, GitHubForge(forge.url, FORGE_TOKEN))
    assert ctl.reconcile("sync").ok  # the cluster as main has it: the PR's plan is one VM's MAC
    assert ctl.plan_pull_request(event(remote, head)).ok
    tip = git("rev-parse", "virtnet-status", cwd=remote)
    plan = git("show", f"{tip}:pull-requests/7/test/plan.md", cwd=remote)
    assert "VirtualMachine/apps/web-1" in plan and "02:00:00:00:00:52" in plan
    assert json.loads(git("show", f"{tip}:pull-requests/7/test/plan.json", cwd=remote))["cluster"] == "test"
    link = f"{WEB}/blob/{tip}/pull-requests/7/test/plan.md"
    [status] = forge.statuses("ops/config", head)
    assert status["target_url"] == link and status["context"] == "virtnet/plan/test"
    body = forge.comments("ops/config", 7)[0]["body"]
    assert f"]({link})" in body


def test_a_pull_request_into_a_branch_this_cluster_does_not_track_is_not_planned(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    head = pr_head(remote)
    ctl = controller(remote, api, tmp_path, GitHubForge(forge.url, FORGE_TOKEN), cluster="test")
    api.reset_counts()
    outcome = ctl.plan_pull_request(event(remote, head, base="release-1<b>"))
    assert outcome.plan is None and api.requests == []  # not even read
    [status] = forge.statuses("ops/config", head)
    assert status["state"] == "success" and status["context"] == "virtnet/plan/test"
    assert status["description"] == "not planned: cluster test tracks main, not release-1<b>"
    assert status["target_url"] == f"{WEB}/pull/7"
    body = forge.comments("ops/config", 7)[0]["body"]
    assert "tracks main, not release-1\\<b\\>" in body and "changes nothing" in body  # the branch name is text
    assert not (tmp_path / "cache" / "pull-requests").exists()  # nothing fetched


def test_two_clusters_keep_their_own_status_and_comment(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    head = pr_head(remote)
    for name in ("test", "other"):  # the controller of "other" fails (the repository has no such Cluster)
        ctl = controller(remote, api, tmp_path / name, GitHubForge(forge.url, FORGE_TOKEN), cluster=name)
        ctl.settings.status_branch = None
        ctl.plan_pull_request(event(remote, head))
    contexts = {s["context"]: s["state"] for s in forge.statuses("ops/config", head)}
    assert contexts == {"virtnet/plan/test": "success", "virtnet/plan/other": "failure"}
    assert len(forge.comments("ops/config", 7)) == 2


def _post(url: str, event_name: str, payload: dict, delivery: str) -> int:  # type: ignore[type-arg]
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event_name, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}
    with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"), timeout=10) as response:
        return int(response.status)


def test_a_virtnet_plan_comment_plans_the_pull_request_again(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    head = pr_head(remote)
    forge.add_pull("github", "ops/config", 7, head, base_ref="main", head_url=remote.as_uri())
    ctl = controller(remote, api, tmp_path, GitHubForge(forge.url, FORGE_TOKEN), status_branch=None)
    runtime = start(ctl, interval=3600, http_port=0, webhook_secret=SECRET)
    try:
        deadline = time.monotonic() + 60
        while ctl.last is None and time.monotonic() < deadline:  # the startup sync, not racing the plan
            time.sleep(0.05)
        url = f"http://127.0.0.1:{runtime.server.port}/webhooks/github"  # type: ignore[union-attr]

        def comment(body: str, association: str = "MEMBER") -> dict:  # type: ignore[type-arg]
            return {
                "action": "created",
                "issue": {"number": 7, "pull_request": {"url": "x"}},
                "comment": {"body": body, "user": {"login": "alice"}, "author_association": association},
                "repository": {"full_name": "ops/config", "html_url": WEB},
            }

        assert _post(url, "issue_comment", comment("/virtnet plan", association="NONE"), "c0") == 202
        assert _post(url, "issue_comment", comment("looks good"), "c1") == 202
        assert _post(url, "issue_comment", comment("/virtnet plan\n"), "c2") == 202
        assert runtime.plans is not None and runtime.plans.wait_idle(60)
    finally:
        runtime.stop()
    statuses = forge.statuses("ops/config", head)
    assert [(s["state"], s["context"]) for s in statuses] == [("success", "virtnet/plan/test")]  # once, for c2
    assert "VirtualMachine/apps/web-1" in forge.comments("ops/config", 7)[0]["body"]


def test_pull_request_heads_are_fetched_over_the_configured_transport(tmp_path: Path) -> None:
    """A repository configured for SSH: the PR head comes over SSH, though the event names an https URL."""
    settings = Settings(repo_url="ssh://git@forge.test/ops/config.git", cache_root=tmp_path / "cache")
    ctl = Controller(settings, Kube.__new__(Kube), Metrics(), None)
    head = "a" * 40
    pr = PullRequestEvent(
        "github", "opened", 3, head, "f", "https://forge.test/ops/config.git", "main", "ops/config", "d"
    )
    src = pullrequests.source(ctl, pr)
    assert src.url == "ssh://git@forge.test/ops/config.git"


def test_a_forge_answer_that_is_not_a_head_is_not_planned(
    remote: Path, api: ApiDouble, tmp_path: Path, forge: ForgeDouble
) -> None:
    forge.add_pull("github", "ops/config", 7, "HEAD; echo pwned", base_ref="main")
    ctl = controller(remote, api, tmp_path, GitHubForge(forge.url, FORGE_TOKEN), status_branch=None)
    assert ctl.plan_command(PlanCommand("github", "ops/config", 7, "alice", "d")) is None
    assert forge.comments("ops/config", 7) == [] and not (tmp_path / "cache" / "pull-requests").exists()
