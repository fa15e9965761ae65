"""Plan-time danger checks of issue #14, class 16 (pure, on recorded node facts): an MTU below the floor the
node's own traffic needs (1280 with IPv6 or the default route, 576 with IPv4, inherited by the links beneath),
and any policy that touches the loopback interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.safety.checks import ERROR, Finding, mtu_floors, node_findings
from reconciler.safety.nodes import NodeFacts, facts_from_state
from tests.safety.test_analysis import double, plan, repo_of, workers

__all__ = ["double"]  # the API double fixture, shared with test_analysis


def addrs(*cidrs: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ipv4": {"enabled": False, "address": []}, "ipv6": {"enabled": False, "address": []}}
    for cidr in cidrs:
        ip, plen = cidr.split("/")
        block = out["ipv6" if ":" in ip else "ipv4"]
        block["enabled"] = True
        block["address"].append({"ip": ip, "prefix-length": int(plen)})
    return out


STATE = {
    "interfaces": [
        {"name": "lo", "type": "loopback", "mtu": 65536, **addrs("127.0.0.1/8", "::1/128")},
        {"name": "eth0", "type": "ethernet", "mtu": 1500, **addrs("10.77.0.2/24")},
        {"name": "eth1", "type": "ethernet", "mtu": 1500, **addrs("10.1.0.5/24")},
        {"name": "eth2", "type": "ethernet", "mtu": 1500},
        {"name": "ve1", "type": "veth", "mtu": 1500, "controller": "br6"},
        {"name": "ve2", "type": "veth", "mtu": 1200},
        {
            "name": "br6",
            "type": "linux-bridge",
            "mtu": 1500,
            "bridge": {"port": [{"name": "ve1"}]},
            **addrs("fd00:6::1/64"),
        },
    ],
    "routes": {
        "running": [{"destination": "0.0.0.0/0", "next-hop-address": "10.77.0.1", "next-hop-interface": "eth0"}]
    },
}


def facts(has_state: bool = True) -> NodeFacts:
    if not has_state:
        return facts_from_state("worker-0", {}, None)
    return facts_from_state("worker-0", {}, STATE)


def findings(*interfaces: dict[str, Any], node: NodeFacts | None = None) -> list[Finding]:
    merged = {i["name"]: i for i in interfaces}
    return node_findings(
        "p", list(interfaces), node or facts(), created=set(merged), merged=merged, ref=lambda *_: None, obj="x"
    )


def test_floors_of_a_node() -> None:
    floors = mtu_floors(facts(), {})
    assert floors["eth0"] == (1280, "carries the default route")
    assert floors["eth1"] == (576, "carries IPv4 addresses")
    assert floors["br6"] == (1280, "carries IPv6 addresses")
    assert floors["ve1"] == (1280, "is a port of br6, and br6 carries IPv6 addresses")
    assert "eth2" not in floors and "ve2" not in floors


@pytest.mark.parametrize(
    ("iface", "message"),
    [
        (
            {"name": "eth0", "mtu": 1200},
            "MTU 1200 on eth0 would break node worker-0's own traffic: eth0 carries the default route, so at least "
            "1280 (RFC 8200: IPv6 needs 1280, and below it Linux drops the interface's IPv6 addresses)",
        ),
        ({"name": "eth0", "mtu": 68}, "MTU 68 on eth0 would break node worker-0's own traffic"),
        (
            {"name": "eth1", "mtu": 500},
            "MTU 500 on eth1 would break node worker-0's own traffic: eth1 carries IPv4 addresses, so at least 576 "
            "(RFC 791/1122: IPv4 hosts must take 576-octet datagrams)",
        ),
        ({"name": "br6", "mtu": 1279}, "br6 carries IPv6 addresses, so at least 1280"),
        ({"name": "ve1", "mtu": 1200}, "ve1 is a port of br6, and br6 carries IPv6 addresses, so at least 1280"),
        (
            {"name": "br9", "type": "linux-bridge", "mtu": 1000, **addrs("fd00:9::1/64")},
            "MTU 1000 on br9 would break node worker-0's own traffic: br9 carries IPv6 addresses",
        ),
        (  # ve2 already has MTU 1200; joining a bridge with IPv6 pulls the bridge down to it
            {"name": "br8", "type": "linux-bridge", "bridge": {"port": [{"name": "ve2"}]}, **addrs("fd00:8::1/64")},
            "MTU 1200 on ve2 would break node worker-0's own traffic: ve2 is a port of br8, and br8 carries IPv6",
        ),
    ],
)
def test_mtu_below_the_floor_is_an_mtu_error(iface: dict[str, Any], message: str) -> None:
    found = [f for f in findings(iface) if f.check == "mtu"]
    assert len(found) == 1 and found[0].severity == ERROR and message in found[0].message, found


@pytest.mark.parametrize(
    "iface",
    [
        {"name": "eth0", "mtu": 1280},
        {"name": "eth1", "mtu": 576},
        {"name": "eth1", "mtu": 1200},  # IPv4 only: 1200 is fine
        {"name": "eth2", "mtu": 1000},  # no address, no route: not the node's own traffic
        {"name": "ve2", "mtu": 1200},  # already so, and stays out of any bridge
        {"name": "br6", "state": "absent"},
    ],
)
def test_mtu_at_or_above_the_floor_or_off_the_nodes_path_is_fine(iface: dict[str, Any]) -> None:
    assert [f for f in findings(iface) if f.check == "mtu"] == []


@pytest.mark.parametrize(
    "iface",
    [
        {"name": "lo", "state": "down"},
        {"name": "lo", "state": "absent"},
        {"name": "lo", **addrs()},
        {"name": "lo2", "type": "loopback"},
        {"name": "br7", "type": "linux-bridge", "bridge": {"port": [{"name": "lo"}]}},
    ],
)
def test_any_policy_touching_loopback_is_a_disconnect_error_even_without_node_state(iface: dict[str, Any]) -> None:
    for node in (facts(), facts(has_state=False)):
        found = [f for f in findings(iface, node=node) if "loopback" in f.message]
        assert len(found) == 1 and found[0].check == "disconnect" and found[0].severity == ERROR
        assert "changes the loopback interface lo" in found[0].message or "lo2" in found[0].message


# ------------------------------------------------------------------------- at plan time, through `virtnet plan`
RAW = """apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: {name}
spec:
  nodeSelector:
    node-role.kubernetes.io/worker: ""
  desiredState:
    interfaces:
{interfaces}"""


def test_plan_blocks_an_mtu_below_1280_on_the_default_route_nic_and_any_loopback_change(
    double: Any, tmp_path: Path
) -> None:
    _, kc = double(workers(1), tmp_path)
    small = RAW.format(name="small", interfaces="      - name: eth0\n        type: ethernet\n        mtu: 1200\n")
    lo = RAW.format(name="lo-down", interfaces="      - name: lo\n        state: down\n")
    fine = RAW.format(name="fine", interfaces="      - name: eth1\n        type: ethernet\n        mtu: 1280\n")
    repo = repo_of(tmp_path, {"raw/small.yaml": small, "raw/lo.yaml": lo, "raw/fine.yaml": fine})
    result = plan(repo, kc)
    assert result.exit_code == 1, result.output
    errors = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("error [")]
    assert len(errors) == 2, errors  # eth1 to 1280 carries nothing of the node's own: fine
    assert errors[0].startswith("error [disconnect] raw/lo.yaml:10: would break node worker-0: policy lo-down ")
    assert errors[1].startswith(
        "error [mtu] raw/small.yaml:12: MTU 1200 on eth0 would break node worker-0's own traffic: eth0 carries the "
        "default route, so at least 1280 (RFC 8200"
    )
    assert 'accept-risk: "disconnect,mtu"' in result.stderr
