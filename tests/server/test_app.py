"""The webhook/health/metrics app, over real HTTP to a waitress server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from reconciler.server.app import ServerHandle, build_app, serve
from reconciler.server.metrics import Metrics
from reconciler.server.webhooks import PullRequestEvent, PushEvent

SECRET = "webhook-secret-for-tests"
SHA = "c" * 40


@dataclass
class Harness:
    handle: ServerHandle
    metrics: Metrics
    pushes: list[PushEvent] = field(default_factory=list)
    prs: list[PullRequestEvent] = field(default_factory=list)
    ready: list[bool] = field(default_factory=lambda: [True])
    fail_push: list[bool] = field(default_factory=lambda: [False])

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.handle.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def github(self, event: str, payload: object, delivery: str, secret: str = SECRET) -> tuple[int, dict]:
        body = json.dumps(payload).encode()
        sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sig,
            "Content-Type": "application/json",
        }
        status, data, _ = self.request("POST", "/webhooks/github", body, headers)
        return status, json.loads(data) if data.startswith(b"{") else {}


@pytest.fixture
def harness() -> Iterator[Harness]:
    metrics = Metrics()
    box: dict[str, Harness] = {}

    def on_push(event: PushEvent) -> None:
        if box["h"].fail_push[0]:
            raise RuntimeError("scheduler unavailable")
        box["h"].pushes.append(event)

    app = build_app(
        secrets={"github": SECRET, "gitea": SECRET, "gitlab": SECRET},
        branch="main",
        on_push=on_push,
        on_pull_request=lambda e: box["h"].prs.append(e),
        ready=lambda: box["h"].ready[0],
        metrics=metrics,
        max_body=4096,
    )
    handle = serve(app, "127.0.0.1", 0, channel_timeout=1, request_deadline=2, max_body=8192)
    box["h"] = Harness(handle, metrics)
    try:
        yield box["h"]
    finally:
        handle.stop()


def push_payload(ref: str = "refs/heads/main") -> dict:
    return {"ref": ref, "after": SHA, "repository": {"clone_url": "https://example.test/o/r.git"}}


def pr_payload(action: str = "opened") -> dict:
    return {
        "action": action,
        "number": 12,
        "pull_request": {
            "head": {"sha": SHA, "ref": "f", "repo": {"clone_url": "https://example.test/o/r.git"}},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "o/r"},
    }


def test_healthz_and_readyz(harness: Harness) -> None:
    assert harness.request("GET", "/healthz")[0] == 200
    assert harness.request("GET", "/readyz")[0] == 200
    harness.ready[0] = False
    assert harness.request("GET", "/readyz")[0] == 503
    assert harness.request("GET", "/nope")[0] == 404


def test_push_triggers_callback(harness: Harness) -> None:
    status, data = harness.github("push", push_payload(), "d-push")
    assert (status, data["status"]) == (202, "triggered")
    assert [e.after for e in harness.pushes] == [SHA]
    assert harness.prs == []


def test_push_to_other_branch_is_ignored(harness: Harness) -> None:
    status, data = harness.github("push", push_payload("refs/heads/dev"), "d-dev")
    assert (status, data["status"]) == (202, "ignored")
    assert harness.pushes == []


def test_pull_request_calls_plan_callback_only(harness: Harness) -> None:
    status, data = harness.github("pull_request", pr_payload(), "d-pr")
    assert (status, data["status"]) == (202, "planning")
    assert [e.number for e in harness.prs] == [12]
    assert harness.pushes == []
    status, data = harness.github("pull_request", pr_payload("closed"), "d-pr-closed")
    assert (status, data["status"]) == (202, "ignored")
    assert len(harness.prs) == 1


def test_other_event_ignored(harness: Harness) -> None:
    status, data = harness.github("issues", {"action": "opened"}, "d-issue")
    assert (status, data["status"]) == (202, "ignored")
    assert harness.pushes == [] and harness.prs == []


def test_forged_and_missing_signature_401_without_work(harness: Harness) -> None:
    status, _ = harness.github("push", push_payload(), "d-forged", secret="not-the-secret")
    assert status == 401
    body = json.dumps(push_payload()).encode()
    status, _, _ = harness.request(
        "POST", "/webhooks/github", body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-nosig"}
    )
    assert status == 401
    assert harness.pushes == []
    # a rejected delivery id was not remembered: the genuine delivery still goes through
    assert harness.github("push", push_payload(), "d-forged")[0] == 202


def test_gitlab_token_and_gitea_signature(harness: Harness) -> None:
    body = json.dumps(
        {"ref": "refs/heads/main", "after": SHA, "project": {"git_http_url": "https://gl.test/g/p.git"}}
    ).encode()
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong", "X-Gitlab-Event-UUID": "u1"}
    assert harness.request("POST", "/webhooks/gitlab", body, headers)[0] == 401
    headers["X-Gitlab-Token"] = SECRET
    assert harness.request("POST", "/webhooks/gitlab", body, headers)[0] == 202
    body = json.dumps(push_payload()).encode()
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Gitea-Event": "push", "X-Gitea-Delivery": "g1", "X-Gitea-Signature": sig}
    assert harness.request("POST", "/webhooks/gitea", body, headers)[0] == 202
    assert [e.provider for e in harness.pushes] == ["gitlab", "gitea"]


def test_unknown_provider_404(harness: Harness) -> None:
    assert harness.request("POST", "/webhooks/bitbucket", b"{}")[0] == 404
    assert harness.request("GET", "/webhooks/github")[0] == 405


def test_duplicate_delivery_does_no_work(harness: Harness) -> None:
    assert harness.github("push", push_payload(), "same-id")[0] == 202
    status, data = harness.github("push", push_payload(), "same-id")
    assert (status, data["status"]) == (200, "duplicate")
    assert len(harness.pushes) == 1


def test_bad_json_with_valid_signature_400(harness: Harness) -> None:
    body = b"{this is not json"
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "bad", "X-Hub-Signature-256": sig}
    assert harness.request("POST", "/webhooks/github", body, headers)[0] == 400
    assert harness.pushes == []


def test_failing_callback_500_and_redelivery_allowed(harness: Harness) -> None:
    harness.fail_push[0] = True
    assert harness.github("push", push_payload(), "flaky")[0] == 500
    harness.fail_push[0] = False
    assert harness.github("push", push_payload(), "flaky")[0] == 202
    assert len(harness.pushes) == 1


def test_oversized_body_413_and_server_keeps_serving(harness: Harness) -> None:
    # over the app limit (4096) but under waitress' limit (8192): the app answers
    big = json.dumps({"pad": "x" * 5000, **push_payload()}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), big, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": sig}
    assert harness.request("POST", "/webhooks/github", big, headers)[0] == 413
    # over waitress' limit: waitress itself refuses
    huge = b"x" * 20000
    assert harness.request("POST", "/webhooks/github", huge, headers)[0] == 413
    assert harness.pushes == []
    assert harness.request("GET", "/healthz")[0] == 200


def test_chunked_oversized_body_413(harness: Harness) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", harness.handle.port, timeout=10)
    try:
        chunks = (b"y" * 1024 for _ in range(6))
        conn.request("POST", "/webhooks/github", body=chunks, headers={"X-GitHub-Event": "push"}, encode_chunked=True)
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    assert harness.request("GET", "/healthz")[0] == 200


def test_garbage_requests_do_not_kill_server(harness: Harness) -> None:
    for junk in (
        b"GARBAGE\r\n\r\n",
        b"\x00\xff\x10\r\n\r\n",
        b"POST /webhooks/github HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", harness.handle.port), timeout=5) as s:
            s.sendall(junk)
            with contextlib.suppress(OSError):
                s.recv(1024)
    assert harness.request("GET", "/healthz")[0] == 200


def _dropped(sock: socket.socket, wait: float) -> bool:
    """True when the server has closed the connection (EOF or reset) within ``wait`` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


@pytest.mark.parametrize("trickle", [True, False], ids=["trickle", "stall"])
def test_slow_body_is_dropped_while_others_are_served(harness: Harness, trickle: bool) -> None:
    sock = socket.create_connection(("127.0.0.1", harness.handle.port), timeout=5)
    sock.sendall(
        b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n{"
    )
    started = time.monotonic()
    dropped = False
    served_meanwhile: list[int] = []
    try:
        for i in range(80):  # bounded: 80 * 0.25 s
            if i == 2:
                served_meanwhile.append(harness.request("GET", "/healthz")[0])
                served_meanwhile.append(harness.github("push", push_payload(), "during-slowloris")[0])
            if _dropped(sock, 0.25):
                dropped = True
                break
            if trickle:
                try:
                    sock.sendall(b" ")
                except OSError:
                    dropped = True
                    break
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    print(f"slow connection ({'trickle' if trickle else 'stall'}): dropped={dropped} after {elapsed:.2f}s")
    assert dropped, "the slow connection was never cut off"
    assert served_meanwhile == [200, 202]
    assert len(harness.pushes) == 1
    assert harness.request("GET", "/healthz")[0] == 200


def test_metrics_text(harness: Harness) -> None:
    harness.github("push", push_payload(), "m-1")
    harness.github("push", push_payload(), "m-1")
    harness.github("push", push_payload(), "m-2", secret="forged")
    status, body, headers = harness.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    text = body.decode()
    assert 'virtnet_webhook_deliveries_total{event="push",outcome="accepted",provider="github"} 1.0' in text
    assert 'virtnet_webhook_deliveries_total{event="push",outcome="duplicate",provider="github"} 1.0' in text
    assert 'outcome="unauthorized"' in text
    assert SECRET not in text
    assert "virtnet_reconcile_duration_seconds_bucket" in text


def test_serve_stop_frees_port() -> None:
    app = build_app(secrets={}, branch="main", on_push=lambda e: None, on_pull_request=lambda e: None)
    handle = serve(app, "127.0.0.1", 0)
    port = handle.port
    assert port > 0
    handle.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
