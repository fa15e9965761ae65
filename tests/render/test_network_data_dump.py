"""The fast cloud-init writer (render/vms.py ``_dump``) writes exactly what PyYAML writes, or lets PyYAML do it.

Rendered networkData is compared with the live VMs' bytes by the diff: one byte of difference would be an
update of every VM with a static address. So every case here is checked against ``yaml.dump`` itself.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest
import yaml

from reconciler.render import vms


def pyyaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=True)


def network_data(rng: random.Random) -> dict[str, Any]:
    ethernets: dict[str, Any] = {}
    for n in range(rng.randint(1, 4)):
        mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
        if rng.random() < 0.3:
            mac = ":".join(f"{rng.randrange(60):02d}" for _ in range(6))  # all-decimal: YAML 1.1 sexagesimal
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        v6 = ipaddress.IPv6Address(rng.getrandbits(128) if rng.random() < 0.5 else rng.getrandbits(16))
        name = rng.choice(["eth", "net", "on", "yes", "n", "e", "x-"]) + (str(n) if rng.random() < 0.7 else "")
        eth: dict[str, Any] = {"match": {"macaddress": mac}, "set-name": name[:15]}
        eth["addresses"] = [f"{v4}/{rng.randint(8, 32)}", f"{v6}/{rng.randint(8, 128)}"][: rng.randint(1, 2)]
        if rng.random() < 0.5:
            eth["routes"] = [{"to": "0.0.0.0/0", "via": str(v4 + 1)}, {"to": "::/0", "via": str(v6 + 1)}]
        if rng.random() < 0.5:
            eth["nameservers"] = {"addresses": [str(v4 + 2), str(v6)]}
        if rng.random() < 0.3:
            eth["dhcp4"] = rng.random() < 0.8  # a boolean, written true/false
        ethernets[name] = eth
    if rng.random() < 0.5:  # the pod interface, as render adds it beside static NICs
        ethernets["enp1s0"] = {"dhcp4": True}
    return {"version": 2, "ethernets": ethernets}


def test_the_fast_writer_matches_pyyaml_byte_for_byte() -> None:
    rng = random.Random(17)
    fast = 0
    for _ in range(3000):
        data = network_data(rng)
        out: list[str] = []
        fast += vms._block(data, "", out)
        assert vms._dump(data) == pyyaml(data), data
    assert fast > 1000  # most documents take the fast path (the rest are PyYAML's: quoted scalars)


@pytest.mark.parametrize(
    "value", ["on", "Yes", "null", "~", "12:34:56:12:34:56", "fd00::", "- x", "a b", "#x", "1.5", "0x1f", "", "é"]
)
def test_scalars_pyyaml_would_quote_are_left_to_pyyaml(value: str) -> None:
    data = {"version": 2, "ethernets": {"eth0": {"set-name": value, "addresses": [value]}}}
    assert not vms._block(data, "", [])
    assert vms._dump(data) == pyyaml(data)


def test_user_data_with_keys_is_unchanged() -> None:
    data = {"user": "fedora", "ssh_authorized_keys": ["ssh-ed25519 AAAA key@host"]}
    assert vms._dump(data) == pyyaml(data)


def test_booleans_take_the_fast_path() -> None:
    """DHCP on the pod interface is in most networkData: a boolean must not send the document to PyYAML."""
    data = {"version": 2, "ethernets": {"enp1s0": {"dhcp4": True}, "eth1": {"dhcp4": False, "set-name": "eth1"}}}
    out: list[str] = []
    assert vms._block(data, "", out)
    assert "".join(out) == pyyaml(data)
