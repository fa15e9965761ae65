"""The pair memo (engine/memo.py): the same plan from it, and a fresh pairing for whatever changed."""

from __future__ import annotations

import copy

from engine.conftest import EXAMPLES
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.live import LiveState
from reconciler.engine.memo import PairMemo
from reconciler.engine.plan import Action, PlanOptions, build_plan
from reconciler.model import load_repo
from reconciler.objects import obj_id
from reconciler.render import render


def live_of(desired: list[dict[str, object]]) -> LiveState:
    owned = {}
    for i, obj in enumerate(desired):
        if obj["kind"] == "HyperConverged":
            continue
        live = copy.deepcopy(obj)
        live["metadata"].update(uid=f"u{i}", resourceVersion="1")  # type: ignore[union-attr]
        owned[obj_id(obj)] = live
    state = LiveState(owned=owned)
    state.patch_targets = {obj_id(o): copy.deepcopy(o) for o in desired if o["kind"] == "HyperConverged"}
    return state


def test_a_memo_gives_the_same_plan_and_pairs_only_what_changed() -> None:
    desired = render(load_repo(EXAMPLES)).objects
    live = live_of(desired)
    memo = PairMemo()
    first = build_plan(desired, live, "prod", PlanOptions(memo=memo))
    assert memo.hits == 0 and memo.misses > 20
    second = build_plan(desired, live, "prod", PlanOptions(memo=memo))
    assert second == first and memo.hits == memo.misses
    # another resourceVersion of one live object: that one is paired again and its change is seen
    vm = next(o for o in desired if o["kind"] == "ConfigMap")
    changed = copy.deepcopy(live.owned[obj_id(vm)])
    changed["metadata"]["resourceVersion"] = "2"
    changed["data"] = {"drift": "yes"}
    live.owned[obj_id(vm)] = changed
    hits = memo.hits
    third = build_plan(desired, live, "prod", PlanOptions(memo=memo))
    assert memo.hits == hits + len(first.items) - 1
    [item] = [i for i in third.items if i.id == obj_id(vm)]
    assert item.action == Action.UPDATE
    # a new commit renders new objects: the equal ones (a new revision annotation aside) that change nothing
    # are taken from the memo, carrying the new objects; the rest is paired again, with the same outcome
    fresh = render(load_repo(EXAMPLES), "f" * 40).objects
    hits, misses = memo.hits, memo.misses
    again = build_plan(fresh, live, "prod", PlanOptions(memo=memo))
    assert [(i.id, i.action) for i in again.items] == [(i.id, i.action) for i in third.items]
    noops = [i for i in again.items if i.action == Action.NOOP]
    assert memo.hits - hits == len(noops) and memo.misses - misses == len(again.items) - len(noops)
    by_id = {obj_id(o): o for o in fresh}
    assert all(i.desired is by_id[i.id] for i in noops)


def test_new_copies_of_unchanged_live_objects_hit_through_their_versions_and_lost_keys_are_forgotten() -> None:
    """Informers hand out the very objects until they change (no versions compared then); a plain LIST each
    run gives new copies at the same resourceVersion, which hit too. Objects the plan lost are forgotten."""
    desired = render(load_repo(EXAMPLES)).objects
    live = live_of(desired)
    memo = PairMemo()
    first = build_plan(desired, live, "prod", PlanOptions(memo=memo))
    listed_again = LiveState(owned=copy.deepcopy(live.owned), patch_targets=copy.deepcopy(live.patch_targets))
    hits = memo.hits
    assert build_plan(desired, listed_again, "prod", PlanOptions(memo=memo)) == first
    assert memo.hits == hits + len(first.items)
    fewer = [o for o in desired if o["kind"] != "Service"]
    build_plan(fewer, listed_again, "prod", PlanOptions(memo=memo, prune=PruneOptions(enabled=False)))
    assert set(memo._items) == {obj_id(o) for o in fewer}
