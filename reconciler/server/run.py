"""``virtnet run``: wires the controller to the scheduler, the HTTP server and (optionally) leader election.

Side effects: starts threads (scheduler, HTTP server, lease renewal, a fixed number of pull-request plan
workers). Only the leader reconciles. A push
webhook that reaches a follower is not lost: its reason is queued and served as the first reconcile
when this replica becomes leader (a leader serves it at once). Pull-request plans only read the
cluster, so every replica may serve them; they queue in a ``PlanQueue`` (bounded workers, one waiting
plan per pull request, the newest head wins).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.server.app import ServerHandle, build_app, serve
from reconciler.server.controller import Controller
from reconciler.server.leader import LeaderElector
from reconciler.server.planqueue import PlanQueue
from reconciler.server.scheduler import Scheduler
from reconciler.server.webhooks import PlanCommand, PullRequestEvent, PushEvent

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A running controller process (or, in tests, one replica of several)."""

    controller: Controller
    scheduler: Scheduler
    server: ServerHandle | None = None
    elector: LeaderElector | None = None
    plans: PlanQueue | None = None
    queued: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def trigger(self, reason: str) -> None:
        with self._lock:
            if not self.leading:
                self.queued.append(reason)
                log.info("not the leader: queued %s", reason)
                return
        self.scheduler.trigger(reason)

    def on_started_leading(self) -> None:
        log.info("became leader")
        self.scheduler.start()
        with self._lock:
            queued, self.queued = self.queued, []
        if queued:
            self.scheduler.trigger(",".join(queued))

    def on_stopped_leading(self) -> None:
        log.warning("lost leadership: stopping reconciles")
        self.scheduler.stop()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.plans is not None:
            self.plans.stop()
        if self.elector is not None:
            self.elector.stop(release=True)
        self.scheduler.stop()
        self.controller.close()


def start(
    controller: Controller,
    *,
    interval: float,
    jitter: float | None = None,
    http_host: str = "127.0.0.1",
    http_port: int | None = 8080,
    webhook_secret: str | None = None,
    plan_workers: int = 2,
    elector_factory: Callable[[Callable[[], None], Callable[[], None]], LeaderElector] | None = None,
) -> Runtime:
    """Start everything; returns at once. ``http_port=None`` runs without the HTTP server."""
    scheduler = Scheduler(
        lambda reason: controller.reconcile(reason),
        interval=interval,
        jitter=interval / 10 if jitter is None else jitter,
        metrics=controller.metrics,
    )

    # looked up per plan, not bound here: tests replace controller.plan_pull_request after start
    def plan(event: PullRequestEvent | PlanCommand) -> object:
        if isinstance(event, PlanCommand):
            return controller.plan_command(event)
        return controller.plan_pull_request(event)

    plans = PlanQueue(plan, workers=plan_workers)
    runtime = Runtime(controller, scheduler, plans=plans)

    def on_push(event: PushEvent) -> None:
        runtime.trigger(f"push:{event.after[:12]}")

    def on_pull_request(event: PullRequestEvent | PlanCommand) -> None:
        plans.submit(event)

    def ready() -> bool:
        last = controller.last
        return runtime.leading is False or last is None or last.failed not in ("SourceFailed", "ObserveFailed")

    if http_port is not None:
        secrets = {p: webhook_secret for p in ("github", "gitea", "gitlab")} if webhook_secret else {}
        app = build_app(
            secrets=secrets,
            branch=controller.settings.branch,
            on_push=on_push,
            on_pull_request=on_pull_request,
            ready=ready,
            metrics=controller.metrics,
        )
        runtime.server = serve(app, http_host, http_port)
    if elector_factory is None:
        scheduler.start()
    else:
        runtime.elector = elector_factory(runtime.on_started_leading, runtime.on_stopped_leading)
        runtime.elector.start()
    return runtime
