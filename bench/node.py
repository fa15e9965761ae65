"""Node-side figures: the agent applying N bridges vs the same changes through ``ip -batch``.

Why these two: ``ip -batch`` is the floor for making netlink changes from userspace (one process, one
socket, no reads), so the ratio says what the agent's safety costs (a dump before and after, a
checkpoint, one request per change, each looked up by name). The no-op pass must make zero writes.

Each measurement runs in its own fresh network namespace (``vnbench-<pid>-<n>-<what>``), created with
``ip netns add`` and always deleted in ``finally``. The agent is driven through its public functions:
``merge_desired`` → ``diff`` against ``current_state(Netlink.observe())`` → ``enforce`` with no probes
(a fresh namespace has nothing to probe) and the default pre-checks. Needs root; otherwise skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    """A fresh named network namespace, deleted whatever happens."""
    subprocess.run([IP, "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=30)


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


def node_figures(n: int, tag: str | None = None) -> dict[str, Any]:
    """Agent vs ``ip -batch`` for ``n`` bridges, then a no-op agent pass; each in a fresh namespace."""
    tag = tag or f"{os.getpid()}-{n}"
    wanted = policies(n)
    out: dict[str, Any] = {"bridges": n}
    with netns(f"vnbench-{tag}-agent") as ns:
        out["agent"] = agent_pass(ns, wanted)
        out["agent"]["links"] = _links(ns)
        out["noop"] = agent_pass(ns, wanted)
    with netns(f"vnbench-{tag}-ip") as ns, tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "changes.batch"
        file.write_text(batch(n))
        t = time.perf_counter()
        subprocess.run([IP, "-n", ns, "-batch", str(file)], check=True, capture_output=True, timeout=300)
        out["ip_batch"] = {"seconds": time.perf_counter() - t, "commands": 6 * n, "links": _links(ns)}
    if out["agent"]["links"] != out["ip_batch"]["links"]:
        raise RuntimeError(f"agent made {out['agent']['links']} links, ip -batch {out['ip_batch']['links']}")
    out["ratio_agent_to_ip"] = out["agent"]["seconds"] / out["ip_batch"]["seconds"]
    return out
