"""A mermaid picture of the networks a plan touches: nodes → bridges/bonds/VLANs → NADs → VMs (pure).

Reviewers read a PR comment faster from a picture than from a list of objects. Only the parts of the
topology connected to a changed object are drawn (the whole repository would be unreadable at scale);
changed objects are highlighted, deleted ones struck through by class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

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


def topology_mermaid(plan: Plan, desired: Iterable[Obj], marked: Iterable[str] = ()) -> str:
    """``flowchart LR`` of the changed part of the network. ``marked`` are extra ids to flag as at risk."""
    action = {i.id: i.action for i in plan.items}
    objects = {obj_id(o): o for o in desired}
    objects.update({i.id: i.live for i in plan.items if i.action == Action.DELETE and i.live})
    changed = {k for k, a in action.items() if a in (Action.CREATE, Action.UPDATE, Action.DELETE)}
    edges: set[tuple[str, str]] = set()
    labels: dict[str, str] = {}
    owner: dict[str, str] = {}  # mermaid node id -> object id it stands for

    def node(mid: str, text: str, obj: str | None = None) -> str:
        if obj:  # the defining object names it; a mere reference (a port, a NAD a VM uses) must not rename it
            labels[mid] = text
            owner[mid] = obj
        else:
            labels.setdefault(mid, text)
        return mid

    for key, obj in objects.items():
        kind = obj["kind"]
        if kind == "NodeNetworkConfigurationPolicy":
            sel = node(_node_id("sel", _selector(obj)), f"nodes: {_selector(obj)}")
            for iface in ((obj.get("spec") or {}).get("desiredState") or {}).get("interfaces") or []:
                if iface.get("type") in ("linux-bridge", "bond", "vlan"):
                    dev = node(_node_id("dev", iface["name"]), f"{iface['type']} {iface['name']}", key)
                    edges.add((sel, dev))
                    for port in (iface.get("link-aggregation") or {}).get("port") or []:
                        edges.add((node(_node_id("dev", port), port), dev))
                    for port in (iface.get("bridge") or {}).get("port") or []:
                        edges.add((node(_node_id("dev", port["name"]), port["name"]), dev))
                    if base := (iface.get("vlan") or {}).get("base-iface"):
                        edges.add((node(_node_id("dev", base), base), dev))
        elif kind == "NetworkAttachmentDefinition":
            ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            via_kind, via = _nad_bridge(obj)
            nad = node(_node_id("nad", ns, name), f"NAD {ns}/{name}", key)
            edges.add((node(_node_id("dev", via) if via_kind == "bridge" else _node_id(via_kind, via), via), nad))
        elif kind == "SriovNetwork":
            spec = obj.get("spec") or {}
            nad = node(
                _node_id("nad", spec.get("networkNamespace", ""), obj["metadata"]["name"]),
                f"SR-IOV {spec.get('networkNamespace')}/{obj['metadata']['name']}",
                key,
            )
            edges.add((node(_node_id("vf", spec.get("resourceName", "")), f"VFs {spec.get('resourceName')}"), nad))
        elif kind == "VirtualMachine":
            ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            vm = node(_node_id("vm", ns, name), f"VM {ns}/{name}", key)
            for net in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("networks") or []:
                if "multus" in net:
                    target = net["multus"]["networkName"]
                    target_ns, _, target_name = target.rpartition("/")
                    edges.add(
                        (
                            node(_node_id("nad", target_ns or ns, target_name), f"NAD {target_ns or ns}/{target_name}"),
                            vm,
                        )
                    )

    relevant = _connected({m for m, o in owner.items() if o in changed or o in set(marked)}, edges)
    lines = ["flowchart LR"]
    for mid in sorted(relevant)[:MAX_NODES]:
        lines.append(f'  {mid}["{_label(labels[mid])}"]')
    for a, b in sorted(edges):
        if a in relevant and b in relevant:
            lines.append(f"  {a} --> {b}")
    styles = {"create": [], "update": [], "delete": [], "risk": []}
    for mid in sorted(relevant):
        obj = owner.get(mid)
        if obj in set(marked):
            styles["risk"].append(mid)
        elif obj in changed:
            styles[action[obj].value].append(mid)
    lines += [
        "  classDef create fill:#d4f8d4,stroke:#2a2;",
        "  classDef update fill:#fff3c4,stroke:#b80;",
        "  classDef delete fill:#f8d4d4,stroke:#a22,stroke-dasharray: 4 2;",
        "  classDef risk fill:#ffb3b3,stroke:#d00,stroke-width:3px;",
    ]
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
