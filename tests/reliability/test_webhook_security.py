"""Webhook security over real HTTP, against the server ``virtnet run`` starts (``start(controller, ...)``).

The controller is real but its two entry points are replaced by counting spies, so every reconcile
(with the reasons it serves) and every pull-request plan is recorded. Every hostile delivery carries a
sha of its own (``bad...``): none of them may ever show up in a reconcile reason or a plan, however
the scheduler coalesces; and the valid deliveries sent concurrently must each be served exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from reconciler.clients.kube import Kube
from reconciler.pipeline import Outcome
from reconciler.server import app as app_module
from reconciler.server import run as run_module
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.run import Runtime, start
from reconciler.server.webhooks import PullRequestEvent

SECRET = "webhook-security-secret-4e7a"
PROVIDERS = ("github", "gitea", "gitlab")


def sha(tag: str, n: int) -> str:
    return hashlib.sha1(f"{tag}-{n}".encode()).hexdigest()


@dataclass
class Spy:
    reconciles: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    plans: list[PullRequestEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reasons(self) -> set[str]:
        with self.lock:
            return {r for run in self.reconciles for r in run.split(",")}

    def planned(self) -> set[str]:
        with self.lock:
            return {e.head_sha for e in self.plans}


@dataclass
class Server:
    runtime: Runtime
    spy: Spy

    @property
    def port(self) -> int:
        assert self.runtime.server is not None
        return self.runtime.server.port

    def request(self, path: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@contextlib.contextmanager
def run_server(tmp_path: Path) -> Iterator[Server]:
    settings = Settings(repo_url=(tmp_path / "unused.git").as_uri(), cache_root=tmp_path / "cache", status_branch=None)
    ctl = Controller(settings, Kube(client.ApiClient()), Metrics())
    spy = Spy()

    def reconcile(reason: str = "manual") -> Outcome:
        with spy.lock:
            spy.reconciles.append(reason)
        outcome = Outcome(cluster="test", revision="0" * 40)
        ctl.last = outcome
        return outcome

    def plan(event: PullRequestEvent) -> Outcome:
        with spy.lock:
            spy.plans.append(event)
        return Outcome(cluster="test")

    ctl.reconcile = reconcile  # type: ignore[method-assign]
    ctl.plan_pull_request = plan  # type: ignore[method-assign]
    runtime = start(ctl, interval=3600, http_port=0, webhook_secret=SECRET)
    real_trigger = runtime.scheduler.trigger

    def trigger(reason: str) -> bool:
        with spy.lock:
            spy.triggers.append(reason)
        return real_trigger(reason)

    runtime.scheduler.trigger = trigger  # type: ignore[method-assign]
    try:
        wait_for(lambda: spy.reconciles == ["startup"])
        yield Server(runtime, spy)
    finally:
        runtime.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with run_server(tmp_path) as running:
        yield running


# ------------------------------------------------------------------------------ deliveries


def push_body(provider: str, after: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    where = {"project": {"git_http_url": "https://forge.test/o/r.git"}}
    if provider != "gitlab":
        where = {"repository": {"clone_url": "https://forge.test/o/r.git"}}
    return {"ref": ref, "after": after, **where}


def pr_body(provider: str, head: str, action: str = "opened") -> dict[str, Any]:
    if provider == "gitlab":
        gl_action = {"opened": "open", "closed": "close"}[action]
        return {
            "object_attributes": {
                "action": gl_action,
                "iid": 5,
                "last_commit": {"id": head},
                "source_branch": "feature",
                "source": {"git_http_url": "https://forge.test/o/r.git"},
                "target_branch": "main",
            },
            "project": {"path_with_namespace": "o/r"},
        }
    return {
        "action": action,
        "number": 5,
        "pull_request": {
            "head": {"sha": head, "ref": "feature", "repo": {"clone_url": "https://forge.test/o/r.git"}},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "o/r"},
    }


EVENTS = {
    "github": {"push": "push", "pr": "pull_request", "other": "issues"},
    "gitea": {"push": "push", "pr": "pull_request", "other": "issues"},
    "gitlab": {"push": "Push Hook", "pr": "Merge Request Hook", "other": "Issue Hook"},
}


def headers_for(
    provider: str, kind: str, body: bytes, delivery: str | None, secret: str | None = SECRET
) -> dict[str, str]:
    """Headers a forge would send; ``secret=None`` leaves the signature (or token) out."""
    event = EVENTS[provider].get(kind, kind)
    h = {"Content-Type": "application/json"}
    if provider == "github":
        h["X-GitHub-Event"] = event
        if delivery:
            h["X-GitHub-Delivery"] = delivery
        if secret is not None:
            h["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    elif provider == "gitea":
        h["X-Gitea-Event"] = event
        if delivery:
            h["X-Gitea-Delivery"] = delivery
        if secret is not None:
            h["X-Gitea-Signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    else:
        h["X-Gitlab-Event"] = event
        if delivery:
            h["X-Gitlab-Event-UUID"] = delivery
        if secret is not None:
            h["X-Gitlab-Token"] = secret
    return h


@dataclass(frozen=True)
class Case:
    name: str
    provider: str
    body: bytes
    headers: dict[str, str]
    expect: int
    chunked: bool = False


def hostile_cases() -> list[Case]:
    """Every hostile delivery, per provider; each names a ``bad`` sha that must never reach any work."""
    cases: list[Case] = []
    n = 0
    for p in PROVIDERS:
        for kind in ("push", "pr"):
            n += 1
            bad = sha("bad", n)
            payload = push_body(p, bad) if kind == "push" else pr_body(p, bad)
            body = json.dumps(payload).encode()
            cases += [
                Case(f"{p}-{kind}-missing-signature", p, body, headers_for(p, kind, body, f"miss-{n}", None), 401),
                Case(f"{p}-{kind}-wrong-secret", p, body, headers_for(p, kind, body, f"forged-{n}", "guess"), 401),
                Case(f"{p}-{kind}-empty-secret", p, body, headers_for(p, kind, body, f"empty-{n}", ""), 401),
            ]
            if p != "gitlab":  # a genuine signature of one body, sent with another
                genuine = json.dumps(push_body(p, sha("genuine", n)) if kind == "push" else pr_body(p, sha("g", n)))
                h = headers_for(p, kind, genuine.encode(), f"tampered-{n}")
                cases.append(Case(f"{p}-{kind}-tampered-body", p, body, h, 401))
            other = PROVIDERS[(PROVIDERS.index(p) + 1) % 3]  # the right secret in another provider's header
            cases.append(Case(f"{p}-{kind}-other-providers-header", p, body,
                              headers_for(other, kind, body, f"cross-{n}"), 401))  # fmt: skip
            # signed, but an event kind virtnet does not act on (body says push / PR anyway)
            cases.append(Case(f"{p}-{kind}-wrong-event", p, body, headers_for(p, "other", body, f"other-{n}"), 202))
        n += 1
        bad = sha("bad", n)
        closed = json.dumps(pr_body(p, bad, "closed")).encode()
        cases.append(Case(f"{p}-pr-closed", p, closed, headers_for(p, "pr", closed, f"closed-{n}"), 202))
        other_branch = json.dumps(push_body(p, sha("bad", n + 100), "refs/heads/dev")).encode()
        cases.append(Case(f"{p}-push-other-branch", p, other_branch,
                          headers_for(p, "push", other_branch, f"dev-{n}"), 202))  # fmt: skip
        # oversized but correctly signed: refused before parsing (Content-Length and chunked)
        huge = json.dumps({**push_body(p, sha("bad", n + 200)), "pad": "x" * (1024 * 1024 + 10)}).encode()
        cases.append(Case(f"{p}-oversized", p, huge, headers_for(p, "push", huge, f"huge-{n}"), 413))
        cases.append(Case(f"{p}-oversized-chunked", p, huge, headers_for(p, "push", huge, f"chunk-{n}"), 413, True))
    return cases


def send(server: Server, case: Case) -> int:
    if not case.chunked:
        return server.request(f"/webhooks/{case.provider}", case.body, case.headers)[0]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        chunks = (case.body[i : i + 65536] for i in range(0, len(case.body), 65536))
        conn.request("POST", f"/webhooks/{case.provider}", body=chunks, headers=case.headers, encode_chunked=True)
        return conn.getresponse().status
    except (ConnectionResetError, BrokenPipeError):
        return 413  # the server may answer 413 and close before it has read the whole body
    finally:
        conn.close()


def valid(server: Server, provider: str, kind: str, n: int, delivery: str | None = None) -> tuple[int, str]:
    head = sha(f"good-{kind}", n)
    payload = push_body(provider, head) if kind == "push" else pr_body(provider, head)
    body = json.dumps(payload).encode()
    status, _ = server.request(f"/webhooks/{provider}", body, headers_for(provider, kind, body, delivery or f"ok-{n}"))
    return status, head


def test_hostile_deliveries_do_no_work_while_valid_ones_are_served(server: Server) -> None:
    cases = hostile_cases()
    assert len(cases) >= 45
    results: dict[str, int] = {}
    good_push: list[str] = []
    good_pr: list[str] = []
    good_status: list[int] = []

    def legit() -> None:
        for i in range(12):
            provider, kind = PROVIDERS[i % 3], ("push", "pr")[i % 2]
            status, head = valid(server, provider, kind, i)
            good_status.append(status)
            (good_push if kind == "push" else good_pr).append(head)

    with ThreadPoolExecutor(max_workers=5) as pool:
        legit_done = pool.submit(legit)
        for case, status in zip(cases, pool.map(lambda c: send(server, c), cases), strict=True):
            results[case.name] = status
        legit_done.result()

    wrong = {c.name: (results[c.name], c.expect) for c in cases if results[c.name] != c.expect}
    assert wrong == {}
    assert good_status == [202] * 12

    spy = server.spy
    wait_for(lambda: {f"push:{h[:12]}" for h in good_push} <= spy.reasons())
    wait_for(lambda: set(good_pr) <= spy.planned())
    time.sleep(0.2)  # let anything wrongly queued surface
    # exactly the valid deliveries triggered work; nothing hostile did
    assert sorted(spy.triggers) == sorted(f"push:{h[:12]}" for h in good_push)
    assert spy.reasons() == {"startup"} | {f"push:{h[:12]}" for h in good_push}
    assert sorted(e.head_sha for e in spy.plans) == sorted(good_pr)
    assert not any("bad" in r for r in spy.reasons())

    # replays of a delivery already served: answered, never served twice (with and without delivery ids)
    before = (len(spy.triggers), len(spy.plans))
    for provider in PROVIDERS:
        for kind in ("push", "pr"):
            assert valid(server, provider, kind, 100, delivery=f"replay-{provider}-{kind}")[0] == 202
            for _ in range(3):
                assert valid(server, provider, kind, 100, delivery=f"replay-{provider}-{kind}")[0] == 200
    body = json.dumps(push_body("gitlab", sha("no-id", 1))).encode()
    headers = headers_for("gitlab", "push", body, None)
    assert server.request("/webhooks/gitlab", body, headers)[0] == 202
    assert server.request("/webhooks/gitlab", body, headers)[0] == 200  # same body, no id: still a replay
    wait_for(lambda: len(spy.plans) == before[1] + 3)
    time.sleep(0.2)
    assert (len(spy.triggers), len(spy.plans)) == (before[0] + 4, before[1] + 3)

    # the metrics count what was refused, with bounded labels only
    text = server.request("/metrics", b"", {}, method="GET")[1].decode()
    refused = sum(1 for c in cases if c.expect == 401)
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("virtnet_webhook_deliveries_total{") and 'outcome="unauthorized"' in line
    )
    assert counted == refused
    assert SECRET not in text and sha("bad", 1)[:12] not in text

    # and the server still serves afterwards
    assert server.request("/healthz", b"", {}, method="GET")[0] == 200
    status, head = valid(server, "github", "push", 999)
    assert status == 202
    wait_for(lambda: f"push:{head[:12]}" in spy.reasons())


def _dropped(sock: socket.socket, wait: float) -> bool:
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def test_slow_bodies_are_dropped_without_work_while_others_are_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the production limits (10 s idle, 10 s per request) scaled down so that the test stays short
    monkeypatch.setattr(run_module, "serve", functools.partial(app_module.serve, channel_timeout=2, request_deadline=2))
    with run_server(tmp_path) as server:
        bad = sha("bad-slow", 1)
        body = json.dumps(push_body("github", bad)).encode()
        sigs = headers_for("github", "push", body, "slow-1")
        head = "".join(f"{k}: {v}\r\n" for k, v in sigs.items())
        socks = []
        for _ in range(2):  # one trickles a byte at a time, one stalls after the headers
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(
                f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:1]
            )
            socks.append(s)
        dropped = [False, False]
        served: list[int] = []
        try:
            for i in range(80):  # bounded: 80 * 0.25 s
                if i % 4 == 1:
                    served.append(valid(server, PROVIDERS[i % 3], "push", 500 + i)[0])
                for k, s in enumerate(socks):
                    if dropped[k]:
                        continue
                    if _dropped(s, 0.125):
                        dropped[k] = True
                    elif k == 0:
                        try:
                            s.sendall(body[1 + i : 2 + i])  # never completes within 80 rounds
                        except OSError:
                            dropped[k] = True
                if all(dropped):
                    break
        finally:
            for s in socks:
                s.close()
        assert dropped == [True, True], "a slow connection was never cut off"
        assert served and set(served) == {202}
        time.sleep(0.2)
        assert all(bad[:12] not in r for r in server.spy.reasons())
        assert all(t.startswith("push:") and bad[:12] not in t for t in server.spy.triggers)
        assert len(server.spy.triggers) == len(served)
        assert valid(server, "gitea", "push", 777)[0] == 202  # and afterwards
