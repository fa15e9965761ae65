"""Connectivity probes run after a change: if one fails, enforce rolls the change back.

Why: like kubernetes-nmstate, a change to a node's network is only kept when the node can still
reach its default gateways (IPv4 and IPv6; each checked only if it answered before) and the API server.
The checks need no external tools: the gateway probe sends an ICMP or ICMPv6 echo over a raw socket, the
others TCP-connect. Reachability is not everything: an MTU below 1280 makes Linux drop an interface's
IPv6 addresses while IPv4 (and every IPv4 probe) keeps working, so enforce also runs
:class:`AddressesKept`: every address the node had and the change did not remove must still be there.

Side effects: sockets are opened inside the node's network namespace (a helper thread ``setns``\\ es
into ``/run/netns/<ns>`` to create the socket; the socket keeps that namespace) and packets are sent
to the gateway / targets named. Each probe has a timeout. Probes are plain objects with ``name``,
``only_if_ok_before`` and ``run()``, so tests inject their own (e.g. one that always fails).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.agent.state import default_gateways, interfaces_by_name
from reconciler.agent.steps import Op, Step

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    detail: str = ""


class Probe(Protocol):
    @property
    def name(self) -> str: ...

    only_if_ok_before: bool

    def run(self) -> ProbeResult: ...


def socket_in_netns(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket that lives in ``netns`` (or in our own namespace when ``None``)."""
    if netns is None:
        return socket.socket(family, kind, proto)
    out: dict[str, Any] = {}

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
            out["sock"] = socket.socket(family, kind, proto)
        except OSError as e:
            out["err"] = e

    t = threading.Thread(target=make, name=f"setns-{netns}")
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


@dataclass
class GatewayProbe:
    """ICMP echo to ``gateway`` from inside ``netns``; retried until ``timeout``."""

    gateway: str
    netns: str | None = None
    timeout: float = 10.0
    only_if_ok_before: bool = True

    @property
    def name(self) -> str:
        return f"gateway {self.gateway}"

    def run(self) -> ProbeResult:
        ip = ipaddress.ip_address(self.gateway)
        v6 = ip.version == 6
        fam, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
        ident = secrets.randbelow(0xFFFF)
        deadline = time.monotonic() + self.timeout
        try:
            sock = socket_in_netns(self.netns, fam, socket.SOCK_RAW, proto)
        except OSError as e:
            return ProbeResult(self.name, False, f"cannot open a raw socket: {e}")
        with sock:
            seq = 0
            while time.monotonic() < deadline:
                seq += 1
                payload = b"virtnet-probe"
                hdr = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, seq)
                csum = 0 if v6 else _checksum(hdr + payload)  # the kernel fills in ICMPv6 checksums
                pkt = struct.pack("!BBHHH", 128 if v6 else 8, 0, csum, ident, seq) + payload
                try:
                    sock.sendto(pkt, (self.gateway, 0))
                except OSError as e:
                    last = f"send failed: {e}"
                    time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                    continue
                last = "no echo reply"
                wait_until = min(deadline, time.monotonic() + 0.5)
                while (left := wait_until - time.monotonic()) > 0:
                    ready, _, _ = select.select([sock], [], [], left)
                    if not ready:
                        break
                    data, addr = sock.recvfrom(2048)
                    off = 0 if v6 else (data[0] & 0x0F) * 4
                    if len(data) < off + 8:
                        continue
                    typ, _code, _c, rid, _rseq = struct.unpack("!BBHHH", data[off : off + 8])
                    if typ == (129 if v6 else 0) and rid == ident and addr[0] == self.gateway:
                        return ProbeResult(self.name, True, f"echo reply after {seq} request(s)")
            return ProbeResult(self.name, False, f"{last} within {self.timeout:g}s")


@dataclass
class TcpProbe:
    """TCP connect to ``host:port`` from inside ``netns``; retried until ``timeout``."""

    host: str
    port: int
    netns: str | None = None
    timeout: float = 10.0
    only_if_ok_before: bool = False
    label: str = "tcp"

    @property
    def name(self) -> str:
        return f"{self.label} {self.host}:{self.port}"

    def run(self) -> ProbeResult:
        deadline = time.monotonic() + self.timeout
        last = "not tried"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return ProbeResult(self.name, False, f"{last} within {self.timeout:g}s")
            try:
                fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                with socket_in_netns(self.netns, fam, socket.SOCK_STREAM) as s:
                    s.settimeout(min(left, 2.0))
                    s.connect((self.host, self.port))
                return ProbeResult(self.name, True, "connected")
            except OSError as e:
                last = f"connect failed: {e}"
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


@dataclass
class CallableProbe:
    """A probe from a function returning ``(ok, detail)``; the tests' way to force a failure."""

    name: str
    fn: Callable[[], tuple[bool, str]]
    only_if_ok_before: bool = False

    def run(self) -> ProbeResult:
        ok, detail = self.fn()
        return ProbeResult(self.name, ok, detail)


def kept_addresses(observed: Mapping[str, Any], steps: list[Step]) -> dict[str, set[str]]:
    """interface -> the addresses (``ip/prefix``, both families, IPv6 link-local left out) that must survive
    ``steps``: all the node has, but those the steps delete and those on links the steps delete, set down,
    or move into or out of a bridge/bond (Linux flushes IPv6 addresses of a link that goes down, and a bond
    port must go down to join)."""
    gone = {(s.target, f"{s.params['ip']}/{s.params['prefix-length']}") for s in steps if s.op == Op.DEL_ADDRESS}
    moved = {s.target for s in steps if s.op in (Op.DELETE_LINK, Op.ATTACH_PORT, Op.DETACH_PORT)}
    moved |= {s.target for s in steps if s.op == Op.SET_STATE and s.params.get("state") != "up"}
    out: dict[str, set[str]] = {}
    for name, iface in interfaces_by_name(observed).items():
        if name in moved or iface.get("state") != "up":
            continue
        have = {
            f"{a['ip']}/{a['prefix-length']}"
            for fam in ("ipv4", "ipv6")
            for a in (iface.get(fam) or {}).get("address") or []
        }
        if keep := {a for a in have if (name, a) not in gone}:
            out[name] = keep
    return out


@dataclass
class AddressesKept:
    """After a change, every address in ``expected`` (see :func:`kept_addresses`) is still on its interface;
    ``observe`` returns the ``currentState`` now."""

    expected: Mapping[str, set[str]]
    observe: Callable[[], Mapping[str, Any]]
    only_if_ok_before: bool = False
    name: str = "addresses"

    def run(self) -> ProbeResult:
        now = interfaces_by_name(self.observe())
        lost = []
        for iface, addrs in sorted(self.expected.items()):
            have = {
                f"{a['ip']}/{a['prefix-length']}"
                for fam in ("ipv4", "ipv6")
                for a in (now.get(iface, {}).get(fam) or {}).get("address") or []
            }
            lost += [f"{a} on {iface}" for a in sorted(addrs - have)]
        if lost:
            return ProbeResult(self.name, False, "the change removed " + ", ".join(lost))
        return ProbeResult(self.name, True, f"{sum(len(a) for a in self.expected.values())} address(es) kept")


def parse_target(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    return host.strip("[]"), int(port)


def default_probes(
    observed: dict[str, Any],
    *,
    netns: str | None = None,
    api_server: tuple[str, int] | None = None,
    targets: list[tuple[str, int]] | None = None,
    timeout: float = 10.0,
) -> list[Probe]:
    """Gateway probes for the default routes of ``observed``, plus API server and extra TCP targets."""
    probes: list[Probe] = []
    for gw in sorted({r["next-hop-address"] for r in default_gateways(observed)}):
        probes.append(GatewayProbe(gw, netns=netns, timeout=timeout))
    if api_server is not None:
        probes.append(TcpProbe(api_server[0], api_server[1], netns=netns, timeout=timeout, label="api-server"))
    for host, port in targets or []:
        probes.append(TcpProbe(host, port, netns=netns, timeout=timeout))
    return probes
