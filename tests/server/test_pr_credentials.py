"""Pull-request heads are fetched from the configured repository only; the git token goes nowhere else.

Issue #14, class 9. The configured repository is a token-protected smart-HTTP remote on 127.0.0.1; a
second server, "another host", records every request it gets. PR heads exist only under the forge's
pull-request ref (``refs/pull/N/head`` on GitHub and Gitea, ``refs/merge-requests/N/head`` on GitLab) of
the configured repository, as a forge keeps a fork's head. Signed events then claim clone URLs of a
fork on the same host (planned, from the configured repository), and of another host (refused, nothing
fetched, a failure status and comment saying why). Neither the fork path nor the other host ever sees
a request, let alone the token.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pytest
from gitutil import git, isolate_git, make_remote, push_commit, serve_git_http
from repos import BASE, VM
from werkzeug.serving import make_server

from reconciler.clients.forge import GitHubForge, GitLabForge, RestForge
from reconciler.clients.kube import Kube
from reconciler.clients.source import TokenAuth
from reconciler.engine.apply import ApplyOptions
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.webhooks import PullRequestEvent
from reconciler.testing import ApiDouble
from reconciler.testing.forge_double import ForgeDouble

TOKEN = "canary-pr-git-token-71d3"
FORGE_TOKEN = "canary-pr-forge-token-3a9f"


class Elsewhere:
    """An HTTP server standing for another host: records each request (path and Authorization), answers 404."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            self.seen.append((environ.get("PATH_INFO", ""), environ.get("HTTP_AUTHORIZATION", "")))
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no\n"]

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Elsewhere:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def pull_request_head(remote: Path, ref: str, files: dict[str, str]) -> str:
    """A commit on top of main, reachable only from ``ref`` of ``remote`` (how a forge holds a fork's head)."""
    git("update-ref", "refs/heads/fork-tmp", "refs/heads/main", cwd=remote)
    head = push_commit(remote, files, "a change from a fork", branch="fork-tmp")
    git("update-ref", ref, head, cwd=remote)
    git("update-ref", "-d", "refs/heads/fork-tmp", cwd=remote)
    return head


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_pull_request_heads_come_from_the_configured_repository_only(
    provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: ApiDouble
) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    root = tmp_path / "srv"
    root.mkdir()
    remote = make_remote(root, dict(BASE), name="cfg.git")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    forge_class: type[RestForge] = GitLabForge if provider == "gitlab" else GitHubForge
    kind = "merge-requests" if provider == "gitlab" else "pull"
    with serve_git_http(root, TOKEN) as srv, Elsewhere() as other, ForgeDouble(token=FORGE_TOKEN) as forge:
        url = f"{srv.url}/cfg.git"
        settings = Settings(
            repo_url=url,
            auth=TokenAuth(token_file=token_file),
            cache_root=tmp_path / "cache",
            status_branch=None,
            apply=ApplyOptions(poll=0.02, timeout=20),
        )
        ctl = Controller(settings, Kube(api.api_client()), Metrics(), forge_class(forge.url, FORGE_TOKEN))
        assert ctl.reconcile("sync").ok
        fork = pull_request_head(remote, f"refs/{kind}/7/head", {"vms/web.yaml": VM.replace("00:00:10", "00:00:44")})
        hostile = pull_request_head(remote, f"refs/{kind}/8/head", {"vms/web.yaml": VM.replace("00:00:10", "00:00:45")})
        api.reset_counts()

        def event(number: int, head: str, clone_url: str) -> PullRequestEvent:
            return PullRequestEvent(provider, "opened", number, head, "feature", clone_url, "main", "ops/config", "d")

        # a fork on the same host: planned from the configured repository's pull-request ref
        planned = ctl.plan_pull_request(event(7, fork, f"{srv.url}/someone/fork.git"))
        assert planned.ok and planned.plan is not None and planned.revision == fork, planned.message
        cache = next((tmp_path / "cache").glob("pull-requests/source/*")) / "repo.git"
        assert f"refs/virtnet/{kind}/7/head" in git("for-each-ref", "--format=%(refname)", cwd=cache).split()

        # a clone URL on another host (same address, another name and port): refused, nothing fetched
        elsewhere = f"http://localhost:{other.port}/o/r.git"
        refused = ctl.plan_pull_request(event(8, hostile, elsewhere))
        assert refused.failed == "SourceFailed" and "'localhost'" in refused.message and "not on" in refused.message

        assert other.seen == []  # the other host never saw a request, so never the token
        assert srv.requests and all("/cfg.git/" in r for r in srv.requests)  # never the fork's path
        assert api.writes() == 0
        statuses = {head: forge.statuses("ops/config", head) for head in (fork, hostile)}
        assert [s["state"] for s in statuses[fork]] == ["success"]
        assert [s["state"] for s in statuses[hostile]] in (["failure"], ["failed"])  # said, not silently dropped
        comment = forge.comments("ops/config", 8)[0]["body"]
        assert "SourceFailed" in comment and TOKEN not in comment
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert not any(TOKEN in auth or basic in auth for _, auth in other.seen)
