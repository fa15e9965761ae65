"""A synchronous rtnetlink socket: requests sent in batches and acknowledged one by one, dumps read in one go.

Why not pyroute2's ``IPRoute``: in pyroute2 0.9 every request runs its own asyncio loop, and every message
is encoded and decoded attribute by attribute through its message classes. Here many requests go to the
kernel in one ``send`` (the kernel answers each with its own acknowledgement, so every one still succeeds
or fails on its own: a failing request does not stop the ones after it) and the codec is
``reconciler.agent.rtnl``. Errors are pyroute2's ``NetlinkError``; a namespace is entered with its ``setns``.

Side effects: sends to the kernel of the namespace the socket was opened in.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError

from reconciler.agent.rtnl import (
    HDR,
    I32,
    IFINFO,
    IFLA,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWLINK,
    RTMSG,
    U32,
    Buffer,
    Record,
    Request,
    address_record,
    attr,
    attrs_of,
    link_record,
    read_text,
    route_record,
    text,
)

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # an error answer does not echo the request's payload back
NETLINK_EXT_ACK = 11  # an error answer says why in words (NLMSGERR_ATTR_MSG)
NLMSGERR_ATTR_MSG = 1
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
SO_RCVBUFFORCE = 33  # root may exceed net.core.rmem_max
#: requests per ``send``: their answers (a create's echo is ~1.5 KiB) must fit the receive buffer at once
BATCH = 64


@dataclass
class Reply:
    """The kernel's answer to one request: ``error`` 0 or a positive errno, and what it echoed."""

    error: int = 0
    message: str = ""
    echoed: list[Record] = field(default_factory=list)  # links a create echoed back (link records)

    def raise_for_error(self) -> None:
        if self.error:
            raise NetlinkError(self.error, self.message or os.strerror(self.error))


def _messages(buf: Buffer, size: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, seq, body start, body end) of each message in ``buf[:size]``."""
    offset = 0
    while offset + HDR.size <= size:
        length, msg_type, flags, seq, _pid = HDR.unpack_from(buf, offset)
        if length < HDR.size:
            return
        yield msg_type, flags, seq, offset + HDR.size, offset + length
        offset += (length + 3) & ~3


class RtnlSocket:
    """A NETLINK_ROUTE socket opened in network namespace ``netns`` (``None``: the caller's own)."""

    def __init__(self, netns: str | None = None, netns_dir: str = "/run/netns") -> None:
        self._sock = _open_in(os.path.join(netns_dir, netns) if netns else None)
        self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)
                break
            except OSError:
                continue
        self._sock.bind((0, 0))
        self._seq = 0
        self._buf = bytearray(1 << 20)

    def close(self) -> None:
        self._sock.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def transact(self, requests: Sequence[Request]) -> list[Reply]:
        """Send ``requests`` (in batches of :data:`BATCH` per ``send``) and return one reply each, in order.

        The kernel handles a batch's requests one after the other and answers every one: a failing request
        does not stop the ones after it, so the caller learns what each did."""
        replies: list[Reply] = []
        for first in range(0, len(requests), BATCH):
            chunk = requests[first : first + BATCH]
            by_seq: dict[int, Reply] = {}
            out = bytearray()
            for request in chunk:
                seq = self._next_seq()
                by_seq[seq] = Reply(error=-1)
                flags = NLM_F_REQUEST | NLM_F_ACK | request.flags
                out += HDR.pack(HDR.size + len(request.body), request.type, flags, seq, 0) + request.body
                out += b"\0" * (-len(out) & 3)
            self._sock.send(bytes(out))
            pending = set(by_seq)
            while pending:
                size = self._sock.recv_into(self._buf)
                for msg_type, flags, seq, start, end in _messages(self._buf, size):
                    reply = by_seq.get(seq)
                    if reply is None:
                        continue
                    if msg_type == NLMSG_ERROR:
                        reply.error, reply.message = _error(self._buf, start, end, flags)
                        pending.discard(seq)
                    elif msg_type == RTM_NEWLINK:
                        reply.echoed.append(link_record(self._buf, start, end))
            replies += [by_seq[seq] for seq in sorted(by_seq)]
        return replies

    def dump(self, msg_type: int, family: int = 0) -> list[Record]:
        """Every object of one kind (links, addresses or routes) as records; redone when the kernel says the
        set changed under the dump (NLM_F_DUMP_INTR)."""
        decode = {RTM_GETLINK: link_record, RTM_GETADDR: address_record, RTM_GETROUTE: route_record}[msg_type]
        fixed = IFINFO.pack(family, 0, 0, 0, 0) if msg_type == RTM_GETLINK else RTMSG.pack(family, *[0] * 8)
        for _attempt in range(5):
            seq = self._next_seq()
            self._sock.send(HDR.pack(HDR.size + len(fixed), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + fixed)
            records: list[Record] = []
            interrupted = done = False
            while not done:
                size = self._sock.recv_into(self._buf)
                for kind, flags, got, start, end in _messages(self._buf, size):
                    if got != seq:
                        continue
                    interrupted |= bool(flags & NLM_F_DUMP_INTR)
                    if kind == NLMSG_DONE:
                        done = True
                    elif kind == NLMSG_ERROR:
                        error, message = _error(self._buf, start, end, flags)
                        raise NetlinkError(error, message or os.strerror(error))
                    else:
                        records.append(decode(self._buf, start, end))
            if not interrupted:
                return records
        raise NetlinkError(4, "the dump was interrupted five times in a row (links changing under it)")

    def get_link(self, index: int = 0, name: str | None = None) -> Record | None:
        """The link of ``index`` (or named ``name``) now, or None when there is none."""
        seq = self._next_seq()
        body = IFINFO.pack(0, 0, index, 0, 0) + (attr(IFLA["IFLA_IFNAME"], text(name)) if name else b"")
        self._sock.send(HDR.pack(HDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST, seq, 0) + body)
        while True:
            size = self._sock.recv_into(self._buf)
            for kind, flags, got, start, end in _messages(self._buf, size):
                if got != seq:
                    continue
                if kind == NLMSG_ERROR:
                    error, message = _error(self._buf, start, end, flags)
                    if error == errno.ENODEV:
                        return None
                    raise NetlinkError(error, message or os.strerror(error))
                return link_record(self._buf, start, end)


def _error(buf: Buffer, start: int, end: int, flags: int) -> tuple[int, str]:
    """(positive errno or 0, the kernel's extended message) of an NLMSG_ERROR body."""
    error = -int(I32.unpack_from(buf, start)[0])
    message = ""
    if flags & NLM_F_ACK_TLVS:
        length = U32.unpack_from(buf, start + 4)[0]
        # the request's header comes back (the payload too unless capped: NETLINK_CAP_ACK is set)
        tlvs = start + 4 + (HDR.size if flags & NLM_F_CAPPED else length)
        message = read_text(buf, attrs_of(buf, tlvs, end).get(NLMSGERR_ATTR_MSG)) or ""
    return error, message


def _open_in(path: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket created inside the namespace at ``path``: a socket belongs to the namespace
    it was created in, so this thread enters it for the ``socket()`` call only and comes back."""
    if path is None:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    there = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pyroute2_netns.setns(there)
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        finally:
            pyroute2_netns.setns(here)
    finally:
        os.close(here)
        os.close(there)
