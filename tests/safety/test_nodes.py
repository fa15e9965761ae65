"""Node facts: from Node + NodeNetworkState objects (and one LIST each through the API double)."""

from __future__ import annotations

from typing import Any

from reconciler.clients.kube import Kube
from reconciler.pipeline import read_nodes
from reconciler.safety.nodes import build_nodes, facts_from_state
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes


def bonded_node(name: str = "worker-0") -> dict[str, Any]:
    """bond0 (eth1 + eth2) carries the node IP and the default route; eth1/eth2 do not say their controller."""
    return {
        "name": name,
        "labels": {"node-role.kubernetes.io/worker": ""},
        "interfaces": [
            {"name": "eth1", "type": "ethernet", "state": "up", "mtu": 1500},
            {"name": "eth2", "type": "ethernet", "state": "up", "mtu": 1500},
            {
                "name": "bond0",
                "type": "bond",
                "state": "up",
                "mtu": 1500,
                "link-aggregation": {"mode": "active-backup", "port": ["eth1", "eth2"]},
                "ipv4": {"enabled": True, "dhcp": False, "address": [{"ip": "198.51.100.7", "prefix-length": 24}]},
            },
        ],
        "routes": {
            "running": [{"destination": "0.0.0.0/0", "next-hop-address": "198.51.100.1", "next-hop-interface": "bond0"}]
        },
    }


def test_read_nodes_lists_nodes_and_states_once_each_and_finds_the_uplink() -> None:
    with ApiDouble(controllers=("nmstate",), nodes=demo_nodes()) as api:
        api.reset_counts()
        facts = {n.name: n for n in read_nodes(Kube(api.api_client()))}
        assert api.counts[("list", "nodes")] == 1
        assert api.counts[("list", "nmstate.io/nodenetworkstates")] == 1
        assert sum(api.counts.values()) == 2
    assert sorted(facts) == ["master-0", "master-1", "master-2", "worker-0", "worker-1", "worker-2"]
    w0 = facts["worker-0"]
    assert w0.default_route == ("eth0",) and w0.gateways == ("192.0.2.1",)
    assert (w0.node_ip, w0.node_ip_iface) == ("192.0.2.10", "eth0")
    assert w0.carriers() == {"eth0": "the default route via 192.0.2.1 and the node IP 192.0.2.10"}
    assert w0.interfaces["eth1"].mtu == 9000 and w0.interfaces["eth1"].controller is None
    assert not w0.control_plane and facts["master-1"].control_plane
    assert w0.labels["node-role.kubernetes.io/worker"] == ""


def test_bond_ports_know_their_controller_from_the_bond_and_the_bond_carries_the_ip() -> None:
    node = bonded_node()
    facts = facts_from_state(node["name"], node["labels"], {"interfaces": node["interfaces"], "routes": node["routes"]})
    assert facts.interfaces["eth1"].controller == "bond0" and facts.interfaces["eth2"].controller == "bond0"
    assert facts.interfaces["bond0"].ports == ("eth1", "eth2")
    assert facts.node_ip_iface == "bond0" and facts.default_route == ("bond0",)
    assert set(facts.carriers()) == {"bond0"}


def test_internal_ip_from_node_status_wins_and_a_node_without_state_keeps_its_labels() -> None:
    state = {
        "interfaces": [
            {
                "name": "eth0",
                "type": "ethernet",
                "ipv4": {"enabled": True, "address": [{"ip": "10.0.0.5", "prefix-length": 24}]},
            },
            {
                "name": "eth1",
                "type": "ethernet",
                "ipv4": {"enabled": True, "address": [{"ip": "10.1.0.5", "prefix-length": 24}]},
            },
        ],
        "routes": {
            "running": [{"destination": "0.0.0.0/0", "next-hop-address": "10.0.0.1", "next-hop-interface": "eth0"}]
        },
    }
    nodes = [
        {
            "metadata": {"name": "a", "labels": {"node-role.kubernetes.io/master": ""}},
            "status": {
                "addresses": [{"type": "Hostname", "address": "a"}, {"type": "InternalIP", "address": "10.1.0.5"}]
            },
        },
        {"metadata": {"name": "b", "labels": {"x": "y"}}},
    ]
    states = [{"metadata": {"name": "a"}, "status": {"currentState": state}}]
    a, b = build_nodes(nodes, states)
    assert (a.node_ip, a.node_ip_iface) == ("10.1.0.5", "eth1")
    assert a.carriers() == {"eth0": "the default route via 10.0.0.1", "eth1": "the node IP 10.1.0.5"}
    assert a.control_plane
    assert not b.has_state and b.labels == {"x": "y"} and b.interfaces == {}


def test_a_default_route_in_another_table_does_not_count() -> None:
    state = {
        "interfaces": [{"name": "eth0", "type": "ethernet"}],
        "routes": {
            "running": [
                {
                    "destination": "0.0.0.0/0",
                    "next-hop-address": "10.0.0.1",
                    "next-hop-interface": "eth0",
                    "table-id": 100,
                }
            ]
        },
    }
    assert facts_from_state("n", {}, state).default_route == ()
