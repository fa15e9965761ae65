"""The GitOps loop: fetch → reconcile → Events → status commit → metrics; and plans for pull requests.

Side effects: git (fetch, status pushes), the Kubernetes API, the forge API. One ``Controller`` serves
both triggers: the scheduler (poll and push webhooks) calls ``reconcile``; pull-request webhooks call
``plan_pull_request``, which never applies. A revision that did not change is not rendered again, but
the cluster is still observed and planned so drift is corrected.

With ``Settings.informers`` (``virtnet run``) the cluster is observed through list-and-watch caches
(``reconciler.clients.informer``) instead of a LIST per kind per run, and files whose git blob did not
change since the last load are not parsed again (``reconciler.model.ParseCache``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from reconciler.clients.forge import Forge, ForgeError
from reconciler.clients.gitenv import url_host
from reconciler.clients.informer import CachedKube, Informers
from reconciler.clients.kube import MANAGED_KINDS, Kube
from reconciler.clients.source import Auth, GitSource, SignaturePolicy
from reconciler.clients.status import publish_status
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.memo import PairMemo
from reconciler.engine.plan import PlanOptions
from reconciler.errors import SourceError, VirtnetError
from reconciler.labels import AGENT_SELECTOR, ANY_CLUSTER, VM, selector
from reconciler.logs import redact
from reconciler.model import ParseCache, Repo
from reconciler.objects import display
from reconciler.output import comment, summary
from reconciler.pipeline import Outcome, list_scoped, reconcile
from reconciler.render import RenderCache, Rendered
from reconciler.server.metrics import Metrics
from reconciler.server.webhooks import PullRequestEvent

log = logging.getLogger(__name__)


@dataclass
class Settings:
    repo_url: str
    branch: str = "main"
    subdir: str = "."
    cluster: str | None = None
    auth: Auth = None
    signatures: SignaturePolicy | None = None
    cache_root: Path | None = None
    status_branch: str | None = "virtnet-status"
    events: bool = True
    prune: PruneOptions = field(default_factory=PruneOptions)
    apply: ApplyOptions = field(default_factory=ApplyOptions)
    forge_repo: str = ""  # owner/name on the forge, for PR comments (from the webhook when empty)
    manage_secrets: bool = True  # off: never list or write Secrets (the chart then grants none)
    namespaces: tuple[str, ...] = ()  # confine reads and writes to these namespaces (chart rbac.namespaces)
    informers: bool = False  # observe through list-and-watch caches (``virtnet run``)
    resync_seconds: float = 300.0  # the caches list again this often, whatever their watches said

    @property
    def watched(self) -> set[tuple[str, str | None]]:
        """The (kind, label selector) pairs a reconcile LISTs (``reconciler.pipeline.observe``)."""
        return {(k, ANY_CLUSTER) for k in self.kinds} | {
            ("VirtualMachineInstance", VM),
            ("NodeNetworkState", AGENT_SELECTOR),
        }

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in MANAGED_KINDS if self.manage_secrets or k != "Secret")


class Controller:
    def __init__(self, settings: Settings, kube: Kube, metrics: Metrics | None = None, forge: Forge | None = None):
        self.settings = settings
        self.kube = kube
        self.metrics = metrics or Metrics()
        self.forge = forge
        self.source = GitSource(
            settings.repo_url,
            settings.cache_root,
            branch=settings.branch,
            auth=settings.auth,
            verify=settings.signatures,
        )
        self.informers: Informers | None = None
        self.reader: Kube = kube  # what reconciles read the cluster through
        if settings.informers:  # the watches hold connections of their own, apart from the writes'
            watching = Kube(client.ApiClient(kube.api.configuration), kube.field_manager)
            self.informers = Informers(watching, settings.watched, resync=settings.resync_seconds)
            self.reader = CachedKube(kube, self.informers)
        self.parse_cache = ParseCache()
        self.render_cache = RenderCache()  # a VM document that did not change is not rendered again
        self.pair_memo = PairMemo()  # the last plan's items: an unchanged object is not diffed again
        self._rendered: tuple[str, Repo, Rendered] | None = None
        self.last: Outcome | None = None
        self.last_status_commit: str | None = None
        self._rewritten = False  # the last fetch found the tracked branch force-pushed
        self._cluster: str | None = settings.cluster  # the name of the last loaded Cluster, for failed runs

    # ---- push / poll ------------------------------------------------------------------------------------

    def reconcile(self, reason: str = "manual") -> Outcome:
        started = time.monotonic()
        log.info("reconcile started (%s)", reason)
        self._rewritten = False
        try:
            revision = self.source.fetch()
        except SourceError as exc:
            outcome = Outcome(cluster=self.settings.cluster, failed="SourceFailed", message=str(exc))
            return self._finish(outcome, started)
        self._rewritten = revision.rewritten
        outcome = reconcile(
            revision.path / self.settings.subdir,
            self.reader,
            cluster=self.settings.cluster,
            revision=revision.sha,
            plan_options=self._plan_options(),
            apply_options=self.settings.apply,
            rendered=self._cached(revision.sha),
            kinds=self.settings.kinds,
            namespaces=self.settings.namespaces,
            parse_cache=self.parse_cache,
            render_cache=self.render_cache,
        )
        if outcome.repo is not None and outcome.failed != "ValidationFailed":
            self._rendered = (revision.sha, outcome.repo, Rendered(outcome.desired, outcome.origins))
        if self.settings.events and outcome.changes is not None:
            self._emit_events(outcome)
        return self._finish(outcome, started)

    def close(self) -> None:
        """Stop the informers' watches (the process is ending, or this replica stopped leading)."""
        if self.informers is not None:
            self.informers.stop()

    def _plan_options(self, memo: bool = True) -> PlanOptions | None:
        """Pull-request plans pair without the memo: their objects are another commit's."""
        return PlanOptions(prune=self.settings.prune, memo=self.pair_memo if memo else None)

    def _cached(self, sha: str) -> tuple[Repo, Rendered] | None:
        if self._rendered and self._rendered[0] == sha:
            return self._rendered[1], self._rendered[2]
        return None

    def _finish(self, outcome: Outcome, started: float) -> Outcome:
        seconds = time.monotonic() - started
        result = outcome.failed or ("Applied" if outcome.changes else "InSync")
        self.metrics.observe_reconcile(seconds, result)
        for applied in outcome.changes.results if outcome.changes else ():  # what was done, not planned
            if applied.ok:
                self.metrics.record_changes(applied.action)
        if outcome.live is not None:
            self.metrics.set_drift(len(outcome.live.node_drift))
        if outcome.ok and outcome.revision:
            self.metrics.set_revision(outcome.revision, time.time())
        log.info(
            "reconcile finished: %s in %.2fs%s", result, seconds, f": {outcome.message}" if outcome.message else ""
        )
        self.last = outcome
        if self.settings.status_branch:
            self._publish(outcome, result)
        return outcome

    def _publish(self, outcome: Outcome, result: str) -> None:
        # a run that failed before the repository loaded has no cluster name: report where the last one was
        self._cluster = outcome.cluster or self._cluster
        cluster = self._cluster or "default"
        access = []
        if outcome.repo is not None:
            if outcome.changes is not None:  # the cluster changed: read what the VMs look like now
                scope = self.settings.namespaces
                vmis = list_scoped(self.kube, "VirtualMachineInstance", VM, scope)
                services = list_scoped(self.kube, "Service", selector(cluster), scope)
            else:
                vmis = list(outcome.live.vmis.values()) if outcome.live else []
                services = [o for o in (outcome.live.owned.values() if outcome.live else []) if o["kind"] == "Service"]
            access = summary.vm_access(outcome.repo, vmis, services)
        state = "Synced" if outcome.ok else result  # state, not the run: a no-op run writes the same bytes
        doc = summary.status_document(
            cluster,
            outcome.revision,
            state,
            outcome.message,
            summary.object_states(outcome.plan, outcome.changes),
            [p.as_dict() for p in outcome.problems],
            access,
            outcome.live.node_drift if outcome.live else None,
        )
        message = f"virtnet: {cluster} {result} at {(outcome.revision or 'unknown')[:12]}"
        if self._rewritten:
            message += "\n\nThe tracked branch's history was rewritten (force-push): followed to this revision."
        try:
            sha = publish_status(
                self.settings.repo_url,
                cluster,
                summary.status_files(doc),
                message,
                branch=self.settings.status_branch or "virtnet-status",
                tracked_branch=self.settings.branch,
                auth=self.settings.auth,
                cache_root=self.settings.cache_root,
            )
        except VirtnetError as exc:
            log.warning("status commit failed: %s", exc)
            return
        if sha:
            self.last_status_commit = sha
            log.info("status commit %s on %s", sha[:12], self.settings.status_branch)

    def _emit_events(self, outcome: Outcome) -> None:
        assert outcome.changes is not None and outcome.plan is not None
        by_name = {i.name: i for i in outcome.plan.items}
        for result in outcome.changes.results:
            item = by_name.get(result.name)
            obj = item.desired or item.live if item else None
            if obj is None:
                continue
            reason = {"create": "Created", "update": "Updated", "delete": "Pruned"}.get(result.action, "Applied")
            try:
                self.kube.create_event(
                    obj,
                    reason if result.ok else "ApplyFailed",
                    f"virtnet {result.action} at {(outcome.revision or '')[:12]}: {result.message or 'ok'}",
                    warning=not result.ok,
                )
            except VirtnetError as exc:  # events are best effort; never fail a reconcile for them
                log.debug("event for %s not recorded: %s", display(obj), exc)

    # ---- pull requests ----------------------------------------------------------------------------------

    def _pull_request_source(self, event: PullRequestEvent) -> GitSource:
        """The PR head, fetched from the configured repository only (never from the event's clone URL).

        The forges keep every PR head, forks' included, in the base repository (``refs/pull/N/head``,
        ``refs/merge-requests/N/head``), so the credentials go only where the configuration says. A
        head repository on another host than the configured one is refused: no fetch at all.
        """
        configured, claimed = url_host(self.settings.repo_url), url_host(event.head_url)
        if claimed != configured:
            log.warning("pull request #%d: head repository host %r is not the configured host %r; refused",
                        event.number, claimed, configured)  # fmt: skip
            raise SourceError(
                f"the head repository of pull request #{event.number} is on {claimed or 'no host'!r}, not on "
                f"{configured or 'no host'!r} where the configured repository is; nothing was fetched"
            )
        # a cache of its own: PR heads are untrusted and must not race the tracked branch's checkouts
        cache = (self.settings.cache_root / "pull-requests") if self.settings.cache_root else None
        return GitSource(
            self.settings.repo_url,
            cache,
            commit=event.head_sha,
            fetch_refs=(event.pull_ref,),
            auth=self.settings.auth,
        )

    def plan_pull_request(self, event: PullRequestEvent) -> Outcome:
        """Validate, render and plan the PR head against the live cluster; comment and set a status. Never applies."""
        repo_name = self.settings.forge_repo or event.repo
        try:
            revision = self._pull_request_source(event).fetch()
            outcome = reconcile(
                revision.path / self.settings.subdir,
                self.reader,
                cluster=self.settings.cluster,
                revision=revision.sha,
                apply=False,
                plan_options=self._plan_options(memo=False),
                kinds=self.settings.kinds,
                namespaces=self.settings.namespaces,
            )
        except SourceError as exc:
            outcome = Outcome(cluster=self.settings.cluster, failed="SourceFailed", message=str(exc))
        if self.forge is None:
            return outcome
        cluster = outcome.cluster or self.settings.cluster or "default"
        # the comment leaves the process like a status commit does: problems may quote registered secrets
        body = redact(comment.pull_request_comment(outcome, cluster, event.head_sha))
        ok = outcome.ok
        changes = outcome.plan.counts() if outcome.plan else {}
        description = (
            f"{changes.get('create', 0)} create, {changes.get('update', 0)} update, {changes.get('delete', 0)} delete"
            if ok and outcome.plan
            else f"{outcome.failed}: see the plan comment"
        )
        try:
            self.forge.upsert_comment(repo_name, event.number, comment.plan_marker(cluster), body)
            self.forge.set_status(
                repo_name,
                event.head_sha,
                "success" if ok else "failure",
                context="virtnet/plan",
                description=description,
            )
        except ForgeError as exc:
            log.warning("could not report the plan on %s#%s: %s", repo_name, event.number, exc)
        return outcome
