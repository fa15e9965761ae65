"""desired.py, steps.py and drift.py, purely: selection, merge, diff order (incl. VLAN/bond), drift."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.agent.desired import merge_desired, select_policies
from reconciler.agent.drift import drift
from reconciler.agent.steps import Op, Step, diff
from reconciler.errors import AgentError


def eth(name: str, mtu: int = 1500, state: str = "up", ctrl: str | None = None, addrs: tuple[str, ...] = (),
        itype: str = "ethernet") -> dict[str, Any]:  # fmt: skip
    iface: dict[str, Any] = {
        "name": name,
        "type": itype,
        "state": state,
        "mtu": mtu,
        "ipv4": {
            "enabled": bool(addrs),
            "dhcp": False,
            "address": [{"ip": a.split("/")[0], "prefix-length": int(a.split("/")[1])} for a in addrs],
        },
        "ipv6": {"enabled": False, "dhcp": False, "address": []},
    }
    if ctrl:
        iface["controller"] = ctrl
    return iface


def bridge(name: str, ports: list[str], mtu: int = 1500, stp: bool = False, state: str = "up") -> dict[str, Any]:
    b = eth(name, mtu=mtu, state=state, itype="linux-bridge")
    b["bridge"] = {"options": {"stp": {"enabled": stp}}, "port": [{"name": p} for p in ports]}
    return b


def observed(*ifaces: dict[str, Any], routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"interfaces": list(ifaces), "routes": {"running": routes or []}}


DEFAULT_ROUTE = {"destination": "0.0.0.0/0", "next-hop-address": "10.0.0.1", "next-hop-interface": "eth0",
                 "table-id": 254, "metric": 0, "proto": 4}  # fmt: skip


def ops(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.op.value, s.target) for s in steps]


def test_select_policies_by_label_equality() -> None:
    pols = [
        {"metadata": {"name": "b"}, "spec": {"nodeSelector": {"role": "worker"}}},
        {"metadata": {"name": "a"}, "spec": {}},
        {"metadata": {"name": "c"}, "spec": {"nodeSelector": {"role": "worker", "zone": "x"}}},
        {"metadata": {"name": "d"}, "spec": {"nodeSelector": {}}},
    ]
    assert [p["metadata"]["name"] for p in select_policies(pols, {"role": "worker"})] == ["a", "b", "d"]
    assert [p["metadata"]["name"] for p in select_policies(pols, {})] == ["a", "d"]


def test_merge_detects_disagreeing_policies() -> None:
    p1 = {"metadata": {"name": "p1"}, "spec": {"desiredState": {"interfaces": [{"name": "br1", "mtu": 1500}]}}}
    p2 = {"metadata": {"name": "p2"}, "spec": {"desiredState": {"interfaces": [{"name": "br1", "mtu": 9000}]}}}
    p3 = {"metadata": {"name": "p3"}, "spec": {"desiredState": {"interfaces": [{"name": "br1", "state": "up"}]}}}
    assert merge_desired([p1, p3]) == {"br1": {"name": "br1", "mtu": 1500, "state": "up"}}
    with pytest.raises(AgentError, match=r"p1 and /p2 disagree on br1\.mtu"):
        merge_desired([p2, p1])


def test_bond_vlan_bridge_ordering() -> None:
    obs = observed(eth("eth1", mtu=1500), eth("eth2", mtu=1500))
    want = [
        {"name": "br102", "type": "linux-bridge", "mtu": 9000,
         "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "bond0.102"}]}},
        {"name": "bond0.102", "type": "vlan", "mtu": 9000, "vlan": {"base-iface": "bond0", "id": 102}},
        {"name": "bond0", "type": "bond", "mtu": 9000,
         "link-aggregation": {"mode": "active-backup", "port": ["eth1", "eth2"]}},
    ]  # fmt: skip
    steps = diff(want, obs)
    o = ops(steps)
    assert o[:3] == [("create_link", "bond0"), ("create_link", "bond0.102"), ("create_link", "br102")]
    assert o.index(("attach_port", "eth1")) < o.index(("attach_port", "bond0.102"))  # bond ports first
    assert max(o.index(("create_link", n)) for n in ("bond0", "br102")) < o.index(("attach_port", "eth1"))
    # raising MTU: lower before upper
    assert o.index(("set_mtu", "bond0")) < o.index(("set_mtu", "bond0.102")) < o.index(("set_mtu", "br102"))
    assert o.index(("attach_port", "bond0.102")) < o.index(("set_mtu", "bond0"))
    assert steps[1].params["base"] == "bond0" and steps[1].params["id"] == 102
    assert steps[0].params["mode"] == "active-backup"


def test_vlan_on_vlan_created_after_its_base_even_against_name_order() -> None:
    want = [
        {"name": "a.20", "type": "vlan", "vlan": {"base-iface": "z.10", "id": 20}},
        {"name": "z.10", "type": "vlan", "vlan": {"base-iface": "eth1", "id": 10}},
    ]
    assert ops(diff(want, observed(eth("eth1"))))[:2] == [("create_link", "z.10"), ("create_link", "a.20")]


def test_mtu_lowered_upper_first_and_raised_lower_first() -> None:
    obs = observed(bridge("br1", ["eth1"], mtu=9000), eth("eth1", mtu=9000, ctrl="br1"))
    down = diff([{"name": "br1", "mtu": 1400}, {"name": "eth1", "mtu": 1400}], obs)
    assert ops(down) == [("set_mtu", "br1"), ("set_mtu", "eth1")]
    obs = observed(bridge("br1", ["eth1"], mtu=1400), eth("eth1", mtu=1400, ctrl="br1"))
    up = diff([{"name": "eth1", "mtu": 9000}, {"name": "br1", "mtu": 9000}], obs)
    assert ops(up) == [("set_mtu", "eth1"), ("set_mtu", "br1")]


def test_vlan_mtu_order_against_its_base() -> None:
    vlan = eth("eth1.5", mtu=9000, itype="vlan")
    vlan["vlan"] = {"base-iface": "eth1", "id": 5}
    obs = observed(eth("eth1", mtu=9000), vlan)
    assert ops(diff([{"name": "eth1", "mtu": 1500}, {"name": "eth1.5", "mtu": 1500}], obs)) == [
        ("set_mtu", "eth1.5"),
        ("set_mtu", "eth1"),
    ]


def test_address_moves_after_links_exist_and_default_route_follows() -> None:
    obs = observed(eth("eth0", addrs=("10.0.0.2/24",)), routes=[DEFAULT_ROUTE])
    want = [
        {"name": "br-ex", "type": "linux-bridge", "bridge": {"port": [{"name": "eth0"}]},
         "ipv4": {"enabled": True, "address": [{"ip": "10.0.0.2", "prefix-length": 24}]}},
        {"name": "eth0", "ipv4": {"enabled": False}},
    ]  # fmt: skip
    o = ops(diff(want, obs))
    assert o == [
        ("create_link", "br-ex"),
        ("attach_port", "eth0"),
        ("set_state", "br-ex"),
        ("del_address", "eth0"),
        ("add_address", "br-ex"),
        ("add_route", "br-ex"),
    ]


def test_deletes_last_with_ports_detached_first_and_unnamed_left_alone() -> None:
    obs = observed(
        bridge("brold", ["eth3"]),
        eth("eth3", ctrl="brold"),
        eth("eth9", mtu=1400),  # not named by any policy
        eth("eth4", state="down"),
    )
    want = [{"name": "brold", "type": "linux-bridge", "state": "absent"}, {"name": "eth4", "state": "up"}]
    assert ops(diff(want, obs)) == [("set_state", "eth4"), ("detach_port", "eth3"), ("delete_link", "brold")]
    assert diff([{"name": "gone", "state": "absent"}], obs) == []


def test_port_removed_from_bridge_is_detached_and_stp_toggled() -> None:
    obs = observed(bridge("br1", ["eth1", "eth2"]), eth("eth1", ctrl="br1"), eth("eth2", ctrl="br1"))
    want = [{"name": "br1", "type": "linux-bridge", "bridge": {"options": {"stp": {"enabled": True}},
                                                              "port": [{"name": "eth1"}]}}]  # fmt: skip
    steps = diff(want, obs)
    assert ops(steps) == [("set_stp", "br1"), ("detach_port", "eth2")]
    assert steps[0].params == {"enabled": True, "actual": False}


def test_in_sync_means_no_steps_and_no_drift() -> None:
    obs = observed(bridge("br1", ["eth1"], mtu=1400), eth("eth1", ctrl="br1", mtu=1400))
    want = [{"name": "br1", "type": "linux-bridge", "mtu": 1400, "state": "up",
             "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "eth1"}]},
             "ipv4": {"enabled": False}}]  # fmt: skip
    assert diff(want, obs) == []
    assert drift(want, obs) == []


def test_drift_rows() -> None:
    obs = observed(bridge("br1", [], mtu=1400), eth("eth1", addrs=("10.1.0.1/24",)))
    want = [
        {"name": "br1", "type": "linux-bridge", "mtu": 1500, "bridge": {"port": [{"name": "eth1"}]}},
        {"name": "eth1", "ipv4": {"enabled": True, "address": [{"ip": "10.1.0.2", "prefix-length": 24}]}},
    ]
    rows = [r.as_dict() for r in drift(want, obs)]
    assert rows == [
        {"interface": "br1", "field": "mtu", "desired": 1500, "actual": 1400},
        {"interface": "eth1", "field": "controller", "desired": "br1", "actual": None},
        {"interface": "eth1", "field": "ipv4.address", "desired": ["10.1.0.2/24"], "actual": ["10.1.0.1/24"]},
    ]


@pytest.mark.parametrize(
    ("want", "message"),
    [
        ([{"name": "eth7", "type": "ethernet"}], "eth7: no such interface"),
        ([{"name": "eth1", "type": "linux-bridge"}], "desired type linux-bridge but the node has a ethernet"),
        ([{"name": "br1", "type": "linux-bridge", "bridge": {"port": [{"name": "nope"}]}}], "port nope does not"),
        ([{"name": "v", "type": "vlan"}], "a vlan needs vlan.base-iface and vlan.id"),
        ([{"name": "eth1", "state": "sideways"}], "state 'sideways'"),
        ([{"name": "eth1", "ipv4": {"enabled": True, "address": [{"ip": "fd00::1", "prefix-length": 64}]}}],
         "not an IPv4 address"),
    ],
)  # fmt: skip
def test_invalid_desired_is_an_agent_error(want: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(AgentError, match=message):
        diff(want, observed(eth("eth1")))


def test_dhcp_leaves_addresses_alone() -> None:
    obs = observed(eth("eth1", addrs=("10.1.0.1/24",)))
    assert diff([{"name": "eth1", "ipv4": {"enabled": True, "dhcp": True}}], obs) == []


def test_step_is_frozen_and_printable() -> None:
    s = Step(Op.SET_MTU, "br1", {"mtu": 1400, "actual": 1500}, "mtu")
    with pytest.raises(AttributeError):
        s.target = "x"  # type: ignore[misc]
    assert str(s) == "set_mtu br1 mtu=1400 actual=1500 (mtu)"
    assert hash(s) == hash(Step(Op.SET_MTU, "br1", {}, "mtu"))
