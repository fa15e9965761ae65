"""Issue #14, class 15: a rollback undoes only what its own pass created, and one agent writes per node.

* the create reply names the new link's ifindex; rollback deletes by that index, so a bridge that someone
  else creates between our diff and our create (our create then fails with "File exists") survives, while
  the bridge this pass did create is removed;
* the node's writer lock (``reconciler.agent.nodelock``): a second agent on the node refuses (or waits for)
  the pass of the first, in another thread or another process, and a killed holder frees it at once.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.agent import steps as d
from reconciler.agent.enforce import enforce
from reconciler.agent.netlink import Netlink
from reconciler.agent.nodelock import LockBusy, NodeLock, lock_path
from reconciler.agent.publish import condition_of
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.agent.state import current_state
from reconciler.errors import AgentError
from tests.agent.conftest import Topo, ip, ip_json, ip_snapshot
from tests.agent.test_enforce import nncp

ROOT = Path(__file__).resolve().parents[2]

TWO_BRIDGES = [
    {"name": "br1", "type": "linux-bridge", "bridge": {"port": [{"name": "ve1"}]}},
    {"name": "br2", "type": "linux-bridge", "bridge": {"port": [{"name": "ve2"}]}},
]


def ifindex(ns: str, name: str) -> int:
    return int(ip_json(ns, "link", "show", "dev", name)[0]["ifindex"])


# --------------------------------------------------------------------------- rollback: only our creations
@pytest.mark.netns
def test_create_returns_the_new_links_ifindex_and_delete_created_checks_it(scratch_ns: str) -> None:
    with Netlink(scratch_ns) as nl:
        br = nl.create_link("br5", "linux-bridge")
        va = nl.create_link("va", "veth", peer="vb")
        assert br == ifindex(scratch_ns, "br5") and va == ifindex(scratch_ns, "va")
        assert nl.delete_created(br, "br-other") is False  # the index is not named so: not ours, untouched
        assert nl.delete_created(br, "br5") is True
        assert nl.delete_created(br, "br5") is False  # gone already
    assert {link["ifname"] for link in ip_json(scratch_ns, "link", "show")} == {"lo", "va", "vb"}


@pytest.mark.netns
def test_bridge_made_by_someone_else_between_diff_and_create_survives_the_rollback(topo: Topo) -> None:
    """br1 is ours (created, then rolled back); br2 appears from "another agent" right before our create
    of br2, which fails with File exists: the rollback deletes br1 and leaves the other br2 as it was."""
    before = ip_snapshot(topo.node)
    foreign: dict[str, Any] = {}

    def someone_else(what: str) -> None:
        if what.startswith("link add br2") and not foreign:
            ip("link", "add", "br2", "type", "bridge", ns=topo.node)
            ip("link", "set", "ve3", "master", "br2", ns=topo.node)
            ip("link", "set", "br2", "up", ns=topo.node)
            foreign["index"] = ifindex(topo.node, "br2")

    with Netlink(topo.node, before_write=someone_else) as nl:
        steps = d.diff(TWO_BRIDGES, current_state(nl.observe()))
        assert [(s.op, s.target) for s in steps[:2]] == [(d.Op.CREATE_LINK, "br1"), (d.Op.CREATE_LINK, "br2")]
        res = enforce(nl, steps, probes=[], prechecks=())
    assert not res.ok and res.rolled_back
    assert "step 2/" in res.message and "link add br2 type bridge failed: File exists" in res.message
    assert res.rollback_problems == []  # the other agent's br2 is not "ours, still there"
    after = ip_snapshot(topo.node)
    assert "br1" not in after["links"]  # ours: rolled back
    assert ifindex(topo.node, "br2") == foreign["index"]  # theirs: the very same link
    assert after["links"]["br2"]["up"] and after["links"]["ve3"]["master"] == "br2"
    expected = {k: v for k, v in after["links"].items() if k not in ("br2", "ve3")}
    assert expected == {k: v for k, v in before["links"].items() if k != "ve3"}
    assert after["routes"] == before["routes"]


# --------------------------------------------------------------------------- one writer per node
def test_node_lock_refuses_a_second_holder_then_lets_it_in(tmp_path: Path) -> None:
    first = NodeLock(str(tmp_path), "node-a")
    first.acquire()
    assert "pid" in Path(lock_path(str(tmp_path), "node-a")).read_text()
    second = NodeLock(str(tmp_path), "node-a")
    with pytest.raises(LockBusy, match=r"another agent is enforcing on node node-a \(pid \d+ since "):
        second.acquire(wait=0)
    with NodeLock(str(tmp_path), "node-b") as other:  # another node's lock is another file
        assert other.held
    first.release()
    second.acquire(wait=0)
    assert second.held
    second.release()


def test_node_lock_waits_up_to_its_deadline(tmp_path: Path) -> None:
    holder = NodeLock(str(tmp_path), "n")
    holder.acquire()
    t = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    waiter = NodeLock(str(tmp_path), "n", clock=lambda: t[0], sleep=sleep, poll=1.0)
    with pytest.raises(LockBusy, match="waited 3s"):
        waiter.acquire(wait=3)
    assert slept == [1.0, 1.0, 1.0]
    holder.release()


def test_an_unwritable_lock_directory_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AgentError, match=r"cannot open the node lock .*shares"):
        NodeLock(str(blocker / "locks"), "n").acquire()


def _cfg(topo: Topo, lock_dir: str, wait: float = 0.0) -> AgentConfig:
    return AgentConfig(node="node-a", mode="enforce", netns=topo.node, probes=[], lock_dir=lock_dir, lock_wait=wait)


@pytest.mark.netns
def test_second_agent_on_the_node_refuses_while_the_first_is_writing(topo: Topo, tmp_path: Path) -> None:
    policy = nncp("bridges", TWO_BRIDGES)
    writing, second_done = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def pause(what: str) -> None:
        if not writing.is_set():
            writing.set()
            assert second_done.wait(30)

    def first() -> None:
        with Netlink(topo.node, before_write=pause) as nl:
            results["first"] = run_once(_cfg(topo, str(tmp_path)), nl, policies=[policy], node_labels={})

    t = threading.Thread(target=first)
    t.start()
    try:
        assert writing.wait(30)
        with Netlink(topo.node) as nl:
            results["second"] = run_once(_cfg(topo, str(tmp_path)), nl, policies=[policy], node_labels={})
            assert nl.writes == 0
    finally:
        second_done.set()
        t.join(60)
    second = results["second"]
    assert second.error and "another agent is enforcing on node node-a" in second.error
    assert (second.writes, second.nnces, second.outcomes) == (0, [], {})
    first_res = results["first"]
    assert first_res.error is None and first_res.outcomes["bridges"].ok, first_res.outcomes["bridges"].message
    links = {link["ifname"]: link for link in ip_json(topo.node, "link", "show")}
    assert links["ve1"]["master"] == "br1" and links["ve2"]["master"] == "br2"


@pytest.mark.netns
def test_second_agent_that_waits_runs_after_the_first_and_finds_nothing_to_do(topo: Topo, tmp_path: Path) -> None:
    policy = nncp("bridges", TWO_BRIDGES)
    writing, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def pause(what: str) -> None:
        if not writing.is_set():
            writing.set()
            assert release.wait(30)

    def run(name: str, hook: Any, wait: float) -> None:
        with Netlink(topo.node, before_write=hook) as nl:
            results[name] = run_once(_cfg(topo, str(tmp_path), wait), nl, policies=[policy], node_labels={})

    first = threading.Thread(target=run, args=("first", pause, 0.0))
    first.start()
    assert writing.wait(30)
    second = threading.Thread(target=run, args=("second", None, 30.0))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the lock, not writing
    release.set()
    first.join(60)
    second.join(60)
    assert results["first"].outcomes["bridges"].ok
    assert results["second"].error is None and results["second"].writes == 0
    assert condition_of(results["second"].nnces[0]) == "Available"


_HOLD = """
import sys
from reconciler.agent.nodelock import NodeLock
lock = NodeLock(sys.argv[1], "node-a", sys.argv[2])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.netns
def test_lock_held_by_another_process_blocks_and_its_death_frees_it(topo: Topo, tmp_path: Path) -> None:
    policy = nncp("bridges", TWO_BRIDGES[:1])
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path), topo.node],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with Netlink(topo.node) as nl:
            busy = run_once(_cfg(topo, str(tmp_path)), nl, policies=[policy], node_labels={})
        assert busy.error and f"pid {proc.pid}" in busy.error and busy.writes == 0
        assert "br1" not in {link["ifname"] for link in ip_json(topo.node, "link", "show")}
    finally:
        proc.kill()  # SIGKILL: no cleanup runs, the kernel drops the flock
        proc.wait(10)
    with Netlink(topo.node) as nl:
        res = run_once(_cfg(topo, str(tmp_path)), nl, policies=[policy], node_labels={})
    assert res.error is None and res.outcomes["bridges"].ok
