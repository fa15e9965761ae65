"""The agent's own rtnetlink layer (rtnl codec, rtsock socket, Netlink batches) against a real namespace, checked
with independent ``ip -j`` reads.

What a batch promises: every queued write is answered on its own, a refused one does not stop the ones after
it (the kernel goes on), the refusal names the write and what the caller tagged it with, and every link a
create of the batch made is recorded for the rollback, including those after the refusal. Enforce turns
that into an exact rollback.
"""

from __future__ import annotations

import pytest

from reconciler.agent import rtnl
from reconciler.agent import steps as d
from reconciler.agent.enforce import enforce
from reconciler.agent.netlink import Netlink, WriteError
from reconciler.agent.rtsock import RtnlSocket
from reconciler.agent.state import current_state
from tests.agent.conftest import Topo, ip, ip_json, ip_snapshot

pytestmark = pytest.mark.netns


def test_dumps_decode_what_ip_reports(scratch_ns: str) -> None:
    ip("link", "add", "br0", "type", "bridge", "stp_state", "1", ns=scratch_ns)
    ip("link", "add", "va", "type", "veth", "peer", "name", "vb", ns=scratch_ns)
    ip("link", "set", "va", "master", "br0", "mtu", "1400", "up", ns=scratch_ns)
    ip("link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", "10.9.9.9", ns=scratch_ns)
    ip("addr", "add", "192.0.2.1/24", "dev", "br0", ns=scratch_ns)
    ip("addr", "add", "2001:db8::1/64", "dev", "br0", ns=scratch_ns)
    ip("link", "set", "br0", "up", ns=scratch_ns)
    ip("route", "add", "198.51.100.0/24", "via", "192.0.2.254", "metric", "5", ns=scratch_ns)
    ip("-6", "route", "add", "2001:db8:9::/48", "via", "2001:db8::fe", "table", "1000", ns=scratch_ns)
    with Netlink(scratch_ns) as nl:
        dumps = nl.observe()
    by_name = {link["name"]: link for link in dumps.links}
    for link in ip_json(scratch_ns, "-d", "link", "show"):
        mine = by_name[link["ifname"]]
        assert mine["index"] == link["ifindex"] and mine["mtu"] == link["mtu"]
        assert mine["mac"] == link["address"] and mine["up"] == ("UP" in link["flags"])
        assert mine["kind"] == link.get("linkinfo", {}).get("info_kind")
    assert by_name["br0"]["stp"] == 1 and by_name["vx0"]["vxlan_id"] == 42
    assert by_name["va"]["master"] == by_name["br0"]["index"] and by_name["va"]["link"] == by_name["vb"]["index"]
    assert by_name["lo"]["link_type"] == "loopback"
    addrs = {(a["ip"], a["prefixlen"], a["family"]) for a in dumps.addresses if a["index"] == by_name["br0"]["index"]}
    assert {("192.0.2.1", 24, 4), ("2001:db8::1", 64, 6)} <= addrs
    routes = {(r["dst"], r["dst_len"], r["gateway"], r["table"], r["priority"]) for r in dumps.routes}
    assert ("198.51.100.0", 24, "192.0.2.254", 254, 5) in routes
    assert ("2001:db8:9::", 48, "2001:db8::fe", 1000, 1024) in routes


def test_a_batch_goes_on_past_a_refused_write_and_records_every_link_it_made(scratch_ns: str) -> None:
    ip("link", "add", "taken", "type", "bridge", ns=scratch_ns)
    with Netlink(scratch_ns) as nl:
        refused = "taken: link add taken type bridge failed: File exists"
        with pytest.raises(WriteError, match=refused) as caught, nl.batch():
            for tag, name in enumerate(["b1", "b2", "taken", "b3"], 1):
                nl.tag = tag
                assert nl.create_link(name, "linux-bridge") is None  # queued: no index yet
            nl.set_state("b3", True)  # needs b3's index: the queue goes out first, and fails
        assert caught.value.tag == 3
        assert [name for _index, name in nl.created] == ["b1", "b2", "b3"]
        assert nl.writes == 4  # set_state never got sent: the lookup that needed b3 raised first
    links = {link["ifname"]: link for link in ip_json(scratch_ns, "link", "show")}
    assert {"b1", "b2", "b3", "taken"} <= set(links)
    assert [links[n]["ifindex"] for n in ("b1", "b2", "b3")] == [i for i, _n in nl.created]


def test_a_batch_is_one_send_per_sixty_four_writes(scratch_ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sends: list[int] = []
    original = RtnlSocket.transact

    def counting(self: RtnlSocket, requests: list[rtnl.Request]) -> list[object]:
        sends.append(len(requests))
        return original(self, requests)  # type: ignore[return-value]

    monkeypatch.setattr(RtnlSocket, "transact", counting)
    with Netlink(scratch_ns) as nl, nl.batch():
        for i in range(70):
            nl.create_link(f"q{i}", "linux-bridge", stp=False)
    assert sends == [70]  # one transact: it splits into sends of rtsock.BATCH itself
    assert len(nl.created) == 70 and len(ip_json(scratch_ns, "link", "show")) == 71


def test_enforce_rolls_back_links_a_batch_made_after_a_refused_create(topo: Topo) -> None:
    ip("link", "add", "br-c", "type", "bridge", ns=topo.node)  # someone else's, made after our diff
    before = ip_snapshot(topo.node)
    wanted = [
        {"name": n, "type": "linux-bridge", "state": "up", "bridge": {"options": {"stp": {"enabled": False}}}}
        for n in ("br-a", "br-b", "br-c", "br-d")
    ]
    with Netlink(topo.node) as nl:
        observed = current_state(nl.observe())
    observed["interfaces"] = [i for i in observed["interfaces"] if i["name"] != "br-c"]  # the diff did not see it
    steps = d.diff(wanted, observed)
    with Netlink(topo.node) as nl:
        res = enforce(nl, steps, probes=[], prechecks=())
    assert not res.ok and res.rolled_back and res.rollback_problems == []
    assert "step 3/" in res.message and "(create_link br-c" in res.message and "File exists" in res.message
    assert [s.target for s in res.applied] == ["br-a", "br-b"]
    assert ip_snapshot(topo.node) == before  # br-a, br-b and br-d deleted again; br-c (not ours) kept
