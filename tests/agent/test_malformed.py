"""Issue #14, class 17: a malformed NNCP fails alone; the pass and the other policies go on.

A table of malformed policies, each run next to a good policy in a real enforce pass (throwaway namespace):
the bad one is Failing with a message naming the field, the good one is applied, and no exception leaves
the pass. Then a seeded fuzz: random values dropped into every field of a policy, each pass in observe mode
over a recorded node, never raising and always reporting the policy.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from reconciler.agent import runner
from reconciler.agent.netlink import Netlink
from reconciler.agent.publish import condition_of
from reconciler.agent.runner import AgentConfig, run_once
from reconciler.agent.state import Dumps
from reconciler.agent.validate import problems, screen
from tests.agent.conftest import ip_json
from tests.agent.test_enforce import nncp

GOOD = nncp("good", [{"name": "brgood", "type": "linux-bridge", "state": "up", "mtu": 1400}])


def bad(interfaces: Any = None, **spec: Any) -> dict[str, Any]:
    """A policy named ``bad`` with these interfaces (or these spec fields)."""
    policy = nncp("bad", [])
    if interfaces is not None:
        policy["spec"]["desiredState"]["interfaces"] = interfaces
    policy["spec"].update(spec)
    return policy


def br(**fields: Any) -> dict[str, Any]:
    return {"name": "brbad", "type": "linux-bridge", **fields}


#: (case, policy, what the Failing message must say)
MALFORMED: list[tuple[str, Any, str]] = [
    ("mtu-not-a-number", bad([br(mtu="abc")]), "interfaces[0].mtu: the string 'abc' is not an integer"),
    ("mtu-bool", bad([br(mtu=True)]), ".mtu: true/false is not an integer"),
    ("mtu-zero", bad([br(mtu=0)]), ".mtu: 0 is not between 68 and 65535"),
    ("interfaces-a-string", bad("brbad"), "spec.desiredState.interfaces: the string 'brbad', not a list"),
    ("interfaces-a-mapping", bad({"name": "brbad"}), "spec.desiredState.interfaces: a mapping, not a list"),
    ("interface-without-name", bad([{"type": "linux-bridge"}]), "interfaces[0]: an interface has no name"),
    ("interface-a-string", bad(["brbad"]), "interfaces[0]: the string 'brbad', not a mapping with a name"),
    ("interface-null", bad([None]), "interfaces[0]: null, not a mapping with a name"),
    ("name-a-number", bad([{"name": 7}]), "interfaces[0].name: the number 7 is not an interface name"),
    ("name-too-long", bad([br(name="b" * 16)]), "is longer than 15 characters"),
    ("name-with-slash", bad([br(name="a/b")]), "'a/b' is not a valid interface name"),
    ("name-twice", bad([br(), br()]), "interfaces[1].name: 'brbad' is listed twice"),
    ("bridge-a-string", bad([br(bridge="yes")]), "interfaces[0].bridge: the string 'yes', not a mapping"),
    ("stp-a-list", bad([br(bridge={"options": {"stp": []}})]), ".bridge.options.stp: a list, not a mapping"),
    ("stp-enabled-a-string", bad([br(bridge={"options": {"stp": {"enabled": "no"}}})]), "not true/false"),
    ("ports-a-string", bad([br(bridge={"port": "ve1"})]), ".bridge.port: the string 've1', not a list of ports"),
    ("port-without-name", bad([br(bridge={"port": [{}]})]), ".bridge.port[0]: null is not an interface name"),
    ("bond-ports-a-number", bad([{"name": "bond9", "link-aggregation": {"port": 5}}]), "not a list of ports"),
    ("state-unknown", bad([br(state="sideways")]), ".state: 'sideways' is not up, down or absent"),
    ("state-a-number", bad([br(state=1)]), ".state: the number 1, not a string"),
    ("ipv4-a-string", bad([br(ipv4="dhcp")]), ".ipv4: the string 'dhcp', not a mapping"),
    ("ipv4-address-a-mapping", bad([br(ipv4={"address": {"ip": "10.0.0.1"}})]), ".ipv4.address: a mapping"),
    ("ipv4-bad-ip", bad([br(ipv4={"address": [{"ip": "10.0.0.300", "prefix-length": 24}]})]), "not an IP address"),
    ("ipv4-gets-v6", bad([br(ipv4={"address": [{"ip": "fd00::1", "prefix-length": 64}]})]), "not an IPv4 address"),
    ("prefix-missing", bad([br(ipv6={"address": [{"ip": "fd00::1"}]})]), ".ipv6.address[0].prefix-length: missing"),
    ("prefix-too-long", bad([br(ipv4={"address": [{"ip": "10.0.0.1", "prefix-length": 33}]})]), "not between 0"),
    ("vlan-id-a-string", bad([{"name": "v.1", "type": "vlan", "vlan": {"base-iface": "lo", "id": "x"}}]), ".vlan.id"),
    ("vlan-a-list", bad([{"name": "v.1", "type": "vlan", "vlan": []}]), ".vlan: a list, not a mapping"),
    ("mac-garbage", bad([br(**{"mac-address": "zz"})]), ".mac-address: the string 'zz' is not a MAC address"),
    ("desiredState-a-list", bad(desiredState=[]), "spec.desiredState: a list, not a mapping"),
    ("maxUnavailable-garbage", bad([br()], maxUnavailable="lots"), "spec.maxUnavailable: maxUnavailable 'lots'"),
    ("selector-a-string", bad([br()], nodeSelector="all"), "spec.nodeSelector: the string 'all', not a mapping"),
    ("selector-value-a-number", bad([br()], nodeSelector={"a": 1}), "label 'a': the number 1, not a string"),
    ("spec-a-string", {**nncp("bad", []), "spec": "oops"}, "spec: the string 'oops', not a mapping"),
    ("loopback-down", bad([{"name": "lo", "state": "down"}]), "(lo): the loopback interface is never changed"),
    ("loopback-by-type", bad([{"name": "lo2", "type": "loopback"}]), "(lo2): the loopback interface"),
]


@pytest.mark.parametrize(("case", "policy", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_screen_fails_the_malformed_policy_with_the_field_named(case: str, policy: Any, message: str) -> None:
    screened = screen([policy, GOOD], {})
    assert [p["metadata"]["name"] for p in screened.selected] == ["good"]
    [(failing, why)] = screened.failing
    assert failing["metadata"]["name"] == "bad"
    assert why.startswith("malformed policy, not applied: ") and message in why, why


def test_good_policies_have_no_problems() -> None:
    from tests.agent.test_enforce import full_desired

    assert problems(GOOD) == [] and problems(nncp("full", full_desired())) == []


def test_unnamed_entries_and_other_nodes_policies() -> None:
    elsewhere = bad([br(mtu="abc")], nodeSelector={"role": "storage"})
    screened = screen(["not a policy", None, {"metadata": {}}, elsewhere, GOOD], {"role": "worker"})
    assert [p["metadata"]["name"] for p in screened.selected] == ["good"]
    assert screened.failing == []  # a malformed policy for other nodes is theirs to report
    assert screened.unnamed == [
        "policy #1 has no metadata.name (it is the string 'not a policy'): skipped",
        "policy #2 has no metadata.name (it is null): skipped",
        "policy #3 has no metadata.name (it is a mapping): skipped",
    ]


@pytest.mark.netns
@pytest.mark.parametrize(("case", "policy", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_enforce_pass_fails_only_the_malformed_policy(case: str, policy: Any, message: str, scratch_ns: str) -> None:
    cfg = AgentConfig(node="node-a", mode="enforce", netns=scratch_ns, probes=[])
    with Netlink(scratch_ns) as nl:
        res = run_once(cfg, nl, policies=[policy, GOOD], node_labels={})
    by_name = {n["metadata"]["labels"]["nmstate.io/policy"]: n for n in res.nnces}
    assert condition_of(by_name["bad"]) == "Failing"
    failing = next(c for c in by_name["bad"]["status"]["conditions"] if c["type"] == "Failing")
    assert message in failing["message"] and failing["reason"] == "FailedToConfigure"
    assert not res.outcomes["bad"].ok and message in res.outcomes["bad"].message
    assert condition_of(by_name["good"]) == "Available", res.outcomes["good"].message
    assert res.error is None and res.policies == ["bad", "good"]
    links = {link["ifname"]: link for link in ip_json(scratch_ns, "link", "show")}
    assert links["brgood"]["mtu"] == 1400 and "brbad" not in links


def test_an_unforeseen_error_in_one_policy_fails_that_policy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner.diff

    def explode(interfaces: Any, observed: Any) -> Any:
        if any(i.get("name") == "brbad" for i in interfaces):
            raise RuntimeError("a bug")
        return real(interfaces, observed)

    monkeypatch.setattr(runner, "diff", explode)
    res = run_once(AgentConfig(node="n"), FakeNetlink(), policies=[bad([br()]), GOOD], node_labels={})
    assert res.outcomes["bad"].message == "not applied: unexpected RuntimeError: a bug"
    assert {n["metadata"]["name"]: condition_of(n) for n in res.nnces} == {"n.bad": "Failing", "n.good": "Pending"}


# --------------------------------------------------------------------------- fuzz (observe mode, no kernel)
class FakeNetlink:
    """Just enough of :class:`Netlink` for an observe pass: a recorded node with eth0 and ve1."""

    writes = 0

    def observe(self) -> Dumps:
        links = [
            {"index": 1, "name": "lo", "kind": None, "link_type": "loopback", "mtu": 65536, "up": True},
            {"index": 2, "name": "eth0", "kind": "veth", "link_type": "ether", "mtu": 1500, "up": True},
            {"index": 3, "name": "ve1", "kind": "veth", "link_type": "ether", "mtu": 1500, "up": False},
        ]
        for link in links:
            link.update({"mac": None, "master": None, "link": None, "stp": None, "vlan_id": None})
            link.update({"bond_mode": None, "vxlan_id": None})
        addrs = [{"index": 2, "family": 4, "ip": "10.77.0.2", "prefixlen": 24, "scope": 0}]
        return Dumps(links, addrs, [])


GARBAGE = ["abc", "", 0, -1, 70000, 1.5, True, None, [], {}, ["x"], {"name": 3}, "x" * 40, "lo", "10.0.0.1"]


def _paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*at, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    obj = copy.deepcopy(obj)
    cur = obj
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return obj


def test_fuzz_no_exception_escapes_and_every_policy_is_reported() -> None:
    from tests.agent.test_enforce import full_desired

    base = nncp("fuzz", full_desired(), maxUnavailable=1)
    paths = [p for p in _paths(base) if p and p[0] != "metadata"]  # every field but the name
    rng = random.Random(14)
    for _ in range(600):
        mutated: Any = base
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            try:
                mutated = _set(mutated, path, rng.choice(GARBAGE))
            except (KeyError, IndexError, TypeError):  # an earlier mutation replaced a parent of this path
                continue
        res = run_once(AgentConfig(node="n"), FakeNetlink(), policies=[mutated, GOOD], node_labels={})
        states = {n["metadata"]["name"]: condition_of(n) for n in res.nnces}
        assert states["n.good"] == "Pending", mutated  # good would create brgood: observe mode reports it
        assert states.get("n.fuzz") in ("Failing", "Pending", "Available"), (mutated, states)
        if states["n.fuzz"] != "Failing":
            assert problems(mutated) == []
