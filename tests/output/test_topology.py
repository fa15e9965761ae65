"""The topology picture: focused on what changed, bounded for Mermaid's defaults, legible in both themes.

Counts are read back from the flowchart text (boxes declared, arrows, ids used), not taken from the
function's own report, so a picture that lies about itself fails.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from reconciler.engine.plan import Action, Item, Plan
from reconciler.model import load_repo
from reconciler.objects import obj_id
from reconciler.output import topology
from reconciler.output.topology import topology_picture
from reconciler.render import render

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo"
MERMAID_MAX_TEXT, MERMAID_MAX_EDGES = 50_000, 500  # mermaid's defaults (maxTextSize, maxEdges)
DECLARED = re.compile(r"^  (\w+)\[\"(.*)\"\]$")
ARROW = re.compile(r"^  (\w+) (-->|-\.->) (\w+)$")


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, str]], dict[str, list[str]]]:
    boxes: dict[str, str] = {}
    arrows: list[tuple[str, str]] = []
    classes: dict[str, list[str]] = {}
    for line in text.splitlines()[1:]:
        if m := DECLARED.match(line):
            boxes[m[1]] = m[2]
        elif m := ARROW.match(line):
            arrows.append((m[1], m[3]))
        elif line.startswith("  class "):
            ids, cls = line.strip().rstrip(";").split()[1:]
            classes[cls] = ids.split(",")
    return boxes, arrows, classes


def check_well_formed(text: str) -> tuple[dict[str, str], list[tuple[str, str]], dict[str, list[str]]]:
    """Every id an arrow or class names is declared with a label; every "more" box hangs off a drawn box."""
    boxes, arrows, classes = parse(text)
    used = {a for pair in arrows for a in pair} | {i for ids in classes.values() for i in ids}
    assert used <= set(boxes), f"ids used but never declared: {sorted(used - set(boxes))[:5]}"
    more = [b for b, label in boxes.items() if label.startswith("… ")]
    assert all(any(b == target for _, target in arrows) for b in more), "a '… N more' box is not connected"
    for line in text.splitlines():
        if line.strip().startswith("classDef"):
            assert "color:" in line, f"no text colour (unreadable in a dark theme): {line}"
    assert len(text) <= MERMAID_MAX_TEXT and len(arrows) <= MERMAID_MAX_EDGES
    return boxes, arrows, classes


def one_vm_change() -> tuple[Plan, list[dict[str, Any]]]:
    desired = render(load_repo(EXAMPLE, None)).objects
    vm = next(o for o in desired if o["kind"] == "VirtualMachine" and o["metadata"]["name"] == "web-1")
    changed = copy.deepcopy(vm)
    changed["spec"]["template"]["spec"]["domain"].setdefault("memory", {})["guest"] = "8Gi"
    items = tuple(
        Item(Action.UPDATE if o is vm else Action.NOOP, obj_id(o), obj_id(o), 0, "", desired=o) for o in desired
    )
    return Plan("prod", items), desired


def test_a_one_vm_change_draws_that_vm_and_what_it_hangs_off_only() -> None:
    plan, desired = one_vm_change()
    boxes, arrows, classes = check_well_formed(topology_picture(plan, desired).text)
    vms = [label for label in boxes.values() if label.startswith("VM ")]
    assert vms == ["VM apps/web-1"]  # no other VM, though they share the node selector and bridges
    assert classes == {"update": ["vm_apps_web_1"]}
    # every box is on a path from the VM up to the nodes: the VM reaches it against the arrows
    parents: dict[str, set[str]] = {}
    for a, b in arrows:
        parents.setdefault(b, set()).add(a)
    seen, todo = {"vm_apps_web_1"}, ["vm_apps_web_1"]
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    assert seen == set(boxes)
    everything = Plan("prod", tuple(Item(Action.CREATE, i.id, i.name, 0, "", desired=i.desired) for i in plan.items))
    assert len(boxes) < len(parse(topology_picture(everything, desired).text)[0])


def test_a_1000_vm_change_stays_within_mermaid_limits_and_counts_what_it_leaves_out(big_change) -> None:  # type: ignore[no-untyped-def]
    marked = big_change.safety.marked_ids()
    picture = topology_picture(big_change.plan, big_change.desired, marked)
    boxes, arrows, classes = check_well_formed(picture.text)
    assert len(boxes) <= topology.MAX_NODES and len(arrows) <= topology.MAX_EDGES
    assert all(len(label) <= topology.MAX_LABEL for label in boxes.values())
    more = {b: int(label.split()[1]) for b, label in boxes.items() if label.startswith("… ")}
    real = len(boxes) - len(more)
    assert more and real == picture.drawn
    assert real + sum(more.values()) + picture.hidden == picture.relevant  # "N more" is true
    assert picture.relevant > 1_000  # the whole change is accounted for, not just what fits
    at_risk = set(classes.get("risk", []))
    assert at_risk, "the policies at risk are drawn first"
