"""Prune guards (pure): a bad commit, a wrong path or a name collision must never delete what is not ours."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import labels
from reconciler.engine.inventory import PruneOptions, decide_prune
from reconciler.engine.live import LiveState
from reconciler.engine.plan import Action, build_plan
from reconciler.objects import obj_id

CLUSTER = "prod"


def cm(name: str, cluster: str | None = CLUSTER, managed: bool = True, **annotations: str) -> dict[str, Any]:
    lab = {}
    if managed:
        lab[labels.MANAGED_BY] = labels.MANAGER
    if cluster:
        lab[labels.CLUSTER] = cluster
    meta: dict[str, Any] = {"name": name, "namespace": "apps", "labels": lab}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def owned(n: int) -> list[dict[str, Any]]:
    return [cm(f"cm-{i:02d}") for i in range(n)]


def by_id(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj_id(o): o for o in objs}


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_stale_owned_objects_are_deleted_within_the_share() -> None:
    live = owned(8)
    decision = decide_prune(live[:6], by_id(live), CLUSTER, PruneOptions())
    assert names(decision.delete) == ["cm-06", "cm-07"]  # 2/8 = 25 %: not above the default maximum
    assert decision.errors == [] and decision.kept == []


def test_empty_render_prunes_nothing_and_is_an_error() -> None:
    live = owned(3)
    decision = decide_prune([], by_id(live), CLUSTER, PruneOptions(allow_mass_prune=True))
    assert decision.delete == []
    assert len(decision.errors) == 1 and "rendered no objects for cluster prod" in decision.errors[0]
    assert [why for _, why in decision.kept] == ["empty render"] * 3


@pytest.mark.parametrize(("stale", "blocked"), [(2, False), (3, True)])
def test_mass_prune_guard_at_the_default_quarter(stale: int, blocked: bool) -> None:
    live = owned(8)
    decision = decide_prune(live[: 8 - stale], by_id(live), CLUSTER, PruneOptions())
    if blocked:
        assert decision.delete == []
        assert decision.errors == [
            "refusing to prune 3 of 8 owned objects (38% > 25%): check the change, then run with --allow-mass-prune"
        ]
        assert {why for _, why in decision.kept} == {"mass prune guard"}
    else:
        assert len(decision.delete) == stale and decision.errors == []


def test_allow_mass_prune_and_a_configured_share_let_it_through() -> None:
    live = owned(8)
    assert len(decide_prune(live[:2], by_id(live), CLUSTER, PruneOptions(allow_mass_prune=True)).delete) == 6
    assert len(decide_prune(live[:2], by_id(live), CLUSTER, PruneOptions(max_share=0.8)).delete) == 6
    assert decide_prune(live[:2], by_id(live), CLUSTER, PruneOptions(max_share=0.7)).delete == []


def test_opt_out_annotation_keeps_the_object() -> None:
    live = [*owned(7), cm("keep-me", **{labels.PRUNE: "disabled"})]
    decision = decide_prune(live[:6], by_id(live), CLUSTER, PruneOptions())
    assert names(decision.delete) == ["cm-06"]
    assert [(o["metadata"]["name"], why) for o, why in decision.kept] == [
        ("keep-me", f"annotated {labels.PRUNE}=disabled")
    ]


@pytest.mark.parametrize(
    "intruder",
    [cm("cm-07", managed=False), cm("cm-07", cluster="staging"), cm("cm-07", cluster=None)],
    ids=["no-managed-by", "other-cluster", "no-cluster-label"],
)
def test_object_without_our_labels_is_never_deleted_even_if_its_name_matches(intruder: dict[str, Any]) -> None:
    """The LIST uses our selector; this guards against a live map that was built some other way."""
    live = [*owned(7), intruder]
    decision = decide_prune(live[:6], by_id(live), CLUSTER, PruneOptions(allow_mass_prune=True))
    assert names(decision.delete) == ["cm-06"]
    assert [(o is intruder, why) for o, why in decision.kept] == [
        (True, "not labelled as owned by virtnet for this cluster")
    ]


def test_disabled_prune_keeps_everything() -> None:
    live = owned(4)
    decision = decide_prune(live[:1], by_id(live), CLUSTER, PruneOptions(enabled=False))
    assert decision.delete == [] and decision.errors == []
    assert [why for _, why in decision.kept] == ["pruning is disabled"] * 3


def test_plan_turns_guard_errors_and_kept_objects_into_errors_and_warnings() -> None:
    live = [*owned(7), cm("keep-me", **{labels.PRUNE: "disabled"})]
    plan = build_plan(live[:6], LiveState(owned=by_id(live)), CLUSTER)
    assert [i.name for i in plan.items if i.action == Action.DELETE] == ["ConfigMap/apps/cm-06"]
    assert plan.warnings == (
        f"ConfigMap/apps/keep-me is no longer in the repository but is kept: annotated {labels.PRUNE}=disabled",
    )
    blocked = build_plan(live[:2], LiveState(owned=by_id(live)), CLUSTER)
    assert not [i for i in blocked.items if i.action == Action.DELETE] and len(blocked.errors) == 1


# ---- namespaces, adoption, the operator's ceiling ----------------------------------------------------------

LOOSE = PruneOptions(max_share=1.0)


def namespace(name: str, **annotations: str) -> dict[str, Any]:
    ns = cm(name, **annotations)
    ns["kind"] = "Namespace"
    del ns["metadata"]["namespace"]
    return ns


def test_a_namespace_is_never_pruned_without_its_opt_in() -> None:
    keep, gone, stay = namespace("apps"), cm("c"), cm("x")
    decision = decide_prune([stay], by_id([keep, gone, stay]), CLUSTER, LOOSE, {"apps": set()})
    assert names(decision.delete) == ["c"]
    why = f"a Namespace is deleted only with {labels.PRUNE_NAMESPACE}: allowed (it takes its VMs along)"
    assert decision.kept == [(keep, why)]


def test_an_opted_in_namespace_goes_only_when_nothing_else_is_left_in_it() -> None:
    ns, ours, stay = namespace("apps", **{labels.PRUNE_NAMESPACE: "allowed"}), cm("c"), cm("x")
    live = by_id([ns, ours, stay])
    theirs = "/Pod/apps/launcher"
    held = decide_prune([stay], live, CLUSTER, LOOSE, {"apps": {obj_id(ours), theirs}})
    assert names(held.delete) == ["c"] and held.kept == [(ns, f"it still holds {theirs}")]
    empty = decide_prune([stay], live, CLUSTER, LOOSE, {"apps": {obj_id(ours)}})
    assert sorted(names(empty.delete)) == ["apps", "c"]
    unread = decide_prune([stay], live, CLUSTER, LOOSE, {})
    assert names(unread.delete) == ["c"] and unread.kept == [(ns, "its contents could not be read")]


def test_an_adopted_object_is_never_pruned() -> None:
    adopted, stay = cm("c", **{labels.ADOPTED: "true"}), cm("x")
    decision = decide_prune([stay], by_id([adopted, stay]), CLUSTER, LOOSE)
    assert decision.delete == [] and decision.kept == [(adopted, "virtnet adopted it, it did not create it")]
