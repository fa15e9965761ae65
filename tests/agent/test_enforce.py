"""Enforce mode for real, in throwaway namespaces: apply, idempotence, exact rollback, pre-check."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.agent import steps as d
from reconciler.agent.drift import drift
from reconciler.agent.enforce import enforce, precheck_default_route
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import CallableProbe, GatewayProbe, TcpProbe, default_probes
from reconciler.agent.publish import condition_of
from reconciler.agent.rollback import Checkpoint
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.agent.state import current_state
from reconciler.errors import AgentError
from tests.agent.conftest import GW_IP, NODE_IP, Topo, ip, ip_json, ip_snapshot

pytestmark = pytest.mark.netns


def nncp(name: str, interfaces: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name, "generation": 3},
        "spec": {"desiredState": {"interfaces": interfaces}, **spec},
    }


def full_desired() -> list[dict[str, Any]]:
    return [
        {
            "name": "br1",
            "type": "linux-bridge",
            "state": "up",
            "mtu": 9000,
            "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "ve1"}, {"name": "ve2"}]},
            "ipv4": {"enabled": True, "dhcp": False, "address": [{"ip": "192.168.50.1", "prefix-length": 24}]},
            "ipv6": {"enabled": True, "dhcp": False, "address": [{"ip": "fd00:50::1", "prefix-length": 64}]},
        },
        {"name": "ve1", "type": "ethernet", "mtu": 9000},
        {"name": "ve2", "type": "ethernet", "mtu": 9000},
        {"name": "ve3", "type": "ethernet", "state": "down"},
        {"name": "brgone", "type": "linux-bridge", "state": "absent"},
    ]


def prepare_extra(topo: Topo) -> None:
    """ve3 up, and a bridge ``brgone`` (with port ve4) that the policy removes."""
    ip("link", "set", "ve3", "up", ns=topo.node)
    ip("link", "add", "brgone", "type", "bridge", ns=topo.node)
    ip("link", "set", "ve4", "master", "brgone", ns=topo.node)


def cfg(topo: Topo, **kw: Any) -> AgentConfig:
    return AgentConfig(node="node-a", mode="enforce", netns=topo.node, api_server=topo.api, probe_timeout=3.0, **kw)


def test_empty_to_desired_then_second_pass_writes_nothing(topo: Topo) -> None:
    prepare_extra(topo)
    policy = nncp("bridges", full_desired())
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[policy], node_labels={})
        assert res.error is None
        assert res.outcomes["bridges"].ok, res.outcomes["bridges"].message
        assert condition_of(res.nnces[0]) == "Available"
        assert res.writes > 0

    links = {link["ifname"]: link for link in ip_json(topo.node, "-d", "link", "show")}
    addrs = {a["ifname"]: a for a in ip_json(topo.node, "addr", "show")}
    assert links["br1"]["linkinfo"]["info_kind"] == "bridge"
    assert links["br1"]["linkinfo"]["info_data"]["stp_state"] == 0
    assert links["br1"]["mtu"] == 9000 and "UP" in links["br1"]["flags"]
    for port in ("ve1", "ve2"):
        assert links[port]["master"] == "br1"
        assert links[port]["mtu"] == 9000
        assert "UP" in links[port]["flags"]  # ports come up with their bridge
    assert "UP" not in links["ve3"]["flags"]
    assert "brgone" not in links
    assert "master" not in links["ve4"]
    br1 = {(x["local"], x["prefixlen"]) for x in addrs["br1"]["addr_info"] if x.get("scope") != "link"}
    assert br1 == {("192.168.50.1", 24), ("fd00:50::1", 64)}
    # the uplink was not named by the policy and is untouched
    assert links["eth0"].get("master") is None
    assert any(x["local"] == NODE_IP for x in addrs["eth0"]["addr_info"])

    with Netlink(topo.node) as nl:
        again = run_once(cfg(topo), nl, policies=[policy], node_labels={})
        assert nl.writes == 0
        assert again.writes == 0
        assert again.steps["bridges"] == []
        assert again.drift == []
        assert condition_of(again.nnces[0]) == "Available"


def uplink_into_bridge() -> list[dict[str, Any]]:
    """Moves the gateway uplink into a new bridge and leaves its address behind: cuts the node off."""
    return [
        {
            "name": "br-ex",
            "type": "linux-bridge",
            "mtu": 1400,
            "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "eth0"}, {"name": "ve1"}]},
        },
        {"name": "ve2", "type": "ethernet", "mtu": 1300},
    ]


def test_probe_failure_rolls_back_exactly(topo: Topo) -> None:
    ip("link", "set", "ve2", "up", ns=topo.node)
    ip("addr", "add", "fd00:99::5/64", "dev", "ve2", ns=topo.node)
    before = ip_snapshot(topo.node)
    with Netlink(topo.node) as nl:
        observed = current_state(nl.observe())
        steps = d.diff(uplink_into_bridge(), observed)
        assert [s.op for s in steps][:2] == [d.Op.CREATE_LINK, d.Op.ATTACH_PORT]
        probes = default_probes(observed, netns=topo.node, api_server=topo.api, timeout=2.0)
        assert [p.name for p in probes] == [f"gateway {GW_IP}", f"api-server {GW_IP}:6443"]
        res = enforce(nl, steps, probes=probes, prechecks=())
    assert not res.ok and res.rolled_back
    assert "probe gateway 10.77.0.1 failed" in res.message
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before
    assert GatewayProbe(GW_IP, topo.node, timeout=3).run().ok  # and the node is reachable again


@pytest.mark.parametrize("fail_at", [1, 2, 4, 9, 13, 14])
def test_netlink_error_mid_apply_rolls_back_exactly(topo: Topo, fail_at: int) -> None:
    prepare_extra(topo)
    ip("addr", "add", "192.168.7.7/24", "dev", "ve3", ns=topo.node)
    before = ip_snapshot(topo.node)
    armed = {"n": 0, "on": True}

    def inject(what: str) -> None:
        armed["n"] += 1
        if armed["on"] and armed["n"] == fail_at:
            armed["on"] = False
            raise AgentError(f"injected failure at write {fail_at}: {what}")

    with Netlink(topo.node, before_write=inject) as nl:
        steps = d.diff(full_desired(), current_state(nl.observe()))
        assert len(steps) >= fail_at
        res = enforce(nl, steps, probes=[], prechecks=())
    assert not res.ok and res.rolled_back
    assert f"injected failure at write {fail_at}" in res.message
    assert len(res.applied) == fail_at - 1
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before


def test_precheck_refuses_with_zero_writes_and_reports_failing(topo: Topo) -> None:
    before = ip_snapshot(topo.node)
    policy = nncp("uplink", uplink_into_bridge())
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[policy], node_labels={})
        assert nl.writes == 0
    assert res.writes == 0
    nnce = res.nnces[0]
    assert condition_of(nnce) == "Failing"
    failing = next(c for c in nnce["status"]["conditions"] if c["type"] == "Failing")
    assert "eth0" in failing["message"] and "cut the node off" in failing["message"]
    assert ip_snapshot(topo.node) == before


def test_precheck_allows_the_address_moving_with_the_uplink(topo: Topo) -> None:
    moved = [
        {
            "name": "br-ex",
            "type": "linux-bridge",
            "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "eth0"}]},
            "ipv4": {"enabled": True, "dhcp": False, "address": [{"ip": NODE_IP, "prefix-length": 24}]},
        },
        {"name": "eth0", "type": "ethernet", "ipv4": {"enabled": False}},
    ]
    with Netlink(topo.node) as nl:
        observed = current_state(nl.observe())
        steps = d.diff(moved, observed)
        assert precheck_default_route(observed, steps) == []
        probes = default_probes(observed, netns=topo.node, api_server=topo.api, timeout=3.0)
        res = enforce(nl, steps, probes=probes)
        assert res.ok, res.message
    routes = ip_json(topo.node, "route", "show", "default")
    assert routes[0]["dev"] == "br-ex" and routes[0]["gateway"] == GW_IP
    assert TcpProbe(GW_IP, 6443, topo.node, timeout=3).run().ok


def test_forced_probe_failure_recreates_deleted_bridge(topo: Topo) -> None:
    prepare_extra(topo)
    before = ip_snapshot(topo.node)
    with Netlink(topo.node) as nl:
        observed = current_state(nl.observe())
        steps = d.diff(full_desired(), observed)
        assert steps[-1] == d.Step(d.Op.DELETE_LINK, "brgone", {"type": "linux-bridge"}, "state: absent")
        cp = Checkpoint.take(observed, steps)
        assert cp.planned == {"br1"} and cp.created == {}  # ours only once its create succeeds
        assert {"ve1", "ve2", "ve3", "ve4", "brgone"} <= cp.touched and "eth0" not in cp.touched
        res = enforce(nl, steps, probes=[CallableProbe("forced", lambda: (False, "forced by test"))])
        assert len(res.applied) == len(steps)
    assert "probe forced failed: forced by test" in res.message
    assert res.rollback_problems == []
    assert ip_snapshot(topo.node) == before


def test_manual_drift_is_reported(topo: Topo) -> None:
    want = [{"name": "br1", "type": "linux-bridge", "mtu": 1500, "bridge": {"port": [{"name": "ve1"}]}}]
    with Netlink(topo.node) as nl:
        assert enforce(nl, d.diff(want, current_state(nl.observe())), probes=[]).ok
    ip("link", "set", "br1", "mtu", "1400", ns=topo.node)
    ip("link", "set", "ve1", "nomaster", ns=topo.node)
    with Netlink(topo.node) as nl:
        rows = {(x.interface, x.field): x for x in drift(want, current_state(nl.observe()))}
        res = run_once(AgentConfig(node="node-a", mode="observe"), nl, policies=[nncp("p", want)], node_labels={})
        assert nl.writes == 0
    assert (rows["br1", "mtu"].desired, rows["br1", "mtu"].actual) == (1500, 1400)
    assert (rows["ve1", "controller"].desired, rows["ve1", "controller"].actual) == ("br1", None)
    assert {"interface": "br1", "field": "mtu", "desired": 1500, "actual": 1400} in res.drift_report["drift"]
    assert condition_of(res.nnces[0]) == "Pending"
