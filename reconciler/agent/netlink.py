"""The only module of the agent that talks to the kernel (rtnetlink, through ``reconciler.agent.rtnl``).

Why one module: every read and write of the node's network goes through :class:`Netlink`, so the
agent's effect on a node is auditable in one place, and every *write* request is counted
(``Netlink.writes`` per instance, :func:`total_writes` per process). A pass that finds nothing to do
must make zero writes; the tests read these counters.

Reads: :meth:`Netlink.observe` makes exactly one dump per kind (links, addresses, routes), decoded
straight into the plain records of :class:`~reconciler.agent.state.Dumps`.
Writes: link add/set/del, master set/unset, address add/del, route replace/del. A link add carries
``NLM_F_ECHO``, so the kernel answers with the new link and its ifindex is recorded
(:attr:`Netlink.created`, and :meth:`Netlink.create_link` returns it): rollback deletes exactly the links this
pass created, by index, never a same-named link that someone else made (:meth:`Netlink.delete_created`).
Inside :meth:`Netlink.batch` writes are queued and sent many to one ``send``, each acknowledged on its
own; the queue goes out before anything needs what it changes (a name to look up, a link it creates). Kernel errors are
re-raised as :class:`~reconciler.errors.AgentError` naming the operation and interface; a missing
link kind becomes the capability message (``kernel lacks vlan support (module 8021q): ...``).

Side effects: everything here changes the namespace it was opened on (``netns`` or, when ``None``,
the namespace of the process). Nothing else.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.agent import rtnl
from reconciler.agent.capabilities import missing
from reconciler.agent.rtnl import Request
from reconciler.agent.rtsock import NetlinkError, Reply, RtnlSocket
from reconciler.agent.state import BOND_MODES, TYPE_TO_KIND, Dumps
from reconciler.errors import AgentError

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


@dataclass
class _Queued:
    what: str
    iface: str
    request: Request
    kind: str | None  # the link kind a create makes (a missing kind is the capability message)
    tag: object  # what the caller was doing (``Netlink.tag`` when queued): named by a failure
    creates: str | None = None  # the name a link create makes


class WriteError(AgentError):
    """A write the kernel refused; ``tag`` is ``Netlink.tag`` when it was queued (the step it belongs to)."""

    def __init__(self, message: str, tag: object = None) -> None:
        super().__init__(message)
        self.tag = tag


class Netlink:
    """A connection to one network namespace. Use as a context manager or call :meth:`close`.

    ``before_write(description)`` is called before every write request (after it is counted); a test
    can raise from it to inject a failure at write *k* (the writes queued before it are sent first).
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
        #: (ifindex, name) of every link a create of this object made, in order (from the kernel's echo)
        self.created: list[tuple[int, str]] = []
        #: set by a caller to say what the next writes are for; a failed write's WriteError carries it
        self.tag: object = None
        #: name -> ifindex, filled by observe(), create replies and lookups; dropped for links this object
        #: deletes. A lookup per write was 40% of applying 200 bridges (one netlink round trip each).
        self._indexes: dict[str, int] = {}
        self._queue: list[_Queued] | None = None
        self._creating: set[str] = set()
        if netns is not None and not os.path.exists(os.path.join(NETNS_DIR, netns)):
            raise AgentError(f"network namespace {netns!r} does not exist")
        try:
            self._sock = RtnlSocket(netns, NETNS_DIR)
        except OSError as e:
            raise AgentError(f"cannot open netlink in namespace {netns or '(own)'}: {e}") from e

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    # ---------------------------------------------------------------- reads
    def observe(self) -> Dumps:
        """Exactly one dump per kind: links, addresses, routes."""
        self.flush()
        try:
            links = self._sock.dump(rtnl.RTM_GETLINK)
            addrs = self._sock.dump(rtnl.RTM_GETADDR)
            routes = self._sock.dump(rtnl.RTM_GETROUTE)
        except NetlinkError as e:
            raise AgentError(f"netlink dump failed: {e}") from e
        self._indexes = {str(rec["name"]): int(rec["index"]) for rec in links if rec["name"]}
        return Dumps(links, addrs, routes)

    def index(self, name: str) -> int:
        if name in self._creating:  # queued: its index comes with the kernel's answer
            self.flush()
        cached = self._indexes.get(name)
        if cached is not None:
            return cached
        self.flush()  # a lookup must see what the queued writes change
        try:
            found = self._sock.get_link(name=name)
        except NetlinkError as e:
            raise AgentError(f"{name}: looking it up failed: {os.strerror(e.code) if e.code else e}") from e
        if found is None:
            raise AgentError(f"{name}: no such interface")
        self._indexes[name] = int(found["index"])
        return int(found["index"])

    # ---------------------------------------------------------------- batching
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Queue the writes made inside, and send them many at a time (each still acknowledged on its own);
        whatever is queued goes out when the block ends, and a refused write raises :class:`WriteError`."""
        outer = self._queue is not None
        if not outer:
            self._queue = []
        try:
            yield
        finally:
            if not outer:
                try:
                    self.flush()
                finally:
                    self._queue = None

    def flush(self) -> None:
        """Send the queued writes; raise :class:`WriteError` for the first one refused (after every answer
        was read, so each link a later create made is in :attr:`created`)."""
        if not self._queue:
            return
        queued, self._queue = self._queue, []
        self._creating.clear()
        replies = self._sock.transact([q.request for q in queued])
        first: WriteError | None = None
        for q, reply in zip(queued, replies, strict=True):
            error = self._answer(q, reply)
            if error is not None and first is None:
                first = error
        if first is not None:
            raise first

    def _answer(self, q: _Queued, reply: Reply) -> WriteError | None:
        if reply.error:
            if q.kind and reply.error in (errno.EOPNOTSUPP, errno.EAFNOSUPPORT):
                err = missing(q.kind, q.iface)
                return WriteError(str(err), q.tag)
            return WriteError(f"{q.iface}: {q.what} failed: {os.strerror(reply.error)}", q.tag)
        if q.creates is not None:
            for rec in reply.echoed:
                if rec["name"] == q.creates:
                    self._indexes[q.creates] = int(rec["index"])
                    self.created.append((int(rec["index"]), q.creates))
                    return None
            # a kernel before 6.3 does not echo the new link; the exclusive create succeeded just now, so
            # the link of that name is the one it made
            self._indexes.pop(q.creates, None)
            self.created.append((self.index(q.creates), q.creates))
        return None

    # ---------------------------------------------------------------- writes
    def _write(
        self, what: str, iface: str, request: Request, kind: str | None = None, creates: str | None = None
    ) -> None:
        """Count, log and send one write request (queue it inside :meth:`batch`)."""
        self.writes += 1
        _count()
        self.log.append(what)
        if self.before_write is not None:
            try:
                self.before_write(what)
            except BaseException:
                self.flush()  # the writes before this one happen, as they would have one by one
                raise
        q = _Queued(what, iface, request, kind, self.tag, creates)
        if self._queue is not None:
            self._queue.append(q)
            if creates:
                self._creating.add(creates)
            return
        error = self._answer(q, self._sock.transact([request])[0])
        if error is not None:
            raise error

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
    ) -> int | None:
        """Create a link of nmstate type ``itype`` (``linux-bridge``, ``vlan``, ``bond``, ``veth``, ...) and
        return the ifindex of the link this request created (a veth: of ``name``; its peer goes with it);
        inside :meth:`batch` None, the index joins :attr:`created` when the kernel answers.

        The create is exclusive (``NLM_F_EXCL``): a link of that name made by anyone else, even a moment
        ago, makes it fail with "File exists", and then nothing here is ours."""
        kind = TYPE_TO_KIND.get(itype, itype)
        data = self._kind_data(name, kind, base=base, vlan_id=vlan_id, bond_mode=bond_mode, stp=stp, vxlan_id=vxlan_id)
        attrs = []
        if kind == "vlan":
            attrs.append(rtnl.attr(rtnl.IFLA["IFLA_LINK"], rtnl.u32(self.index(str(base)))))
        peer_name = (peer or f"{name}-p"[:15]) if kind == "veth" else None
        if peer_name:
            data = [
                rtnl.nest(
                    rtnl.KIND_DATA["veth"]["VETH_INFO_PEER"],
                    rtnl.link(0, attrs=[rtnl.attr(rtnl.IFLA["IFLA_IFNAME"], rtnl.text(peer_name))]).body,
                )
            ]
        if mac:
            attrs.append(rtnl.attr(rtnl.IFLA["IFLA_ADDRESS"], rtnl.mac(mac.lower())))
        self._indexes.pop(name, None)
        self._indexes.pop(peer_name or "", None)
        before = len(self.created)
        self._write(f"link add {name} type {kind}", name, rtnl.new_link(name, kind, data, attrs), kind, creates=name)
        return self.created[before][0] if len(self.created) > before else None

    @staticmethod
    def _kind_data(
        name: str,
        kind: str,
        *,
        base: str | None,
        vlan_id: int | None,
        bond_mode: str | None,
        stp: bool | None,
        vxlan_id: int | None,
    ) -> list[bytes]:
        """The IFLA_INFO_DATA attributes of a new link of ``kind``."""
        numbers = rtnl.KIND_DATA.get(kind, {})
        if kind == "vlan":
            if base is None or vlan_id is None:
                raise AgentError(f"{name}: a vlan needs vlan.base-iface and vlan.id")
            return [rtnl.attr(numbers["IFLA_VLAN_ID"], int(vlan_id).to_bytes(2, "little"))]
        if kind == "bond" and bond_mode:
            return [rtnl.attr(numbers["IFLA_BOND_MODE"], bytes([_bond_mode(name, bond_mode)]))]
        if kind == "bridge" and stp is not None:
            return [rtnl.attr(numbers["IFLA_BR_STP_STATE"], rtnl.u32(1 if stp else 0))]
        if kind == "vxlan":
            return [rtnl.attr(numbers["IFLA_VXLAN_ID"], rtnl.u32(int(vxlan_id or 0)))]
        return []

    def delete_created(self, index: int, name: str) -> bool:
        """Delete the link this agent created as ``index`` -- only while that ifindex still is ``name``.
        False when it is gone already (or the index now names another link: then it is not ours)."""
        self.flush()
        try:
            found = self._sock.get_link(index)
        except NetlinkError as e:
            raise AgentError(
                f"{name}: looking up ifindex {index} failed: {os.strerror(e.code) if e.code else e}"
            ) from e
        if found is None or found["name"] != name:
            return False
        try:
            self._write(f"link del {name} (ifindex {index})", name, rtnl.link(rtnl.RTM_DELLINK, index))
        finally:
            self._indexes.clear()
        return True

    def delete_link(self, name: str) -> None:
        idx = self.index(name)
        try:
            self._write(f"link del {name}", name, rtnl.link(rtnl.RTM_DELLINK, idx))
        finally:  # a veth's peer goes with it: after a delete, trust only fresh lookups
            self._indexes.clear()

    def _set(self, name: str, what: str, **kw: object) -> None:
        idx = self.index(name)
        attrs = [rtnl.attr(rtnl.IFLA[key], value) for key, value in kw.items() if isinstance(value, bytes)]
        up = kw.get("up")
        self._write(what, name, rtnl.link(rtnl.RTM_NEWLINK, idx, up=up if isinstance(up, bool) else None, attrs=attrs))

    def set_mtu(self, name: str, mtu: int) -> None:
        self._set(name, f"link set {name} mtu {mtu}", IFLA_MTU=rtnl.u32(int(mtu)))

    def set_state(self, name: str, up: bool) -> None:
        self._set(name, f"link set {name} {'up' if up else 'down'}", up=up)

    def set_mac(self, name: str, mac: str) -> None:
        self._set(name, f"link set {name} address {mac}", IFLA_ADDRESS=rtnl.mac(mac.lower()))

    def set_master(self, name: str, master: str | None) -> None:
        """Attach ``name`` to ``master`` (bridge or bond), or detach it when ``master`` is None."""
        midx = self.index(master) if master else 0
        what = f"link set {name} master {master}" if master else f"link set {name} nomaster"
        self._set(name, what, IFLA_MASTER=rtnl.u32(midx))

    def set_stp(self, name: str, enabled: bool) -> None:
        val = 1 if enabled else 0
        idx = self.index(name)
        info = rtnl.nest(
            rtnl.INFO["IFLA_INFO_DATA"], rtnl.attr(rtnl.KIND_DATA["bridge"]["IFLA_BR_STP_STATE"], rtnl.u32(val))
        )
        kind = rtnl.attr(rtnl.INFO["IFLA_INFO_KIND"], rtnl.text("bridge"))
        request = rtnl.link(rtnl.RTM_NEWLINK, idx, attrs=[rtnl.nest(rtnl.IFLA["IFLA_LINKINFO"], kind, info)])
        self._write(f"link set {name} type bridge stp_state {val}", name, request)

    def add_address(self, name: str, ip: str, prefixlen: int) -> None:
        request = rtnl.address(rtnl.RTM_NEWADDR, self.index(name), ip, int(prefixlen))
        self._write(f"addr add {ip}/{prefixlen} dev {name}", name, request)

    def del_address(self, name: str, ip: str, prefixlen: int) -> None:
        request = rtnl.address(rtnl.RTM_DELADDR, self.index(name), ip, int(prefixlen))
        self._write(f"addr del {ip}/{prefixlen} dev {name}", name, request)

    def _route(self, msg_type: int, dst: str, gateway: str | None, oif: str | None, table: int, metric: int) -> Request:
        net, _, plen = dst.partition("/")
        oif_index = self.index(oif) if oif else None
        return rtnl.route(msg_type, net, int(plen or 0), int(table), gateway or None, oif_index, int(metric or 0))

    def replace_route(self, dst: str, gateway: str | None, oif: str | None, table: int = 254, metric: int = 0) -> None:
        request = self._route(rtnl.RTM_NEWROUTE, dst, gateway, oif, table, metric)
        self._write(f"route replace {dst} via {gateway} dev {oif} table {table}", oif or dst, request)

    def del_route(self, dst: str, gateway: str | None, oif: str | None, table: int = 254, metric: int = 0) -> None:
        request = self._route(rtnl.RTM_DELROUTE, dst, gateway, oif, table, metric)
        self._write(f"route del {dst} via {gateway} dev {oif} table {table}", oif or dst, request)


def _bond_mode(name: str, mode: str) -> int:
    """The kernel's number of an nmstate bond mode (``802.3ad`` -> 4)."""
    if mode not in BOND_MODES:
        raise AgentError(f"{name}: unknown bond mode {mode!r} (one of {', '.join(BOND_MODES)})")
    return BOND_MODES.index(mode)
