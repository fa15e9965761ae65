"""Canary secrets through a full loop: none may appear in any log line, exception text, status commit,
PR comment or status, metric, or object written to the cluster.

Planted: the git token (a token-protected smart-HTTP remote, ``TokenAuth(token_file=...)``), a second,
wrong git token (a failing fetch), the webhook secret, the forge token (``ForgeDouble``) and an SSH
private key used by ``SSHAuth`` for a real (failing) ssh fetch. The webhook secret and forge token are
registered with the redactor exactly as ``virtnet run`` does (``reconciler/server/cli.py``); the git
tokens register themselves when read. The loop: startup reconcile + status commit, push webhook,
pull-request webhook → plan comment + commit status, a fetch with the wrong token, a commit whose
validation problem quotes the token (someone pasted it into a network name), the same for a pull
request, and an ssh fetch that fails -- with logging at DEBUG, plain and JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from reconciler.clients.forge import GitHubForge
from reconciler.clients.kube import Kube
from reconciler.clients.source import GitSource, SSHAuth, TokenAuth
from reconciler.engine.apply import ApplyOptions
from reconciler.errors import SourceError
from reconciler.logs import register_secret, setup_logging
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.server.run import start
from reconciler.testing import ApiDouble
from reconciler.testing.forge_double import ForgeDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.gitutil import git, isolate_git, make_remote, preserved_logging, push_commit, serve_git_http, ssh_keypair
from tests.repos import BASE, VM


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def post(url: str, event: str, payload: dict[str, Any], delivery: str, secret: str) -> tuple[int, str]:
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def pr_payload(number: int, head: str, url: str) -> dict[str, Any]:
    return {
        "action": "opened",
        "number": number,
        "pull_request": {
            "head": {"sha": head, "ref": f"pr-{number}", "repo": {"clone_url": url}},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": "ops/config"},
    }


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_no_canary_leaks_anywhere(as_json: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    tag = secrets.token_hex(4)
    git_token, wrong_token = f"canarygit{tag}", f"canarywrong{tag}"
    webhook_secret, forge_token = f"canary-webhook-{tag}", f"canary-forge-{tag}"
    key, _pub = ssh_keypair(tmp_path / "keys", "deploy")
    key_lines = [ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")]
    assert key_lines
    canaries = {
        "git token": git_token,
        "wrong git token": wrong_token,
        "basic auth of the git token": base64.b64encode(f"x-access-token:{git_token}".encode()).decode(),
        "webhook secret": webhook_secret,
        "forge token": forge_token,
        **{f"ssh key line {i}": line for i, line in enumerate(key_lines)},
    }
    register_secret(webhook_secret)  # what `virtnet run` does with --config webhook.secretFile
    register_secret(forge_token)  # ... and with the forge token

    root = tmp_path / "srv"
    root.mkdir()
    remote = make_remote(root, dict(BASE), name="cfg.git")
    token_file = tmp_path / "git-token"
    token_file.write_text(git_token + "\n")
    texts: dict[str, str] = {}  # everything that left the process, by where it went
    stream = io.StringIO()

    with (
        preserved_logging(),
        serve_git_http(root, git_token) as srv,
        ForgeDouble(token=forge_token) as forge,
        ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api,
    ):
        setup_logging("DEBUG", json=as_json, stream=stream)
        seed_hyperconverged(api.store)
        url = f"{srv.url}/cfg.git"
        settings = Settings(
            repo_url=url,
            auth=TokenAuth(token_file=token_file),
            cache_root=tmp_path / "cache",
            apply=ApplyOptions(poll=0.02, timeout=20),
        )
        ctl = Controller(settings, Kube(api.api_client()), Metrics(), GitHubForge(forge.url, forge_token))
        runtime = start(ctl, interval=3600, http_port=0, webhook_secret=webhook_secret)
        try:
            wait_for(lambda: ctl.last is not None)
            assert ctl.last is not None and ctl.last.ok, ctl.last and ctl.last.message
            assert runtime.server is not None
            hook = f"http://127.0.0.1:{runtime.server.port}/webhooks/github"

            # a push webhook: the new commit is applied and a status commit written
            new = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:42")}, "change MAC")
            status, body = post(hook, "push", {"ref": "refs/heads/main", "after": new,
                                               "repository": {"clone_url": url}}, "push-1", webhook_secret)  # fmt: skip
            texts["webhook response (push)"] = body
            assert status == 202
            wait_for(lambda: ctl.last is not None and ctl.last.revision == new)

            # pull requests: a good one, and one whose validation problem quotes the token
            good = push_commit(remote, {"vms/web.yaml": VM.replace("00:00:10", "00:00:43")}, "pr", branch="pr-1")
            pasted = VM.replace("network: vlan100", f"network: {git_token}")
            leaky = push_commit(remote, {**BASE, "vms/web.yaml": pasted}, "pasted", branch="pr-2")
            for number, head in ((1, good), (2, leaky)):
                status, body = post(hook, "pull_request", pr_payload(number, head, url), f"pr-{number}", webhook_secret)
                texts[f"webhook response (pr {number})"] = body
                assert status == 202
                wait_for(lambda h=head: len(forge.statuses("ops/config", h)) == 1)
            # a forged delivery, answered and logged
            status, body = post(hook, "push", {"ref": "refs/heads/main"}, "forged", forge_token)
            assert status == 401
            texts["webhook response (forged)"] = body
            with urllib.request.urlopen(f"http://127.0.0.1:{runtime.server.port}/metrics", timeout=10) as r:
                texts["/metrics"] = r.read().decode()
        finally:
            runtime.stop()

        # a fetch with the wrong token: fails, says why, without the token
        token_file.write_text(wrong_token + "\n")
        failed = ctl.reconcile("poll")
        assert failed.failed == "SourceFailed" and "authentication failed" in failed.message
        token_file.write_text(git_token + "\n")

        # a commit whose validation problem quotes the token: refused, and the status says why
        push_commit(remote, {"vms/web.yaml": pasted}, "pasted the token")
        invalid = ctl.reconcile("poll")
        assert invalid.failed == "ValidationFailed" and git_token in invalid.message  # the raw outcome has it...

        # an ssh remote with the private key: a real ssh run that fails (nothing listens there)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        with pytest.raises(SourceError) as ssh_error:
            GitSource("ssh://git@127.0.0.1:9/cfg.git", tmp_path / "ssh-cache",
                      auth=SSHAuth(key_file=key, known_hosts=known_hosts), timeout=20).fetch()  # fmt: skip
        texts["ssh fetch exception"] = str(ssh_error.value)
        assert "remote unreachable" in str(ssh_error.value)

        texts["metrics after"] = ctl.metrics.render().decode()
        texts["forge comments"] = json.dumps([forge.comments("ops/config", n) for n in (1, 2)])
        texts["forge statuses"] = json.dumps([forge.statuses("ops/config", h) for h in (good, leaky)])
        texts["forge requests"] = json.dumps([(c.path, c.query, c.json, c.headers) for c in forge.calls])
        texts["cluster events"] = json.dumps(api.store.objects("v1", "Event"))
        texts["srv requests"] = "\n".join(srv.requests)
    texts["logs"] = stream.getvalue()
    texts["status branch (git log -p)"] = git("log", "-p", "refs/heads/virtnet-status", cwd=remote)
    texts["cache git configs"] = "\n".join(p.read_text() for p in (tmp_path / "cache").rglob("config"))

    # the loop really happened and said what it did
    assert "authentication failed" in texts["logs"] and "ValidationFailed" in texts["logs"]
    assert len(texts["logs"].splitlines()) > 50
    if as_json:
        assert all(json.loads(line)["level"] for line in texts["logs"].splitlines() if line.strip())
    comments = json.loads(texts["forge comments"])
    assert len(comments[0]) == 1 and len(comments[1]) == 1
    assert "ValidationFailed" in texts["status branch (git log -p)"]
    assert "***" in texts["status branch (git log -p)"]  # the pasted token was masked, not dropped silently
    texts["SourceFailed exception text"] = failed.message

    leaks = {(where, name) for where, text in texts.items() for name, value in canaries.items() if value in text}
    assert leaks == set()
