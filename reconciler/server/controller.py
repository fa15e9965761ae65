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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from reconciler import labels
from reconciler.clients.forge import Forge
from reconciler.clients.informer import CachedKube, Informers
from reconciler.clients.kube import MANAGED_KINDS, Kube
from reconciler.clients.notify import Event, Notifier
from reconciler.clients.source import Auth, GitSource, SignaturePolicy
from reconciler.clients.status import publish_status
from reconciler.clients.syncstatus import Switches, SyncObject
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.memo import PairMemo
from reconciler.engine.plan import PlanOptions
from reconciler.errors import SourceError, VirtnetError
from reconciler.labels import AGENT_SELECTOR, ANY_CLUSTER, VM, selector
from reconciler.logs import redact
from reconciler.model import ParseCache, Repo
from reconciler.model.sops import KeySource, keys_from_env
from reconciler.objects import display
from reconciler.output import summary
from reconciler.output.connectivity import matrix_files
from reconciler.pipeline import Outcome, list_scoped, reconcile
from reconciler.render import RenderCache, Rendered
from reconciler.server import pullrequests
from reconciler.server.announce import Announcer, repo_slug
from reconciler.server.metrics import Metrics
from reconciler.server.syncreport import report_run
from reconciler.server.webhooks import PlanCommand, PullRequestEvent

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
    keys: KeySource = keys_from_env  # age identities for SOPS-encrypted Secrets (config decryption.ageKeyFile)
    sync_namespace: str = ""  # where the ClusterSync object lives (switches and status); "" = none
    notifier: Notifier | None = None  # webhook / Slack / Teams providers (config notifications)
    informers: bool = False  # observe through list-and-watch caches (``virtnet run``)
    resync_seconds: float = 300.0  # the caches list again this often, whatever their watches said

    @property
    def watched(self) -> set[tuple[str, str | None]]:
        """The (kind, label selector) pairs a reconcile LISTs (``reconciler.pipeline.observe``): the owned
        kinds, the VMIs, and the node agents' drift reports (ConfigMaps of their own)."""
        return {(k, ANY_CLUSTER) for k in self.kinds} | {
            ("VirtualMachineInstance", VM),
            ("ConfigMap", AGENT_SELECTOR),
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
        self._matrix: tuple[Repo, dict[str, str]] | None = None  # the last revision's reachability files
        self.last: Outcome | None = None
        self.last_result = ""  # the last run's word in the sync vocabulary (reconciler.labels)
        self.last_status_commit: str | None = None
        self._rewritten = False  # the last fetch found the tracked branch force-pushed
        self._cluster: str | None = settings.cluster  # the name of the last loaded Cluster, for failed runs
        self._sync: SyncObject | None = None
        self._pinned_source: GitSource | None = None
        self._commit_message = ""  # of the revision the current run is about (finds the merged pull request)
        repo = settings.forge_repo or repo_slug(settings.repo_url)
        self.announcer = Announcer(forge, repo, settings.notifier or Notifier([]))

    # ---- push / poll ------------------------------------------------------------------------------------

    def reconcile(self, reason: str = "manual") -> Outcome:
        started = time.monotonic()
        log.info("reconcile started (%s)", reason)
        self._rewritten = False
        self._commit_message = ""
        switches = self._switches()
        if switches.suspend:  # the operator's switch: nothing is fetched, rendered or written
            message = "suspended by the operator" + (f": {switches.reason}" if switches.reason else "")
            outcome = Outcome(cluster=self._cluster, message=message)
            return self._finish(outcome, started, switches, labels.SUSPENDED)
        try:
            revision = self._source(switches.pinned).fetch()
        except SourceError as exc:
            outcome = Outcome(cluster=self.settings.cluster, failed="SourceFailed", message=str(exc))
            return self._finish(outcome, started, switches)
        self._rewritten = revision.rewritten
        self._commit_message = revision.message
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
            base=self._current(),
            keys=self.settings.keys,
            parse_cache=self.parse_cache,
            render_cache=self.render_cache,
        )
        if outcome.repo is not None and outcome.failed != "ValidationFailed":
            self._rendered = (revision.sha, outcome.repo, Rendered(outcome.desired, outcome.origins))
        if self.settings.events and outcome.changes is not None:
            self._emit_events(outcome)
        return self._finish(outcome, started, switches)

    # ---- the operator's switches and the ClusterSync object (reconciler/clients/syncstatus.py) -----------

    def _sync_object(self) -> SyncObject | None:
        """This cluster's ClusterSync, once the cluster's name is known (configured, or from a first load)."""
        name = self._cluster
        if not self.settings.sync_namespace or not name:
            return None
        if self._sync is None or self._sync.name != name:
            self._sync = SyncObject(self.kube, self.settings.sync_namespace, name)
        return self._sync if self._sync.available else None

    def _switches(self) -> Switches:
        """Read on every run, so ``virtnet suspend`` takes effect at the next run without a restart."""
        sync = self._sync_object()
        if sync is None:
            return Switches()
        try:
            return sync.switches()
        except VirtnetError as exc:  # unreadable switches: keep going as before rather than stop the loop
            log.warning("%s", exc)
            return Switches()

    def _source(self, pinned: str) -> GitSource:
        """The tracked branch, or the operator's pinned commit of the same repository (same signature policy)."""
        if not pinned:
            return self.source
        if self._pinned_source is None or self._pinned_source.commit != pinned.lower():
            self._pinned_source = GitSource(
                self.settings.repo_url,
                self.settings.cache_root,
                commit=pinned,
                auth=self.settings.auth,
                verify=self.settings.signatures,
            )
        return self._pinned_source

    def _report(self, outcome: Outcome, result: str, switches: Switches) -> None:
        sync = self._sync_object()
        if sync is not None:
            report_run(sync, outcome, result, switches, f"{redact(self.settings.repo_url)}@{self.settings.branch}")

    def close(self) -> None:
        """Stop the informers' watches (the process is ending, or this replica stopped leading)."""
        if self.informers is not None:
            self.informers.stop()

    def _plan_options(self, memo: bool = True) -> PlanOptions | None:
        """Pull-request plans pair without the memo: their objects are another commit's."""
        return PlanOptions(prune=self.settings.prune, memo=self.pair_memo if memo else None)

    def _current(self) -> Repo | None:
        """The revision last reconciled from the tracked branch: what the connectivity diff of the next
        revision, or of a pull request, is measured against (None until one has loaded)."""
        return self._rendered[1] if self._rendered else None

    def _matrices(self, repo: Repo | None) -> dict[str, str]:
        """The reachability matrices of a revision (``reachability/<ns>.md``), made once per revision: a poll of
        an unchanged 10,000-VM revision would otherwise spend a CPU second making the same files again."""
        if repo is None:
            return {}
        if self._matrix is None or self._matrix[0] is not repo:
            self._matrix = (repo, matrix_files(repo))
        return self._matrix[1]

    def _cached(self, sha: str) -> tuple[Repo, Rendered] | None:
        if self._rendered and self._rendered[0] == sha:
            return self._rendered[1], self._rendered[2]
        return None

    def _finish(self, outcome: Outcome, started: float, switches: Switches, result: str = "") -> Outcome:
        seconds = time.monotonic() - started
        result = result or outcome.failed or (labels.APPLIED if outcome.changes else labels.IN_SYNC)
        self.metrics.observe_reconcile(seconds, result)
        self.metrics.set_switches(switches.suspend, switches.pinned)
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
        self.last, self.last_result = outcome, result
        self._cluster = outcome.cluster or self._cluster
        if self.settings.status_branch and result != labels.SUSPENDED:  # a suspended run writes nothing to git
            self._publish(outcome, result)
        self._report(outcome, result, switches)
        changed = Counter(str(r.action) for r in outcome.changes.results if r.ok) if outcome.changes else {}
        event = Event(
            self._cluster or "default", result, outcome.revision, redact(outcome.message)[:1000], dict(changed)
        )
        self.announcer.announce(event, self._commit_message, applied=outcome.changes is not None)
        return outcome

    def _publish(self, outcome: Outcome, result: str) -> None:
        # a run that failed before the repository loaded has no cluster name: _finish kept the last one
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
        state = labels.IN_SYNC if outcome.ok else result  # the state, not the run: a no-op writes the same bytes
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
                {**summary.status_files(doc), **self._matrices(outcome.repo)},
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
                    redact(f"virtnet {result.action} at {(outcome.revision or '')[:12]}: {result.message or 'ok'}"),
                    warning=not result.ok,
                )
            except VirtnetError as exc:  # events are best effort; never fail a reconcile for them
                log.debug("event for %s not recorded: %s", display(obj), exc)

    # ---- pull requests (reconciler/server/pullrequests.py) ------------------------------------------------

    def plan_pull_request(self, event: PullRequestEvent) -> Outcome:
        """Plan the PR head against the live cluster; comment and set a status. Never applies."""
        return pullrequests.plan_pull_request(self, event)

    def plan_command(self, command: PlanCommand) -> Outcome | None:
        """``/virtnet plan`` on a PR: plan its head as the forge has it now."""
        return pullrequests.plan_command(self, command)
