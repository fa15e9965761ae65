"""The only module of the agent that talks to the kernel (rtnetlink, through pyroute2).

Why one module: every read and write of the node's network goes through :class:`Netlink`, so the
agent's effect on a node is auditable in one place, and every *write* request is counted
(``Netlink.writes`` per instance, :func:`total_writes` per process). A pass that finds nothing to do
must make zero writes; the tests read these counters.

Reads: :meth:`Netlink.observe` makes exactly one dump per kind (links, addresses, routes) and
reduces the pyroute2 messages to the plain records of :class:`~reconciler.agent.state.Dumps`.
Writes: link add/set/del, master set/unset, address add/del, route replace/del. Requests carry
``NLM_F_ECHO``, so a link add answers with the new link and :meth:`Netlink.create_link` returns *its*
ifindex: rollback deletes exactly the links this pass created, by index, never a same-named link that
someone else made (:meth:`Netlink.delete_created`). Kernel errors are
re-raised as :class:`~reconciler.errors.AgentError` naming the operation and interface; a missing
link kind becomes the capability message (``kernel lacks vlan support (module 8021q): ...``).

Side effects: everything here changes the namespace it was opened on (``netns`` or, when ``None``,
the namespace of the process). Nothing else.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from reconciler.agent.capabilities import missing
from reconciler.agent.state import TYPE_TO_KIND, Dumps, Record
from reconciler.errors import AgentError

IFF_UP = 0x1
NETNS_DIR = "/run/netns"

_total_lock = threading.Lock()
_total_writes = 0


def total_writes() -> int:
    """Netlink write requests made by every :class:`Netlink` of this process so far."""
    return _total_writes


def _count() -> None:
    global _total_writes
    with _total_lock:
        _total_writes += 1


def link_record(msg: Any) -> Record:
    """Reduce one RTM_NEWLINK message to the plain record ``state.py`` maps."""
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
    rec: Record = {
        "index": int(msg["index"]),
        "name": msg.get("IFLA_IFNAME"),
        "kind": kind,
        "link_type": "loopback" if msg.get("ifi_type") == 772 else "ether",
        "mtu": msg.get("IFLA_MTU"),
        "up": bool(msg["flags"] & IFF_UP),
        "mac": msg.get("IFLA_ADDRESS"),
        "master": msg.get("IFLA_MASTER"),
        "link": msg.get("IFLA_LINK"),
        "stp": None,
        "vlan_id": None,
        "bond_mode": None,
        "vxlan_id": None,
    }
    if data is not None:
        if kind == "bridge":
            rec["stp"] = data.get("IFLA_BR_STP_STATE")
        elif kind == "vlan":
            rec["vlan_id"] = data.get("IFLA_VLAN_ID")
        elif kind == "bond":
            rec["bond_mode"] = data.get("IFLA_BOND_MODE")
        elif kind == "vxlan":
            rec["vxlan_id"] = data.get("IFLA_VXLAN_ID")
    if kind == "veth" and rec["link"] is not None and msg.get("IFLA_LINK_NETNSID") is not None:
        rec["link"] = None  # the peer lives in another namespace: its index means nothing here
    return rec


def address_record(msg: Any) -> Record:
    fam = 4 if msg["family"] == 2 else 6
    ip = msg.get("IFA_LOCAL") if fam == 4 else None
    return {
        "index": int(msg["index"]),
        "family": fam,
        "ip": ip or msg.get("IFA_ADDRESS"),
        "prefixlen": int(msg["prefixlen"]),
        "scope": int(msg["scope"]),
    }


def route_record(msg: Any) -> Record:
    return {
        "family": 4 if msg["family"] == 2 else 6,
        "dst": msg.get("RTA_DST"),
        "dst_len": int(msg["dst_len"]),
        "gateway": msg.get("RTA_GATEWAY"),
        "oif": msg.get("RTA_OIF"),
        "table": msg.get("RTA_TABLE") or msg["table"],
        "proto": int(msg["proto"]),
        "scope": int(msg["scope"]),
        "type": int(msg["type"]),
        "priority": msg.get("RTA_PRIORITY"),
    }


class Netlink:
    """A connection to one network namespace. Use as a context manager or call :meth:`close`.

    ``before_write(description)`` is called before every write request (after it is counted); a test
    can raise from it to inject a failure at write *k*.
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        before_write: Callable[[str], None] | None = None,
    ) -> None:
        self.netns = netns
        self.writes = 0
        self.log: list[str] = []
        self.before_write = before_write
        #: name -> ifindex, filled by observe() and lookups; dropped for links this object creates or
        #: deletes. A lookup per write was 40% of applying 200 bridges (one netlink round trip each).
        self._indexes: dict[str, int] = {}
        if netns is not None and not os.path.exists(os.path.join(NETNS_DIR, netns)):
            raise AgentError(f"network namespace {netns!r} does not exist")
        try:
            # nlm_echo: the kernel answers a link add with the new link (its ifindex); Linux >= 6.3
            self._ipr = IPRoute(netns=netns, flags=0, nlm_echo=True) if netns else IPRoute(nlm_echo=True)
        except OSError as e:
            raise AgentError(f"cannot open netlink in namespace {netns or '(own)'}: {e}") from e

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._ipr.close()

    # ---------------------------------------------------------------- reads
    def observe(self) -> Dumps:
        """Exactly one dump per kind: links, addresses, routes."""
        try:
            links = [link_record(m) for m in self._ipr.get_links()]
            addrs = [address_record(m) for m in self._ipr.get_addr()]
            routes = [route_record(m) for m in self._ipr.get_routes(family=0)]
        except NetlinkError as e:
            raise AgentError(f"netlink dump failed: {e}") from e
        self._indexes = {str(rec["name"]): int(rec["index"]) for rec in links if rec["name"]}
        return Dumps(links, addrs, routes)

    def index(self, name: str) -> int:
        cached = self._indexes.get(name)
        if cached is not None:
            return cached
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            raise AgentError(f"{name}: no such interface")
        self._indexes[name] = int(found[0])
        return int(found[0])

    def _forget(self, *names: str | None) -> None:
        for name in names:
            if name:
                self._indexes.pop(name, None)

    # ---------------------------------------------------------------- writes
    def _write(self, what: str, iface: str, call: Callable[[], Any], kind: str | None = None) -> Any:
        """Count, log and send one write request; returns the kernel's reply messages."""
        self.writes += 1
        _count()
        self.log.append(what)
        if self.before_write is not None:
            self.before_write(what)
        try:
            return call()
        except NetlinkError as e:
            if kind and e.code in (errno.EOPNOTSUPP, errno.EAFNOSUPPORT):
                raise missing(kind, iface) from e
            raise AgentError(f"{iface}: {what} failed: {os.strerror(e.code) if e.code else e}") from e

    def create_link(
        self,
        name: str,
        itype: str,
        *,
        base: str | None = None,
        vlan_id: int | None = None,
        bond_mode: str | None = None,
        stp: bool | None = None,
        peer: str | None = None,
        vxlan_id: int | None = None,
        mac: str | None = None,
    ) -> int:
        """Create a link of nmstate type ``itype`` (``linux-bridge``, ``vlan``, ``bond``, ``veth``, ...) and
        return the ifindex of the link this request created (a veth: of ``name``; its peer goes with it).

        The create is exclusive (``NLM_F_EXCL``): a link of that name made by anyone else, even a moment
        ago, makes it fail with "File exists", and then nothing here is ours."""
        kind = TYPE_TO_KIND.get(itype, itype)
        args: dict[str, Any] = {"ifname": name, "kind": kind}
        if kind == "vlan":
            if base is None or vlan_id is None:
                raise AgentError(f"{name}: a vlan needs vlan.base-iface and vlan.id")
            args.update(link=self.index(base), vlan_id=int(vlan_id))
        elif kind == "bond" and bond_mode:
            args["bond_mode"] = bond_mode
        elif kind == "bridge" and stp is not None:
            args["br_stp_state"] = 1 if stp else 0
        elif kind == "veth":
            args["peer"] = {"ifname": peer or f"{name}-p"[:15]}
        elif kind == "vxlan":
            args.update(vxlan_id=int(vxlan_id or 0))
        if mac:
            args["address"] = mac.lower()
        self._forget(name, (args.get("peer") or {}).get("ifname"))
        replies = self._write(f"link add {name} type {kind}", name, lambda: self._ipr.link("add", **args), kind=kind)
        for msg in replies or []:
            if msg.get("event") == "RTM_NEWLINK" and msg.get("IFLA_IFNAME") == name:
                self._indexes[name] = int(msg["index"])
                return int(msg["index"])
        # a kernel before 6.3 does not echo the new link; the exclusive create succeeded just now, so the
        # link of that name is the one it made
        return self.index(name)

    def delete_created(self, index: int, name: str) -> bool:
        """Delete the link this agent created as ``index`` -- only while that ifindex still is ``name``.
        False when it is gone already (or the index now names another link: then it is not ours)."""
        try:
            found = self._ipr.get_links(index)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise AgentError(
                f"{name}: looking up ifindex {index} failed: {os.strerror(e.code) if e.code else e}"
            ) from e
        if not found or found[0].get("IFLA_IFNAME") != name:
            return False
        try:
            self._write(f"link del {name} (ifindex {index})", name, lambda: self._ipr.link("del", index=index))
        finally:
            self._indexes.clear()
        return True

    def delete_link(self, name: str) -> None:
        idx = self.index(name)
        try:
            self._write(f"link del {name}", name, lambda: self._ipr.link("del", index=idx))
        finally:  # a veth's peer goes with it: after a delete, trust only fresh lookups
            self._indexes.clear()

    def set_mtu(self, name: str, mtu: int) -> None:
        idx = self.index(name)
        self._write(f"link set {name} mtu {mtu}", name, lambda: self._ipr.link("set", index=idx, mtu=int(mtu)))

    def set_state(self, name: str, up: bool) -> None:
        idx = self.index(name)
        st = "up" if up else "down"
        self._write(f"link set {name} {st}", name, lambda: self._ipr.link("set", index=idx, state=st))

    def set_mac(self, name: str, mac: str) -> None:
        idx = self.index(name)
        self._write(
            f"link set {name} address {mac}",
            name,
            lambda: self._ipr.link("set", index=idx, address=mac.lower()),
        )

    def set_master(self, name: str, master: str | None) -> None:
        """Attach ``name`` to ``master`` (bridge or bond), or detach it when ``master`` is None."""
        idx = self.index(name)
        midx = self.index(master) if master else 0
        what = f"link set {name} master {master}" if master else f"link set {name} nomaster"
        self._write(what, name, lambda: self._ipr.link("set", index=idx, master=midx))

    def set_stp(self, name: str, enabled: bool) -> None:
        idx = self.index(name)
        val = 1 if enabled else 0
        self._write(
            f"link set {name} type bridge stp_state {val}",
            name,
            lambda: self._ipr.link("set", index=idx, kind="bridge", br_stp_state=val),
        )

    def add_address(self, name: str, ip: str, prefixlen: int) -> None:
        idx = self.index(name)
        self._write(
            f"addr add {ip}/{prefixlen} dev {name}",
            name,
            lambda: self._ipr.addr("add", index=idx, address=ip, prefixlen=int(prefixlen)),
        )

    def del_address(self, name: str, ip: str, prefixlen: int) -> None:
        idx = self.index(name)
        self._write(
            f"addr del {ip}/{prefixlen} dev {name}",
            name,
            lambda: self._ipr.addr("del", index=idx, address=ip, prefixlen=int(prefixlen)),
        )

    def _route_args(self, dst: str, gateway: str | None, oif: str | None, table: int, metric: int) -> dict[str, Any]:
        net, _, plen = dst.partition("/")
        args: dict[str, Any] = {"dst": net, "dst_len": int(plen or 0), "table": int(table)}
        args["family"] = 10 if ":" in net else 2
        if gateway:
            args["gateway"] = gateway
        if oif:
            args["oif"] = self.index(oif)
        if metric:
            args["priority"] = int(metric)
        return args

    def replace_route(self, dst: str, gateway: str | None, oif: str | None, table: int = 254, metric: int = 0) -> None:
        args = self._route_args(dst, gateway, oif, table, metric)
        self._write(
            f"route replace {dst} via {gateway} dev {oif} table {table}",
            oif or dst,
            lambda: self._ipr.route("replace", **args),
        )

    def del_route(self, dst: str, gateway: str | None, oif: str | None, table: int = 254, metric: int = 0) -> None:
        args = self._route_args(dst, gateway, oif, table, metric)
        self._write(
            f"route del {dst} via {gateway} dev {oif} table {table}",
            oif or dst,
            lambda: self._ipr.route("del", **args),
        )
