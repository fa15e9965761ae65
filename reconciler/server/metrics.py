"""Prometheus metrics of the reconciler, in a registry of their own.

Why a private ``CollectorRegistry``: tests and several reconcilers in one process must not collide on the
global registry, and ``/metrics`` should expose exactly what virtnet means to expose.

Labels are always drawn from small fixed sets (or, for the revision, a validated hex sha); anything else
is folded into ``other`` so that no secret, URL or free text can ever reach a label.

Side effects: none outside the ``Metrics`` instance.
"""

from __future__ import annotations

import re
import threading
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from reconciler import labels

#: the controller's run results (the sync vocabulary of reconciler.labels), plus generic ones for other callers
RESULTS = frozenset(
    {
        *labels.RESULTS,
        "success",
        "noop",
        "failed",
        "error",
        "skipped",
    }
)
ACTIONS = frozenset({"create", "update", "delete", "prune", "restart", "unchanged"})
PROVIDERS = frozenset({"github", "gitea", "gitlab"})
NOTIFY_OUTCOMES = frozenset({"sent", "dropped", "failed"})
EVENTS = frozenset({"push", "pull_request", "comment", "other"})
OUTCOMES = frozenset(
    {"accepted", "ignored", "duplicate", "unauthorized", "too_large", "bad_request", "disabled", "busy", "error"}
)
_SHA = re.compile(r"^[0-9a-f]{7,64}$")

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _pick(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class Metrics:
    """All virtnet metrics. Use the helper methods; they sanitize label values."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_* (CPU, resident memory, open fds, start time) and python_info, as every exporter has them
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.reconcile_duration = Histogram(
            "virtnet_reconcile_duration_seconds",
            "Wall time of one reconcile run",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.reconcile_results = Counter(
            "virtnet_reconcile_results", "Reconcile runs by result", ["result"], registry=r
        )
        self.objects_changed = Counter(
            "virtnet_objects_changed", "Objects changed by reconciles, by action", ["action"], registry=r
        )
        # a timestamp is named as one (Prometheus conventions: *_timestamp_seconds, Unix time)
        self.last_applied = Gauge(
            "virtnet_last_applied_timestamp_seconds",
            "Unix time the revision (label) was last applied; one series, the current revision",
            ["revision"],
            registry=r,
        )
        self.last_handled = Gauge(
            "virtnet_last_handled_timestamp_seconds",
            "Unix time the last run ended, whatever its result (the heartbeat; no-op runs included)",
            registry=r,
        )
        self.last_success = Gauge(
            "virtnet_last_success_timestamp_seconds",
            "Unix time of the last run that left the cluster at the revision (Applied or InSync)",
            registry=r,
        )
        self.drift = Gauge("virtnet_drift_objects", "Objects that differ from the repository", registry=r)
        self.webhook_deliveries = Counter(
            "virtnet_webhook_deliveries",
            "Webhook deliveries by provider, event and outcome",
            ["provider", "event", "outcome"],
            registry=r,
        )
        self.notifications = Counter(
            "virtnet_notifications",
            "Notifications by provider and outcome: sent, dropped (over the rate limit) or failed",
            ["provider", "outcome"],
            registry=r,
        )
        self.trigger_latency = Histogram(
            "virtnet_trigger_to_start_seconds",
            "Time from the first trigger of a run to the start of that run",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300),
            registry=r,
        )
        self.suspended = Gauge(
            "virtnet_suspended", "1 while the operator has suspended reconciling (virtnet suspend)", registry=r
        )
        self.pinned = Gauge(
            "virtnet_pinned_revision_info",
            "1 for the revision the operator pinned (virtnet pin); no series when none is",
            ["revision"],
            registry=r,
        )
        self._revision: str | None = None
        self._pin: str | None = None
        self._lock = threading.Lock()

    def observe_reconcile(self, seconds: float, result: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.reconcile_duration.observe(max(0.0, seconds))
        self.reconcile_results.labels(result=_pick(result, RESULTS)).inc()
        self.last_handled.set(now)
        if result in (labels.APPLIED, labels.IN_SYNC):
            self.last_success.set(now)

    def record_changes(self, action: str, count: int = 1) -> None:
        if count > 0:
            self.objects_changed.labels(action=_pick(action, ACTIONS)).inc(count)

    def set_revision(self, sha: str, when: float) -> None:
        """Replace the revision series; a value that is not a hex sha is recorded as ``invalid``."""
        label = sha.lower() if _SHA.match(sha.lower()) else "invalid"
        with self._lock:
            if self._revision is not None and self._revision != label:
                self.last_applied.remove(self._revision)
            self._revision = label
            self.last_applied.labels(revision=label).set(when)

    def set_switches(self, suspended: bool, pinned: str) -> None:
        """The operator's switches as the last run read them (the pin as a hex sha label, or no series)."""
        self.suspended.set(1 if suspended else 0)
        label = (pinned.lower() if _SHA.match(pinned.lower()) else "invalid") if pinned else None
        with self._lock:
            if self._pin is not None and self._pin != label:
                self.pinned.remove(self._pin)
            self._pin = label
            if label is not None:
                self.pinned.labels(revision=label).set(1)

    def set_drift(self, count: int) -> None:
        self.drift.set(max(0, count))

    def webhook(self, provider: str, event: str, outcome: str) -> None:
        self.webhook_deliveries.labels(
            provider=_pick(provider, PROVIDERS), event=_pick(event, EVENTS), outcome=_pick(outcome, OUTCOMES)
        ).inc()

    def notification(self, provider: str, outcome: str) -> None:
        """``provider`` is a configured name (bounded by the config), ``outcome`` sent, dropped or failed."""
        self.notifications.labels(provider=provider, outcome=_pick(outcome, NOTIFY_OUTCOMES)).inc()

    def render(self) -> bytes:
        """The text exposition format (content type ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
