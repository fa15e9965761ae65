"""The GitOps loop end to end: real git remotes, the API double, the webhook server and the forge double."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from pathlib import Path

import pytest
from gitutil import push_commit, ssh_keypair, write_allowed_signers
from repos import BASE, VM

from reconciler.clients.forge import GitHubForge
from reconciler.clients.kube import Kube
from reconciler.clients.source import SignaturePolicy
from reconciler.clients.status import read_status
from reconciler.engine.apply import ApplyOptions
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.run import Runtime, start
from reconciler.testing import ApiDouble
from reconciler.testing.forge_double import ForgeDouble

SECRET = "canary-webhook-secret-5b1f"
FORGE_TOKEN = "canary-forge-token-9c2e"


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def controller_for(remote: Path, api: ApiDouble, tmp_path: Path, **kw: object) -> Controller:
    settings = Settings(
        repo_url=remote.as_uri(), cache_root=tmp_path / "cache", apply=ApplyOptions(poll=0.02, timeout=20), **kw
    )
    return Controller(settings, Kube(api.api_client()), Metrics())


def test_commit_then_poll_applies_and_writes_status(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    ctl = controller_for(remote, api, tmp_path)
    first = ctl.reconcile("poll")
    assert first.ok and first.changes is not None
    created = sum(1 for r in first.changes.results if r.ok and r.action == "create")
    metrics = ctl.metrics.render().decode()
    assert f'virtnet_objects_changed_total{{action="create"}} {float(created)}' in metrics
    assert 'virtnet_reconcile_results_total{result="Applied"} 1.0' in metrics
    assert api.store.find("kubevirt.io/v1", "VirtualMachine", "web-1", "apps") is not None
    status = read_status(remote.as_uri(), "test", cache_root=tmp_path / "cache")
    doc = json.loads(status["status.json"])
    assert doc["revision"] == first.revision and doc["result"] == "InSync"
    assert {o["state"] for o in doc["objects"]} == {"in-sync"}
    web = next(v for v in doc["vms"] if v["vm"] == "apps/web-1")
    assert web["interfaces"][1]["ips"] == ["192.168.100.10"]  # what the guest agent reports, via the VMI
    assert "| `web-1` | yes | no | 0 | · |" in status["reachability/apps.md"].decode()  # the namespace's matrix
    assert first.safety is not None and first.safety.connectivity is not None
    assert not first.safety.connectivity.compared  # nothing reconciled before: no current revision
    # the status commit carries an SSH config: a Host block per VM, through virtctl port-forward
    config = status["ssh_config"].decode()
    for vm in doc["vms"]:
        ns, name = vm["vm"].split("/")
        assert f"Host vmi/{name}.{ns}\n" in config
        assert f"  ProxyCommand virtctl port-forward --stdio=true vmi/{name}.{ns} %p\n" in config
    assert config.count("ProxyCommand") == len(doc["vms"]) >= 1

    # an unchanged revision: no render, no writes, no status commit
    api.reset_counts()
    before = ctl.last_status_commit
    second = ctl.reconcile("poll")
    assert second.ok and second.changes is None and api.writes() == 0
    assert ctl.last_status_commit == before

    # a new commit changing one VM's MAC: picked up by the next poll, exactly one write
    new_sha = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")}, "change MAC")
    api.reset_counts()
    third = ctl.reconcile("poll")
    assert third.revision == new_sha and third.ok
    # the connectivity diff ran against the revision reconciled before (a MAC change moves no one)
    assert third.safety is not None and third.safety.connectivity is not None
    assert third.safety.connectivity.compared and third.safety.connectivity.empty
    assert api.writes() == 2  # the VM, plus its Kubernetes Event
    writes = [(r.verb, r.resource, r.status) for r in api.requests if r.verb in ("apply", "create") and not r.dry_run]
    assert writes == [("apply", "kubevirt.io/virtualmachines", 200), ("create", "events", 201)]
    events = [e for e in api.store.objects("v1", "Event", "apps") if e["involvedObject"]["name"] == "web-1"]
    assert {(e["reason"], e["involvedObject"]["kind"]) for e in events} == {
        ("Created", "VirtualMachine"),
        ("Updated", "VirtualMachine"),
    }


def test_events_can_be_turned_off(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    ctl = controller_for(remote, api, tmp_path, events=False)
    ctl.reconcile("poll")
    push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")}, "change MAC")
    api.reset_counts()
    ctl.reconcile("poll")
    assert api.writes() == 1


def test_invalid_commit_changes_nothing_and_says_why(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    ctl = controller_for(remote, api, tmp_path)
    ctl.reconcile("poll")
    push_commit(remote, {"vms/web.yaml": VM.replace("vlan100", "vlan999")}, "typo")
    api.reset_counts()
    outcome = ctl.reconcile("poll")
    assert outcome.failed == "ValidationFailed" and api.writes() == 0
    doc = json.loads(read_status(remote.as_uri(), "test", cache_root=tmp_path / "cache")["status.json"])
    assert doc["problems"][0]["file"] == "vms/web.yaml" and doc["problems"][0]["line"] == 10


def test_unsigned_commit_is_refused(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    _, public = ssh_keypair(tmp_path, "signer")
    signers = write_allowed_signers(tmp_path / "allowed_signers", {"ops@example.com": public})
    ctl = controller_for(remote, api, tmp_path, signatures=SignaturePolicy(allowed_signers=signers))
    outcome = ctl.reconcile("poll")
    assert outcome.failed == "SourceFailed" and "not signed by an allowed key" in outcome.message
    assert api.writes() == 0


def _post(url: str, event: str, payload: dict, delivery: str, secret: str = SECRET) -> int:
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url,
        body,
        {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_push_webhook_reconciles_at_once(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    ctl = controller_for(remote, api, tmp_path)
    runtime = start(ctl, interval=3600, http_port=0, webhook_secret=SECRET)
    try:
        wait_for(lambda: ctl.last is not None)  # the startup run
        sha = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:43")}, "change")
        url = f"http://127.0.0.1:{runtime.server.port}/webhooks/github"  # type: ignore[union-attr]
        payload = {"ref": "refs/heads/main", "after": sha, "repository": {"clone_url": remote.as_uri()}}
        assert _post(url, "push", payload, "d1", secret="wrong") == 401
        assert _post(url, "push", payload, "d2") == 202
        wait_for(lambda: ctl.last is not None and ctl.last.revision == sha)
        assert ctl.last.ok
    finally:
        runtime.stop()


def test_pull_request_webhook_comments_and_sets_status_but_applies_nothing(
    remote: Path, api: ApiDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ctl = controller_for(remote, api, tmp_path)
    ctl.reconcile("poll")
    change = {**BASE, "vms/web.yaml": VM + "    - network: vlan100\n      name: extra\n"}
    head = push_commit(remote, change, "pr", branch="feature")  # a new branch: the whole tree
    with ForgeDouble(token=FORGE_TOKEN) as forge:
        ctl.forge = GitHubForge(forge.url, FORGE_TOKEN)
        runtime = start(ctl, interval=3600, http_port=0, webhook_secret=SECRET)
        try:
            url = f"http://127.0.0.1:{runtime.server.port}/webhooks/github"  # type: ignore[union-attr]
            api.reset_counts()
            for n, action in enumerate(("opened", "synchronize")):
                payload = {
                    "action": action,
                    "number": 7,
                    "pull_request": {
                        "head": {"sha": head, "ref": "feature", "repo": {"clone_url": remote.as_uri()}},
                        "base": {"ref": "main"},
                    },
                    "repository": {"full_name": "ops/config"},
                }
                assert _post(url, "pull_request", payload, f"pr-{n}") == 202
                wait_for(lambda n=n: len(forge.statuses("ops/config", head)) == n + 1)
                # the plan's worker finishes after the status is posted; a delivery of the same head while
                # it still runs is a duplicate by design (planqueue), so wait for it before the next
                assert runtime.plans is not None and runtime.plans.wait_idle(20)
        finally:
            runtime.stop()
        comments = forge.comments("ops/config", 7)
        assert len(comments) == 1  # upserted in place, not a new comment per push
        body = comments[0]["body"]
        assert "<!-- virtnet:plan cluster=test -->" in body
        assert "`VirtualMachine/apps/web-1`" in body and "```mermaid" in body and "flowchart LR" in body
        assert forge.statuses("ops/config", head)[-1]["state"] == "success"
        assert forge.statuses("ops/config", head)[-1]["context"] == "virtnet/plan/test"  # one per cluster
    assert api.writes() == 0  # a plan never applies
    for text in [caplog.text, body]:
        assert FORGE_TOKEN not in text and SECRET not in text


def test_leader_failover_keeps_webhook_deliveries(remote: Path, api: ApiDouble, tmp_path: Path) -> None:
    """Two replicas: only the leader reconciles; a push to the follower is queued and served after takeover."""
    from reconciler.server.leader import LeaderElector

    replicas: list[Runtime] = []
    controllers = [controller_for(remote, api, tmp_path / f"r{i}") for i in range(2)]
    for i, ctl in enumerate(controllers):

        def factory(started, stopped, i=i, ctl=ctl):  # type: ignore[no-untyped-def]
            return LeaderElector(
                ctl.kube.api,
                "virtnet",
                "default",
                f"replica-{i}",
                lease_duration=1,
                renew_deadline=0.8,
                retry_period=0.1,
                on_started_leading=started,
                on_stopped_leading=stopped,
            )

        replicas.append(start(ctl, interval=3600, http_port=None, elector_factory=factory))
        if i == 0:
            wait_for(lambda: replicas[0].leading)
    try:
        wait_for(lambda: controllers[0].last is not None)
        leader, follower = replicas
        assert not follower.leading and controllers[1].last is None
        follower.trigger("push:abc")  # a webhook delivered to the follower
        assert follower.queued == ["push:abc"] and controllers[1].last is None
        leader.elector.stop(release=False)  # type: ignore[union-attr]  # killed: stops renewing, no release
        leader.scheduler.stop()
        wait_for(lambda: follower.leading, timeout=10)
        wait_for(lambda: controllers[1].last is not None)
        assert follower.queued == []
        assert any("push:abc" in r.reasons for r in follower.scheduler.runs)
    finally:
        for r in replicas:
            r.stop()
