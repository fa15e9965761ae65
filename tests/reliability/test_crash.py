"""SIGKILL the reconciler mid-run (a real subprocess), restart it, and check nothing is lost or half-done.

The API double runs in the test process; its fault hook counts write requests and, once k were served, holds
the next one until the test has SIGKILLed the reconciler (that in-flight write is then dropped, so exactly k
writes landed). The restarted run must converge (the plan is empty afterwards), and
a file removed between the two runs must have its already-created objects pruned. The GitOps-loop version
kills a Controller process during apply, during Events and in the middle of its status push (a pre-receive
hook on the remote holds the push), and checks the status branch: only whole commits, well-formed JSON, in
order, and a clean ``git fsck``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import DOUBLE, REAL, Backend, backend_for, eventually
from gitutil import git, isolate_git, make_remote, push_commit

from reconciler.clients.kube import Kube
from reconciler.objects import obj_id
from reconciler.pipeline import reconcile
from reconciler.testing import ApiDouble
from reconciler.testing.faults import Fault, RequestInfo
from reconciler.testing.nodes import seed_hyperconverged
from reliability import bigrepo

SHAPE = bigrepo.Shape(vms=6, networks=2, namespaces=2)
EXTRA = """\
apiVersion: virtnet.io/v1alpha1
kind: VM
metadata:
  name: extra
  namespace: ns-00
spec:
  boot:
    containerDisk: quay.io/containerdisks/fedora:40
  expose:
    - port: 22
"""
EXTRA_IDS = {"kubevirt.io/VirtualMachine/ns-00/extra", "/Service/ns-00/extra-svc"}
ROOT = Path(__file__).resolve().parents[2]
LOOP_CHILD = """
import sys
from pathlib import Path
from reconciler.engine.apply import ApplyOptions
from reconciler.server.controller import Controller, Settings
from reconciler.clients.kube import Kube
url, cache, kubeconfig = sys.argv[1:4]
settings = Settings(repo_url=url, cache_root=Path(cache), apply=ApplyOptions(poll=0.05, timeout=20))
outcome = Controller(settings, Kube.from_kubeconfig(kubeconfig)).reconcile("poll")
print(outcome.failed or "ok", outcome.message)
"""


class KillAt:
    """Fault hook: once ``k`` writes were served, holds every later one until released, then drops them.

    The held requests are the ones in flight when the reconciler dies (several: a wave's writes go out in
    parallel); dropping them makes "k writes landed" exact (whether a real apiserver would still serve one
    depends on how much of its body it had read).
    """

    def __init__(self, k: int) -> None:
        self.k, self.seen = k, 0
        self.lock = threading.Lock()
        self.reached, self.release = threading.Event(), threading.Event()

    def __call__(self, info: RequestInfo) -> Fault | None:
        if not info.is_write:
            return None
        with self.lock:
            self.seen += 1
            late = self.seen > self.k
        if not late:
            return None
        self.reached.set()
        self.release.wait(60)
        return Fault("drop")


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_when(proc: subprocess.Popen[bytes], event: threading.Event, what: str, release: threading.Event) -> None:
    """SIGKILL ``proc``'s whole process group (it and its git children) once ``event`` is set."""
    try:
        if not event.wait(90):
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
            raise AssertionError(f"{what} was never reached (exit {proc.returncode}): {out[-2000:]}")
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        release.set()
        if proc.stdout:
            proc.stdout.close()


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    out = proc.communicate(timeout=120)[0].decode(errors="replace")
    return proc.returncode, out


@pytest.fixture
def api() -> Iterator[ApiDouble]:
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=bigrepo.nodes(SHAPE)) as double:
        seed_hyperconverged(double.store)
        yield double


def in_sync(root: Path, kube: Kube) -> tuple[bool, set[str]]:
    try:
        outcome = reconcile(root, kube, apply=False)
    finally:
        kube.api.close()
    assert outcome.ok and outcome.plan is not None, outcome.message
    owned = {obj_id(o) for o in outcome.live.owned.values()} if outcome.live else set()
    return not outcome.plan.has_changes, owned


#: kill points: after the first write (a Namespace), inside the VMs of wave 2, two writes before the end (26 in all)
KILL_AT = [1, 14, 24]
#: the CLI killed after k writes: every kill point on the double, the middle one on a real server too
CLI_KILLS = [pytest.param(DOUBLE, k, id=f"double-{k}") for k in KILL_AT] + [
    pytest.param(REAL, 14, id="real-14", marks=pytest.mark.realapi)
]
#: the CLI, SIGKILLing itself just before its write number k+1 leaves (a real server has no hook to hold it)
SELF_KILLING_CLI = """
import os, signal, sys
from reconciler.clients.kube import Kube
from reconciler.cli import main
limit, written, send = int(os.environ["VIRTNET_TEST_KILL_AFTER"]), [0], Kube.request
def request(self, method, path, query=None, body=None, content_type="application/json"):
    if method != "GET" and not (query or {}).get("dryRun"):
        if written[0] == limit:
            os.kill(os.getpid(), signal.SIGKILL)
        written[0] += 1
    return send(self, method, path, query, body, content_type)
Kube.request = request
sys.argv[0] = "virtnet"
main()
"""


def kill_after(backend: Backend, k: int, cmd: tuple[str, ...]) -> None:
    """Run ``virtnet`` ``cmd`` and SIGKILL it once exactly ``k`` writes have landed."""
    if backend.double is not None:  # the double holds write k+1 in flight until the kill, then drops it
        hook = KillAt(k)
        backend.double.faults = hook
        kill_when(spawn("-m", "reconciler.cli", *cmd), hook.reached, f"write {k}", hook.release)
        backend.double.faults = None
        # write k+1 arriving does not mean writes 1..k were all served: some may still be in the double's
        # threads (parallel writes), and the server finishes what it accepted after the client died
        double = backend.double
        assert eventually(lambda: double.writes() >= k, timeout=30) and double.writes() == k
        return
    # one write in flight: with the default parallelism the writes counted before the kill would still be on
    # the wire, and "k writes landed" would only be approximate; serial, write k has returned when k+1 starts
    proc = spawn("-c", SELF_KILLING_CLI, *cmd, "--parallel", "1", env={"VIRTNET_TEST_KILL_AFTER": str(k)})
    code, out = finish(proc)
    assert code == -signal.SIGKILL, f"not killed after write {k} (exit {code}): {out[-2000:]}"


@pytest.mark.parametrize(("backend_name", "k"), CLI_KILLS)
def test_cli_killed_after_k_writes_then_restarted(
    backend_name: str, k: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with backend_for(request, backend_name, tmp_path, nodes=bigrepo.nodes(SHAPE)) as backend:
        root = bigrepo.write(tmp_path / "repo", SHAPE)
        (root / "vms" / "extra.yaml").write_text(EXTRA)
        cmd = ("apply", str(root), "--kubeconfig", str(backend.kubeconfig), "--timeout", "20")
        kill_after(backend, k, cmd)

        (root / "vms" / "extra.yaml").unlink()  # a file leaves the repository while the reconciler is down
        code, out = finish(spawn("-m", "reconciler.cli", *cmd))
        assert code == 0, out
        if backend.real:  # the prune's Foreground deletes finish when the garbage collector gets to them
            backend.quiesce()
        clean, owned = in_sync(root, backend.client())
        assert clean
        assert not owned & EXTRA_IDS  # whatever the killed run created for it was pruned
        print(f"\n{backend.name}, kill after write {k}: in sync, {len(owned)} owned objects")


# double-only: the kill points are set by the double's request hook and a push held by a git hook; the CLI test
# above kills and restarts against a real server too
def test_status_commits_survive_kills_of_the_loop(
    api: ApiDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    files = {str(p.relative_to(tmp_path / "src")): p.read_text() for p in _generated(tmp_path / "src")}
    remote = make_remote(tmp_path, files)
    first = git("rev-parse", "main", cwd=remote)
    hold, reached = tmp_path / "hold-push", tmp_path / "push-reached"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f'#!/bin/sh\nif [ -e "{hold}" ]; then touch "{reached}"; sleep 60; fi\ncat >/dev/null\n')
    hook.chmod(0o755)
    config = api.kubeconfig(tmp_path / "kubeconfig")
    cmd = ("-c", LOOP_CHILD, remote.as_uri(), str(tmp_path / "cache"), str(config))

    for k in (3, 30):  # during apply; during the Events after it (the apply makes 24 writes)
        gate = KillAt(k)
        api.faults = gate
        kill_when(spawn(*cmd), gate.reached, f"write {k}", gate.release)
        api.faults = None
    assert _status_log(remote) == []

    hold.touch()  # now a run that gets as far as its status push dies in the middle of it
    pushed = threading.Event()
    watcher = threading.Thread(target=_wait_file, args=(reached, pushed), daemon=True)
    watcher.start()
    kill_when(spawn(*cmd), pushed, "the status push", threading.Event())
    hold.unlink()
    assert _status_log(remote) == []  # the receive never finished: no ref, no half commit

    code, out = finish(spawn(*cmd))
    assert code == 0 and out.startswith("ok"), out
    second = push_commit(remote, {"vms/ns-00.yaml": files["vms/ns-00.yaml"].replace("cpu: 1", "cpu: 3")}, "cpu")
    code, out = finish(spawn(*cmd))
    assert code == 0 and out.startswith("ok"), out

    log = _status_log(remote)
    assert [doc["revision"] for _, doc in log] == [first, second]
    assert all(doc["result"] == "InSync" and doc["cluster"] == bigrepo.CLUSTER for _, doc in log)
    assert all({o["state"] for o in doc["objects"]} == {"in-sync"} for _, doc in log)
    git("fsck", "--strict", cwd=remote)
    # the source copy still has the old cpu: a real diff
    assert in_sync(tmp_path / "src", Kube(api.api_client()))[0] is False
    print(f"\nloop: 3 kills (apply, events, status push), then {len(log)} whole status commits")


def _generated(root: Path) -> list[Path]:
    bigrepo.write(root, SHAPE)
    return sorted(p for p in root.rglob("*.yaml"))


def _wait_file(path: Path, done: threading.Event) -> None:
    deadline = time.monotonic() + 90
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if path.exists():
        done.set()


def _status_log(remote: Path) -> list[tuple[str, dict[str, object]]]:
    """(commit, status.json) of every commit on the status branch, oldest first; [] when it does not exist."""
    try:
        shas = git("rev-list", "--reverse", "virtnet-status", cwd=remote).split()
    except RuntimeError:
        return []
    out = []
    for sha in shas:
        assert git("cat-file", "-t", sha, cwd=remote) == "commit"
        doc = json.loads(git("show", f"{sha}:clusters/{bigrepo.CLUSTER}/status.json", cwd=remote))
        out.append((sha, doc))
    return out
