"""reconciler.nmstate: the one reading of NNCPs that the controller and the node agent share."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler import nmstate
from reconciler.errors import VirtnetError


def policy(name: str, interfaces: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": name},
        "spec": {**spec, "desiredState": {"interfaces": interfaces}},
    }


BOND = {
    "name": "bond1",
    "type": "bond",
    "state": "up",
    "link-aggregation": {"mode": "802.3ad", "port": ["eth2", "eth3"]},
}
VLAN = {"name": "bond1.300", "type": "vlan", "state": "up", "vlan": {"base-iface": "bond1", "id": 300}}
NIC_MTU = {"name": "eth1", "type": "ethernet", "state": "up", "mtu": 9000}
BRIDGE = {
    "name": "br-storage",
    "type": "linux-bridge",
    "state": "up",
    "bridge": {"options": {"stp": {"enabled": False}}, "port": [{"name": "bond1.300"}]},
}
UPLINKS = policy("worker-uplinks", [BOND, VLAN])
STORAGE = policy("storage", [BRIDGE])
VLAN100 = policy("vlan100", [NIC_MTU, {**BRIDGE, "name": "br1", "bridge": {"port": [{"name": "eth1"}]}}])


def test_policy_interfaces_reads_the_desired_state_and_tolerates_a_bare_policy() -> None:
    assert nmstate.policy_interfaces(UPLINKS) == [BOND, VLAN]
    assert nmstate.policy_interfaces({"metadata": {"name": "x"}}) == []
    assert nmstate.policy_interfaces({"spec": {"desiredState": {"ovn": {}}}}) == []


@pytest.mark.parametrize(
    ("iface", "listed"),
    [
        (BRIDGE, ["bond1.300"]),
        (BOND, ["eth2", "eth3"]),
        ({"name": "br0", "bridge": {"port": [{"name": "eth1"}, "eth2"]}}, ["eth1", "eth2"]),
        ({"name": "bond0", "link-aggregation": {"mode": "active-backup", "slaves": ["eth4"]}}, ["eth4"]),
        ({"name": "br0", "bridge": {"port": []}}, []),  # an empty list takes every port away
        ({"name": "br0", "type": "linux-bridge", "bridge": {"options": {"stp": {"enabled": True}}}}, None),
        (NIC_MTU, None),
        (VLAN, None),
    ],
)
def test_listed_ports_of_bridges_and_bonds(iface: dict[str, Any], listed: list[str] | None) -> None:
    assert nmstate.listed_ports(iface) == listed
    assert nmstate.port_names(iface) == (listed or [])


def test_lower_names_are_ports_then_the_vlan_base() -> None:
    assert nmstate.vlan_base(VLAN) == "bond1"
    assert nmstate.vlan_base(BOND) is None
    assert nmstate.lower_names(VLAN) == ["bond1"]
    assert nmstate.lower_names(BOND) == ["eth2", "eth3"]
    assert nmstate.lower_names(NIC_MTU) == []


def test_created_versus_referenced_interfaces() -> None:
    assert nmstate.created_by(UPLINKS) == {"bond1", "bond1.300"}
    assert nmstate.referenced_by(UPLINKS) == {"eth2", "eth3"}  # bond1 is the VLAN's base, but made here
    assert nmstate.created_by(STORAGE) == {"br-storage"}
    assert nmstate.referenced_by(STORAGE) == {"bond1.300"}
    assert nmstate.created_by(VLAN100) == {"br1"}  # eth1 is only tuned (MTU), not created
    assert nmstate.referenced_by(VLAN100) == {"eth1"}


def test_dependencies_name_the_policies_that_create_what_another_builds_on() -> None:
    ovs = policy("ovs", [{"name": "br-ex2", "type": "ovs-bridge", "bridge": {"port": [{"name": "br-storage"}]}}])
    got = nmstate.dependencies({"u": UPLINKS, "s": STORAGE, "v": VLAN100, "o": ovs})
    assert got == {"u": set(), "s": {"u"}, "v": set(), "o": {"s"}}
    # a policy that builds on what it creates itself depends on nothing
    assert nmstate.dependencies({"both": policy("both", [BOND, VLAN, BRIDGE])}) == {"both": set()}


def test_node_selector_is_label_equality_and_empty_selects_all() -> None:
    labels = {"node-role.kubernetes.io/worker": "", "zone": "a", "rack": "7"}
    assert nmstate.selects(None, labels) and nmstate.selects({}, labels)
    assert nmstate.selects({"node-role.kubernetes.io/worker": ""}, labels)
    assert nmstate.selects({"zone": "a", "rack": 7}, labels)  # values compare as strings
    assert not nmstate.selects({"zone": "b"}, labels)
    assert not nmstate.selects({"missing": ""}, labels)


@pytest.mark.parametrize(
    ("value", "nodes", "want"),
    [
        (None, 4, 2),  # default 50 %
        (None, 3, 2),  # rounded up
        ("50%", 5, 3),
        ("10%", 3, 1),
        ("12.5%", 16, 2),
        ("100%", 7, 7),
        (" 25 % ", 8, 2),
        ("0%", 0, 1),  # never 0: nmstate always moves on
        (3, 10, 3),
        ("2", 10, 2),
        (0, 10, 1),
    ],
)
def test_max_unavailable(value: int | str | None, nodes: int, want: int) -> None:
    assert nmstate.max_unavailable(value, nodes) == want


@pytest.mark.parametrize("value", ["abc", "", "%", "-1", "-10%", "1,5", "50 percent", -1, True, 1.5, [1]])
def test_invalid_max_unavailable_is_an_error_not_a_guess(value: Any) -> None:
    with pytest.raises(nmstate.PolicyError, match=r"maxUnavailable .* is not a number of nodes") as err:
        nmstate.max_unavailable(value, 4)
    assert isinstance(err.value, VirtnetError) and isinstance(err.value, ValueError)
    assert repr(value) in str(err.value)


def test_absent_policy_drops_nics_and_keeps_selector_and_bridge_mappings_absent() -> None:
    live = {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "p", "labels": {"a": "b"}, "resourceVersion": "9", "uid": "u-1"},
        "spec": {
            "nodeSelector": {"x": ""},
            "maxUnavailable": 1,
            "desiredState": {
                "interfaces": [
                    {"name": "eth1", "type": "ethernet", "mtu": 9000},
                    {"name": "br1", "type": "linux-bridge", "bridge": {"port": [{"name": "eth1"}]}},
                    {"name": "eth1.20", "type": "vlan", "vlan": {"base-iface": "eth1", "id": 20}},
                ],
                "ovn": {"bridge-mappings": [{"localnet": "physnet", "bridge": "br-ex"}]},
            },
        },
        "status": {"conditions": []},
    }
    before = copy.deepcopy(live)
    assert nmstate.absent_policy(live) == {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "p", "labels": {"a": "b"}},
        "spec": {
            "desiredState": {
                "interfaces": [
                    {"name": "br1", "type": "linux-bridge", "state": "absent"},
                    {"name": "eth1.20", "type": "vlan", "state": "absent"},
                ],
                "ovn": {"bridge-mappings": [{"localnet": "physnet", "bridge": "br-ex", "state": "absent"}]},
            },
            "nodeSelector": {"x": ""},
            "maxUnavailable": 1,
        },
    }
    assert live == before, "the live object is not modified"


def test_absent_policy_of_a_policy_without_selector_or_mappings() -> None:
    assert nmstate.absent_policy(policy("uplinks", [BOND, VLAN])) == {
        "apiVersion": "nmstate.io/v1",
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": "uplinks", "labels": {}},
        "spec": {
            "desiredState": {
                "interfaces": [
                    {"name": "bond1", "type": "bond", "state": "absent"},
                    {"name": "bond1.300", "type": "vlan", "state": "absent"},
                ]
            }
        },
    }


@pytest.mark.parametrize(
    ("iface", "made"),
    [
        ({"name": "br1", "type": "linux-bridge"}, True),
        ({"name": "bond0", "type": "bond"}, True),
        ({"name": "eth1.10", "type": "vlan"}, True),
        ({"name": "vx0", "type": "vxlan"}, True),
        ({"name": "eth9", "type": "ethernet", "mtu": 9000}, False),  # tunes a NIC: does not make it exist
        ({"name": "eth9"}, False),
        ({"name": "br1", "type": "linux-bridge", "state": "absent"}, False),
    ],
)
def test_only_virtual_links_are_created_by_a_policy(iface: dict[str, Any], made: bool) -> None:
    assert nmstate.creates(iface) is made
