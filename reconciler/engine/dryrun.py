"""Server-side dry run of a plan's writes, before any of them is made.

Why: schema, admission webhooks and quota answer at plan time instead of half way through an apply, where a
refusal leaves the cluster between two revisions. The requests go out as the apply's writes do
(``reconciler.engine.window``): a thousand VMs' dry run one at a time cost a round trip each.
"""

from __future__ import annotations

from reconciler.engine.apply import ApplyOptions
from reconciler.engine.plan import Action, Item, Plan
from reconciler.engine.ports import ClusterWriter, ReportsThrottling
from reconciler.engine.window import Window, bounded
from reconciler.errors import ApplyError


def dry_run(plan: Plan, kube: ClusterWriter, force: bool = False, parallel: int = ApplyOptions.parallel) -> list[str]:
    """Server-side dry-run of every object the plan writes: schema, admission webhooks and quota answer
    now, at plan time, instead of half way through an apply. Returns one message per refused object, in
    plan order. The requests go out as an apply's writes do: at most ``parallel`` at once, fewer while the
    server answers 429 (one at a time, a thousand VMs' dry run cost a round trip each).

    An object in a namespace this plan creates cannot be dry-run (the server answers 404 for a namespace
    that does not exist yet); it is checked when its wave runs, after the namespace exists.
    """
    new_namespaces = {
        i.desired["metadata"]["name"]
        for i in plan.items
        if i.action == Action.CREATE and i.desired is not None and i.desired["kind"] == "Namespace"
    }
    checked = [
        i
        for i in plan.items
        if i.action in (Action.CREATE, Action.UPDATE)
        and i.desired is not None
        and i.waits_for is None
        and i.desired["metadata"].get("namespace") not in new_namespaces
    ]

    def check(item: Item) -> tuple[bool, str]:
        assert item.desired is not None
        try:
            kube.apply(item.desired, force=force or bool(item.take_back), dry_run=True)
            return True, ""
        except ApplyError as exc:
            return False, f"{item.name}: the API server refuses it: {exc.message}"

    window = Window(parallel)
    unlisten = kube.listen_for_throttling(window.throttled) if isinstance(kube, ReportsThrottling) else None
    try:
        return [message for ok, message in bounded(window, checked, check) if not ok]
    finally:
        if unlisten is not None:
            unlisten()
