"""Node-side figures: the agent applying N bridges vs the same changes through ``ip -batch``, and a no-op pass
vs the three ``ip -j`` dumps of the same namespace.

Why these anchors: ``ip -batch`` is the floor for making netlink changes from userspace (one process, one
socket, no reads), so the ratio says what the agent's safety costs (dumps before and after, a checkpoint,
a probe); ``ip -d -j link show`` + ``addr`` + ``route`` is what reading the same state costs a C program.
The no-op pass must make zero writes.

The protocol, so that the kernel cannot fool it (a namespace's teardown runs in the background for seconds
after ``ip netns del`` and holds the lock every link change needs):

- every namespace is made first and removed last (``vnbench-<pid>-...``, deleted in ``finally``);
- before each timed step, :func:`wait_quiet` waits until a probe link change (a bridge added and deleted
  in a namespace of its own) is fast three times in a row; the wait is reported, never timed;
- every figure is run ``repeats`` times, each in a fresh namespace: medians with min-max, and every ratio
  is between figures of this same run.

The agent is driven through its public functions: ``merge_desired`` → ``diff`` against
``current_state(Netlink.observe())`` → ``enforce`` with no probes (a fresh namespace has nothing to probe)
and the default pre-checks. Needs root; otherwise skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.cluster import spread

IP = shutil.which("ip") or "/usr/sbin/ip"


def skip_reason() -> str | None:
    """Why the node benchmark cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not os.path.exists(IP):
        return "iproute2 'ip' not found"
    return None


@contextmanager
def netns(name: str) -> Iterator[str]:
    """A fresh named network namespace, deleted whatever happens (for tools; the figures use
    :func:`node_figures`' protocol)."""
    _add(name)
    try:
        yield name
    finally:
        _delete(name)


def _address(i: int) -> str:
    return f"10.{100 + i // 256}.{i % 256}.1"


def policies(n: int) -> list[dict[str, Any]]:
    """One NNCP per bridge: bridge ``vbI`` (STP off, 10.x.y.1/24) with veth ``vvI`` (peer ``vpI``) as port."""
    out = []
    for i in range(n):
        veth = {"name": f"vv{i}", "type": "veth", "state": "up", "veth": {"peer": f"vp{i}"}, "ipv4": {"enabled": False}}
        bridge = {
            "name": f"vb{i}",
            "type": "linux-bridge",
            "state": "up",
            "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": f"vv{i}"}]},
            "ipv4": {"enabled": True, "dhcp": False, "address": [{"ip": _address(i), "prefix-length": 24}]},
        }
        out.append(
            {
                "apiVersion": "nmstate.io/v1",
                "kind": "NodeNetworkConfigurationPolicy",
                "metadata": {"name": f"bench-br{i}"},
                "spec": {"desiredState": {"interfaces": [veth, bridge]}},
            }
        )
    return out


def batch(n: int) -> str:
    """The same changes as :func:`policies` as an ``ip -batch`` file (what an expert would type)."""
    lines = []
    for i in range(n):
        lines += [
            f"link add vb{i} type bridge stp_state 0",
            f"link add vv{i} type veth peer name vp{i}",
            f"link set vv{i} master vb{i}",
            f"link set vv{i} up",
            f"link set vb{i} up",
            f"addr add {_address(i)}/24 dev vb{i}",
        ]
    return "\n".join(lines) + "\n"


def agent_pass(ns: str, desired_policies: list[dict[str, Any]]) -> dict[str, Any]:
    """One agent pass (observe → diff → enforce) in ``ns``: seconds, steps, netlink writes, outcome."""
    from reconciler.agent.desired import merge_desired
    from reconciler.agent.enforce import enforce
    from reconciler.agent.netlink import Netlink
    from reconciler.agent.state import current_state
    from reconciler.agent.steps import diff

    t = time.perf_counter()
    with Netlink(ns) as nl:
        steps = diff(merge_desired(desired_policies), current_state(nl.observe()))
        result = enforce(nl, steps, probes=())
        writes = nl.writes
    seconds = time.perf_counter() - t
    if not result.ok:
        raise RuntimeError(f"agent enforce failed: {result.message}")
    return {"seconds": seconds, "steps": len(steps), "netlink_writes": writes}


def _links(ns: str) -> int:
    out = subprocess.run([IP, "-n", ns, "-o", "link", "show"], capture_output=True, text=True, timeout=60, check=True)
    return len(out.stdout.splitlines())


def _add(ns: str) -> None:
    subprocess.run([IP, "netns", "add", ns], check=True, capture_output=True, timeout=30)


def _delete(ns: str) -> None:
    subprocess.run([IP, "netns", "del", ns], capture_output=True, timeout=30)


#: a probe link change (an MTU set on a bridge) counts as quiet below this; it takes ~0.1 ms on an idle
#: kernel and waits seconds behind a namespace teardown (both take the rtnl lock). Not a delete: every link
#: delete waits for an RCU grace period (~30 ms) whatever else the kernel does.
QUIET_PROBE_SECONDS = 0.005


def wait_quiet(probe_ns: str, timeout: float = 120.0, in_a_row: int = 3, spacing: float = 0.1) -> dict[str, Any]:
    """Wait until the kernel makes link changes without waiting on other work (a namespace's teardown holds
    the rtnl lock): ``in_a_row`` probes ``spacing`` seconds apart, each under :data:`QUIET_PROBE_SECONDS`
    (spaced: a teardown takes the lock only after an RCU grace period, so three probes in one millisecond
    can all pass just before it). Returns how long it waited, the probes made, and ``quiet: False`` when
    ``timeout`` passed first (the figure is then marked)."""
    from reconciler.agent.netlink import Netlink

    start = time.perf_counter()
    fast = probes = 0
    slowest = 0.0
    with Netlink(probe_ns) as nl:
        if "vnprobe" not in {link["name"] for link in nl.observe().links}:
            nl.create_link("vnprobe", "linux-bridge")
        while fast < in_a_row:
            if time.perf_counter() - start > timeout:
                return {"waited_seconds": time.perf_counter() - start, "probes": probes, "quiet": False}
            t = time.perf_counter()
            nl.set_mtu("vnprobe", 1400 + probes % 2)
            took = time.perf_counter() - t
            probes += 1
            slowest = max(slowest, took)
            fast = fast + 1 if took < QUIET_PROBE_SECONDS else 0
            if fast < in_a_row:
                time.sleep(spacing)
    return {
        "waited_seconds": time.perf_counter() - start,
        "probes": probes,
        "slowest_probe_seconds": slowest,
        "quiet": True,
    }


def _ip_batch(ns: str, file: Path) -> float:
    t = time.perf_counter()
    subprocess.run([IP, "-n", ns, "-batch", str(file)], check=True, capture_output=True, timeout=300)
    return time.perf_counter() - t


def _ip_dumps(ns: str) -> float:
    """The three dumps the agent's observe makes, as ``ip -j`` processes (what a C tool pays for them)."""
    t = time.perf_counter()
    for args in (["-d", "-j", "link", "show"], ["-j", "addr", "show"], ["-j", "route", "show", "table", "all"]):
        subprocess.run([IP, "-n", ns, *args], check=True, capture_output=True, timeout=60)
    return time.perf_counter() - t


def node_figures(sizes: list[int], repeats: int = 3, tag: str | None = None) -> dict[str, Any]:
    """For each N in ``sizes``: agent vs ``ip -batch`` and a no-op pass vs ``ip -j`` dumps, ``repeats`` times
    each, under the protocol of the module docstring. Returns ``{"runs": {N: figures}, "protocol": ...}``."""
    tag = tag or str(os.getpid())
    names = {(n, r, what): f"vnbench-{tag}-{n}-{r}-{what}" for n in sizes for r in range(repeats) for what in "ai"}
    probe = f"vnbench-{tag}-probe"
    made: list[str] = []
    out: dict[str, Any] = {"runs": {}, "protocol": {"repeats": repeats, "quiet_probe_seconds": QUIET_PROBE_SECONDS}}
    waits: list[dict[str, Any]] = []
    try:
        for ns in [probe, *names.values()]:  # every namespace first: no teardown can run under a timed step
            _add(ns)
            made.append(ns)
        for n in sizes:
            out["runs"][str(n)] = _one_size(n, repeats, names, probe, waits)
    finally:
        for ns in made:
            _delete(ns)
    if made:  # the next figures (cluster-side) start on a quiet kernel too
        _add(probe)
        try:
            out["protocol"]["after_teardown"] = wait_quiet(probe)
        finally:
            _delete(probe)
    out["protocol"]["waits"] = waits
    out["protocol"]["all_quiet"] = all(w["quiet"] for w in waits)
    return out


def _one_size(
    n: int, repeats: int, names: dict[tuple[int, int, str], str], probe: str, waits: list[dict[str, Any]]
) -> dict[str, Any]:
    wanted = policies(n)
    agent: list[dict[str, Any]] = []
    noop: list[dict[str, Any]] = []
    ip_runs: list[float] = []
    dumps: list[float] = []
    links: set[int] = set()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "changes.batch"
        file.write_text(batch(n))
        for r in range(repeats):
            mine, theirs = names[(n, r, "a")], names[(n, r, "i")]
            waits.append(wait_quiet(probe))
            agent.append(agent_pass(mine, wanted))
            waits.append(wait_quiet(probe))
            noop.append(agent_pass(mine, wanted))
            waits.append(wait_quiet(probe))
            ip_runs.append(_ip_batch(theirs, file))
            waits.append(wait_quiet(probe))
            dumps.append(_ip_dumps(mine))
            links |= {_links(mine), _links(theirs)}
    if len(links) != 1:
        raise RuntimeError(f"the agent and ip -batch made different numbers of links: {sorted(links)}")
    out: dict[str, Any] = {
        "bridges": n,
        "links": links.pop(),
        "agent": {
            **spread([a["seconds"] for a in agent]),
            "steps": agent[0]["steps"],
            "netlink_writes": max(a["netlink_writes"] for a in agent),
        },
        "noop": {**spread([a["seconds"] for a in noop]), "netlink_writes": max(a["netlink_writes"] for a in noop)},
        "ip_batch": {**spread(ip_runs), "commands": 6 * n},
        "ip_dumps": spread(dumps),
    }
    out["ratio_agent_to_ip"] = out["agent"]["seconds"] / out["ip_batch"]["seconds"]
    out["ratio_noop_to_ip_dumps"] = out["noop"]["seconds"] / out["ip_dumps"]["seconds"]
    return out


def summary_lines(nodes: dict[str, Any], fmt: Callable[[dict[str, Any]], str]) -> list[str]:
    """The node figures of a run as lines of ``bench.run``'s table (``fmt``: a median with its min-max)."""
    if "skipped" in nodes:
        return [f"8 node: skipped ({nodes['skipped']})"]
    lines = []
    for n, r in sorted((nodes.get("runs") or {}).items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"8 node N={n}: agent {fmt(r['agent'])} ({r['agent']['netlink_writes']} writes) vs "
            f"ip -batch {fmt(r['ip_batch'])} ({r['ip_batch']['commands']} commands) = "
            f"{r['ratio_agent_to_ip']:.2f}x; no-op pass {fmt(r['noop'])} "
            f"({r['noop']['netlink_writes']} writes) vs ip -j dumps {fmt(r['ip_dumps'])} = "
            f"{r['ratio_noop_to_ip_dumps']:.2f}x"
        )
    if "protocol" in nodes:
        quiet = (
            "a quiet kernel before every timed step"
            if nodes["protocol"].get("all_quiet")
            else "NOT always a quiet kernel (a probe stayed slow until the timeout)"
        )
        lines.append(
            f"8 node protocol: namespaces made first and removed last, {quiet}; median (min-max) of "
            f"{nodes['protocol']['repeats']} runs"
        )
    return lines
