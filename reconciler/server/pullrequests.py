"""Plans for pull requests: what merging would change on this controller's cluster, told on the PR.

Side effects: git (fetching the PR head from the configured repository; the full plan committed to the
status branch), the Kubernetes API (read only: a PR never applies), the forge API (a comment and a commit
status). Called by the plan queue's workers, one PR at a time.

Why each step is as it is:

* **Only the cluster that tracks the PR's base branch plans it.** A PR into ``release-1`` merges into
  what a ``release-1`` controller applies; the ``main`` controller planning it would tell reviewers
  about the wrong cluster. A controller that does not track the base says so (comment and status), so a
  required check still reports.
* **One status context per cluster** (``virtnet/plan/<cluster>``), like the one comment per cluster:
  controllers of several clusters on one repository do not overwrite each other's verdict.
* **The status is set whatever happens to the comment.** The comment can be refused (too long, a
  permission, the forge down); the status is what branch protection waits for, so it is set on its own
  and says when the comment failed and why. Its details link goes to the full plan (or the PR).
* **The full plan goes to the status branch** (``pull-requests/<n>/<cluster>/plan.md`` and
  ``plan.json``), where no size limit applies; the comment, kept within the forge's limit, links to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.clients.forge import Forge, ForgeError, WebLinks
from reconciler.clients.gitenv import url_host
from reconciler.clients.kube import Kube
from reconciler.clients.source import Auth, GitSource
from reconciler.clients.status import publish_status
from reconciler.engine.plan import PlanOptions
from reconciler.errors import SourceError, VirtnetError
from reconciler.logs import redact
from reconciler.model import Repo
from reconciler.model.sops import KeySource
from reconciler.output import comment
from reconciler.output import markdown as md
from reconciler.output import text as report
from reconciler.pipeline import Outcome, reconcile
from reconciler.server.webhooks import PlanCommand, PullRequestEvent, is_branch, is_sha

log = logging.getLogger(__name__)

CONTEXT = "virtnet/plan"  # a cluster's status context is CONTEXT/<cluster>


class PlanSettings(Protocol):
    """What a PR plan reads of the controller's settings (``controller.Settings`` has it)."""

    @property
    def repo_url(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def subdir(self) -> str: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def auth(self) -> Auth: ...
    @property
    def cache_root(self) -> Path | None: ...
    @property
    def status_branch(self) -> str | None: ...
    @property
    def forge_repo(self) -> str: ...
    @property
    def kinds(self) -> tuple[str, ...]: ...
    @property
    def namespaces(self) -> tuple[str, ...]: ...
    @property
    def keys(self) -> KeySource: ...


class Controller(Protocol):
    """The controller as a PR plan uses it, named here so this module does not import the controller
    (which delegates its ``plan_pull_request`` here)."""

    @property
    def settings(self) -> PlanSettings: ...
    @property
    def forge(self) -> Forge | None: ...
    @property
    def last(self) -> Outcome | None: ...
    def _plan_options(self, memo: bool = True) -> PlanOptions | None: ...
    @property
    def reader(self) -> Kube: ...
    def _current(self) -> Repo | None: ...


def status_context(cluster: str) -> str:
    return f"{CONTEXT}/{cluster}"


@dataclass(frozen=True)
class Report:
    """What one plan tells the PR."""

    cluster: str
    state: str
    description: str
    body: str
    target_url: str | None


def source(ctl: Controller, event: PullRequestEvent) -> GitSource:
    """The PR head, fetched from the configured repository only (never from the event's clone URL), over
    the configured transport and credentials (SSH when the repository is configured for SSH).

    The forges keep every PR head, forks' included, in the base repository (``refs/pull/N/head``,
    ``refs/merge-requests/N/head``), so the credentials go only where the configuration says. A
    head repository on another host than the configured one is refused: no fetch at all.
    """
    settings = ctl.settings
    configured, claimed = url_host(settings.repo_url), url_host(event.head_url)
    if claimed != configured:
        log.warning("pull request #%d: head repository host %r is not the configured host %r; refused",
                    event.number, claimed, configured)  # fmt: skip
        raise SourceError(
            f"the head repository of pull request #{event.number} is on {claimed or 'no host'!r}, not on "
            f"{configured or 'no host'!r} where the configured repository is; nothing was fetched"
        )
    # a cache of its own: PR heads are untrusted and must not race the tracked branch's checkouts
    cache = (settings.cache_root / "pull-requests") if settings.cache_root else None
    return GitSource(settings.repo_url, cache, commit=event.head_sha, fetch_refs=(event.pull_ref,), auth=settings.auth)


def plan_pull_request(ctl: Controller, event: PullRequestEvent) -> Outcome:
    """Validate, render and plan the PR head against the live cluster; comment and set a status. Never applies."""
    settings = ctl.settings
    known = settings.cluster or (ctl.last.cluster if ctl.last else None)
    if event.base_ref != settings.branch:
        name = known or "default"
        why = f"not planned: cluster {name} tracks {settings.branch}, not {event.base_ref}"
        log.info("pull request #%d into %s: %s", event.number, event.base_ref, why)
        outcome = Outcome(cluster=known, message=why)
        if ctl.forge is not None:
            page = ctl.forge.web_links(event.web_url).pull_request(event.number) if event.web_url else None
            _tell(ctl.forge, ctl, event, Report(name, "success", why, _untracked_body(name, why), page))
        return outcome
    try:
        revision = source(ctl, event).fetch()
        outcome = reconcile(
            revision.path / settings.subdir,
            ctl.reader,
            cluster=settings.cluster,
            revision=revision.sha,
            apply=False,
            plan_options=ctl._plan_options(memo=False),  # the loop's prune settings, no memo: another commit's
            kinds=settings.kinds,
            namespaces=settings.namespaces,
            base=ctl._current(),  # the connectivity diff: against what the tracked branch last had
            keys=settings.keys,  # SOPS-encrypted Secrets decrypt in a PR's plan as in the loop
        )
    except SourceError as exc:
        outcome = Outcome(cluster=settings.cluster, failed="SourceFailed", message=str(exc))
    if ctl.forge is not None:
        _tell(ctl.forge, ctl, event, _report(ctl, ctl.forge, event, outcome))
    return outcome


def plan_command(ctl: Controller, command: PlanCommand) -> Outcome | None:
    """``/virtnet plan`` on a PR: ask the forge for the PR's head and base now, and plan that."""
    if ctl.forge is None:
        return None
    repo = ctl.settings.forge_repo or command.repo
    try:
        pull = ctl.forge.pull_request(repo, command.number)
    except (ForgeError, ValueError) as exc:
        log.warning("%s on %s#%d: cannot read the pull request: %s", "/virtnet plan", repo, command.number, exc)
        return None
    # what the forge answers goes where a webhook's fields go (git, logs, the comment): the same rules
    if not (is_sha(pull.head_sha) and is_branch(pull.head_ref) and is_branch(pull.base_ref)):
        log.warning("%s on %s#%d: the forge's head or base is not a commit id and branches", "/virtnet plan",
                    repo, command.number)  # fmt: skip
        return None
    event = PullRequestEvent(
        provider=command.provider,
        action="comment",
        number=command.number,
        head_sha=pull.head_sha,
        head_ref=pull.head_ref,
        head_url=pull.head_url or ctl.settings.repo_url,  # GitLab does not say: the PR lives in the repository
        base_ref=pull.base_ref,
        repo=command.repo,
        delivery=command.delivery,
        web_url=command.web_url,
    )
    log.info("pull request #%d: planned again at the request of %s", command.number, command.author or "someone")
    return plan_pull_request(ctl, event)


def _untracked_body(cluster: str, why: str) -> str:
    return (
        f"{comment.plan_marker(cluster)}\n### virtnet plan for {md.code(cluster)}\n\n"
        f":information_source: {md.text(why[0].upper() + why[1:])}: merging this pull request changes nothing "
        f"on {md.code(cluster)}.\n"
    )


def _report(ctl: Controller, forge: Forge, event: PullRequestEvent, outcome: Outcome) -> Report:
    cluster = outcome.cluster or ctl.settings.cluster or "default"
    links = forge.web_links(event.web_url) if event.web_url else None
    at_head = links.file(event.head_sha) if links else None
    full_plan = _publish_full_plan(ctl, event, outcome, cluster, links, at_head)
    # the comment leaves the process like a status commit does: problems may quote registered secrets
    body = redact(comment.pull_request_comment(outcome, cluster, event.head_sha, at_head, full_plan))
    counts = outcome.plan.counts() if outcome.plan else {}
    description = (
        f"{counts.get('create', 0)} create, {counts.get('update', 0)} update, {counts.get('delete', 0)} delete"
        if outcome.ok and outcome.plan
        else f"{outcome.failed}: see the plan comment"
    )
    target = full_plan or (links.pull_request(event.number) if links else None)
    return Report(cluster, "success" if outcome.ok else "failure", description, body, target)


def _publish_full_plan(
    ctl: Controller, event: PullRequestEvent, outcome: Outcome, cluster: str, links: WebLinks | None, at: str | None
) -> str | None:
    """The whole plan on the status branch; its URL (None without a status branch or a web URL)."""
    branch = ctl.settings.status_branch
    if not branch or (outcome.plan is None and not outcome.problems):
        return None
    folder = f"pull-requests/{int(event.number)}/{cluster}"
    files = {"plan.md": comment.full_plan_markdown(outcome, cluster, event.head_sha, at)}
    if outcome.plan is not None:
        files["plan.json"] = report.plan_json(outcome.plan, outcome.safety)
    try:
        sha = publish_status(
            ctl.settings.repo_url,
            cluster,
            files,
            f"virtnet: plan of pull request #{event.number} for {cluster} at {event.head_sha[:12]}",
            branch=branch,
            tracked_branch=ctl.settings.branch,
            auth=ctl.settings.auth,
            cache_root=ctl.settings.cache_root,
            folder=folder,
        )
    except VirtnetError as exc:
        log.warning("pull request #%d: the full plan was not written to %s: %s", event.number, branch, exc)
        return None
    return links.file(sha or branch, f"{folder}/plan.md") if links else None


def _tell(forge: Forge, ctl: Controller, event: PullRequestEvent, told: Report) -> None:
    """The comment, then the status, each on its own: a refused comment still leaves a status saying so."""
    repo = ctl.settings.forge_repo or event.repo
    description = told.description
    try:
        forge.upsert_comment(repo, event.number, comment.plan_marker(told.cluster), told.body)
    except (ForgeError, ValueError) as exc:
        log.warning("could not comment the plan on %s#%s: %s", repo, event.number, exc)
        description = f"{description}; the plan comment failed: {_reason(exc)}"
    try:
        forge.set_status(repo, event.head_sha, told.state, status_context(told.cluster), description, told.target_url)
    except (ForgeError, ValueError) as exc:
        log.warning("could not set the plan status on %s@%s: %s", repo, event.head_sha[:12], exc)


def _reason(exc: Exception) -> str:
    """A forge error, short enough for a status description (140 characters in all)."""
    detail = str(exc).rsplit(": HTTP ", 1)[-1] if ": HTTP " in str(exc) else type(exc).__name__
    return detail[:70]
