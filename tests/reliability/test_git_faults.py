"""Git faults through the Controller loop: unreachable remotes, auth failures, force-pushes, corrupted
caches, and status push races between three clusters sharing one repository.

Every case runs the real loop (``Controller.reconcile``: fetch → render → plan → apply → status commit)
against the API double and real git remotes (a bare repository over ``file://`` or a token-protected
smart-HTTP server on 127.0.0.1). A fault either ends in ``SourceFailed`` with zero API writes and the
previous cluster state untouched, or is recovered from; the next healthy fetch always reconciles.

"Transient" faults are active only while the source is fetched (the outage ends before the status push,
so the status commit can say why); "sustained" ones last the whole reconcile (the status cannot be
written either: its branch must then stay exactly as it was).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from reconciler.clients.kube import Kube
from reconciler.clients.source import TokenAuth
from reconciler.clients.status import read_status
from reconciler.engine.apply import ApplyOptions
from reconciler.labels import AGENT_SELECTOR, DRIFT
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.gitutil import GitHttpServer, _git_http_app, git, isolate_git, make_remote, push_commit
from tests.repos import BASE, CLUSTER, VM

TOKEN = "git-faults-token-0d9a3c"
MAC_OLD, MAC_NEW = "02:00:00:00:00:10", "02:00:00:00:00:42"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_git(monkeypatch, tmp_path / "home")


def new_api() -> ApiDouble:
    api = ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)).start()
    seed_hyperconverged(api.store)
    return api


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    double = new_api()
    try:
        yield double
    finally:
        double.stop()


def controller_for(url: str, api: ApiDouble, cache: Path, **kw: Any) -> Controller:
    settings = Settings(repo_url=url, cache_root=cache, apply=ApplyOptions(poll=0.02, timeout=20), **kw)
    return Controller(settings, Kube(api.api_client()), Metrics())


def vm_mac(api: ApiDouble) -> str:
    vm = api.store.find("kubevirt.io/v1", "VirtualMachine", "web-1", "apps")
    assert vm is not None
    interfaces = vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
    return str(next(i["macAddress"] for i in interfaces if i.get("name") != "default"))


def status_tip(remote: Path) -> str:
    return git("rev-parse", "refs/heads/virtnet-status", cwd=remote)


def status_doc(url: str, cache: Path, cluster: str = "test", auth: TokenAuth | None = None) -> dict[str, Any]:
    return dict(json.loads(read_status(url, cluster, auth=auth, cache_root=cache / "reader")["status.json"]))


# ------------------------------------------------------------------------------ a git server that can go away


@dataclass
class GitHttp:
    """The token-protected smart-HTTP server of ``tests.gitutil``, restartable on the same port."""

    root: Path
    token: str
    port: int = 0
    seen: GitHttpServer = field(default_factory=lambda: GitHttpServer(url=""))
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1", self.port, _git_http_app(self.root, self.token, self.seen), threaded=True
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
        self._server = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@dataclass
class Fault:
    """A fault to switch on and off around a fetch, and what the failure message must say."""

    url: str
    auth: TokenAuth | None
    on: Callable[[], None]
    off: Callable[[], None]
    says: str


@pytest.fixture
def fault_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Fault]]:
    kind = request.param
    root = tmp_path / "srv"
    root.mkdir()
    remote = make_remote(root, dict(BASE), name="cfg.git")
    if kind == "vanished":
        moved = root / "cfg.git.moved"
        yield (
            remote,
            Fault(
                remote.as_uri(), None, lambda: remote.rename(moved), lambda: moved.rename(remote), "remote unreachable"
            ),
        )
        return
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = GitHttp(root, TOKEN)
    server.start()
    try:
        if kind == "refused":
            yield remote, Fault(server.url("cfg.git"), TokenAuth(token_file=token_file), server.stop, server.start,
                                "remote unreachable")  # fmt: skip
        else:  # the token in the file is wrong (rotated on the server, not yet here)
            yield (
                remote,
                Fault(
                    server.url("cfg.git"),
                    TokenAuth(token_file=token_file),
                    lambda: token_file.write_text("git-faults-wrong-token-77\n"),
                    lambda: token_file.write_text(TOKEN + "\n"),
                    "authentication failed",
                ),
            )
    finally:
        server.stop()


@contextlib.contextmanager
def during_fetch(ctl: Controller, fault: Fault) -> Iterator[None]:
    """The fault is on exactly while ``ctl`` fetches its source (it is over before the status push)."""
    real = ctl.source.fetch

    def fetch() -> Any:
        fault.on()
        try:
            return real()
        finally:
            fault.off()

    ctl.source.fetch = fetch  # type: ignore[method-assign]
    try:
        yield
    finally:
        del ctl.source.fetch


FAULTS = ["vanished", "refused", "wrong-token"]


@pytest.mark.parametrize("fault_setup", FAULTS, indirect=True)
@pytest.mark.parametrize("span", ["transient", "sustained"])
def test_unreachable_or_unauthorized_remote_changes_nothing_then_recovers(
    fault_setup: tuple[Path, Fault], span: str, api: ApiDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote, fault = fault_setup
    cache = tmp_path / "cache"
    ctl = controller_for(fault.url, api, cache, auth=fault.auth)
    first = ctl.reconcile("poll")
    assert first.ok and first.changes is not None and vm_mac(api) == MAC_OLD
    tip_before = status_tip(remote)

    # a new commit is waiting, but the remote fails while we fetch it
    new_sha = push_commit(remote, {"vms/web.yaml": VM.replace(MAC_OLD, MAC_NEW)}, "change MAC")
    api.reset_counts()
    caplog.set_level(logging.WARNING)
    if span == "transient":
        with during_fetch(ctl, fault):
            failed = ctl.reconcile("poll")
    else:
        fault.on()
        try:
            failed = ctl.reconcile("poll")
        finally:
            fault.off()
    assert failed.failed == "SourceFailed" and fault.says in failed.message, failed.message
    assert api.writes() == 0
    assert vm_mac(api) == MAC_OLD  # the previous state stays
    if span == "transient":  # the status remote was back for the push: the status says why
        doc = status_doc(fault.url, tmp_path, auth=fault.auth)
        assert doc["result"] == "SourceFailed" and fault.says in doc["message"]
        assert status_tip(remote) != tip_before
    else:  # the status could not be written either: its branch is exactly as before, and the log says so
        assert status_tip(remote) == tip_before
        assert "status commit failed" in caplog.text
        assert status_doc(fault.url, tmp_path, auth=fault.auth)["revision"] == first.revision

    # the next healthy fetch reconciles the waiting commit, and the status says so
    api.reset_counts()
    healed = ctl.reconcile("poll")
    assert healed.ok and healed.revision == new_sha and healed.changes is not None
    assert vm_mac(api) == MAC_NEW and api.writes() >= 1
    doc = status_doc(fault.url, tmp_path, auth=fault.auth)
    assert (doc["result"], doc["revision"], doc["message"]) == ("InSync", new_sha, "")


def test_force_pushed_history_is_followed_applied_and_reported(
    api: ApiDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = make_remote(tmp_path, dict(BASE))
    push_commit(remote, {"vms/web.yaml": VM.replace("192.168.100.10", "192.168.100.11")}, "second")
    ctl = controller_for(remote.as_uri(), api, tmp_path / "cache")
    before = ctl.reconcile("poll")
    assert before.ok
    status_before = status_tip(remote)

    caplog.set_level(logging.WARNING)
    rewritten = push_commit(remote, {**BASE, "vms/web.yaml": VM.replace(MAC_OLD, MAC_NEW)}, "rewrite", rewrite=True)
    assert git("rev-list", "--count", rewritten, cwd=remote) == "1"  # the old history is gone from main
    api.reset_counts()
    after = ctl.reconcile("poll")
    assert after.ok and after.revision == rewritten and after.changes is not None and api.writes() >= 1
    assert vm_mac(api) == MAC_NEW
    assert f"was rewritten: {before.revision[:12]} is not an ancestor of {rewritten[:12]}" in caplog.text  # type: ignore[index]
    doc = status_doc(remote.as_uri(), tmp_path)
    assert (doc["result"], doc["revision"]) == ("InSync", rewritten)
    # the status branch itself is never rewritten: the new status commit descends from the old one
    git("merge-base", "--is-ancestor", status_before, status_tip(remote), cwd=remote)
    assert "history was rewritten (force-push)" in git("log", "-1", "--format=%B", "virtnet-status", cwd=remote)


def _garble(repo: Path, damage: str) -> None:
    if damage == "head":
        (repo / "HEAD").write_text("garbage\x00\n")
        return
    for d in (repo / "objects").iterdir():
        if d.name not in ("info", "pack"):
            for obj in d.iterdir():
                obj.chmod(0o644)
                obj.write_bytes(b"not a zlib stream")
    for p in (repo / "objects" / "pack").iterdir():
        p.chmod(0o644)
        p.write_bytes(b"PACK garbled")


@pytest.mark.parametrize("damage", ["head", "objects"])
def test_corrupted_caches_between_reconciles_are_recovered(
    damage: str, api: ApiDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = make_remote(tmp_path, dict(BASE))
    cache = tmp_path / "cache"
    ctl = controller_for(remote.as_uri(), api, cache)
    assert ctl.reconcile("poll").ok
    status_before = status_tip(remote)
    (status_cache,) = (cache / "status").glob("*/repo.git")
    for repo in (ctl.source.repo_dir, status_cache):
        _garble(repo, damage)

    caplog.set_level(logging.WARNING)
    new_sha = push_commit(remote, {"vms/web.yaml": VM.replace(MAC_OLD, MAC_NEW)}, "change MAC")
    api.reset_counts()
    outcome = ctl.reconcile("poll")
    assert outcome.ok and outcome.revision == new_sha, outcome.message
    assert vm_mac(api) == MAC_NEW
    assert "git cache" in caplog.text and "re-cloning" in caplog.text
    assert "status cache" in caplog.text
    assert git("rev-parse", f"{status_tip(remote)}^", cwd=remote) == status_before  # no status history lost
    assert status_doc(remote.as_uri(), tmp_path)["revision"] == new_sha
    git("fsck", "--connectivity-only", cwd=ctl.source.repo_dir)
    # and the recovered cache keeps working: nothing new, nothing written
    api.reset_counts()
    again = ctl.reconcile("poll")
    assert again.ok and again.changes is None and api.writes() == 0


# ------------------------------------------------------------------------------ status push races

CLUSTERS = ("east", "west", "north")


def _drift(api: ApiDouble, cycle: int) -> None:
    """What the node agent would publish: a drift report that differs every cycle (so does the status)."""
    report = {"drift": [{"interface": "br1", "field": "mtu", "desired": 1500, "actual": 1000 + cycle}]}
    key, _, value = AGENT_SELECTOR.partition("=")
    api.store.put(
        {
            "apiVersion": "nmstate.io/v1beta1",
            "kind": "NodeNetworkState",
            "metadata": {
                "name": "worker-0",
                "labels": {key: value},
                "annotations": {DRIFT: json.dumps(report)},
            },
        }
    )


def _race(tmp_path: Path, cycles: int) -> None:
    remote = make_remote(tmp_path, {f"{c}/cluster.yaml": CLUSTER.replace("name: test", f"name: {c}") for c in CLUSTERS})
    url = remote.as_uri()
    apis = [new_api() for _ in CLUSTERS]
    commits: dict[str, list[str]] = {c: [] for c in CLUSTERS}
    errors: list[BaseException] = []
    try:
        # three clusters = three processes: own cache, own API server, one shared config repo
        ctls = [controller_for(url, a, tmp_path / f"cache-{c}", cluster=c) for c, a in zip(CLUSTERS, apis, strict=True)]
        start = threading.Barrier(len(CLUSTERS))

        def run(ctl: Controller, api: ApiDouble, cluster: str) -> None:
            try:
                start.wait()
                for i in range(cycles):
                    _drift(api, i)
                    outcome = ctl.reconcile(f"cycle {i}")
                    assert outcome.ok, outcome.message
                    assert ctl.last_status_commit is not None
                    commits[cluster].append(ctl.last_status_commit)
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=run, args=args) for args in zip(ctls, apis, CLUSTERS, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for a in apis:
            a.stop()
    assert errors == []

    log = git("log", "--format=%H %s", "virtnet-status", cwd=remote).splitlines()
    assert git("rev-list", "--merges", "--count", "virtnet-status", cwd=remote) == "0"
    in_log = {line.split()[0] for line in log}
    for cluster in CLUSTERS:
        # every cycle changed the status, so every cycle made its own commit, and every one is in the log
        assert len(set(commits[cluster])) == cycles
        assert set(commits[cluster]) <= in_log
        doc = json.loads(read_status(url, cluster, cache_root=tmp_path / "reader")["status.json"])
        assert doc["cluster"] == cluster and doc["result"] == "InSync"
        assert doc["nodeDrift"][0]["actual"] == 1000 + cycles - 1  # the final tree has its last doc
    assert len(log) == len(CLUSTERS) * cycles  # nothing else, nothing lost


def test_status_push_races_lose_nothing(tmp_path: Path) -> None:
    _race(tmp_path, cycles=6)


@pytest.mark.soak
def test_status_push_races_lose_nothing_soak(tmp_path: Path) -> None:
    _race(tmp_path, cycles=50)


def test_fault_server_refuses_while_stopped(tmp_path: Path) -> None:
    """The 'refused' fault really refuses connections (and the port is served again after a restart)."""
    root = tmp_path / "srv"
    root.mkdir()
    make_remote(root, {"a": "1"}, name="cfg.git")
    server = GitHttp(root, TOKEN)
    server.start()
    port = server.port
    server.stop()
    import socket

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.start()
    try:
        assert server.port == port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        server.stop()
    shutil.rmtree(root)
