"""Issue #14, class 16, in throwaway namespaces: changes that break the node's own traffic although an IPv4
probe still passes are refused before any write, and what slips past is caught by a probe and rolled back.

The node of ``topo`` gets IPv6 too: fd00:77::2/64 on eth0 and a default route via fd00:77::1 (the gateway
namespace answers ICMPv6 echo there).
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.agent import steps as d
from reconciler.agent.enforce import enforce
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import GatewayProbe, default_probes
from reconciler.agent.publish import condition_of
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.agent.state import current_state
from tests.agent.conftest import GW_IP, Topo, ip, ip_json, ip_snapshot
from tests.agent.test_enforce import nncp

pytestmark = pytest.mark.netns

GW6, NODE6 = "fd00:77::1", "fd00:77::2"


@pytest.fixture
def topo6(topo: Topo) -> Topo:
    ip("addr", "add", f"{GW6}/64", "dev", "gw0", "nodad", ns=topo.gw)
    ip("addr", "add", f"{NODE6}/64", "dev", "eth0", "nodad", ns=topo.node)
    ip("-6", "route", "add", "default", "via", GW6, "dev", "eth0", ns=topo.node)
    return topo


def v6_of(ns: str, dev: str) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for entry in ip_json(ns, "-6", "addr", "show", "dev", dev)
        for a in entry.get("addr_info", [])
        if a.get("scope") == "global"
    ]


def cfg(topo: Topo) -> AgentConfig:
    return AgentConfig(node="node-a", mode="enforce", netns=topo.node, api_server=topo.api, probe_timeout=3.0)


def refused(topo: Topo, interfaces: list[dict[str, Any]]) -> str:
    """Run one enforce pass with a policy of ``interfaces``: it must be Failing with zero writes and the node
    exactly as before; returns the message."""
    before = ip_snapshot(topo.node)
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[nncp("danger", interfaces)], node_labels={})
        assert nl.writes == 0
    assert condition_of(res.nnces[0]) == "Failing"
    assert ip_snapshot(topo.node) == before
    return res.outcomes["danger"].message


def test_ipv6_gateway_is_probed_and_an_mtu_of_1200_silently_drops_ipv6_while_ipv4_answers(topo6: Topo) -> None:
    """Why the IPv4-only probe was not enough: the very change the issue describes, made by hand."""
    with Netlink(topo6.node) as nl:
        names = [p.name for p in default_probes(current_state(nl.observe()), netns=topo6.node)]
    assert names == [f"gateway {GW_IP}", f"gateway {GW6}"]
    assert GatewayProbe(GW6, topo6.node, timeout=3).run().ok
    ip("link", "set", "eth0", "mtu", "1200", ns=topo6.node)
    assert v6_of(topo6.node, "eth0") == []  # the kernel dropped it, no error anywhere
    assert GatewayProbe(GW_IP, topo6.node, timeout=3).run().ok
    assert not GatewayProbe(GW6, topo6.node, timeout=1).run().ok


@pytest.mark.parametrize("mtu", [1200, 68])
def test_mtu_below_1280_on_the_default_route_nic_is_refused_before_any_write(topo6: Topo, mtu: int) -> None:
    message = refused(topo6, [{"name": "eth0", "type": "ethernet", "mtu": mtu}])
    assert message.startswith("refused before any change: ")
    assert (
        f"[mtu] MTU {mtu} on eth0 would break node node-a's own traffic: eth0 carries the default route, so at least "
        "1280 (RFC 8200" in message
    )
    assert v6_of(topo6.node, "eth0") == [f"{NODE6}/64"]


def test_mtu_below_576_on_an_ipv4_interface_is_refused_and_1200_is_fine(topo: Topo) -> None:
    ip("addr", "add", "192.168.9.1/24", "dev", "ve1", ns=topo.node)
    ip("link", "set", "ve1", "up", ns=topo.node)
    message = refused(topo, [{"name": "ve1", "type": "ethernet", "mtu": 500}])
    assert (
        "[mtu] MTU 500 on ve1 would break node node-a's own traffic: ve1 carries IPv4 addresses, so at least 576"
        in (message)
    )
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[nncp("ok", [{"name": "ve1", "mtu": 1200}])], node_labels={})
    assert res.outcomes["ok"].ok, res.outcomes["ok"].message
    assert ip_json(topo.node, "link", "show", "dev", "ve1")[0]["mtu"] == 1200


def test_ipv6_lost_despite_the_prechecks_is_caught_by_the_address_probe_and_rolled_back(topo6: Topo) -> None:
    """With every pre-check off, MTU 1200 is applied; the IPv4 gateway still answers, but the address probe
    sees fd00:77::2 gone, and the rollback brings back the MTU, the address and the IPv6 default route."""
    before = ip_snapshot(topo6.node)
    with Netlink(topo6.node) as nl:
        observed = current_state(nl.observe())
        steps = d.diff([{"name": "eth0", "mtu": 1200}], observed)
        probes = default_probes(observed, netns=topo6.node, api_server=topo6.api, timeout=3.0)
        res = enforce(nl, steps, probes=probes, prechecks=())
    assert not res.ok and res.rolled_back and res.rollback_problems == []
    assert f"probe addresses failed: the change removed {NODE6}/64 on eth0; rolled back" in res.message
    assert ip_snapshot(topo6.node) == before
    assert GatewayProbe(GW6, topo6.node, timeout=3).run().ok


@pytest.mark.parametrize(
    "lo",
    [
        {"name": "lo", "state": "down"},
        {"name": "lo", "state": "absent"},
        {"name": "lo", "ipv4": {"enabled": False}},
        {"name": "lo", "mtu": 1500},
    ],
    ids=["down", "absent", "no-ipv4", "mtu"],
)
def test_any_policy_touching_loopback_is_refused_before_any_write(topo: Topo, lo: dict[str, Any]) -> None:
    message = refused(topo, [lo])
    assert "(lo): the loopback interface is never changed by a policy" in message
    links = {link["ifname"]: link for link in ip_json(topo.node, "addr", "show")}
    assert "UP" in links["lo"]["flags"] and "127.0.0.1" in [a["local"] for a in links["lo"]["addr_info"]]


def test_a_step_on_loopback_from_anywhere_is_refused_by_the_default_prechecks(topo: Topo) -> None:
    with Netlink(topo.node) as nl:
        res = enforce(nl, [d.Step(d.Op.SET_STATE, "lo", {"state": "down"})], probes=[])
        assert nl.writes == 0
    assert res.message == (
        "refused before any change: set_state lo state=down would change the loopback interface lo: the node's own "
        "traffic runs over it"
    )
