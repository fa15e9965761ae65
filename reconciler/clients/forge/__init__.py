"""Clients for the forges that host config repositories: plan comments and commit statuses on PRs.

Why: a plan is only useful where reviewers look. Each client keeps exactly one comment per PR and cluster,
found again by a hidden marker (``reconciler.output.comment.plan_marker``) *and* its author (the login the
token acts as: anyone may paste a marker), and edited in place, and sets a
commit status on the head sha so branch protection can require a clean plan.

The pieces: :mod:`.rest` (what every forge client does: requests, retries, pagination, the two operations),
:mod:`.github` (GitHub, and Gitea which serves the same paths under ``/api/v1``), :mod:`.gitlab` (GitLab's
notes and commit statuses).

Retries: 429, 5xx and connection errors are retried with exponential backoff (honouring ``Retry-After``)
by tenacity around the *whole* operation. For ``upsert_comment`` that means a retried attempt first looks
for the comment again, so a POST that succeeded server-side but lost its response does not leave a
duplicate comment behind.

Secrets: the token is sent only in the ``Authorization`` header, only to the configured origin (pagination
links to other hosts are refused, redirects are not followed), and is scrubbed from every log line and
exception text this package produces; exceptions from ``requests`` are re-raised without chaining.

Side effects: HTTP requests to the forge; DEBUG/WARNING logs of method, path and status.
"""

from __future__ import annotations

from reconciler.clients.forge.github import GiteaForge, GitHubForge
from reconciler.clients.forge.gitlab import GitLabForge
from reconciler.clients.forge.rest import (
    STATES,
    Forge,
    ForgeError,
    PullRequest,
    RestForge,
    TransientForgeError,
    WebLinks,
    read_token,
)

__all__ = [
    "STATES",
    "Forge",
    "ForgeError",
    "GitHubForge",
    "GitLabForge",
    "GiteaForge",
    "PullRequest",
    "RestForge",
    "TransientForgeError",
    "WebLinks",
    "read_token",
]
