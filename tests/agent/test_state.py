"""state.current_state on recorded dumps (pure), plus one live round trip."""

from __future__ import annotations

import pytest

from reconciler.agent.netlink import Netlink
from reconciler.agent.state import Dumps, current_state, default_gateways, interfaces_by_name
from tests.agent.conftest import Topo, ip


def link(index: int, name: str, kind: str | None, **kw: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "index": index,
        "name": name,
        "kind": kind,
        "link_type": "ether",
        "mtu": 1500,
        "up": True,
        "mac": f"aa:bb:cc:00:00:{index:02x}",
        "master": None,
        "link": None,
        "stp": None,
        "vlan_id": None,
        "bond_mode": None,
        "vxlan_id": None,
    }
    rec.update(kw)
    return rec


#: recorded from a node with a bond, a VLAN on it, a bridge over the VLAN, and an uplink
RECORDED = Dumps(
    links=[
        link(1, "lo", None, link_type="loopback", mtu=65536, mac="00:00:00:00:00:00"),
        link(2, "eth0", None),
        link(3, "eth1", None, master=5, mtu=9000),
        link(4, "eth2", None, master=5, mtu=9000, up=False),
        link(5, "bond0", "bond", bond_mode=1, mtu=9000),
        link(6, "bond0.102", "vlan", link=5, vlan_id=102),
        link(7, "br102", "bridge", stp=0),
        link(8, "ve1", "veth", link=9, master=7),
        link(9, "ve1p", "veth", link=8),
    ],
    addresses=[
        {"index": 1, "family": 4, "ip": "127.0.0.1", "prefixlen": 8, "scope": 254},
        {"index": 2, "family": 4, "ip": "10.0.0.2", "prefixlen": 24, "scope": 0},
        {"index": 2, "family": 6, "ip": "fe80::1", "prefixlen": 64, "scope": 253},
        {"index": 7, "family": 6, "ip": "fd00::7", "prefixlen": 64, "scope": 0},
        {"index": 7, "family": 4, "ip": "192.168.2.1", "prefixlen": 24, "scope": 0},
    ],
    routes=[
        {"family": 4, "dst": None, "dst_len": 0, "gateway": "10.0.0.1", "oif": 2, "table": 254, "proto": 4,
         "scope": 0, "type": 1, "priority": None},
        {"family": 4, "dst": "10.0.0.0", "dst_len": 24, "gateway": None, "oif": 2, "table": 254, "proto": 2,
         "scope": 253, "type": 1, "priority": None},
        {"family": 4, "dst": "10.0.0.2", "dst_len": 32, "gateway": None, "oif": 2, "table": 255, "proto": 2,
         "scope": 254, "type": 2, "priority": None},
        {"family": 6, "dst": "fe80::", "dst_len": 64, "gateway": None, "oif": 2, "table": 254, "proto": 2,
         "scope": 0, "type": 1, "priority": 256},
    ],
)  # fmt: skip


def test_recorded_dump_maps_to_nmstate_shapes() -> None:
    st = current_state(RECORDED)
    by = interfaces_by_name(st)
    assert [i["name"] for i in st["interfaces"]] == sorted(by)
    assert by["lo"]["type"] == "loopback"
    assert by["eth0"]["type"] == "ethernet"
    assert by["eth0"]["ipv4"] == {"enabled": True, "dhcp": False, "address": [{"ip": "10.0.0.2", "prefix-length": 24}]}
    assert by["eth0"]["ipv6"]["address"] == []  # link-local left out
    assert by["eth2"]["state"] == "down" and by["eth2"]["controller"] == "bond0"
    assert by["bond0"]["link-aggregation"] == {"mode": "active-backup", "port": ["eth1", "eth2"]}
    assert by["bond0.102"]["type"] == "vlan"
    assert by["bond0.102"]["vlan"] == {"base-iface": "bond0", "id": 102}
    assert by["br102"]["type"] == "linux-bridge"
    assert by["br102"]["bridge"] == {"options": {"stp": {"enabled": False}}, "port": [{"name": "ve1"}]}
    assert [a["ip"] for a in by["br102"]["ipv6"]["address"]] == ["fd00::7"]
    assert by["ve1"]["veth"] == {"peer": "ve1p"} and by["ve1"]["controller"] == "br102"
    assert by["eth1"]["mac-address"] == "AA:BB:CC:00:00:03"
    running = st["routes"]["running"]
    assert [r["destination"] for r in running] == ["0.0.0.0/0", "10.0.0.0/24"]  # no local table, no fe80
    assert default_gateways(st) == [running[0]]
    assert running[0]["next-hop-interface"] == "eth0" and running[0]["next-hop-address"] == "10.0.0.1"


def test_dumps_round_trip_through_dict() -> None:
    assert Dumps.from_dict(RECORDED.as_dict()) == RECORDED


@pytest.mark.netns
def test_live_observe_matches_ip(topo: Topo) -> None:
    ip("link", "add", "br7", "type", "bridge", "stp_state", "1", ns=topo.node)
    ip("link", "set", "ve1", "master", "br7", ns=topo.node)
    ip("link", "set", "ve2", "mtu", "1400", ns=topo.node)
    with Netlink(topo.node) as nl:
        by = interfaces_by_name(current_state(nl.observe()))
        assert nl.writes == 0
    assert by["br7"]["bridge"]["options"]["stp"]["enabled"] is True
    assert by["br7"]["bridge"]["port"] == [{"name": "ve1"}]
    assert by["ve2"]["mtu"] == 1400
    assert by["ve1"]["veth"]["peer"] == "ve1p"
    assert by["eth0"]["veth"]["peer"] is None  # peer in the gateway namespace
    assert by["eth0"]["ipv4"]["address"] == [{"ip": "10.77.0.2", "prefix-length": 24}]
