"""rtnetlink messages: requests encoded with ``struct``, dumps decoded only as far as the agent reads them.

Why not pyroute2's ``IPRoute``: in pyroute2 0.9 every request runs its own asyncio loop and encodes and
decodes every attribute through its message classes. Applying 200 bridges (1,200 requests) took five times
as long as ``ip -batch`` doing the same, and a no-op pass spent 0.5 s decoding three dumps where ``ip -j``
needs 20 ms. Here a request is a few ``struct.pack`` calls, many requests go to the kernel in one
``send`` (the kernel answers each with its own acknowledgement, so every one still succeeds or fails on its
own), and a dump is walked attribute header by attribute header, decoding only the attributes
:mod:`reconciler.agent.state` maps.

pyroute2 stays the library: attribute numbers come from its message tables (``ifinfmsg``, ``ifaddrmsg``,
``rtmsg`` and the link-kind tables), flags and message types from its constants, errors are its
``NetlinkError``, and a namespace is entered with its ``setns``. Only the request loop is ours.

Pure: the socket that sends these is ``reconciler.agent.rtsock``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2.netlink import NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    rt_proto,
    rt_scope,
    rt_type,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

__all__ = [  # the message types callers name through this module
    "RTM_DELADDR",
    "RTM_DELLINK",
    "RTM_DELROUTE",
    "RTM_GETADDR",
    "RTM_GETLINK",
    "RTM_GETROUTE",
    "RTM_NEWADDR",
    "RTM_NEWLINK",
    "RTM_NEWROUTE",
    "Request",
    "address",
    "address_record",
    "attr",
    "attrs_of",
    "link",
    "link_record",
    "mac",
    "nest",
    "new_link",
    "read_text",
    "route",
    "route_record",
    "text",
    "u32",
]

Record = dict[str, Any]
#: what the decoders read: a received buffer, or bytes
Buffer = bytes | bytearray


def _numbers(table: Any) -> dict[str, int]:
    """Attribute name -> number from a pyroute2 message class (its ``nla_map`` lists names by position, or
    gives ``(number, name, format)``)."""
    out: dict[str, int] = {}
    for position, entry in enumerate(table.nla_map):
        if isinstance(entry[0], int):
            out[entry[1]] = entry[0]
        else:
            out[entry[0]] = position
    return out


IFLA = _numbers(ifinfmsg)
INFO = _numbers(ifinfmsg.ifinfo)
#: the IFLA_INFO_DATA tables of the link kinds the agent makes or reads
KIND_DATA = {kind: _numbers(ifinfmsg.ifinfo.data_map[kind]) for kind in ("bridge", "vlan", "bond", "vxlan", "veth")}
IFA = _numbers(ifaddrmsg)
RTA = _numbers(rtmsg)

NLA_F_NESTED = 0x8000
_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
IFF_UP = 0x1
ARPHRD_LOOPBACK = 772
RTPROT_STATIC = rt_proto["static"]
RTN_UNICAST = rt_type["unicast"]
RT_SCOPE_NOWHERE = rt_scope["nowhere"]

HDR = struct.Struct("=IHHII")
IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
_NLA = struct.Struct("=HH")
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")


# ---------------------------------------------------------------------------------------------- encoding
def attr(number: int, payload: bytes) -> bytes:
    """One attribute, padded to four bytes."""
    size = _NLA.size + len(payload)
    return _NLA.pack(size, number) + payload + b"\0" * (-size & 3)


def nest(number: int, *children: bytes) -> bytes:
    return attr(number | NLA_F_NESTED, b"".join(children))


def u32(value: int) -> bytes:
    return U32.pack(value)


def text(value: str) -> bytes:
    return value.encode() + b"\0"


def mac(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


def ip(value: str) -> tuple[int, bytes]:
    """(address family, packed address) of an IPv4 or IPv6 address."""
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    return family, socket.inet_pton(family, value)


@dataclass(frozen=True)
class Request:
    """One request: message type, flags beyond REQUEST|ACK, and the body (fixed header plus attributes)."""

    type: int
    flags: int
    body: bytes


def link(
    msg_type: int, index: int = 0, *, flags: int = 0, up: bool | None = None, attrs: Sequence[bytes] = ()
) -> Request:
    """An ``ifinfomsg`` request; ``up`` sets or clears IFF_UP (and only that flag)."""
    ifi_flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return Request(msg_type, flags, IFINFO.pack(0, 0, index, ifi_flags, change) + b"".join(attrs))


def new_link(name: str, kind: str, data: Sequence[bytes] = (), attrs: Sequence[bytes] = ()) -> Request:
    """Create ``name`` of rtnetlink ``kind`` exclusively, echoing the new link back (its ifindex)."""
    info = [attr(INFO["IFLA_INFO_KIND"], text(kind))]
    if data:
        info.append(nest(INFO["IFLA_INFO_DATA"], *data))
    return link(
        RTM_NEWLINK,
        flags=NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        attrs=[attr(IFLA["IFLA_IFNAME"], text(name)), *attrs, nest(IFLA["IFLA_LINKINFO"], *info)],
    )


def address(msg_type: int, index: int, value: str, prefixlen: int) -> Request:
    family, packed = ip(value)
    body = _IFADDR.pack(family, prefixlen, 0, 0, index)
    body += attr(IFA["IFA_LOCAL"], packed) + attr(IFA["IFA_ADDRESS"], packed)
    return Request(msg_type, NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWADDR else 0, body)


def route(
    msg_type: int, dst: str, dst_len: int, table: int, gateway: str | None, oif: int | None, priority: int
) -> Request:
    """A unicast route in ``table``. An RTM_NEWROUTE replaces one of the same key (``ip route replace``) and is
    ``static`` with global scope, as pyroute2 made them; an RTM_DELROUTE matches any protocol and scope, as
    ``ip route del`` does."""
    family, packed = ip(dst)
    new = msg_type == RTM_NEWROUTE
    proto, scope, rtype = (RTPROT_STATIC, 0, RTN_UNICAST) if new else (0, RT_SCOPE_NOWHERE, 0)
    body = RTMSG.pack(family, dst_len, 0, 0, table if table < 256 else 0, proto, scope, rtype, 0)
    attrs = [attr(RTA["RTA_DST"], packed), attr(RTA["RTA_TABLE"], u32(table))]
    if gateway:
        attrs.append(attr(RTA["RTA_GATEWAY"], ip(gateway)[1]))
    if oif:
        attrs.append(attr(RTA["RTA_OIF"], u32(oif)))
    if priority:
        attrs.append(attr(RTA["RTA_PRIORITY"], u32(priority)))
    return Request(msg_type, NLM_F_CREATE | NLM_F_REPLACE if new else 0, body + b"".join(attrs))


# ---------------------------------------------------------------------------------------------- decoding
def attrs_of(buf: Buffer, start: int, end: int) -> dict[int, tuple[int, int]]:
    """Attribute number -> (start, end) of its payload, for the attributes in ``buf[start:end]``; nothing is
    decoded yet (most of a link's fifty attributes are never read)."""
    found: dict[int, tuple[int, int]] = {}
    unpack = _NLA.unpack_from
    while start + 4 <= end:
        size, number = unpack(buf, start)
        if size < 4:
            break
        found[number & _TYPE_MASK] = (start + 4, start + size)
        start += (size + 3) & ~3
    return found


def _u32(buf: Buffer, span: tuple[int, int] | None) -> int | None:
    return None if span is None else int(U32.unpack_from(buf, span[0])[0])


def _i32(buf: Buffer, span: tuple[int, int] | None) -> int | None:
    return None if span is None else int(I32.unpack_from(buf, span[0])[0])


def _u8(buf: Buffer, span: tuple[int, int] | None) -> int | None:
    return None if span is None else buf[span[0]]


def _u16(buf: Buffer, span: tuple[int, int] | None) -> int | None:
    return None if span is None else int.from_bytes(buf[span[0] : span[0] + 2], "little")


def read_text(buf: Buffer, span: tuple[int, int] | None) -> str | None:
    return None if span is None else bytes(buf[span[0] : span[1]]).split(b"\0", 1)[0].decode()


def _ip(buf: Buffer, span: tuple[int, int] | None, family: int) -> str | None:
    return None if span is None else socket.inet_ntop(family, bytes(buf[span[0] : span[1]]))


_KIND_FIELD = {  # rtnetlink kind -> (record field, IFLA_INFO_DATA attribute, reader)
    "bridge": ("stp", KIND_DATA["bridge"]["IFLA_BR_STP_STATE"], _u32),
    "vlan": ("vlan_id", KIND_DATA["vlan"]["IFLA_VLAN_ID"], _u16),
    "bond": ("bond_mode", KIND_DATA["bond"]["IFLA_BOND_MODE"], _u8),
    "vxlan": ("vxlan_id", KIND_DATA["vxlan"]["IFLA_VXLAN_ID"], _u32),
}


def link_record(buf: Buffer, start: int, end: int) -> Record:
    """One RTM_NEWLINK body (``buf[start:end]``) as the plain record ``state.py`` maps."""
    _family, ifi_type, index, flags, _change = IFINFO.unpack_from(buf, start)
    a = attrs_of(buf, start + IFINFO.size, end)
    kind = data = None
    if (info := a.get(IFLA["IFLA_LINKINFO"])) is not None:
        inner = attrs_of(buf, *info)
        kind = read_text(buf, inner.get(INFO["IFLA_INFO_KIND"]))
        if (span := inner.get(INFO["IFLA_INFO_DATA"])) is not None:
            data = attrs_of(buf, *span)
    address_span = a.get(IFLA["IFLA_ADDRESS"])
    rec: Record = {
        "index": index,
        "name": read_text(buf, a.get(IFLA["IFLA_IFNAME"])),
        "kind": kind,
        "link_type": "loopback" if ifi_type == ARPHRD_LOOPBACK else "ether",
        "mtu": _u32(buf, a.get(IFLA["IFLA_MTU"])),
        "up": bool(flags & IFF_UP),
        "mac": None if address_span is None else ":".join(f"{b:02x}" for b in buf[address_span[0] : address_span[1]]),
        "master": _u32(buf, a.get(IFLA["IFLA_MASTER"])),
        "link": _i32(buf, a.get(IFLA["IFLA_LINK"])),
        "stp": None,
        "vlan_id": None,
        "bond_mode": None,
        "vxlan_id": None,
    }
    if data is not None and kind in _KIND_FIELD:
        name, number, read = _KIND_FIELD[kind]
        rec[name] = read(buf, data.get(number))
    if kind == "veth" and rec["link"] is not None and IFLA["IFLA_LINK_NETNSID"] in a:
        rec["link"] = None  # the peer lives in another namespace: its index means nothing here
    return rec


def address_record(buf: Buffer, start: int, end: int) -> Record:
    family, prefixlen, _flags, scope, index = _IFADDR.unpack_from(buf, start)
    a = attrs_of(buf, start + _IFADDR.size, end)
    local = _ip(buf, a.get(IFA["IFA_LOCAL"]), family) if family == socket.AF_INET else None
    return {
        "index": index,
        "family": 4 if family == socket.AF_INET else 6,
        "ip": local or _ip(buf, a.get(IFA["IFA_ADDRESS"]), family),
        "prefixlen": prefixlen,
        "scope": scope,
    }


def route_record(buf: Buffer, start: int, end: int) -> Record:
    family, dst_len, _src, _tos, table, proto, scope, rtype, _flags = RTMSG.unpack_from(buf, start)
    a = attrs_of(buf, start + RTMSG.size, end)
    return {
        "family": 4 if family == socket.AF_INET else 6,
        "dst": _ip(buf, a.get(RTA["RTA_DST"]), family),
        "dst_len": dst_len,
        "gateway": _ip(buf, a.get(RTA["RTA_GATEWAY"]), family),
        "oif": _u32(buf, a.get(RTA["RTA_OIF"])),
        "table": _u32(buf, a.get(RTA["RTA_TABLE"])) or table,
        "proto": proto,
        "scope": scope,
        "type": rtype,
        "priority": _u32(buf, a.get(RTA["RTA_PRIORITY"])),
    }
