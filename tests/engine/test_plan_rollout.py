"""A plan with a hot-plug is built once: the cluster's rollout strategy, read only for such a plan, relabels
its hot-plug items (what they do and say) instead of planning again, and the pair memo serves either."""

from __future__ import annotations

from typing import Any

import pytest

from engine.test_plan_hotplug import vm
from reconciler import labels, pipeline
from reconciler.engine.live import LiveState
from reconciler.engine.memo import PairMemo
from reconciler.engine.plan import Plan, PlanOptions, build_plan
from reconciler.objects import obj_id

OWNED = {labels.MANAGED_BY: labels.MANAGER, labels.CLUSTER: "c"}


def hot_plug() -> tuple[list[dict[str, Any]], LiveState]:
    live, desired = vm(["a"], hotplug="b"), vm(["a", "b"], hotplug="b")
    for obj in (live, desired):
        obj["metadata"]["labels"] = dict(OWNED)
    vmi = {"metadata": {"name": "web", "resourceVersion": "7"}, "status": {"interfaces": [{"name": "a"}]}}
    return [desired], LiveState(owned={obj_id(live): live}, vmis={"apps/web": vmi})


class Cluster:
    """Answers only the KubeVirt CR's LIST, with ``rollout`` as the VM rollout strategy."""

    def __init__(self, rollout: str) -> None:
        self.rollout = rollout

    def list(self, kind: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        assert kind == "KubeVirt"
        return [{"spec": {"configuration": {"vmRolloutStrategy": self.rollout}}}]


@pytest.mark.parametrize("rollout", ["LiveUpdate", "Stage"])
def test_a_hot_plug_plan_is_built_once_and_says_what_a_plan_for_the_strategy_says(
    rollout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, live = hot_plug()
    for_strategy = hot_plug()[1]
    for_strategy.rollout = rollout
    expected = build_plan(desired, for_strategy, "c")  # the plan as one build for the known strategy makes it
    builds: list[Plan] = []
    real = pipeline.build_plan

    def counted(*args: Any, **kwargs: Any) -> Plan:
        builds.append(real(*args, **kwargs))
        return builds[-1]

    monkeypatch.setattr(pipeline, "build_plan", counted)
    memo = PairMemo()
    options = PlanOptions(memo=memo)
    plan = pipeline.plan_cluster(desired, "c", Cluster(rollout), options, live)  # type: ignore[arg-type]
    assert plan == expected and len(builds) == 1
    [item] = plan.changes
    assert item.migrate is (rollout != "LiveUpdate")
    # the next reconcile (the same objects) pairs nothing again: the memo is not keyed by the strategy
    again = pipeline.plan_cluster(desired, "c", Cluster(rollout), options, hot_plug()[1])  # type: ignore[arg-type]
    assert again == expected and memo.hits == 1
