"""A mermaid picture of the networks a plan touches: nodes → bridges/bonds/VLANs → NADs → VMs (pure).

Reviewers read a PR comment faster from a picture than from a list of objects. The picture is focused on
what changed: each changed (or at-risk) object, what it hangs off (its NADs, bridge, ports and node
selector: the context), and what hangs off it (the NADs and VMs a changed bridge carries: the reach). It
never walks *up and then down again*, so a one-VM change draws that VM's path to the nodes, not every VM
sharing the node selector.

Bounded so GitHub renders it at any scale (Mermaid's defaults: ``maxTextSize`` 50,000 characters,
``maxEdges`` 500): at most :data:`MAX_NODES` boxes and :data:`MAX_EDGES` arrows, labels of at most
:data:`MAX_LABEL` characters. The riskiest objects are drawn first (at risk, deleted, updated, created),
each with its context. Objects left out are counted in a "… N more" box hanging off the drawn box they
connect to, so the number is true and the box is where they are; what no drawn box leads to is only
counted in :attr:`Picture.hidden`. Every class sets a text colour: readable in light and dark themes.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from reconciler.engine.plan import Action, Plan
from reconciler.objects import Obj, obj_id

MAX_NODES = 60  # boxes, "… N more" boxes included
MAX_EDGES = 150  # arrows (Mermaid refuses more than 500 by default)
MAX_LABEL = 60  # characters of one box's label
_RANK = {"risk": 0, "delete": 1, "update": 2, "create": 3}  # what to draw first
_LEVEL = {"sel": 0, "dev": 1, "vf": 1, "ovn": 1, "net": 1, "nad": 2, "vm": 3}  # top of the picture first


def _node_id(kind: str, *parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join((kind, *parts)))


def _label(text: str) -> str:
    text = text.replace('"', "'")
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


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

_CLASS_DEFS = [  # light fills with dark text: legible on GitHub's light and dark themes alike
    "  classDef create fill:#d4f8d4,stroke:#2a2,color:#111;",
    "  classDef update fill:#fff3c4,stroke:#b80,color:#111;",
    "  classDef delete fill:#f8d4d4,stroke:#a22,stroke-dasharray: 4 2,color:#111;",
    "  classDef risk fill:#ffb3b3,stroke:#d00,stroke-width:3px,color:#111;",
    "  classDef more fill:#eeeeee,stroke:#888,stroke-dasharray: 3 3,color:#111;",
]


@dataclass(frozen=True)
class Picture:
    """The flowchart text and what it shows: ``drawn`` boxes of the ``relevant`` objects' boxes;
    ``hidden`` counts those that are in no "… N more" box (no drawn box leads to them)."""

    text: str
    drawn: int
    relevant: int
    edges: int
    hidden: int


def topology_mermaid(plan: Plan, desired: Iterable[Obj], marked: Iterable[str] = ()) -> str:
    """``flowchart LR`` of the changed part of the network. ``marked`` are extra ids to flag as at risk."""
    return topology_picture(plan, desired, marked).text


def topology_picture(plan: Plan, desired: Iterable[Obj], marked: Iterable[str] = ()) -> Picture:
    """The picture with its counts (for a caption saying how much of it is drawn)."""
    action = {i.id: i.action for i in plan.items}
    objects = {obj_id(o): o for o in desired}
    objects.update({i.id: i.live for i in plan.items if i.action == Action.DELETE and i.live})
    changed = {k for k, a in action.items() if a in (Action.CREATE, Action.UPDATE, Action.DELETE)}
    at_risk = set(marked)
    graph = _Graph()
    for key, obj in objects.items():
        if draw := _DRAW.get(obj["kind"]):
            draw(graph, key, obj)
    style: dict[str, str] = {}
    for mid, owner in graph.owner.items():
        if owner in at_risk:
            style[mid] = "risk"
        elif owner in changed:
            style[mid] = action[owner].value
    return _mermaid(graph, _focus(graph, style), style)


def _focus(graph: _Graph, style: dict[str, str]) -> list[str]:
    """The boxes worth drawing, most important first: each styled box (riskiest first, top of the
    picture first) followed by its context (what it hangs off), then the reach of the styled boxes
    (what hangs off them), nearest first."""
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for a, b in sorted(graph.edges):
        children.setdefault(a, []).append(b)
        parents.setdefault(b, []).append(a)
    start = sorted(style, key=lambda m: (_RANK[style[m]], _LEVEL.get(m.split("_", 1)[0], 9), m))
    order: dict[str, None] = {}
    for mid in start:
        for node in _walk([mid], parents):
            order.setdefault(node, None)
    for node in _walk(start, children):
        order.setdefault(node, None)
    return list(order)


def _walk(start: list[str], step: dict[str, list[str]]) -> list[str]:
    """Breadth-first from ``start`` along ``step`` (parents or children): nearest first, start included."""
    seen, todo = dict.fromkeys(start), deque(start)
    while todo:
        for nxt in step.get(todo.popleft(), ()):
            if nxt not in seen:
                seen[nxt] = None
                todo.append(nxt)
    return list(seen)


def _hidden_by_anchor(drawn: list[str], relevant: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    """Each relevant box left out, counted once, under the drawn box it is reached from first."""
    keep = set(relevant)
    neighbours: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        if a in keep and b in keep:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    anchor = {m: m for m in drawn}
    todo = deque(drawn)
    while todo:
        here = todo.popleft()
        for nxt in neighbours.get(here, ()):
            if nxt not in anchor:
                anchor[nxt] = anchor[here]
                todo.append(nxt)
    counts: dict[str, int] = {}
    for mid, root in anchor.items():
        if mid != root:
            counts[root] = counts.get(root, 0) + 1
    return counts


def _mermaid(graph: _Graph, relevant: list[str], style: dict[str, str]) -> Picture:
    """The flowchart text within :data:`MAX_NODES` boxes (the "more" boxes included) and :data:`MAX_EDGES`."""
    keep = min(MAX_NODES, len(relevant))
    while True:  # the most boxes that leave room for the "more" boxes they need
        drawn = relevant[:keep]
        more = _hidden_by_anchor(drawn, relevant, graph.edges) if keep < len(relevant) else {}
        if keep + len(more) <= MAX_NODES or keep <= 1:
            break
        keep -= 1
    shown = set(drawn)
    lines = ["flowchart LR"]
    lines += [f'  {mid}["{_label(graph.labels[mid])}"]' for mid in drawn]
    arrows = [f"  {mid} -.-> more_{mid}" for mid in sorted(more)]  # first: a box is never left unconnected
    arrows += [f"  {a} --> {b}" for a, b in sorted(graph.edges) if a in shown and b in shown]
    lines += [f'  more_{mid}["… {n} more"]' for mid, n in sorted(more.items())]
    lines += arrows[:MAX_EDGES]
    lines += _CLASS_DEFS
    classes: dict[str, list[str]] = {cls: [] for cls in _RANK}
    for mid in drawn:
        if mid in style:
            classes[style[mid]].append(mid)
    classes["more"] = [f"more_{mid}" for mid in sorted(more)]
    lines += [f"  class {','.join(ids)} {cls};" for cls, ids in classes.items() if ids]
    hidden = len(relevant) - len(drawn) - sum(more.values())
    return Picture("\n".join(lines) + "\n", len(drawn), len(relevant), min(len(arrows), MAX_EDGES), hidden)
