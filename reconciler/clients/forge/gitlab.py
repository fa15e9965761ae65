"""GitLab: merge request notes and commit statuses, with pagination by ``X-Next-Page``."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from reconciler.clients.forge.rest import ForgeError, PullRequest, RestForge

log = logging.getLogger(__name__)

_PROJECT_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")


class GitLabForge(RestForge):
    """GitLab. Base URL is the instance root; ``repo`` is the project path (``group/sub/project``)."""

    provider = "gitlab"
    default_url = "https://gitlab.com"
    _update_method = "PUT"
    _user_path = "/api/v4/user"
    _login_key = "username"
    _author_key = "author"
    _blob = "{repo}/-/blob/{ref}/{path}"
    _pull = "{repo}/-/merge_requests/{number}"
    #: virtnet state -> GitLab commit status state
    STATE_MAP: ClassVar[dict[str, str]] = {
        "pending": "running",
        "success": "success",
        "failure": "failed",
        "error": "failed",
    }

    @staticmethod
    def _project(repo: str) -> str:
        if not _PROJECT_PATH.match(repo):
            raise ValueError("repo must be a GitLab project path like group/project")
        return quote(repo, safe="")

    def _next_page(self, response: requests.Response, page: int) -> tuple[str, dict[str, Any]] | None:
        nxt = response.headers.get("X-Next-Page", "").strip()
        if not nxt.isdigit():
            return None
        path = urlsplit(response.url).path
        return path, {**self._list_params(), "page": int(nxt)}

    def _list_params(self) -> dict[str, Any]:
        return {"per_page": self.per_page, "sort": "asc", "order_by": "created_at"}

    def _comments_path(self, repo: str, pr_number: int) -> str:
        return f"/api/v4/projects/{self._project(repo)}/merge_requests/{int(pr_number)}/notes"

    def _comment_path(self, repo: str, pr_number: int, comment_id: int) -> str:
        return f"{self._comments_path(repo, pr_number)}/{int(comment_id)}"

    def _pull_path(self, repo: str, pr_number: int) -> str:
        return f"/api/v4/projects/{self._project(repo)}/merge_requests/{int(pr_number)}"

    def _pull_request(self, number: int, data: Any) -> PullRequest:
        return PullRequest(number, data["sha"], data["source_branch"], "", data["target_branch"])

    def _request(
        self, method: str, target: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> requests.Response:
        # X-Next-Page gives a path relative to the origin, not to a base URL with a prefix
        if target.startswith("/") and self.base_url and urlsplit(self.base_url).path.rstrip("/"):
            prefix = urlsplit(self.base_url).path.rstrip("/")
            if target.startswith(prefix + "/"):
                target = target[len(prefix) :]
        return super()._request(method, target, params=params, json=json)

    def _post_status(
        self, repo: str, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> None:
        payload: dict[str, Any] = {
            "state": self.STATE_MAP[state],
            "name": context,
            "description": description,
        }
        if target_url:
            payload["target_url"] = target_url
        try:
            self._request("POST", f"/api/v4/projects/{self._project(repo)}/statuses/{sha}", json=payload)
        except ForgeError as exc:
            # GitLab refuses a transition to the state the status already has (e.g. running -> running)
            if exc.status == 400 and "Cannot transition status" in str(exc):
                log.debug("gitlab status on %s already %s", sha[:12], payload["state"])
                return
            raise
