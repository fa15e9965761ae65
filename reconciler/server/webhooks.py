"""Webhook verification and parsing for GitHub, Gitea and GitLab.

Why: a webhook is the only way an outsider makes virtnet do work, so every delivery is authenticated
(HMAC-SHA256 for GitHub/Gitea, the shared token for GitLab; constant-time compares) *before* its body is
parsed, and replays of an already-seen delivery id are refused by a bounded LRU ``DeliveryLog``.

Every field an event carries is checked before it becomes an event (``WebhookError``, HTTP 400, names the
field and the rule): object names are 40 or 64 hex digits, refs and branch names follow git's ref-name
rules (no whitespace or control characters, so a value can never start a new log line), numbers are
positive, URLs and repository names are bounded and printable. A body nested deeper than the JSON parser
allows is a 400 too, not a crash.

Side effects: none besides the in-memory ``DeliveryLog``. Nothing here logs, and no secret or body text is
ever put into an exception message (only field names are).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from werkzeug.datastructures import Headers

from reconciler.errors import VirtnetError
from reconciler.server.deliveries import DeliveryLog as DeliveryLog  # re-exported: replays, per provider

PROVIDERS = ("github", "gitea", "gitlab")

_EVENT_HEADER = {"github": "x-github-event", "gitea": "x-gitea-event", "gitlab": "x-gitlab-event"}
_DELIVERY_HEADER = {
    "github": "x-github-delivery",
    "gitea": "x-gitea-delivery",
    "gitlab": "x-gitlab-event-uuid",
}

#: provider action -> normalized action; anything else is Ignored
_PR_ACTIONS = {
    "github": {"opened": "opened", "synchronize": "synchronize", "reopened": "reopened"},
    "gitea": {
        "opened": "opened",
        "synchronize": "synchronize",
        "synchronized": "synchronize",
        "reopened": "reopened",
    },
    "gitlab": {"open": "opened", "update": "synchronize", "reopen": "reopened"},
}
_ZERO_SHA = "0" * 40
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: git check-ref-format, and nothing that would end a log line: no whitespace, control characters, ~^:?*[\\
_REF_BAD = re.compile(
    r"[\x00-\x20\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069~^:?*\[\\]"
    r"|\.\.|@\{|//|/\.|\.lock(?:/|$)|^[/.]|[/.]$|^@$"
)
_MAX_REF = 255
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: URLs, repository names, delivery ids
_REPO_NAME = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+")
_DELIVERY = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_URL = 2048
_MAX_NUMBER = 2**31 - 1


class WebhookError(VirtnetError):
    """A delivery that claims a known event but whose body cannot be understood (HTTP 400)."""


class Busy(VirtnetError):
    """A valid delivery the server cannot take now (HTTP 503): the forge delivers it again later."""


@dataclass(frozen=True)
class PushEvent:
    """A push to a branch or tag. ``ref`` is the full ref (``refs/heads/main``)."""

    provider: str
    repo_url: str
    ref: str
    after: str
    delivery: str

    @property
    def branch(self) -> str | None:
        """The branch name, or None when the push was to a tag or another kind of ref."""
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref.startswith(prefix) else None


@dataclass(frozen=True)
class PullRequestEvent:
    """A pull/merge request that wants a plan. ``action`` is normalized to opened|synchronize|reopened."""

    provider: str
    action: str
    number: int
    head_sha: str
    head_ref: str
    head_url: str
    base_ref: str
    repo: str
    delivery: str
    web_url: str = ""  # the repository's page on the forge (links in the comment and the status)

    @property
    def pull_ref(self) -> str:
        """Where the base repository itself keeps the head (forks included), so it is fetched from there."""
        kind = "merge-requests" if self.provider == "gitlab" else "pull"
        return f"refs/{kind}/{self.number}/head"


@dataclass(frozen=True)
class PlanCommand:
    """A ``/virtnet plan`` comment on a pull request: plan its head again (the comment names only the number;
    the head is asked of the forge when the plan runs). ``head_sha`` is empty: never a duplicate of a push."""

    provider: str
    repo: str
    number: int
    author: str
    delivery: str
    web_url: str = ""
    head_sha: str = ""


#: a comment that asks for a plan: this line alone, first in the comment
COMMAND = "/virtnet plan"
#: GitHub's author_association values allowed to ask (people with write access to the repository)
_TRUSTED = ("OWNER", "MEMBER", "COLLABORATOR")


@dataclass(frozen=True)
class Ignored:
    """A verified delivery that needs no work (another event, a closed PR, a branch deletion...)."""

    provider: str
    event: str
    reason: str
    delivery: str


Event = PushEvent | PullRequestEvent | PlanCommand | Ignored

#: request headers as the HTTP app has them (werkzeug) or as a test or caller builds them (a dict)
HeaderMap: TypeAlias = Headers | Mapping[str, str]


def _lower(headers: HeaderMap) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _secret_bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def verify(provider: str, headers: HeaderMap, body: bytes, secret: bytes | str) -> bool:
    """True when the delivery carries a valid signature (GitHub/Gitea) or token (GitLab) for ``secret``.

    An empty secret never verifies: anyone can compute an HMAC with an empty key.
    """
    key = _secret_bytes(secret)
    if not key or provider not in PROVIDERS:
        return False
    h = _lower(headers)
    if provider == "gitlab":
        token = h.get("x-gitlab-token")
        return token is not None and hmac.compare_digest(token.encode(), key)
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    if provider == "github":
        sent = h.get("x-hub-signature-256")
        expected = "sha256=" + digest
    else:
        sent = h.get("x-gitea-signature")
        expected = digest
    return sent is not None and hmac.compare_digest(sent.strip().lower().encode(), expected.encode())


def delivery_id(provider: str, headers: HeaderMap, body: bytes) -> str:
    """The provider's delivery id header, or ``body:<sha256>`` when the provider sent none.

    An id that is not a plain token (letters, digits, ``._:-``, at most 128) is replaced by
    ``id:<sha256 of it>``: it still identifies replays, and it is safe in a log line and a metric."""
    h = _lower(headers)
    sent = h.get(_DELIVERY_HEADER.get(provider, ""), "").strip()
    if sent:
        return sent if _DELIVERY.fullmatch(sent) else "id:" + hashlib.sha256(sent.encode()).hexdigest()[:32]
    return "body:" + hashlib.sha256(body).hexdigest()


def event_name(provider: str, headers: HeaderMap) -> str:
    """The provider's raw event name ('' when missing)."""
    return _lower(headers).get(_EVENT_HEADER.get(provider, ""), "").strip()


def is_sha(value: str) -> bool:
    """A commit id as webhooks must carry it (40 or 64 lower-case hex digits)."""
    return bool(_SHA.fullmatch(value))


def is_branch(value: str) -> bool:
    """A branch name git accepts and that cannot start a new log line (the rules of ``_ref``)."""
    return bool(value) and len(value) <= _MAX_REF and not _REF_BAD.search(value)


def _get(obj: Any, *path: str) -> Any:
    cur = obj
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            raise WebhookError(f"missing field {'.'.join(path)}")
        cur = cur[key]
    return cur


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    if not isinstance(value, str):
        raise WebhookError(f"field {'.'.join(path)} is not a string")
    return value


def _int(obj: Any, *path: str) -> int:
    """A pull-request number: a positive integer that fits 31 bits."""
    value = _get(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookError(f"field {'.'.join(path)} is not an integer")
    if not 0 < value <= _MAX_NUMBER:
        raise WebhookError(f"field {'.'.join(path)} is not a positive number below 2^31")
    return value


def _sha(obj: Any, *path: str) -> str:
    """A commit id: 40 (SHA-1) or 64 (SHA-256) hex digits, lower-cased."""
    value = _str(obj, *path).lower()
    if not _SHA.fullmatch(value):
        raise WebhookError(f"field {'.'.join(path)} is not a commit id (40 or 64 hex digits)")
    return value


def _ref(obj: Any, *path: str, full: bool = False) -> str:
    """A branch name, or with ``full`` a whole ref (``refs/...``), valid by git's ref-name rules."""
    value = _str(obj, *path)
    if not value or len(value) > _MAX_REF or _REF_BAD.search(value) or (full and not value.startswith("refs/")):
        rule = "a ref (refs/...)" if full else "a branch name"
        raise WebhookError(f"field {'.'.join(path)} is not {rule} git accepts")
    return value


def _printable(obj: Any, *path: str, pattern: re.Pattern[str] = _PRINTABLE) -> str:
    """A URL or repository name: visible ASCII only (no spaces, no control characters), bounded."""
    value = _str(obj, *path)
    if len(value) > _MAX_URL or not pattern.fullmatch(value):
        raise WebhookError(f"field {'.'.join(path)} has characters or a length that is not allowed")
    return value


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("body is not JSON") from None
    except RecursionError:  # the size is bounded by the app; the depth only by the parser's stack
        raise WebhookError("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise WebhookError("body is not a JSON object")
    return data


def _parse_push(provider: str, data: dict[str, Any], delivery: str) -> PushEvent | Ignored:
    where = ("project", "git_http_url") if provider == "gitlab" else ("repository", "clone_url")
    url = _printable(data, *where)
    after = _sha(data, "after")
    ref = _ref(data, "ref", full=True)
    if after == _ZERO_SHA or data.get("deleted") is True:
        return Ignored(provider, "push", "ref deleted", delivery)
    return PushEvent(provider=provider, repo_url=url, ref=ref, after=after, delivery=delivery)


def _parse_pr(provider: str, data: dict[str, Any], delivery: str) -> PullRequestEvent | Ignored:
    if provider == "gitlab":
        attrs = _get(data, "object_attributes")
        raw = str(attrs.get("action", "")) if isinstance(attrs, dict) else ""
        action = _PR_ACTIONS[provider].get(raw)
        if action is None:
            return Ignored(provider, "pull_request", f"action {raw[:32]!r} needs no plan", delivery)
        return PullRequestEvent(
            provider=provider,
            action=action,
            number=_int(attrs, "iid"),
            head_sha=_sha(attrs, "last_commit", "id"),
            head_ref=_ref(attrs, "source_branch"),
            head_url=_printable(attrs, "source", "git_http_url"),
            base_ref=_ref(attrs, "target_branch"),
            repo=_printable(data, "project", "path_with_namespace", pattern=_REPO_NAME),
            delivery=delivery,
            web_url=_web_url(data, "project", "web_url"),
        )
    raw = str(data.get("action", ""))
    action = _PR_ACTIONS[provider].get(raw)
    if action is None:
        return Ignored(provider, "pull_request", f"action {raw[:32]!r} needs no plan", delivery)
    head_repo = _get(data, "pull_request", "head").get("repo")
    if not isinstance(head_repo, dict):
        return Ignored(provider, "pull_request", "head repository is gone", delivery)
    return PullRequestEvent(
        provider=provider,
        action=action,
        number=_int(data, "number"),
        head_sha=_sha(data, "pull_request", "head", "sha"),
        head_ref=_ref(data, "pull_request", "head", "ref"),
        head_url=_printable(head_repo, "clone_url"),
        base_ref=_ref(data, "pull_request", "base", "ref"),
        repo=_printable(data, "repository", "full_name", pattern=_REPO_NAME),
        delivery=delivery,
        web_url=_web_url(data, "repository", "html_url"),
    )


def _web_url(data: dict[str, Any], *path: str) -> str:
    """An optional page URL (links only): '' when absent or not a plain ``http(s)://host/path`` (no query,
    parentheses, brackets or quotes: it goes into Markdown links as it is)."""
    try:
        value = _printable(data, *path)
    except WebhookError:
        return ""
    return value if re.fullmatch(r"https?://[A-Za-z0-9._~:@%+/-]+", value) else ""


def _parse_comment(provider: str, data: dict[str, Any], delivery: str) -> PlanCommand | Ignored:
    """A comment: a :class:`PlanCommand` when it is ``/virtnet plan`` on a pull request, else Ignored."""
    if provider == "gitlab":
        attrs = _get(data, "object_attributes")
        body = str(attrs.get("note", "")) if isinstance(attrs, dict) else ""
        if not isinstance(attrs, dict) or attrs.get("noteable_type") != "MergeRequest":
            return Ignored(provider, "comment", "not on a merge request", delivery)
        number, repo = _int(data, "merge_request", "iid"), "project"
        author = str((data.get("user") or {}).get("username", ""))[:64]
        trusted = True  # GitLab does not say; a plan only reads, and the queue is bounded
    else:
        if data.get("action") != "created":
            return Ignored(provider, "comment", "not a new comment", delivery)
        body = str((data.get("comment") or {}).get("body", ""))
        issue = _get(data, "issue")
        if not isinstance(issue, dict) or not (issue.get("pull_request") or data.get("is_pull")):
            return Ignored(provider, "comment", "not on a pull request", delivery)
        number, repo = _int(data, "issue", "number"), "repository"
        comment = data.get("comment") or {}
        author = str((comment.get("user") or {}).get("login", ""))[:64]
        trusted = provider != "github" or comment.get("author_association") in _TRUSTED
    if body.strip().splitlines()[:1] != [COMMAND]:
        return Ignored(provider, "comment", "not a command", delivery)
    if not trusted:
        return Ignored(provider, "comment", "only collaborators may ask for a plan", delivery)
    key = "path_with_namespace" if provider == "gitlab" else "full_name"
    return PlanCommand(
        provider=provider,
        repo=_printable(data, repo, key, pattern=_REPO_NAME),
        number=number,
        author=author if _PRINTABLE.fullmatch(author) else "",
        delivery=delivery,
        web_url=_web_url(data, repo, "web_url" if provider == "gitlab" else "html_url"),
    )


def classify(provider: str, headers: HeaderMap) -> str:
    """``push``, ``pull_request``, ``comment`` or ``other`` — a bounded value, safe as a metric label."""
    name = event_name(provider, headers)
    if provider == "gitlab":
        return {"Push Hook": "push", "Merge Request Hook": "pull_request", "Note Hook": "comment"}.get(name, "other")
    if name == "push":
        return "push"
    if name in ("pull_request", "pull_request_sync"):
        return "pull_request"
    if name in ("issue_comment", "pull_request_comment"):
        return "comment"
    return "other"


def parse(provider: str, headers: HeaderMap, body: bytes) -> Event:
    """Turn a *verified* delivery into an event. Raises ``WebhookError`` on malformed bodies."""
    if provider not in PROVIDERS:
        raise WebhookError(f"unknown provider {provider[:32]!r}")
    delivery = delivery_id(provider, headers, body)
    kind = classify(provider, headers)
    if kind == "other":
        name = event_name(provider, headers)[:64] or "missing"
        return Ignored(provider, name, "event not handled", delivery)
    data = _load(body)
    if kind == "push":
        return _parse_push(provider, data, delivery)
    if kind == "comment":
        return _parse_comment(provider, data, delivery)
    return _parse_pr(provider, data, delivery)
