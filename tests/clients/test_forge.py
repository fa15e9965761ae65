"""Forge clients (GitHub, Gitea, GitLab) against the loopback forge double."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from reconciler.clients.forge import (
    ForgeError,
    GiteaForge,
    GitHubForge,
    GitLabForge,
    RestForge,
    TransientForgeError,
    read_token,
)
from reconciler.output.comment import plan_marker
from reconciler.testing.forge_double import ForgeDouble

TOKEN = "canary-tok-9f8e7d6c5b4a"
SHA = "d" * 40
REPOS = {"github": "octo/net", "gitea": "octo/net", "gitlab": "group/sub/net"}
CLASSES: dict[str, type[RestForge]] = {"github": GitHubForge, "gitea": GiteaForge, "gitlab": GitLabForge}
PROVIDERS = list(CLASSES)


@pytest.fixture
def double() -> Iterator[ForgeDouble]:
    with ForgeDouble(token=TOKEN) as d:
        yield d


def make(provider: str, double: ForgeDouble, **kw: object) -> RestForge:
    kw.setdefault("backoff", 0.0)
    return CLASSES[provider](double.url, TOKEN, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upsert_creates_once_then_updates_in_place(provider: str, double: ForgeDouble) -> None:
    forge = make(provider, double)
    repo = REPOS[provider]
    marker = plan_marker("prod")
    double.add_comment(provider, repo, 5, "LGTM from a human")
    ids = {forge.upsert_comment(repo, 5, marker, f"plan v{i}") for i in range(4)}
    assert len(ids) == 1
    comments = double.comments(repo, 5, provider)
    ours = [c for c in comments if marker in c["body"]]
    assert len(ours) == 1 and len(comments) == 2
    assert ours[0]["body"] == f"{marker}\nplan v3"
    assert ours[0]["updated"] == 3
    creates = [c for c in double.calls if c.method == "POST"]
    assert len(creates) == 1
    assert all(c.auth_ok for c in double.calls)
    # another cluster gets its own comment on the same PR
    other = forge.upsert_comment(repo, 5, plan_marker("staging"), "plan for staging")
    assert other not in ids and len(double.comments(repo, 5, provider)) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pagination_finds_old_comment_on_page_two(provider: str) -> None:
    with ForgeDouble(token=TOKEN, max_page_size=3) as double:
        repo = REPOS[provider]
        marker = plan_marker("prod")
        for i in range(4):
            double.add_comment(provider, repo, 9, f"chatter {i}")
        old = double.add_comment(provider, repo, 9, f"{marker}\nold plan", author="virtnet")
        for i in range(3):
            double.add_comment(provider, repo, 9, f"more chatter {i}")
        forge = make(provider, double)
        assert forge.upsert_comment(repo, 9, marker, "new plan") == old
        assert not any(c.method == "POST" for c in double.calls)
        gets = [c for c in double.calls if c.method == "GET" and not c.path.endswith("/user")]
        assert len(gets) == 2  # stopped on the page that had it
        body = next(c["body"] for c in double.comments(repo, 9) if c["id"] == old)
        assert body.endswith("new plan")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pagination_walks_all_pages_before_creating(provider: str) -> None:
    with ForgeDouble(token=TOKEN, max_page_size=2) as double:
        repo = REPOS[provider]
        for i in range(5):
            double.add_comment(provider, repo, 1, f"c{i}")
        make(provider, double).upsert_comment(repo, 1, plan_marker("x"), "plan")
        assert [c.method for c in double.calls if not c.path.endswith("/user")] == ["GET", "GET", "GET", "POST"]


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("github", ["success", "failure", "pending", "error"]),
        ("gitea", ["success", "failure", "pending", "error"]),
        ("gitlab", ["success", "failed", "running", "failed"]),
    ],
)
def test_status_state_mapping(provider: str, expected: list[str], double: ForgeDouble) -> None:
    forge = make(provider, double)
    repo = REPOS[provider]
    for state in ("success", "failure", "pending", "error"):
        forge.set_status(repo, SHA, state, description="x" * 300, target_url="https://ci.test/run/1")
    statuses = double.statuses(repo, SHA, provider)
    assert [s["state"] for s in statuses] == expected
    assert {s["context"] for s in statuses} == {"virtnet/plan"}
    assert all(len(s["description"]) <= 140 for s in statuses)
    assert statuses[0]["target_url"] == "https://ci.test/run/1"


def test_gitlab_same_state_twice_is_not_an_error(double: ForgeDouble) -> None:
    forge = make("gitlab", double)
    forge.set_status("group/sub/net", SHA, "pending")
    forge.set_status("group/sub/net", SHA, "pending")  # GitLab answers 400 "Cannot transition"
    forge.set_status("group/sub/net", SHA, "success")
    assert [s["state"] for s in double.statuses("group/sub/net", SHA)] == ["running", "success"]


def test_gitlab_project_path_is_url_encoded(double: ForgeDouble) -> None:
    make("gitlab", double).upsert_comment("group/sub/net", 2, plan_marker("p"), "plan")
    assert all("/projects/group%2Fsub%2Fnet/" in c.raw_path for c in double.calls if c.path != "/api/v4/user")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_injected_failures(provider: str, status: int, double: ForgeDouble) -> None:
    forge = make(provider, double, retries=3)
    repo = REPOS[provider]
    double.fail_next(2, status=status, retry_after=0 if status == 429 else None)
    cid = forge.upsert_comment(repo, 3, plan_marker("prod"), "plan")
    assert [c["id"] for c in double.comments(repo, 3, provider)] == [cid]
    assert [c.status for c in double.calls][:2] == [status, status]
    double.fail_next(1, status=status)
    forge.set_status(repo, SHA, "success")
    assert len(double.statuses(repo, SHA, provider)) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_gives_up_after_retries(provider: str, double: ForgeDouble) -> None:
    forge = make(provider, double, retries=2)
    double.fail_next(10, status=503)
    with pytest.raises(TransientForgeError) as info:
        forge.set_status(REPOS[provider], SHA, "success")
    assert info.value.status == 503
    assert len(double.calls) == 3


def test_backoff_and_retry_after(double: ForgeDouble) -> None:
    slept: list[float] = []
    forge = GitHubForge(double.url, TOKEN, backoff=0.5, max_backoff=3.0, retries=4, sleep=slept.append)
    double.fail_next(1, status=429, retry_after=2.5)
    double.fail_next(3, status=503)
    forge.set_status("octo/net", SHA, "success")
    # attempt 1: Retry-After 2.5 beats backoff 0.5; then 1.0, 2.0, then 4.0 capped at 3.0
    assert slept == [2.5, 1.0, 2.0, 3.0]
    assert len(double.statuses("octo/net", SHA)) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_token_is_a_clear_error(provider: str, double: ForgeDouble) -> None:
    forge = CLASSES[provider](double.url, "not-the-token", backoff=0)
    with pytest.raises(ForgeError) as info:
        forge.upsert_comment(REPOS[provider], 1, plan_marker("p"), "x")
    assert info.value.status == 401
    assert double.calls and not any(c.auth_ok for c in double.calls)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_canary_token_never_in_logs_or_errors(
    provider: str, double: ForgeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # includes urllib3's connection logs
    forge = make(provider, double, retries=1)
    repo = REPOS[provider]
    texts: list[str] = [repr(forge), str(forge.__dict__.get("base_url"))]
    double.fail_next(1, status=502)
    forge.upsert_comment(repo, 4, plan_marker("prod"), "plan")
    forge.set_status(repo, SHA, "failure", description="plan failed")
    double.fail_next(5, status=500)
    attempts: list[Callable[[], object]] = [
        lambda: forge.set_status(repo, SHA, "success"),
        lambda: forge.set_status(repo, "not-a-sha", "success"),
        lambda: forge.set_status(repo, SHA, "bogus"),
        lambda: forge.upsert_comment(repo, 4, plan_marker("prod"), "x"),
    ]
    for attempt in attempts:
        with pytest.raises((ForgeError, ValueError)) as info:
            attempt()
        texts += [str(info.value), repr(info.value), str(info.value.__cause__), str(info.value.__context__)]
    # an unreachable forge: connection errors must not leak either
    dead = CLASSES[provider]("http://127.0.0.1:9", TOKEN, retries=0, timeout=2)
    with pytest.raises(ForgeError) as info:
        dead.set_status(repo, SHA, "success")
    texts += [str(info.value), repr(info.value), str(info.value.__cause__)]
    # a token with a newline would make requests put it in an InvalidHeader message: refused up front
    with pytest.raises(ValueError) as bad:
        CLASSES[provider](double.url, TOKEN + "\nX: y")
    texts.append(str(bad.value))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "expected DEBUG logs to be captured"
    assert TOKEN not in logged
    assert not any(TOKEN in t for t in texts)
    assert all(TOKEN not in str(c.headers) for c in double.calls)


def test_refuses_pagination_link_to_another_origin(double: ForgeDouble) -> None:
    forge = make("github", double)
    with pytest.raises(ForgeError, match="another origin"):
        forge._request("GET", "http://127.0.0.2:1/steal")


def test_read_token(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"  # type: ignore[operator]
    path.write_text(TOKEN + "\n")
    assert read_token(file=path) == TOKEN
    monkeypatch.setenv("VIRTNET_TEST_TOKEN", f"  {TOKEN} ")
    assert read_token(env="VIRTNET_TEST_TOKEN") == TOKEN
    monkeypatch.setenv("VIRTNET_TEST_TOKEN", "")
    with pytest.raises(ValueError, match="VIRTNET_TEST_TOKEN"):
        read_token(env="VIRTNET_TEST_TOKEN")


def test_marker_and_inputs_are_validated(double: ForgeDouble) -> None:
    assert plan_marker("prod-1") == "<!-- virtnet:plan cluster=prod-1 -->"
    with pytest.raises(ValueError):
        plan_marker("a --> <script>")
    forge = make("github", double)
    with pytest.raises(ValueError):
        forge.upsert_comment("../../etc", 1, plan_marker("p"), "x")
    with pytest.raises(ValueError):
        forge.upsert_comment("o/r", 1, "", "x")
    assert double.calls == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_our_own_comment_is_edited(provider: str, double: ForgeDouble) -> None:
    """Anyone can paste the marker; their comment is left alone and ours is created (then found again)."""
    forge = make(provider, double)
    repo, marker = REPOS[provider], plan_marker("prod")
    theirs = double.add_comment(provider, repo, 6, f"{marker}\nlooks fine to me", author="mallory")
    ours = forge.upsert_comment(repo, 6, marker, "plan v1")
    assert ours != theirs and forge.upsert_comment(repo, 6, marker, "plan v2") == ours
    bodies = {c["id"]: c["body"] for c in double.comments(repo, 6, provider)}
    assert bodies[theirs].endswith("looks fine to me") and bodies[ours].endswith("plan v2")
    assert sum(c.path.endswith("/user") for c in double.calls) == 1  # asked once, then remembered


def test_a_given_login_is_not_asked_for(double: ForgeDouble) -> None:
    forge = make("github", double, login="virtnet-app[bot]")
    double.add_comment("github", "octo/net", 2, f"{plan_marker('p')}\nold", author="virtnet-app[bot]")
    forge.upsert_comment("octo/net", 2, plan_marker("p"), "new")
    assert not any(c.path.endswith("/user") for c in double.calls)
    assert len(double.comments("octo/net", 2)) == 1


def test_an_empty_url_is_the_public_service() -> None:
    assert GitHubForge("", TOKEN).base_url == "https://api.github.com"
    assert GitLabForge(" ", TOKEN).base_url == "https://gitlab.com"
    with pytest.raises(ValueError, match="no public default"):
        GiteaForge("", TOKEN)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pull_request_head_and_base(provider: str, double: ForgeDouble) -> None:
    repo = REPOS[provider]
    double.add_pull(provider, repo, 12, SHA, head_ref="topic", base_ref="release-1", head_url="https://h/x.git")
    pull = make(provider, double).pull_request(repo, 12)
    assert (pull.number, pull.head_sha, pull.head_ref, pull.base_ref) == (12, SHA, "topic", "release-1")
    with pytest.raises(ForgeError):
        make(provider, double).pull_request(repo, 13)


def test_web_links_per_provider(double: ForgeDouble) -> None:
    links = {p: make(p, double).web_links("https://forge.test/o/r/") for p in PROVIDERS}
    assert links["github"].file("abc", "a/b.yaml") == "https://forge.test/o/r/blob/abc/a/b.yaml"
    assert links["gitea"].file("abc", "a.yaml") == "https://forge.test/o/r/src/commit/abc/a.yaml"
    assert links["gitlab"].pull_request(4) == "https://forge.test/o/r/-/merge_requests/4"
    assert links["github"].pull_request(4) == "https://forge.test/o/r/pull/4"


def test_a_comment_over_githubs_limit_is_refused_by_the_double(double: ForgeDouble) -> None:
    with pytest.raises(ForgeError, match="422"):
        make("github", double).upsert_comment("octo/net", 3, plan_marker("p"), "x" * 65_537)
