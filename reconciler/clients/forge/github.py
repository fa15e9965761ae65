"""GitHub (and GitHub Enterprise) and Gitea/Forgejo, which serves GitHub's paths under ``/api/v1``."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from reconciler.clients.forge.rest import PullRequest, RestForge

_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def _owner_repo(repo: str) -> str:
    if not _OWNER_REPO.match(repo):
        raise ValueError("repo must be owner/name")
    return repo


class GitHubForge(RestForge):
    """GitHub (or GitHub Enterprise: base URL ``https://host/api/v3``). Default base: api.github.com."""

    provider = "github"
    default_url = "https://api.github.com"
    _prefix: ClassVar[str] = ""  # Gitea serves the same paths under /api/v1

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"}

    def _comments_path(self, repo: str, pr_number: int) -> str:
        return f"{self._prefix}/repos/{_owner_repo(repo)}/issues/{int(pr_number)}/comments"

    def _comment_path(self, repo: str, pr_number: int, comment_id: int) -> str:
        return f"{self._prefix}/repos/{_owner_repo(repo)}/issues/comments/{int(comment_id)}"

    def _pull_path(self, repo: str, pr_number: int) -> str:
        return f"{self._prefix}/repos/{_owner_repo(repo)}/pulls/{int(pr_number)}"

    def _pull_request(self, number: int, data: Any) -> PullRequest:
        head, base = data["head"], data["base"]
        return PullRequest(number, head["sha"], head["ref"], (head.get("repo") or {}).get("clone_url", ""), base["ref"])

    def _post_status(
        self, repo: str, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> None:
        payload: dict[str, Any] = {"state": state, "context": context, "description": description}
        if target_url:
            payload["target_url"] = target_url
        self._request("POST", f"{self._prefix}/repos/{_owner_repo(repo)}/statuses/{sha}", json=payload)


class GiteaForge(GitHubForge):
    """Gitea / Forgejo. Base URL is the instance root; paths live under ``/api/v1``."""

    provider = "gitea"
    default_url = ""  # no one public instance
    _prefix = "/api/v1"
    _user_path = "/api/v1/user"
    _blob = "{repo}/src/commit/{ref}/{path}"
    _pull = "{repo}/pulls/{number}"

    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}

    def _list_params(self) -> dict[str, Any]:
        return {"limit": self.per_page, "page": 1}
