"""Notifications after a run, like Flux's notification-controller: a generic webhook, Slack and Microsoft Teams.

Why: the apply result otherwise reaches nobody (no commit status on the applied commit, no word on the
merged pull request, nothing in chat). What is sent: a run that ``Applied`` or failed, and the first
``InSync`` after a failure (recovered); a run that repeats the previous one's result, revision and message
is not sent again, so a blocked plan does not page every three minutes. Each provider has its own token
bucket (``RateLimit``): what goes over it is dropped and counted, never queued without bound.

Secrets: a provider's address (a Slack or Teams webhook URL is a credential) and the generic webhook's
HMAC key are read from files mounted from Kubernetes Secrets, registered with the log redactor, and never
logged; the text sent is redacted like a status commit.

Side effects: HTTPS POSTs (``requests``, with a timeout), no retries beyond one attempt per event: a chat
outage must not slow the reconcile loop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from reconciler import labels
from reconciler.logs import redact, register_secret

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Virtnet-Signature"  # sha256=<hex HMAC of the body>, as GitHub signs its webhooks


@dataclass(frozen=True)
class Event:
    """One run worth telling about, in the sync vocabulary (``reconciler.labels``)."""

    cluster: str
    result: str  # Applied, InSync (recovered) or a failure reason
    revision: str | None
    message: str = ""
    changes: dict[str, int] = field(default_factory=dict)  # action -> count of what was applied

    @property
    def severity(self) -> str:
        return "info" if self.result in (labels.APPLIED, labels.IN_SYNC) else "error"

    def text(self) -> str:
        """One line a person reads in chat."""
        rev = (self.revision or "unknown")[:12]
        done = ", ".join(f"{n} {action}" for action, n in sorted(self.changes.items()) if n)
        words = {labels.APPLIED: f"applied {rev}", labels.IN_SYNC: f"in sync at {rev}"}
        head = f"virtnet {self.cluster}: {words.get(self.result, f'{self.result} at {rev}')}"
        return redact(head + (f" ({done})" if done else "") + (f": {self.message}" if self.message else ""))[:3000]


class Provider(Protocol):
    name: str

    def send(self, event: Event) -> None: ...


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    response = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=timeout)
    if response.status_code >= 300:
        raise requests.HTTPError(f"HTTP {response.status_code}")


@dataclass
class WebhookProvider:
    """A generic webhook: the event as JSON, signed with HMAC-SHA256 when a key is given."""

    name: str
    url: str
    secret: str = ""
    timeout: float = 10.0

    def send(self, event: Event) -> None:
        payload = {**asdict(event), "message": event.text(), "severity": event.severity}
        body = json.dumps(payload, sort_keys=True).encode()
        headers = {}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        _post(self.url, body, headers, self.timeout)


@dataclass
class SlackProvider:
    """A Slack incoming webhook (the URL is the credential)."""

    name: str
    url: str
    timeout: float = 10.0

    def send(self, event: Event) -> None:
        icon = ":white_check_mark:" if event.severity == "info" else ":x:"
        _post(self.url, json.dumps({"text": f"{icon} {event.text()}"}).encode(), {}, self.timeout)


@dataclass
class TeamsProvider:
    """A Microsoft Teams incoming webhook (Workflows): an Adaptive Card message."""

    name: str
    url: str
    timeout: float = 10.0

    def send(self, event: Event) -> None:
        card = {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": f"virtnet {event.cluster}: {event.result}", "weight": "Bolder",
                 "color": "Good" if event.severity == "info" else "Attention"},
                {"type": "TextBlock", "text": event.text(), "wrap": True},
            ],
        }  # fmt: skip
        attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        _post(self.url, json.dumps({"type": "message", "attachments": [attachment]}).encode(), {}, self.timeout)


PROVIDERS: dict[str, Callable[..., Provider]] = {
    "generic": WebhookProvider,
    "slack": SlackProvider,
    "msteams": TeamsProvider,
}


def provider_from_files(kind: str, name: str, address_file: Path, secret_file: Path | None = None) -> Provider:
    """A provider whose address (and HMAC key) come from files mounted from a Secret; both are registered
    with the redactor before anything could print them."""
    url = address_file.read_text().strip()
    register_secret(url)
    parts = urlsplit(url)
    # requests names only the path and query of a URL it could not reach ("Max retries exceeded with url:
    # /services/T0/B0/<token>"), and a Slack or Teams URL's credential is exactly that part
    register_secret(parts.path + (f"?{parts.query}" if parts.query else ""))
    if kind == "generic":
        secret = secret_file.read_text().strip() if secret_file and secret_file.exists() else ""
        if secret_file and not secret:  # optional, but a misspelled Secret key must not pass unnoticed
            log.warning("notification provider %s: no HMAC key at %s; its requests are not signed", name, secret_file)
        register_secret(secret)
        return WebhookProvider(name, url, secret)
    return PROVIDERS[kind](name, url)


@dataclass
class RateLimit:
    """A token bucket: ``burst`` events at once, then one per ``per_seconds``."""

    burst: int = 5
    per_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    tokens: float = -1.0
    stamp: float = 0.0

    def allow(self) -> bool:
        now = self.clock()
        if self.tokens < 0:
            self.tokens, self.stamp = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) / self.per_seconds)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Notifier:
    """Decides which runs are worth an event and hands them to every provider within its rate limit."""

    def __init__(
        self,
        providers: list[Provider],
        limit: Callable[[], RateLimit] = RateLimit,
        counted: Callable[[str, str], None] | None = None,
    ) -> None:
        """``counted(provider, outcome)`` is told of every event sent, dropped or failed (the metrics)."""
        self.providers = providers
        self.counted = counted
        self.limits = {p.name: limit() for p in providers}
        self.sent: dict[str, int] = dict.fromkeys(self.limits, 0)
        self.dropped: dict[str, int] = dict.fromkeys(self.limits, 0)
        self.failed: dict[str, int] = dict.fromkeys(self.limits, 0)
        self._last: tuple[str, str | None, str] | None = None
        self._lock = threading.Lock()

    def worth_sending(self, event: Event) -> bool:
        """Applied and failures, and InSync right after a failure; never the same thing twice in a row."""
        if event.result == labels.SUSPENDED:  # the operator did it; and it must not hide a recovery after it
            return False
        key = (event.result, event.revision, event.message)
        with self._lock:
            last, self._last = self._last, key
        if key == last:
            return False
        if event.result == labels.IN_SYNC:
            return last is not None and last[0] not in (labels.APPLIED, labels.IN_SYNC)
        return True

    def notify(self, event: Event) -> None:
        if not self.providers or not self.worth_sending(event):
            return
        for provider in self.providers:
            if not self.limits[provider.name].allow():
                self._count(provider.name, self.dropped, "dropped")
                log.warning("notification to %s dropped: over its rate limit", provider.name)
                continue
            try:
                provider.send(event)
                self._count(provider.name, self.sent, "sent")
            except (requests.RequestException, OSError) as exc:
                self._count(provider.name, self.failed, "failed")
                log.warning("notification to %s failed: %s", provider.name, redact(str(exc)))

    def _count(self, name: str, tally: dict[str, int], outcome: str) -> None:
        tally[name] += 1
        if self.counted is not None:
            self.counted(name, outcome)

    def stats(self) -> dict[str, Any]:
        return {"sent": dict(self.sent), "dropped": dict(self.dropped), "failed": dict(self.failed)}
