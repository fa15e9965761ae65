"""Node safety: ten distinct failures injected during ``enforce`` in throwaway namespaces. Each must end
in the exact prior state (independent ``ip -j`` snapshots) or, for the agent process killed mid-apply,
in a completed apply after a restart -- never a half state.

| # | failure                                   | ends in     |
|---|-------------------------------------------|-------------|
| 1 | netlink error creating a link             | rollback    |
| 2 | netlink error attaching a port            | rollback    |
| 3 | netlink error setting an MTU              | rollback    |
| 4 | netlink error adding an address           | rollback    |
| 5 | netlink error deleting a link (last step) | rollback    |
| 6 | a probe fails after the apply             | rollback    |
| 7 | a probe raises after the apply            | rollback    |
| 8 | a pre-check refuses                       | prior state, zero writes |
| 9 | the deadline passes mid-apply             | rollback    |
| 10| the agent is SIGKILLed mid-apply          | completion after restart |
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.agent import steps as d
from reconciler.agent.enforce import EnforceResult, enforce
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import CallableProbe
from reconciler.agent.state import current_state
from reconciler.errors import AgentError
from tests.agent.conftest import Topo, ip, ip_json, ip_snapshot
from tests.agent.test_enforce import full_desired, prepare_extra, uplink_into_bridge
from tests.repos import LAB_CLUSTER, lab_bridge, write_repo

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]


def fail_on(pattern: str) -> Callable[[str], None]:
    """A ``before_write`` hook raising on the first write whose description contains ``pattern``."""
    armed = [True]

    def hook(what: str) -> None:
        if armed[0] and pattern in what:
            armed[0] = False
            raise AgentError(f"injected netlink failure at {what!r}")

    return hook


def _raise() -> tuple[bool, str]:
    raise OSError("probe socket exploded")


def run_enforce(topo: Topo, *, hook: Callable[[str], None] | None = None, **kw: Any) -> tuple[EnforceResult, int]:
    with Netlink(topo.node, before_write=hook) as nl:
        steps = d.diff(full_desired(), current_state(nl.observe()))
        kinds = {s.op for s in steps}
        assert {d.Op.CREATE_LINK, d.Op.ATTACH_PORT, d.Op.SET_MTU, d.Op.ADD_ADDRESS, d.Op.DELETE_LINK} <= kinds
        res = enforce(nl, steps, **{"probes": [], "prechecks": (), **kw})
        return res, len(steps)


NETLINK = {
    "create": "link add br1",
    "attach": "master br1",
    "mtu": "mtu 9000",
    "address": "addr add",
    "delete": "link del brgone",
}


@pytest.mark.parametrize("step", list(NETLINK))
def test_netlink_error_at_each_kind_of_write_rolls_back_exactly(topo: Topo, step: str) -> None:
    prepare_extra(topo)
    before = ip_snapshot(topo.node)
    res, total = run_enforce(topo, hook=fail_on(NETLINK[step]))
    assert not res.ok and res.rolled_back and "injected netlink failure" in res.message
    assert 0 <= len(res.applied) < total
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before


@pytest.mark.parametrize("probe", ["fails", "raises"])
def test_probe_failure_after_apply_rolls_back_exactly(topo: Topo, probe: str) -> None:
    prepare_extra(topo)
    before = ip_snapshot(topo.node)
    fn = (lambda: (False, "gateway unreachable (injected)")) if probe == "fails" else _raise
    res, total = run_enforce(topo, probes=[CallableProbe("injected", fn)])
    assert len(res.applied) == total  # everything was applied before the probe ran
    assert not res.ok and res.rolled_back and "probe injected failed" in res.message
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before


def test_precheck_refusal_writes_nothing(topo: Topo) -> None:
    prepare_extra(topo)
    before = ip_snapshot(topo.node)

    def refuse(observed: dict[str, Any], steps: list[d.Step]) -> list[str]:
        return ["injected refusal"]

    res, _ = run_enforce(topo, prechecks=(refuse,))
    assert not res.ok and res.writes == 0 and not res.rolled_back and "injected refusal" in res.message
    with Netlink(topo.node) as nl:  # the real default-route pre-check too
        from reconciler.agent.enforce import DEFAULT_PRECHECKS

        steps = d.diff(uplink_into_bridge(), current_state(nl.observe()))
        res = enforce(nl, steps, probes=[], prechecks=DEFAULT_PRECHECKS)
        assert not res.ok and nl.writes == 0 and "cut the node off" in res.message
    assert ip_snapshot(topo.node) == before


def test_deadline_passing_mid_apply_rolls_back_exactly(topo: Topo) -> None:
    prepare_extra(topo)
    before = ip_snapshot(topo.node)
    writes = [0]

    def count(what: str) -> None:
        writes[0] += 1

    def clock() -> float:  # time jumps past the deadline once three writes are done
        return 0.0 if writes[0] < 3 else 1000.0

    res, total = run_enforce(topo, hook=count, clock=clock, timeout=10)
    assert not res.ok and res.rolled_back and "timed out after 10s" in res.message
    assert 0 < len(res.applied) < total
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before


# ------------------------------------------------------------------------------ the agent killed mid-apply


# runs the real CLI; every netlink write is announced on stderr and slowed, so the test can kill between two
SLOW_AGENT = """
import sys, time
from reconciler.agent import netlink
real = netlink.Netlink._write
def slow(self, what, *a, **kw):
    print(f"WRITE {self.writes + 1} {what}", file=sys.stderr, flush=True)
    time.sleep(float(sys.argv[1]))
    return real(self, what, *a, **kw)
netlink.Netlink._write = slow
from reconciler.agent.cli import agent_command
agent_command(sys.argv[2:], standalone_mode=True)
"""


def agent(topo: Topo, repo: Path, delay: float) -> subprocess.Popen[str]:
    args = ["--node", "node-a", "--netns", topo.node, "--mode", "enforce", "--from-repo", str(repo),
            "--node-labels", "role=worker", "--once", "--probe", f"{topo.api[0]}:{topo.api[1]}"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_AGENT, str(delay), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kill_after", [1, 2])
def test_agent_killed_mid_apply_completes_after_restart(topo: Topo, tmp_path: Path, kill_after: int) -> None:
    repo = write_repo(tmp_path / "repo", {"cluster.yaml": LAB_CLUSTER, "bridge.yaml": lab_bridge(1400)}, base=False)
    ip("link", "set", "ve1", "up", ns=topo.node)
    before = ip_snapshot(topo.node)
    proc = agent(topo, repo, delay=2.0)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: the (k+1)-th write is announced, the k-th is done
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("WRITE "):
                seen.append(line.strip())
                if len(seen) == kill_after + 1:
                    break
        assert len(seen) == kill_after + 1, (seen, proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    half = ip_snapshot(topo.node)
    assert half != before  # it was killed with some, not all, of the writes done (the half state)

    restarted = agent(topo, repo, delay=0.0)
    out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err
    report = json.loads(out)
    assert report["inSync"] is True and report["writes"] > 0
    assert set(report["enactments"].values()) == {"Available"}

    links = {link["ifname"]: link for link in ip_json(topo.node, "-d", "link", "show")}
    assert links["br1"]["linkinfo"]["info_kind"] == "bridge" and links["br1"]["mtu"] == 1400
    assert links["ve1"]["master"] == "br1" and links["ve1"]["mtu"] == 1400
    again = agent(topo, repo, delay=0.0)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert json.loads(out)["writes"] == 0  # converged: a further pass has nothing to do
