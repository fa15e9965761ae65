"""Kernel capability detection, and the message a missing capability produces."""

from __future__ import annotations

import pytest

from reconciler.agent import capabilities
from reconciler.agent import steps as d
from reconciler.agent.capabilities import missing, static
from reconciler.agent.enforce import enforce, precheck_capabilities
from reconciler.agent.netlink import Netlink
from reconciler.agent.state import current_state
from reconciler.errors import AgentError
from tests.agent.conftest import Topo, ip, netns_skip_reason


def test_message_names_kind_module_and_interface() -> None:
    assert str(missing("vlan", "eth1.102")) == "kernel lacks vlan support (module 8021q): cannot create eth1.102"
    assert str(missing("bond", "bond0")) == "kernel lacks bond support (module bonding): cannot create bond0"
    caps = static(["bridge"], ["vlan"])
    assert caps.has("bridge") and not caps.has("vlan") and caps.has("never-probed")
    with pytest.raises(AgentError, match="module 8021q"):
        caps.require("vlan", "eth1.5")


@pytest.mark.netns
def test_detect_probes_in_a_scratch_namespace_and_caches() -> None:
    if netns_skip_reason():
        pytest.skip(netns_skip_reason())
    before = set(ip("netns", "list").split())
    caps = capabilities.detect(refresh=True)
    assert caps.supported["veth"] and caps.supported["bridge"]
    assert set(caps.supported) >= {"vlan", "bond", "dummy", "macvlan", "vxlan", "bridge-vlan-filtering"}
    assert capabilities.detect() is caps
    assert set(ip("netns", "list").split()) == before  # the scratch namespace is gone


def _kernel_has(kind: str) -> bool:
    return capabilities.detect().has(kind)


@pytest.mark.netns
@pytest.mark.parametrize(
    ("kind", "want"),
    [
        ("vlan", [{"name": "eth0.102", "type": "vlan", "vlan": {"base-iface": "eth0", "id": 102}}]),
        ("bond", [{"name": "bond0", "type": "bond", "link-aggregation": {"mode": "active-backup", "port": []}}]),
    ],
)
def test_missing_kernel_capability_is_named(topo: Topo, kind: str, want: list[dict[str, object]]) -> None:
    if _kernel_has(kind):
        pytest.skip(f"this kernel supports {kind}; the missing-capability path cannot be shown")
    name = want[0]["name"]
    with Netlink(topo.node) as nl:
        with pytest.raises(AgentError) as err:
            nl.create_link(str(name), kind, base="eth0", vlan_id=102)
        assert str(err.value) == str(missing(kind, str(name)))
        writes = nl.writes
        steps = d.diff(want, current_state(nl.observe()))
        res = enforce(nl, steps, probes=[], prechecks=[precheck_capabilities(capabilities.detect())])
        assert nl.writes == writes  # refused before any write
    assert res.status == "Failing" and str(missing(kind, str(name))) in res.message


@pytest.mark.netns
@pytest.mark.parametrize("kind", ["vlan", "bond"])
def test_vlan_and_bond_apply_live(topo: Topo, kind: str) -> None:
    if not _kernel_has(kind):
        pytest.skip(str(missing(kind, "test link")))
    want = (
        [{"name": "ve1.5", "type": "vlan", "vlan": {"base-iface": "ve1", "id": 5}}]
        if kind == "vlan"
        else [{"name": "bond0", "type": "bond", "link-aggregation": {"mode": "active-backup", "port": ["ve1"]}}]
    )
    with Netlink(topo.node) as nl:
        res = enforce(nl, d.diff(want, current_state(nl.observe())), probes=[])
        assert res.ok, res.message


@pytest.mark.netns
def test_runner_refuses_a_vlan_on_a_kernel_without_8021q(topo: Topo) -> None:
    from reconciler.agent.publish import condition_of
    from reconciler.agent.runner import AgentConfig, run_once
    from tests.agent.test_enforce import nncp

    if _kernel_has("vlan"):
        pytest.skip("this kernel supports vlan; the missing-capability path cannot be shown")
    want = [{"name": "ve1.7", "type": "vlan", "vlan": {"base-iface": "ve1", "id": 7}},
            {"name": "br7", "type": "linux-bridge", "bridge": {"port": [{"name": "ve1.7"}]}}]  # fmt: skip
    with Netlink(topo.node) as nl:
        res = run_once(AgentConfig(node="n", mode="enforce", netns=topo.node), nl, policies=[nncp("v", want)])
        assert nl.writes == 0
    assert condition_of(res.nnces[0]) == "Failing"
    assert "kernel lacks vlan support (module 8021q): cannot create ve1.7" in res.outcomes["v"].message
