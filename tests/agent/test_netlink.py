"""netlink.py against a real namespace, verified with independent `ip -j` reads."""

from __future__ import annotations

import pytest

from reconciler.agent import netlink, rtnl
from reconciler.agent.netlink import Netlink
from reconciler.errors import AgentError
from tests.agent.conftest import ip_json

pytestmark = pytest.mark.netns


def links(ns: str) -> dict[str, dict[str, object]]:
    return {link["ifname"]: link for link in ip_json(ns, "-d", "link", "show")}


def test_observe_is_three_dumps_and_no_writes(scratch_ns: str) -> None:
    with Netlink(scratch_ns) as nl:
        calls: list[int] = []
        orig = nl._sock.dump

        def wrapped(msg_type: int, family: int = 0) -> list[dict[str, object]]:
            calls.append(msg_type)
            return orig(msg_type, family)

        nl._sock.dump = wrapped  # type: ignore[method-assign]
        dumps = nl.observe()
        assert calls == [rtnl.RTM_GETLINK, rtnl.RTM_GETADDR, rtnl.RTM_GETROUTE]
        assert [link["name"] for link in dumps.links] == ["lo"]
        assert nl.writes == 0


def test_writes_are_counted_and_land_in_the_kernel(scratch_ns: str) -> None:
    total = netlink.total_writes()
    with Netlink(scratch_ns) as nl:
        nl.create_link("br5", "linux-bridge", stp=False)
        nl.create_link("va", "veth", peer="vb")
        nl.set_master("va", "br5")
        nl.set_mtu("br5", 1400)
        nl.set_state("br5", True)
        nl.set_stp("br5", True)
        nl.add_address("br5", "192.0.2.1", 24)
        nl.add_address("br5", "2001:db8::1", 64)
        nl.replace_route("198.51.100.0/24", "192.0.2.254", "br5")
        assert nl.writes == 9
        assert nl.log[0] == "link add br5 type bridge"
    assert netlink.total_writes() - total == 9
    got = links(scratch_ns)
    assert got["va"]["master"] == "br5" and got["vb"]["linkinfo"]["info_kind"] == "veth"
    assert got["br5"]["mtu"] == 1400 and "UP" in got["br5"]["flags"]
    assert got["br5"]["linkinfo"]["info_data"]["stp_state"] == 1
    addrs = {x["local"] for a in ip_json(scratch_ns, "addr", "show", "dev", "br5") for x in a["addr_info"]}
    assert {"192.0.2.1", "2001:db8::1"} <= addrs
    routes = ip_json(scratch_ns, "route", "show", "198.51.100.0/24")
    assert routes[0]["gateway"] == "192.0.2.254"

    with Netlink(scratch_ns) as nl:
        nl.del_route("198.51.100.0/24", "192.0.2.254", "br5")
        nl.del_address("br5", "192.0.2.1", 24)
        nl.set_master("va", None)
        nl.delete_link("br5")
        assert nl.writes == 4
    got = links(scratch_ns)
    assert "br5" not in got and "master" not in got["va"]


def test_kernel_errors_become_agent_errors(scratch_ns: str) -> None:
    with Netlink(scratch_ns) as nl:
        with pytest.raises(AgentError, match="nosuch: no such interface"):
            nl.set_mtu("nosuch", 1400)
        nl.create_link("br6", "linux-bridge")
        with pytest.raises(AgentError, match=r"br6: link add br6 type bridge failed: File exists"):
            nl.create_link("br6", "linux-bridge")
        assert nl.writes == 2  # a failed request still counts


def test_missing_namespace_is_an_agent_error() -> None:
    with pytest.raises(AgentError, match="does not exist"):
        Netlink("vnt-definitely-missing")


def test_before_write_hook_can_inject_a_failure(scratch_ns: str) -> None:
    def boom(what: str) -> None:
        raise AgentError(f"injected: {what}")

    with Netlink(scratch_ns, before_write=boom) as nl:
        with pytest.raises(AgentError, match="injected: link add br7 type bridge"):
            nl.create_link("br7", "linux-bridge")
        assert nl.writes == 1
    assert "br7" not in links(scratch_ns)
