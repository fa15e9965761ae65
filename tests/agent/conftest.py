"""Fixtures for agent tests: throwaway network namespaces that are always deleted.

``topo`` builds a "node" namespace whose uplink ``eth0`` (a veth) reaches a "gateway" namespace that
holds the gateway address 10.77.0.1/24 and a TCP listener standing in for the API server. The node
gets 10.77.0.2/24, a default route via the gateway, and spare veth pairs (``ve1``/``ve1p`` ...) to use
as bridge ports. ``rp_filter=1`` in the node mirrors RHEL CoreOS defaults (a reply that arrives on the
wrong interface is dropped, as it is on a real node).

Independent reads (``ip -j``) go through ``ip_snapshot`` — never through the agent's own code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

GW_IP = "10.77.0.1"
NODE_IP = "10.77.0.2"
API_PORT = 6443


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "namespace tests need root"
    if shutil.which("ip") is None:
        return "iproute2 `ip` is not installed"
    probe = f"vnt-chk-{secrets.token_hex(3)}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` does not work here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_REASON: list[str | None] = []


def netns_skip_reason() -> str | None:
    if not _REASON:
        _REASON.append(_netns_unavailable())
    return _REASON[0]


def ip(*args: str, ns: str | None = None) -> str:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


def ip_json(ns: str, *args: str) -> Any:
    out = ip("-j", *args, ns=ns)
    return json.loads(out) if out.strip() else []


def ip_snapshot(ns: str) -> dict[str, Any]:
    """The namespace as `ip -j` sees it, reduced to what a rollback must restore: per link kind, mtu,
    admin state, master, MAC, STP; addresses (IPv6 link-local left out); routes of the main table.
    Ifindexes, counters and operational state are left out."""
    links = ip_json(ns, "-d", "link", "show")
    addrs = ip_json(ns, "addr", "show")
    routes = ip_json(ns, "route", "show", "table", "main") + ip_json(ns, "-6", "route", "show", "table", "main")
    out: dict[str, Any] = {"links": {}, "routes": []}
    for link in links:
        info = link.get("linkinfo", {})
        out["links"][link["ifname"]] = {
            "kind": info.get("info_kind"),
            "mtu": link["mtu"],
            "up": "UP" in link.get("flags", []),
            "master": link.get("master"),
            "mac": link.get("address"),
            "stp": info.get("info_data", {}).get("stp_state") if info.get("info_kind") == "bridge" else None,
            "addresses": [],
        }
    for a in addrs:
        entries = sorted(
            f"{x['local']}/{x['prefixlen']}"
            for x in a.get("addr_info", [])
            if not (x.get("family") == "inet6" and x.get("scope") == "link")
        )
        out["links"][a["ifname"]]["addresses"] = entries
    for r in routes:
        if r.get("dst", "").startswith(("fe80", "ff")):
            continue
        out["routes"].append(f"{r.get('dst')} via {r.get('gateway', '-')} dev {r.get('dev')}")
    out["routes"].sort()
    return out


@dataclass
class Topo:
    node: str
    gw: str
    api: tuple[str, int]
    ports: list[str] = field(default_factory=list)


class _Listener:
    """A TCP listener inside the gateway namespace that accepts and closes connections."""

    def __init__(self, ns: str, host: str, port: int) -> None:
        from reconciler.agent.probes import socket_in_netns

        self.sock = socket_in_netns(ns, socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(autouse=True)
def _lock_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """Enforce passes take the node's writer lock; in tests it lives in a temporary directory, not /run."""
    from reconciler.agent import nodelock

    path = str(tmp_path_factory.mktemp("locks"))
    monkeypatch.setattr(nodelock, "LOCK_DIR", path)
    return path


@pytest.fixture
def netns_available() -> None:
    reason = netns_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def scratch_ns(netns_available: None, request: pytest.FixtureRequest) -> str:
    """One empty namespace (loopback only)."""
    name = f"vnt-{secrets.token_hex(3)}"
    ip("netns", "add", name)
    request.addfinalizer(lambda: subprocess.run(["ip", "netns", "del", name], capture_output=True))
    return name


@pytest.fixture
def topo(netns_available: None, request: pytest.FixtureRequest) -> Iterator[Topo]:
    tag = secrets.token_hex(3)
    node, gw = f"vnt-n{tag}", f"vnt-g{tag}"
    listener: list[_Listener] = []

    def cleanup() -> None:
        for lst in listener:
            lst.close()
        for ns in (node, gw):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    request.addfinalizer(cleanup)
    ip("netns", "add", node)
    ip("netns", "add", gw)
    subprocess.run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"], check=False)
    ip("link", "add", "eth0", "type", "veth", "peer", "name", "gw0", "netns", gw, ns=node)
    ip("link", "set", "lo", "up", ns=gw)
    ip("addr", "add", f"{GW_IP}/24", "dev", "gw0", ns=gw)
    ip("link", "set", "gw0", "up", ns=gw)
    ip("link", "set", "lo", "up", ns=node)
    ip("addr", "add", f"{NODE_IP}/24", "dev", "eth0", ns=node)
    ip("link", "set", "eth0", "up", ns=node)
    ip("route", "add", "default", "via", GW_IP, ns=node)
    ports = []
    for i in (1, 2, 3, 4):
        ip("link", "add", f"ve{i}", "type", "veth", "peer", "name", f"ve{i}p", ns=node)
        ports.append(f"ve{i}")
    listener.append(_Listener(gw, GW_IP, API_PORT))
    yield Topo(node=node, gw=gw, api=(GW_IP, API_PORT), ports=ports)
