"""Correctly signed but hostile deliveries, over real HTTP (issue #14, class 13).

Each one is answered 400 with the field and the rule it breaks, starts no work, and leaves no log line
that it forged: a body nested 100,000 deep (was a 500), a newline in ``ref`` (was an injected log line),
a commit id that is not hex (was an exception in the PR thread, and no status), numbers that are not
positive, branch names git refuses, and URLs or repository names with spaces or control characters. The
same deliveries with good values are accepted, so the rules do not refuse what forges really send.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.server.app import ServerHandle, build_app, serve
from reconciler.server.webhooks import PullRequestEvent, PushEvent

SECRET = "inputs-webhook-secret"
SHA = "d" * 40
FORGED = "2030-01-01 00:00:00 INFO reconciler.server.app: forged line"


@dataclass
class Harness:
    handle: ServerHandle
    pushes: list[PushEvent] = field(default_factory=list)
    prs: list[PullRequestEvent] = field(default_factory=list)

    def post(self, provider: str, kind: str, body: bytes, delivery: str = "d-1") -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if provider == "gitlab":
            headers |= {"X-Gitlab-Event": {"push": "Push Hook", "pr": "Merge Request Hook"}[kind]}
            headers |= {"X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": delivery}
        else:
            sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            event = {"push": "push", "pr": "pull_request"}[kind]
            if provider == "github":
                headers |= {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
                headers |= {"X-Hub-Signature-256": "sha256=" + sig}
            else:
                headers |= {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery, "X-Gitea-Signature": sig}
        conn = http.client.HTTPConnection("127.0.0.1", self.handle.port, timeout=15)
        try:
            conn.request("POST", f"/webhooks/{provider}", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data.startswith(b"{") else {}
        finally:
            conn.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    box: dict[str, Harness] = {}
    app = build_app(
        secrets={"github": SECRET, "gitea": SECRET, "gitlab": SECRET},
        branch="main",
        on_push=lambda e: box["h"].pushes.append(e),
        on_pull_request=lambda e: box["h"].prs.append(e),
    )
    handle = serve(app, "127.0.0.1", 0)
    box["h"] = Harness(handle)
    try:
        yield box["h"]
    finally:
        handle.stop()


def push(provider: str, **over: Any) -> dict[str, Any]:
    where = "project" if provider == "gitlab" else "repository"
    key = "git_http_url" if provider == "gitlab" else "clone_url"
    body: dict[str, Any] = {"ref": "refs/heads/main", "after": SHA, where: {key: "https://forge.test/o/r.git"}}
    return {**body, **over}


def pull_request(provider: str, edit: Callable[[dict[str, Any]], None] = lambda d: None) -> dict[str, Any]:
    if provider == "gitlab":
        body: dict[str, Any] = {
            "project": {"path_with_namespace": "g/sub/p"},
            "object_attributes": {
                "iid": 3, "action": "open", "source_branch": "feature", "target_branch": "main",
                "last_commit": {"id": SHA}, "source": {"git_http_url": "https://forge.test/g/sub/p.git"},
            },
        }  # fmt: skip
    else:
        body = {
            "action": "opened",
            "number": 7,
            "pull_request": {
                "head": {"sha": SHA, "ref": "feature", "repo": {"clone_url": "https://forge.test/f/r.git"}},
                "base": {"ref": "main"},
            },
            "repository": {"full_name": "o/r"},
        }
    edit(body)
    return body


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


GH_HEAD = ("pull_request", "head")
GL = ("object_attributes",)


def pr(provider: str, *path: str, value: Any) -> bytes:
    return json.dumps(pull_request(provider, _set(*path, value=value))).encode()


def pushed(provider: str, **over: Any) -> bytes:
    return json.dumps(push(provider, **over)).encode()


# (provider, kind, body, what the 400's error must name)
HOSTILE: list[tuple[str, str, bytes, str]] = [
    ("github", "push", b'{"ref": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ("gitlab", "pr", b"[" * 200_000, "nested too deeply"),
]
for _p in ("github", "gitea", "gitlab"):
    HOSTILE += [
        (_p, "push", pushed(_p, ref=f"refs/heads/main\n{FORGED}"), "field ref"),
        (_p, "push", pushed(_p, ref="main"), "field ref"),  # not a whole ref
        (_p, "push", pushed(_p, after="not-a-sha\n" + FORGED), "field after"),
        (_p, "push", pushed(_p, after=SHA[:39]), "field after"),
    ]
for _p in ("github", "gitea"):
    HOSTILE += [
        (_p, "pr", pr(_p, *GH_HEAD, "sha", value="zz" * 20), "head.sha"),
        (_p, "pr", pr(_p, *GH_HEAD, "ref", value=f"f\n{FORGED}"), "head.ref"),
        (_p, "pr", pr(_p, *GH_HEAD, "ref", value="a..b"), "head.ref"),
        (_p, "pr", pr(_p, "pull_request", "base", "ref", value="m ain"), "base.ref"),
        (_p, "pr", pr(_p, "number", value=0), "field number"),
        (_p, "pr", pr(_p, "number", value=2**40), "field number"),
        (_p, "pr", pr(_p, "repository", "full_name", value="o/r\nx"), "full_name"),
        (_p, "pr", pr(_p, *GH_HEAD, "repo", "clone_url", value="https://x y"), "clone_url"),
    ]
HOSTILE += [
    ("gitlab", "pr", pr("gitlab", *GL, "last_commit", "id", value="x"), "last_commit.id"),
    ("gitlab", "pr", pr("gitlab", *GL, "iid", value=-3), "iid"),
    ("gitlab", "pr", pr("gitlab", *GL, "source_branch", value="x\ny"), "source_branch"),
]


def test_hostile_fields_are_400_with_the_reason_and_no_work_or_forged_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [harness.post(p, kind, body, f"h-{i}") for i, (p, kind, body, _) in enumerate(HOSTILE)]
    wrong = [
        (i, status, answer)
        for i, ((_, _, _, reason), (status, answer)) in enumerate(zip(HOSTILE, answers, strict=True))
        if status != 400 or reason not in answer.get("error", "")
    ]
    assert wrong == []
    assert harness.pushes == [] and harness.prs == []
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "\n" in m or "\r" in m or "forged line" in m]
    assert harness.post("github", "push", json.dumps(push("github")).encode(), "after")[0] == 202  # still serving


def test_good_values_are_accepted_and_normalised(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    sha256 = "E" * 64  # a SHA-256 repository, in upper case
    deliveries = [
        ("github", "push", push("github", after=sha256)),
        ("gitlab", "push", push("gitlab", ref="refs/heads/main")),
        ("github", "pr", pull_request("github", _set(*GH_HEAD, "ref", value="user/feature-1.2_x"))),
        ("gitea", "pr", pull_request("gitea", _set("number", value=2**31 - 1))),
        ("gitlab", "pr", pull_request("gitlab")),
    ]
    statuses = [
        harness.post(p, kind, json.dumps(b).encode(), f"ok-{i}")[0] for i, (p, kind, b) in enumerate(deliveries)
    ]
    assert statuses == [202] * 5
    assert [e.after for e in harness.pushes] == ["e" * 64, SHA]
    assert [(e.number, e.head_ref, e.pull_ref) for e in harness.prs] == [
        (7, "user/feature-1.2_x", "refs/pull/7/head"),
        (2**31 - 1, "feature", f"refs/pull/{2**31 - 1}/head"),
        (3, "feature", "refs/merge-requests/3/head"),
    ]
    # a delivery id that is not a plain token is logged (and remembered) as a digest of itself
    caplog.set_level(logging.INFO)
    odd = "id with spaces; \xe9"
    assert harness.post("github", "push", json.dumps(push("github", after="f" * 40)).encode(), odd)[0] == 202
    assert harness.post("github", "push", json.dumps(push("github", after="f" * 40)).encode(), odd)[0] == 200
    logged = [r.getMessage() for r in caplog.records if "f" * 12 in r.getMessage() or "duplicate" in r.getMessage()]
    assert logged and all("id:" in m and "spaces" not in m for m in logged)
