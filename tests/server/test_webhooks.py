"""Webhook verification and parsing, with real signatures computed here for each provider."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from reconciler.server.webhooks import (
    DeliveryLog,
    Ignored,
    PlanCommand,
    PullRequestEvent,
    PushEvent,
    WebhookError,
    delivery_id,
    parse,
    verify,
)

SECRET = b"s3cret-webhook-key"
SHA = "a" * 40
HEAD = "b" * 40


def github_headers(body: bytes, event: str, secret: bytes = SECRET, delivery: str = "d-1") -> dict[str, str]:
    sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": sig, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}


def gitea_headers(body: bytes, event: str, secret: bytes = SECRET, delivery: str = "d-1") -> dict[str, str]:
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"X-Gitea-Signature": sig, "X-Gitea-Event": event, "X-Gitea-Delivery": delivery}


def gitlab_headers(event: str, token: bytes = SECRET, delivery: str = "d-1") -> dict[str, str]:
    return {"X-Gitlab-Token": token.decode(), "X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery}


def gh_push(ref: str = "refs/heads/main", after: str = SHA) -> bytes:
    return json.dumps(
        {"ref": ref, "after": after, "repository": {"clone_url": "https://example.test/o/r.git"}}
    ).encode()


def gh_pr(action: str = "opened") -> bytes:
    return json.dumps(
        {
            "action": action,
            "number": 7,
            "pull_request": {
                "head": {"sha": HEAD, "ref": "feature", "repo": {"clone_url": "https://example.test/f/r.git"}},
                "base": {"ref": "main"},
            },
            "repository": {"full_name": "o/r"},
        }
    ).encode()


def gl_push() -> bytes:
    return json.dumps(
        {"ref": "refs/heads/main", "after": SHA, "project": {"git_http_url": "https://gl.test/g/p.git"}}
    ).encode()


def gl_mr(action: str = "open") -> bytes:
    return json.dumps(
        {
            "object_kind": "merge_request",
            "project": {"path_with_namespace": "g/sub/p"},
            "object_attributes": {
                "iid": 3,
                "action": action,
                "source_branch": "feature",
                "target_branch": "main",
                "last_commit": {"id": HEAD},
                "source": {"git_http_url": "https://gl.test/g/sub/p.git"},
            },
        }
    ).encode()


class TestVerify:
    def test_github_valid(self) -> None:
        body = gh_push()
        assert verify("github", github_headers(body, "push"), body, SECRET)
        assert verify("github", github_headers(body, "push"), body, SECRET.decode())

    def test_github_forged_missing_tampered(self) -> None:
        body = gh_push()
        assert not verify("github", github_headers(body, "push", secret=b"other"), body, SECRET)
        assert not verify("github", {"X-GitHub-Event": "push"}, body, SECRET)
        assert not verify("github", github_headers(body, "push"), body + b" ", SECRET)
        # the bare hex (Gitea style) is not a GitHub signature
        bare = {"X-Hub-Signature-256": hmac.new(SECRET, body, hashlib.sha256).hexdigest()}
        assert not verify("github", bare, body, SECRET)

    def test_gitea_valid_and_forged(self) -> None:
        body = gh_push()
        assert verify("gitea", gitea_headers(body, "push"), body, SECRET)
        assert not verify("gitea", gitea_headers(body, "push", secret=b"x"), body, SECRET)
        assert not verify("gitea", {}, body, SECRET)
        # a GitHub header does not satisfy the Gitea check
        assert not verify("gitea", github_headers(body, "push"), body, SECRET)

    def test_gitlab_token(self) -> None:
        body = gl_push()
        assert verify("gitlab", gitlab_headers("Push Hook"), body, SECRET)
        assert not verify("gitlab", gitlab_headers("Push Hook", token=b"wrong"), body, SECRET)
        assert not verify("gitlab", {"X-Gitlab-Event": "Push Hook"}, body, SECRET)

    def test_headers_are_case_insensitive(self) -> None:
        body = gh_push()
        lowered = {k.lower(): v for k, v in github_headers(body, "push").items()}
        assert verify("github", lowered, body, SECRET)

    @pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
    def test_empty_secret_never_verifies(self, provider: str) -> None:
        body = b"{}"
        headers = {
            "X-Hub-Signature-256": "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest(),
            "X-Gitea-Signature": hmac.new(b"", body, hashlib.sha256).hexdigest(),
            "X-Gitlab-Token": "",
        }
        assert not verify(provider, headers, body, b"")

    def test_unknown_provider(self) -> None:
        assert not verify("bitbucket", {}, b"", SECRET)


class TestParse:
    def test_github_push(self) -> None:
        body = gh_push()
        event = parse("github", github_headers(body, "push", delivery="abc"), body)
        assert event == PushEvent("github", "https://example.test/o/r.git", "refs/heads/main", SHA, "abc")
        assert event.branch == "main"

    def test_tag_push_has_no_branch(self) -> None:
        body = gh_push(ref="refs/tags/v1")
        event = parse("github", github_headers(body, "push"), body)
        assert isinstance(event, PushEvent) and event.branch is None

    def test_branch_deletion_is_ignored(self) -> None:
        body = gh_push(after="0" * 40)
        assert isinstance(parse("github", github_headers(body, "push"), body), Ignored)

    @pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
    def test_github_pr_actions(self, action: str) -> None:
        body = gh_pr(action)
        event = parse("github", github_headers(body, "pull_request"), body)
        assert event == PullRequestEvent(
            provider="github",
            action=action,
            number=7,
            head_sha=HEAD,
            head_ref="feature",
            head_url="https://example.test/f/r.git",
            base_ref="main",
            repo="o/r",
            delivery="d-1",
        )

    @pytest.mark.parametrize("action", ["closed", "labeled", "edited"])
    def test_github_pr_other_actions_ignored(self, action: str) -> None:
        body = gh_pr(action)
        event = parse("github", github_headers(body, "pull_request"), body)
        assert isinstance(event, Ignored) and event.event == "pull_request"

    def test_gitea_synchronized_is_normalized(self) -> None:
        body = gh_pr("synchronized")
        event = parse("gitea", gitea_headers(body, "pull_request"), body)
        assert isinstance(event, PullRequestEvent) and event.action == "synchronize"

    def test_gitea_push(self) -> None:
        body = gh_push()
        event = parse("gitea", gitea_headers(body, "push", delivery="g-1"), body)
        assert isinstance(event, PushEvent) and event.delivery == "g-1" and event.provider == "gitea"

    def test_gitlab_push(self) -> None:
        body = gl_push()
        event = parse("gitlab", gitlab_headers("Push Hook", delivery="u-1"), body)
        assert event == PushEvent("gitlab", "https://gl.test/g/p.git", "refs/heads/main", SHA, "u-1")

    @pytest.mark.parametrize(("raw", "norm"), [("open", "opened"), ("update", "synchronize"), ("reopen", "reopened")])
    def test_gitlab_mr(self, raw: str, norm: str) -> None:
        body = gl_mr(raw)
        event = parse("gitlab", gitlab_headers("Merge Request Hook"), body)
        assert isinstance(event, PullRequestEvent)
        assert (event.action, event.number, event.repo, event.head_sha) == (norm, 3, "g/sub/p", HEAD)
        assert (event.head_ref, event.base_ref) == ("feature", "main")

    def test_gitlab_mr_merge_ignored(self) -> None:
        body = gl_mr("merge")
        assert isinstance(parse("gitlab", gitlab_headers("Merge Request Hook"), body), Ignored)

    @pytest.mark.parametrize(
        ("provider", "headers"),
        [
            ("github", {"X-GitHub-Event": "issues"}),
            ("github", {}),
            ("gitea", {"X-Gitea-Event": "release"}),
            ("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}),
        ],
    )
    def test_wrong_event_ignored_without_reading_body(self, provider: str, headers: dict[str, str]) -> None:
        event = parse(provider, headers, b"not json at all")
        assert isinstance(event, Ignored)

    def test_malformed_bodies_raise(self) -> None:
        with pytest.raises(WebhookError):
            parse("github", {"X-GitHub-Event": "push"}, b"{not json")
        with pytest.raises(WebhookError):
            parse("github", {"X-GitHub-Event": "push"}, b"[]")
        with pytest.raises(WebhookError, match=r"repository\.clone_url"):
            parse("github", {"X-GitHub-Event": "push"}, b'{"ref": "refs/heads/main", "after": "x"}')
        bad = json.loads(gh_pr())
        bad["number"] = "7"
        with pytest.raises(WebhookError, match="number"):
            parse("github", {"X-GitHub-Event": "pull_request"}, json.dumps(bad).encode())

    def test_delivery_falls_back_to_body_hash(self) -> None:
        body = gl_push()
        one = delivery_id("gitlab", {}, body)
        assert one.startswith("body:") and one == delivery_id("gitlab", {}, body)
        assert one != delivery_id("gitlab", {}, body + b" ")


class TestDeliveryLog:
    def test_replay_rejected(self) -> None:
        log = DeliveryLog(maxsize=8)
        assert log.add("github", "d-1")
        assert not log.add("github", "d-1")
        # same id from another provider is a different delivery
        assert log.add("gitea", "d-1")

    def test_bounded_lru(self) -> None:
        log = DeliveryLog(maxsize=3)
        for i in range(3):
            assert log.add("github", f"d{i}")
        assert not log.add("github", "d0")  # refreshes d0
        assert log.add("github", "d3")  # evicts d1, the least recently seen
        assert len(log) == 3
        assert ("github", "d1") not in log
        assert ("github", "d0") in log
        assert log.add("github", "d1")

    def test_forget(self) -> None:
        log = DeliveryLog()
        log.add("github", "x")
        log.forget("github", "x")
        assert log.add("github", "x")

    def test_maxsize_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            DeliveryLog(maxsize=0)


def _comment(body: str, *, association: str = "MEMBER", on_pr: bool = True, action: str = "created") -> bytes:
    issue: dict[str, object] = {"number": 9, **({"pull_request": {"url": "x"}} if on_pr else {})}
    return json.dumps(
        {
            "action": action,
            "issue": issue,
            "comment": {"body": body, "user": {"login": "alice"}, "author_association": association},
            "repository": {"full_name": "o/r", "html_url": "https://example.test/o/r"},
        }
    ).encode()


def test_a_virtnet_plan_comment_is_a_plan_command() -> None:
    body = _comment("/virtnet plan\nplease")
    event = parse("github", github_headers(body, "issue_comment"), body)
    assert isinstance(event, PlanCommand)
    assert (event.repo, event.number, event.author, event.web_url) == ("o/r", 9, "alice", "https://example.test/o/r")
    gitea = parse("gitea", gitea_headers(body, "issue_comment"), body)
    assert isinstance(gitea, PlanCommand) and gitea.number == 9


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_comment("please /virtnet plan"), "not a command"),
        (_comment("/virtnet plan", on_pr=False), "not on a pull request"),
        (_comment("/virtnet plan", action="edited"), "not a new comment"),
        (_comment("/virtnet plan", association="NONE"), "only collaborators may ask for a plan"),
    ],
)
def test_other_comments_are_ignored(body: bytes, reason: str) -> None:
    event = parse("github", github_headers(body, "issue_comment"), body)
    assert isinstance(event, Ignored) and event.reason == reason


def test_a_gitlab_note_on_a_merge_request() -> None:
    note = {
        "object_attributes": {"note": "/virtnet plan", "noteable_type": "MergeRequest"},
        "merge_request": {"iid": 4},
        "user": {"username": "bob"},
        "project": {"path_with_namespace": "g/sub/r", "web_url": "https://gitlab.test/g/sub/r"},
    }
    event = parse("gitlab", gitlab_headers("Note Hook"), json.dumps(note).encode())
    assert isinstance(event, PlanCommand) and (event.repo, event.number, event.author) == ("g/sub/r", 4, "bob")
    note["object_attributes"]["noteable_type"] = "Issue"  # type: ignore[index]
    assert isinstance(parse("gitlab", gitlab_headers("Note Hook"), json.dumps(note).encode()), Ignored)


def test_a_page_url_that_could_break_a_markdown_link_is_dropped() -> None:
    data = json.loads(_comment("/virtnet plan"))
    data["repository"]["html_url"] = "https://example.test/o/r)[safe](https://evil.test"
    body = json.dumps(data).encode()
    event = parse("github", github_headers(body, "issue_comment"), body)
    assert isinstance(event, PlanCommand) and event.web_url == ""
