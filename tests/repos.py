"""Builds small config repositories on disk for tests: a valid base plus whatever a test changes."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "repo"


def example_copy(root: Path) -> Path:
    """A copy of examples/repo at ``root`` for a test to change."""
    return Path(shutil.copytree(EXAMPLES, root))


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once, so a changed example fails loudly) with ``new``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))

CLUSTER = """\
apiVersion: virtnet.io/v1alpha1
kind: Cluster
metadata:
  name: test
spec:
  allowedNamespaces: [apps, db]
  macPool:
    start: "02:00:00:00:00:00"
    end: "02:00:00:00:ff:ff"
  loadBalancerPools:
    - name: public
      addresses: ["192.0.2.100-192.0.2.110"]
"""

BRIDGE = """\
apiVersion: virtnet.io/v1alpha1
kind: BridgeNetwork
metadata:
  name: vlan100
spec:
  bridge: br1
  uplink:
    nic: eth1
  vlan: 100
  subnet: 192.168.100.0/24
  namespaces: [apps]
"""

VM = """\
apiVersion: virtnet.io/v1alpha1
kind: VM
metadata:
  name: web-1
  namespace: apps
spec:
  boot:
    containerDisk: quay.io/containerdisks/fedora:40
  interfaces:
    - network: vlan100
      mac: "02:00:00:00:00:10"
      ipv4: 192.168.100.10/24
"""

LAB_CLUSTER = """\
apiVersion: virtnet.io/v1alpha1
kind: Cluster
metadata:
  name: lab
spec:
  allowedNamespaces: [apps]
"""


def lab_bridge(mtu: int) -> str:
    """A bridge over the veth ``ve1`` of the agent tests' node namespace, on nodes labelled role=worker."""
    return f"""\
apiVersion: virtnet.io/v1alpha1
kind: BridgeNetwork
metadata:
  name: lab-br
spec:
  bridge: br1
  nodeSelector: {{role: worker}}
  uplink:
    nic: ve1
  mtu: {mtu}
"""


BASE = {"cluster.yaml": CLUSTER, "networks/bridge.yaml": BRIDGE, "vms/web.yaml": VM}


def write_repo(root: Path, files: dict[str, str | bytes | None], base: bool = True) -> Path:
    """Write ``BASE`` (unless ``base=False``) overlaid with ``files``; a ``None`` value deletes a base file."""
    merged: dict[str, str | bytes | None] = {**(BASE if base else {}), **files}
    root.mkdir(parents=True, exist_ok=True)
    for name, content in merged.items():
        if content is None:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return root
