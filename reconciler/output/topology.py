"""A mermaid picture of the networks a plan touches: nodes → bridges/bonds/VLANs → NADs → VMs (pure).

Reviewers read a PR comment faster from a picture than from a list of objects. Only the parts of the
topology connected to a changed object are drawn (the whole repository would be unreadable at scale);
changed objects are highlighted, deleted ones struck through by class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reconciler.engine.plan import Action, Plan
from reconciler.objects import Obj, obj_id

MAX_NODES = 80


def _node_id(kind: str, *parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join((kind, *parts)))


def _label(text: str) -> str:
    return text.replace('"', "'")


def _selector(obj: Obj) -> str:
    sel = (obj.get("spec") or {}).get("nodeSelector") or {}
    return ",".join(f"{k}={v}" if v else k for k, v in sorted(sel.items())) or "all nodes"


def _nad_bridge(nad: Obj) -> tuple[str, str]:
    """(kind, name) of what a NAD rides on: a Linux bridge, an OVN network or an SR-IOV resource."""
    try:
        config = json.loads(nad["spec"]["config"])
    except (KeyError, ValueError):
        return ("net", nad["metadata"]["name"])
    if config.get("type") == "bridge":
        return ("bridge", config.get("bridge", "?"))
    if config.get("type") == "ovn-k8s-cni-overlay":
        return ("ovn", f"{config.get('topology', '')}:{config.get('name', '')}")
    return ("net", config.get("type", "?"))


@dataclass
class _Graph:
    """The picture being drawn: mermaid node ids with their labels, the object each stands for, the edges."""

    labels: dict[str, str] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # mermaid node id -> object id it stands for
    edges: set[tuple[str, str]] = field(default_factory=set)

    def node(self, mid: str, text: str, obj: str | None = None) -> str:
        if obj:  # the defining object names it; a mere reference (a port, a NAD a VM uses) must not rename it
            self.labels[mid] = text
            self.owner[mid] = obj
        else:
            self.labels.setdefault(mid, text)
        return mid

    def edge(self, source: str, target: str) -> None:
        self.edges.add((source, target))


# -- how each kind appears: the node it defines and what it hangs off -----------------------------------


def _draw_policy(graph: _Graph, key: str, obj: Obj) -> None:
    """An NNCP: the node selector → each bridge, bond and VLAN it creates, with their ports and base."""
    sel = graph.node(_node_id("sel", _selector(obj)), f"nodes: {_selector(obj)}")
    for iface in ((obj.get("spec") or {}).get("desiredState") or {}).get("interfaces") or []:
        if iface.get("type") not in ("linux-bridge", "bond", "vlan"):
            continue
        dev = graph.node(_node_id("dev", iface["name"]), f"{iface['type']} {iface['name']}", key)
        graph.edge(sel, dev)
        ports = [*((iface.get("link-aggregation") or {}).get("port") or [])]
        ports += [port["name"] for port in (iface.get("bridge") or {}).get("port") or []]
        if base := (iface.get("vlan") or {}).get("base-iface"):
            ports.append(base)
        for port in ports:
            graph.edge(graph.node(_node_id("dev", port), port), dev)


def _draw_nad(graph: _Graph, key: str, obj: Obj) -> None:
    """A NAD, under the bridge, OVN network or other CNI it rides on."""
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    via_kind, via = _nad_bridge(obj)
    nad = graph.node(_node_id("nad", ns, name), f"NAD {ns}/{name}", key)
    graph.edge(graph.node(_node_id("dev", via) if via_kind == "bridge" else _node_id(via_kind, via), via), nad)


def _draw_sriov(graph: _Graph, key: str, obj: Obj) -> None:
    """An SriovNetwork: the NAD the operator makes from it, under the VF resource it allocates from."""
    spec = obj.get("spec") or {}
    ns, name = spec.get("networkNamespace", ""), obj["metadata"]["name"]
    nad = graph.node(_node_id("nad", ns, name), f"SR-IOV {spec.get('networkNamespace')}/{name}", key)
    vfs = graph.node(_node_id("vf", spec.get("resourceName", "")), f"VFs {spec.get('resourceName')}")
    graph.edge(vfs, nad)


def _draw_vm(graph: _Graph, key: str, obj: Obj) -> None:
    """A VM, under each NAD it attaches to (``networkName`` may omit the namespace: the VM's own)."""
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    vm = graph.node(_node_id("vm", ns, name), f"VM {ns}/{name}", key)
    for net in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("networks") or []:
        if "multus" in net:
            target_ns, _, target_name = net["multus"]["networkName"].rpartition("/")
            target_ns = target_ns or ns
            graph.edge(graph.node(_node_id("nad", target_ns, target_name), f"NAD {target_ns}/{target_name}"), vm)


_DRAW: dict[str, Callable[[_Graph, str, Obj], None]] = {
    "NodeNetworkConfigurationPolicy": _draw_policy,
    "NetworkAttachmentDefinition": _draw_nad,
    "SriovNetwork": _draw_sriov,
    "VirtualMachine": _draw_vm,
}

_CLASS_DEFS = [
    "  classDef create fill:#d4f8d4,stroke:#2a2;",
    "  classDef update fill:#fff3c4,stroke:#b80;",
    "  classDef delete fill:#f8d4d4,stroke:#a22,stroke-dasharray: 4 2;",
    "  classDef risk fill:#ffb3b3,stroke:#d00,stroke-width:3px;",
]


def topology_mermaid(plan: Plan, desired: Iterable[Obj], marked: Iterable[str] = ()) -> str:
    """``flowchart LR`` of the changed part of the network. ``marked`` are extra ids to flag as at risk."""
    action = {i.id: i.action for i in plan.items}
    objects = {obj_id(o): o for o in desired}
    objects.update({i.id: i.live for i in plan.items if i.action == Action.DELETE and i.live})
    changed = {k for k, a in action.items() if a in (Action.CREATE, Action.UPDATE, Action.DELETE)}
    at_risk = set(marked)
    graph = _Graph()
    for key, obj in objects.items():
        if draw := _DRAW.get(obj["kind"]):
            draw(graph, key, obj)
    relevant = sorted(_connected({m for m, o in graph.owner.items() if o in changed or o in at_risk}, graph.edges))
    styles: dict[str, list[str]] = {"create": [], "update": [], "delete": [], "risk": []}
    for mid in relevant:
        owner = graph.owner.get(mid)
        if owner in at_risk:
            styles["risk"].append(mid)
        elif owner is not None and owner in changed:
            styles[action[owner].value].append(mid)
    return _mermaid(graph, relevant, styles)


def _mermaid(graph: _Graph, relevant: list[str], styles: dict[str, list[str]]) -> str:
    """The flowchart text: at most ``MAX_NODES`` nodes, the edges among the drawn nodes, the style classes."""
    lines = ["flowchart LR"]
    lines += [f'  {mid}["{_label(graph.labels[mid])}"]' for mid in relevant[:MAX_NODES]]
    drawn = set(relevant)
    lines += [f"  {a} --> {b}" for a, b in sorted(graph.edges) if a in drawn and b in drawn]
    lines += _CLASS_DEFS
    lines += [f"  class {','.join(ids)} {cls};" for cls, ids in styles.items() if ids]
    if len(relevant) > MAX_NODES:
        lines.append(f'  more["… {len(relevant) - MAX_NODES} more"]')
    return "\n".join(lines) + "\n"


def _connected(start: set[str], edges: set[tuple[str, str]]) -> set[str]:
    """Everything reachable from the changed nodes, in either direction (their context)."""
    neighbours: dict[str, set[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen, todo = set(start), list(start)
    while todo:
        for nxt in neighbours.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
