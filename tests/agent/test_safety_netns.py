"""The agent refuses a dangerous policy early, in a real network namespace: zero netlink writes, NNCE Failing.

The node namespace's uplink ``eth0`` carries 10.77.0.2/24 and the default route (see ``conftest.topo``).
Only the safety precheck (``reconciler/agent/safety.py``) runs here (``prechecks=()`` switches off the
older default-route precheck), so a refusal can only come from it.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.agent import safety
from reconciler.agent.netlink import Netlink
from reconciler.agent.publish import condition_of
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.agent.state import current_state
from reconciler.agent.steps import diff
from tests.agent.conftest import GW_IP, NODE_IP, Topo, ip, ip_snapshot

pytestmark = pytest.mark.netns


def policy(name: str, interfaces: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name, "generation": 1},
        "spec": {"desiredState": {"interfaces": interfaces}},
    }


def bridge_over_eth0(address: bool) -> list[dict[str, Any]]:
    bridge: dict[str, Any] = {
        "name": "br-ex",
        "type": "linux-bridge",
        "state": "up",
        "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "eth0"}]},
        "ipv4": {"enabled": False},
    }
    if address:
        bridge["ipv4"] = {"enabled": True, "dhcp": False, "address": [{"ip": NODE_IP, "prefix-length": 24}]}
    return [bridge]


def cfg(topo: Topo, **kw: Any) -> AgentConfig:
    return AgentConfig(
        node="node-a", mode="enforce", netns=topo.node, api_server=topo.api, probe_timeout=3.0, prechecks=(), **kw
    )


def failing_message(nnce: dict[str, Any]) -> str:
    return str(next(c for c in nnce["status"]["conditions"] if c["type"] == "Failing")["message"])


def test_disconnecting_bridge_is_refused_with_zero_writes(topo: Topo) -> None:
    before = ip_snapshot(topo.node)
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[policy("uplink-bridge", bridge_over_eth0(False))], node_labels={})
        assert nl.writes == 0
    assert res.writes == 0
    nnce = res.nnces[0]
    assert condition_of(nnce) == "Failing"
    message = failing_message(nnce)
    assert message.startswith("refused before any change: [disconnect] would disconnect node node-a: eth0 carries")
    assert f"the default route via {GW_IP}" in message and f"the node IP {NODE_IP}" in message
    assert "br-ex gets no matching address or DHCP" in message
    assert res.outcomes["uplink-bridge"].status == "Failing"
    assert ip_snapshot(topo.node) == before  # nothing changed, the uplink still carries the address


def test_the_same_change_with_the_address_on_the_bridge_passes_the_precheck(topo: Topo) -> None:
    with Netlink(topo.node) as nl:
        observed = current_state(nl.observe())
        moved = policy("uplink-bridge", bridge_over_eth0(True))
        steps = diff(moved["spec"]["desiredState"]["interfaces"], observed)
        assert steps
        assert safety.precheck_for(moved, "node-a")(observed, steps) == []
        dangerous = policy("uplink-bridge", bridge_over_eth0(False))
        assert safety.precheck_for(dangerous, "node-a")(observed, diff(bridge_over_eth0(False), observed))
        assert nl.writes == 0


def test_vlan_mtu_above_its_parent_is_refused_with_zero_writes(topo: Topo) -> None:
    ip("link", "set", "ve1", "mtu", "1500", ns=topo.node)
    vlan = {"name": "ve1.30", "type": "vlan", "state": "up", "mtu": 9000, "vlan": {"base-iface": "ve1", "id": 30}}
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo, check_capabilities=False), nl, policies=[policy("v30", [vlan])], node_labels={})
        assert nl.writes == 0
    message = failing_message(res.nnces[0])
    assert "[mtu] VLAN ve1.30 MTU 9000 is above its parent ve1's MTU 1500 on node-a" in message


def test_a_harmless_policy_passes_the_precheck_and_is_enforced(topo: Topo) -> None:
    """The precheck does not refuse what is safe: a bridge on a spare port is enforced normally."""
    spare = [
        {
            "name": "br9",
            "type": "linux-bridge",
            "state": "up",
            "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "ve2"}]},
        }
    ]
    with Netlink(topo.node) as nl:
        res = run_once(cfg(topo), nl, policies=[policy("spare", spare)], node_labels={})
    assert res.outcomes["spare"].ok, res.outcomes["spare"].message
    assert res.writes > 0
