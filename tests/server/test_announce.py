"""Notifications after a run: the commit status on the applied commit, the comment on the merged pull
request, and the generic webhook, Slack and Teams providers (rate-limited, addresses from Secret files)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from reconciler import labels
from reconciler.clients.forge import GitHubForge
from reconciler.clients.kube import Kube
from reconciler.clients.notify import (
    SIGNATURE_HEADER,
    Event,
    Notifier,
    RateLimit,
    SlackProvider,
    TeamsProvider,
    provider_from_files,
)
from reconciler.engine.apply import ApplyOptions
from reconciler.logs import redact
from reconciler.server.announce import apply_marker, merged_pull_requests, repo_slug
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.forge_double import ForgeDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.gitutil import isolate_git, make_remote, push_commit
from tests.repos import BASE, VM


class Receiver:
    """A local HTTP endpoint that records what the providers POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
            self.requests.append((environ["PATH_INFO"], headers, body))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.mark.parametrize(
    ("message", "numbers"),
    [
        ("Merge pull request #12 from ops/vlan-200\n\nadd vlan 200", [12]),
        ("add vlan 200 (#34)\n\n* one\n* two", [34]),
        ("Merge pull request 'add vlan' (#5) from x into main", [5]),
        ("Merge branch 'vlan' into 'main'\n\nadd vlan\n\nSee merge request infra/network!77", [77]),
        ("fix typo in #12's comment", []),
        ("", []),
    ],
)
def test_the_merged_pull_request_is_read_from_the_commit_message(message: str, numbers: list[int]) -> None:
    assert merged_pull_requests(message) == numbers


def test_repo_slug_of_the_usual_urls() -> None:
    assert repo_slug("https://github.com/ops/config.git") == "ops/config"
    assert repo_slug("git@github.com:ops/config.git") == "ops/config"
    assert repo_slug("https://x-access-token:t@gitlab.example/group/sub/net.git") == "group/sub/net"


def test_what_is_worth_sending_and_the_rate_limit() -> None:
    sent: list[Event] = []

    class Recorder:
        name = "rec"

        def send(self, event: Event) -> None:
            sent.append(event)

    clock = [0.0]
    metrics = Metrics()
    notifier = Notifier(
        [Recorder()],
        limit=lambda: RateLimit(burst=2, per_seconds=60, clock=lambda: clock[0]),
        counted=metrics.notification,
    )
    runs = [
        (labels.IN_SYNC, "a"),  # nothing happened: no event
        (labels.APPLIED, "b"),
        ("PlanBlocked", "c"),
        ("PlanBlocked", "c"),  # the same again: not repeated
        (labels.SUSPENDED, "c"),
    ]
    for result, rev in runs:
        notifier.notify(Event("prod", result, rev))
    assert [e.result for e in sent] == [labels.APPLIED, "PlanBlocked"]
    notifier.notify(Event("prod", labels.IN_SYNC, "d"))  # recovered after a failure... but over the limit
    assert notifier.stats()["dropped"] == {"rec": 1} and len(sent) == 2
    clock[0] += 60  # one token back
    notifier.notify(Event("prod", "ApplyFailed", "e", "1 failed"))
    assert [e.result for e in sent][-1] == "ApplyFailed" and notifier.stats()["sent"] == {"rec": 3}
    exposed = metrics.render().decode()  # what /metrics says agrees with the counts
    assert 'virtnet_notifications_total{outcome="sent",provider="rec"} 3.0' in exposed
    assert 'virtnet_notifications_total{outcome="dropped",provider="rec"} 1.0' in exposed


def test_providers_post_what_each_service_takes(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "address").write_text(f"{receiver.url}/hook?token=canary-hook-url-5f1\n")
    (tmp_path / "secret").write_text("canary-hmac-key-77\n")
    generic = provider_from_files("generic", "audit", tmp_path / "address", tmp_path / "secret")
    assert redact(f"posting to {receiver.url}/hook?token=canary-hook-url-5f1") == "posting to ***"  # registered
    event = Event("prod", labels.APPLIED, "a" * 40, "", {"create": 2, "update": 1})
    generic.send(event)
    SlackProvider("chat", f"{receiver.url}/slack").send(event)
    TeamsProvider("teams", f"{receiver.url}/teams").send(
        Event("prod", "ApplyFailed", "b" * 40, "VM apps/web-1: denied")
    )

    [(_, headers, body)] = [r for r in receiver.requests if r[0] == "/hook"]
    expected = "sha256=" + hmac.new(b"canary-hmac-key-77", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER.title()] == expected
    payload = json.loads(body)
    assert (
        payload["result"] == "Applied"
        and payload["severity"] == "info"
        and payload["changes"] == {"create": 2, "update": 1}
    )
    assert payload["message"] == "virtnet prod: applied aaaaaaaaaaaa (2 create, 1 update)"
    assert receiver.json("/slack") == [
        {"text": ":white_check_mark: virtnet prod: applied aaaaaaaaaaaa (2 create, 1 update)"}
    ]
    [teams] = receiver.json("/teams")
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["color"] == "Attention"
    assert "ApplyFailed at bbbbbbbbbbbb: VM apps/web-1: denied" in card["content"]["body"][1]["text"]


def test_an_apply_sets_a_status_on_the_commit_and_comments_on_the_merged_pull_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    remote = make_remote(tmp_path, dict(BASE))
    with (
        ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api,
        ForgeDouble(token="forge-token") as forge,
    ):
        seed_hyperconverged(api.store)
        settings = Settings(
            repo_url=remote.as_uri(),
            cache_root=tmp_path / "cache",
            apply=ApplyOptions(poll=0.02, timeout=20),
            forge_repo="ops/config",
            status_branch=None,
            notifier=Notifier([SlackProvider("chat", f"{receiver.url}/slack")]),
        )
        ctl = Controller(settings, Kube(api.api_client()), Metrics(), GitHubForge(forge.url, "forge-token"))
        first = ctl.reconcile("poll")
        assert first.ok and first.revision
        [status] = forge.statuses("ops/config", first.revision)
        assert (status["state"], status["context"]) == ("success", "virtnet/apply/test")
        merged = push_commit(
            remote,
            {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")},
            "Merge pull request #7 from ops/mac\n\nnew MAC",
        )
        applied = ctl.reconcile("push")
        assert applied.ok and applied.revision == merged
        assert forge.statuses("ops/config", merged)[-1]["state"] == "success"
        [comment] = forge.comments("ops/config", 7)
        assert (
            comment["body"].startswith(apply_marker("test")) and f"applied {merged[:12]} (1 update)" in comment["body"]
        )
        ctl.reconcile("poll")  # nothing new: no second status, no second chat message
        assert len(forge.statuses("ops/config", merged)) == 1
        texts = [m["text"] for m in receiver.json("/slack")]
        assert len(texts) == 2 and texts[0].startswith(
            f":white_check_mark: virtnet test: applied {first.revision[:12]} ("
        )
        assert texts[1] == f":white_check_mark: virtnet test: applied {merged[:12]} (1 update)"


def test_the_run_command_builds_the_providers_from_the_mounted_files(tmp_path: Path) -> None:
    from reconciler.server.cli import _notifier
    from reconciler.server.config import Config

    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "address").write_text("https://hooks.example/services/T0/B0/canary-slack-path-93\n")
    cfg = Config.model_validate(
        {
            "repo": {"url": "https://git.example/cfg.git"},
            "notifications": {
                "providers": [{"name": "chat", "type": "slack", "addressFile": str(tmp_path / "chat" / "address")}],
                "burst": 1,
                "perSeconds": 3600,
            },
        }
    )
    notifier = _notifier(cfg)
    [provider] = notifier.providers
    assert isinstance(provider, SlackProvider) and provider.url.endswith("canary-slack-path-93")
    assert "canary-slack-path-93" not in redact(f"POST {provider.url} failed")
    # what requests says when the host cannot be reached names the path only
    unreachable = "Max retries exceeded with url: /services/T0/B0/canary-slack-path-93 (Caused by ...)"
    assert "canary-slack-path-93" not in redact(unreachable)
    limit = notifier.limits["chat"]
    assert (limit.burst, limit.per_seconds) == (1, 3600)
    twice = [{"name": "a", "type": "slack", "addressFile": "f"}, {"name": "a", "type": "msteams", "addressFile": "g"}]
    with pytest.raises(ValueError, match="names must be unique: a given twice"):
        Config.model_validate({"repo": {"url": "x"}, "notifications": {"providers": twice}})
    with pytest.raises(ValueError, match="type"):
        Config.model_validate(
            {"repo": {"url": "x"}, "notifications": {"providers": [{"name": "a", "type": "pager", "addressFile": "f"}]}}
        )
