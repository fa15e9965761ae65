"""The server-side dry run before an apply goes out as the apply's writes do: bounded by the window, the same
requests as one at a time, refusals in plan order whatever order the answers came in."""

from __future__ import annotations

import time
from typing import Any

from engine.test_apply_parallel import Recording, obj
from reconciler.engine.dryrun import dry_run
from reconciler.engine.live import LiveState
from reconciler.engine.plan import build_plan
from reconciler.errors import ApplyError

REFUSED = {"vm-03", "vm-11"}


class Refusing(Recording):
    """Refuses the dry run of ``REFUSED``; the earlier a VM in the plan, the longer its answer takes."""

    def apply(self, o: dict[str, Any], *, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        assert dry_run, "a dry run writes nothing"
        super().apply(o, force=force, dry_run=dry_run)
        name = o["metadata"]["name"]
        time.sleep(0.002 * (20 - int(name[3:])))
        if name in REFUSED:
            raise ApplyError(f"VirtualMachine/apps/{name}", "admission webhook denied the request")
        return o


def test_the_dry_run_is_bounded_parallel_and_keeps_plan_order() -> None:
    plan = build_plan([obj("VirtualMachine", f"vm-{i:02}") for i in range(20)], LiveState(), "prod")
    many, one = Refusing(seconds=0.02), Refusing(seconds=0.0)
    refused = dry_run(plan, many, parallel=4)  # type: ignore[arg-type]
    assert max(c[2] for c in many.calls) == 4, "at most 4 in flight, and 20 VMs fill the window"
    assert refused == dry_run(plan, one, parallel=1)  # type: ignore[arg-type]
    assert [r.split(":")[0] for r in refused] == ["VirtualMachine/apps/vm-03", "VirtualMachine/apps/vm-11"]
    assert sorted(c[1] for c in many.calls) == sorted(c[1] for c in one.calls)  # the same requests
    assert len(many.calls) == 20 and max(c[2] for c in one.calls) == 1
