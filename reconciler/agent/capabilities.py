"""Which link kinds this kernel can create, found out by trying.

Why: a node kernel may lack modules (8021q, bonding, dummy, ...). Creating a VLAN there fails deep
inside an apply with a bare ``EOPNOTSUPP``; we want to refuse *before* touching anything, with a
message that names the capability and the interface (``kernel lacks vlan support (module 8021q):
cannot create eth1.102``).

Side effects: :func:`detect` creates a throwaway network namespace (``vnt-cap-<random>``), tries to
create one link of each kind inside it, and deletes the namespace again. The host's root namespace
is never touched. The result is cached per process.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.errors import AgentError

#: link kind → kernel module that provides it
MODULES: dict[str, str] = {
    "bridge": "bridge",
    "veth": "veth",
    "vxlan": "vxlan",
    "vlan": "8021q",
    "bond": "bonding",
    "dummy": "dummy",
    "macvlan": "macvlan",
    "bridge-vlan-filtering": "bridge",
}

_lock = threading.Lock()
_cache: Capabilities | None = None


@dataclass(frozen=True)
class Capabilities:
    """The result of a probe: ``supported[kind]`` is True when a link of that kind could be created."""

    supported: dict[str, bool] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def has(self, kind: str) -> bool:
        # A kind we never probed is assumed present: the apply will say otherwise.
        return self.supported.get(kind, True)

    def require(self, kind: str, iface: str) -> None:
        """Raise the agent's standard error when ``kind`` is missing."""
        if not self.has(kind):
            raise missing(kind, iface)

    def as_dict(self) -> dict[str, bool]:
        return dict(sorted(self.supported.items()))


def missing(kind: str, iface: str) -> AgentError:
    """The one message for a missing capability."""
    return AgentError(f"kernel lacks {kind} support (module {MODULES.get(kind, kind)}): cannot create {iface}")


def _try_kinds(ns: str) -> tuple[dict[str, bool], dict[str, str]]:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    supported: dict[str, bool] = {}
    errors: dict[str, str] = {}
    ipr = IPRoute(netns=ns)
    try:
        ipr.link("add", ifname="cap-ve0", kind="veth", peer={"ifname": "cap-ve1"})
        base = ipr.link_lookup(ifname="cap-ve0")[0]
        attempts: dict[str, dict[str, object]] = {
            "bridge": {"kind": "bridge"},
            "vxlan": {"kind": "vxlan", "vxlan_id": 42, "vxlan_port": 4789},
            "vlan": {"kind": "vlan", "link": base, "vlan_id": 42},
            "bond": {"kind": "bond"},
            "dummy": {"kind": "dummy"},
            "macvlan": {"kind": "macvlan", "link": base},
        }
        supported["veth"] = True
        for kind, args in attempts.items():
            try:
                ipr.link("add", ifname=f"cap-{kind}"[:15], **args)
                supported[kind] = True
            except NetlinkError as e:
                supported[kind] = False
                errors[kind] = f"{e.code}: {e}"
        if supported.get("bridge"):
            idx = ipr.link_lookup(ifname="cap-bridge")[0]
            try:
                ipr.link("set", index=idx, kind="bridge", br_vlan_filtering=1)
                supported["bridge-vlan-filtering"] = True
            except NetlinkError as e:
                supported["bridge-vlan-filtering"] = False
                errors["bridge-vlan-filtering"] = f"{e.code}: {e}"
    except NetlinkError as e:
        supported.setdefault("veth", False)
        errors.setdefault("veth", f"{e.code}: {e}")
    finally:
        ipr.close()
    return supported, errors


def detect(refresh: bool = False) -> Capabilities:
    """Probe the kernel once (cached) in a scratch namespace that is always removed."""
    global _cache
    with _lock:
        if _cache is not None and not refresh:
            return _cache
        from pyroute2 import netns as pnetns

        ns = f"vnt-cap-{secrets.token_hex(3)}"
        try:
            pnetns.create(ns)
        except OSError as e:
            raise AgentError(f"cannot create a scratch network namespace to probe the kernel: {e}") from e
        try:
            supported, errors = _try_kinds(ns)
        finally:
            pnetns.remove(ns)
        _cache = Capabilities(supported, errors)
        return _cache


def static(supported: Iterable[str], unsupported: Iterable[str] = ()) -> Capabilities:
    """A fixed answer, for tests and for callers that already know."""
    caps = {k: True for k in supported}
    caps.update({k: False for k in unsupported})
    return Capabilities(caps)
