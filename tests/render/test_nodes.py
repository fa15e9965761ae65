"""NNCPs for bridges (NIC or bond uplinks) and NodeNetworks (bonds, VLANs, OVN bridge mappings)."""

from __future__ import annotations

from pathlib import Path

from repos import BRIDGE

from render.helpers import pick, render_files


def test_bridge_with_nic_uplink(tmp_path: Path) -> None:
    objs = render_files(
        tmp_path, {"networks/bridge.yaml": BRIDGE + "  mtu: 9000\n  stp: true\n  maxUnavailable: 25%\n"}
    )
    nncp = pick(objs, "NodeNetworkConfigurationPolicy", "vlan100")
    assert nncp["spec"]["maxUnavailable"] == "25%"
    nic, bridge = nncp["spec"]["desiredState"]["interfaces"]
    assert nic == {"name": "eth1", "type": "ethernet", "state": "up", "mtu": 9000}
    assert bridge["name"] == "br1" and bridge["type"] == "linux-bridge" and bridge["mtu"] == 9000
    assert bridge["bridge"] == {"options": {"stp": {"enabled": True}}, "port": [{"name": "eth1"}]}
    assert bridge["ipv4"] == {"enabled": False} and bridge["ipv6"] == {"enabled": False}
    assert "nodeSelector" not in nncp["spec"]  # empty selector = all nodes, rendered as absent


def test_bridge_with_bond_uplink(tmp_path: Path) -> None:
    bonded = BRIDGE.replace(
        "  uplink:\n    nic: eth1\n",
        "  nodeSelector: {role: worker}\n  uplink:\n    bond:\n      name: bond0\n      mode: 802.3ad\n"
        "      nics: [eth1, eth2]\n      miimon: 100\n",
    )
    nncp = pick(render_files(tmp_path, {"networks/bridge.yaml": bonded}), "NodeNetworkConfigurationPolicy", "vlan100")
    bond, bridge = nncp["spec"]["desiredState"]["interfaces"]
    assert bond["type"] == "bond"
    assert bond["link-aggregation"] == {"mode": "802.3ad", "options": {"miimon": "100"}, "port": ["eth1", "eth2"]}
    assert bridge["bridge"]["port"] == [{"name": "bond0"}]  # bridge ports are objects, bond ports strings
    assert nncp["spec"]["nodeSelector"] == {"role": "worker"}


def test_isolated_bridge_and_attach_only_network(tmp_path: Path) -> None:
    isolated = BRIDGE.replace("  uplink:\n    nic: eth1\n", "  isolated: true\n")
    attach = (
        "apiVersion: virtnet.io/v1alpha1\nkind: BridgeNetwork\nmetadata:\n  name: vlan200\n"
        "spec:\n  bridge: br1\n  vlan: 200\n  namespaces: [apps]\n"
    )
    objs = render_files(tmp_path, {"networks/bridge.yaml": isolated, "networks/v200.yaml": attach})
    policies = [o for o in objs if o["kind"] == "NodeNetworkConfigurationPolicy"]
    assert [p["metadata"]["name"] for p in policies] == ["vlan100"]  # only the defining network makes one
    assert policies[0]["spec"]["desiredState"]["interfaces"][0]["bridge"]["port"] == []


def test_node_network_bonds_vlans_and_mappings(tmp_path: Path) -> None:
    node = (
        "apiVersion: virtnet.io/v1alpha1\nkind: NodeNetwork\nmetadata:\n  name: uplinks\nspec:\n"
        "  nodeSelector: {role: worker}\n  maxUnavailable: 1\n"
        "  bonds:\n    - {name: bond1, mode: active-backup, nics: [eth2, eth3], mtu: 9000}\n"
        "  vlans:\n    - {base: bond1, id: 300}\n"
        "    - {base: eth4, id: 20, name: mgmt20, addresses: [10.0.20.5/24, 'fd00::5/64']}\n"
        "  ovnBridgeMappings:\n    - {localnet: physnet}\n"
    )
    objs = render_files(tmp_path, {"nodes/n.yaml": node})
    state = pick(objs, "NodeNetworkConfigurationPolicy", "uplinks")["spec"]["desiredState"]
    bond, vlan300, mgmt = state["interfaces"]
    assert bond["link-aggregation"]["port"] == ["eth2", "eth3"] and "options" not in bond["link-aggregation"]
    assert vlan300["name"] == "bond1.300" and vlan300["vlan"] == {"base-iface": "bond1", "id": 300}
    assert vlan300["ipv4"] == {"enabled": False}
    assert mgmt["name"] == "mgmt20"
    assert mgmt["ipv4"] == {"enabled": True, "dhcp": False, "address": [{"ip": "10.0.20.5", "prefix-length": 24}]}
    assert mgmt["ipv6"]["address"] == [{"ip": "fd00::5", "prefix-length": 64}]
    assert state["ovn"] == {"bridge-mappings": [{"localnet": "physnet", "bridge": "br-ex", "state": "present"}]}


def test_uplink_on_a_node_network_vlan_is_not_redeclared(tmp_path: Path) -> None:
    node = (
        "apiVersion: virtnet.io/v1alpha1\nkind: NodeNetwork\nmetadata:\n  name: uplinks\nspec:\n"
        "  vlans:\n    - {base: eth2, id: 300}\n"
    )
    bridge = BRIDGE.replace("nic: eth1", "nic: eth2.300") + "  mtu: 9000\n"
    objs = render_files(tmp_path, {"nodes/n.yaml": node, "networks/bridge.yaml": bridge})
    interfaces = pick(objs, "NodeNetworkConfigurationPolicy", "vlan100")["spec"]["desiredState"]["interfaces"]
    assert [i["name"] for i in interfaces] == ["br1"]
