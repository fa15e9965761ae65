"""A ~1,000-object repository applied through an API that fails one request in five, for many seeds.

Each seed gets a fresh API double with a seeded :class:`FaultPlan` (500, 503, 429 with ``Retry-After``,
409 on writes, dropped connections, delays) and the simulated nmstate controller (stepped by the engine's
health-wait sleeps, so NNCP health is real and deterministic; VM health waits are off). Reconciles are
repeated, bounded, until one goes through; then the store must equal the render exactly: every desired
object present and without a difference, no owned object beyond them (the seeded stale ones pruned), and
the objects other managers or another cluster own untouched. No reconcile may raise: every failure is in
the Outcome, its ChangeSet and the status document.

An injected 409 on a server-side apply is a conflict *answer*, not a transient: the engine must not retry
it blindly (a real SSA conflict answers the same way every time). It fails that object, stops before the
next wave, and the next reconcile converges. The retry policy's waits are computed (and ``Retry-After`` is
checked to be honoured) but not slept, so the test measures the engine, not the backoff clock.

Figures (faults per kind, writes, reconciles) are printed per seed; run with ``-s`` to see them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tenacity import RetryCallState

import reconciler.clients.kube as kube_module
from reconciler.clients.kube import MANAGED_KINDS, RESOURCES, Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.diff import diff_object
from reconciler.objects import is_owned, is_patch_only, obj_id
from reconciler.output import summary
from reconciler.pipeline import Outcome, reconcile
from reconciler.render import render_path
from reconciler.testing import ApiDouble
from reconciler.testing.faults import FaultPlan
from reconciler.testing.nodes import seed_hyperconverged
from reliability import bigrepo

KINDS = ["500", "503", "429", "409", "drop", "delay"]
MAX_RECONCILES = 8
SEEDS = range(20)
#: CI: the same generator at about a twentieth of the size (the double serves ~60 applies/s on this 2-core machine)
CI_SHAPE = bigrepo.Shape(vms=12, networks=4, namespaces=2)
#: soak: ~1,000 rendered objects (320 VMs, 40 bridge networks over 4 NICs, 8 namespaces), ~1 minute a seed
SOAK_SHAPE = bigrepo.Shape()


@dataclass
class SeedRun:
    seed: int
    faults: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    reconciles: int = 0
    results: list[str] = field(default_factory=list)
    failed_objects: int = 0


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, float]]]:
    """Record what the retry policy would wait (status, seconds) instead of sleeping it."""
    seen: list[tuple[int, float]] = []
    real = kube_module._wait

    def record(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        seen.append((getattr(exc, "status", -1), real(state)))
        return 0.0

    monkeypatch.setattr(kube_module, "_wait", record)
    yield seen


def seed_others(api: ApiDouble, desired: list[dict[str, Any]]) -> dict[str, str]:
    """Objects virtnet must leave alone: id → resourceVersion (and their namespaces, which must exist first)."""
    store = api.store
    foreign = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-config", "namespace": "ns-00"}},
        {  # same name and namespace as none of ours, but carrying another cluster's ownership labels
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "legacy",
                "namespace": "ns-01",
                "labels": {"app.kubernetes.io/managed-by": "virtnet", "virtnet.io/cluster": "other"},
            },
            "spec": {"ports": [{"port": 8080}]},
        },
        {  # the name of one of our NADs, in a namespace the network is not offered in, without our labels
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "net-00", "namespace": "ns-06"},
            "spec": {"config": '{"cniVersion":"0.3.1","type":"bridge","bridge":"mine"}'},
        },
    ]
    kept = {}
    owned = {"app.kubernetes.io/managed-by": "virtnet", "virtnet.io/cluster": bigrepo.CLUSTER}
    ours = {d["metadata"]["name"] for d in desired if d["kind"] == "Namespace"}
    for ns in sorted({obj["metadata"]["namespace"] for obj in foreign}):  # the API server refuses objects in a
        labels = owned if ns in ours else {}  # missing namespace: ours made by an earlier virtnet run, or not ours
        store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
                  manager="virtnet" if labels else "someone-else")
    for obj in foreign:
        live = store.put(obj, manager="someone-else")
        kept[obj_id(live)] = live["metadata"]["resourceVersion"]
    return kept


def seed_stale(api: ApiDouble, count: int = 5) -> None:
    """Owned objects the repository does not have: the next good reconcile must prune them.

    Seeded once the cluster holds enough of ours: in an empty cluster they would be 100% of what we own,
    and the mass-prune guard would rightly block the plan.
    """
    for i in range(count):
        api.store.put(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": f"stale-{i}",
                    "namespace": "ns-00",
                    "labels": {"app.kubernetes.io/managed-by": "virtnet", "virtnet.io/cluster": bigrepo.CLUSTER},
                },
                "spec": {"ports": [{"port": 22}]},
            },
            manager="virtnet",
        )


def owned_in_store(api: ApiDouble) -> set[str]:
    out = set()
    for kind in MANAGED_KINDS:
        res = RESOURCES[kind]
        out |= {obj_id(o) for o in api.store.objects(res.api_version, kind) if is_owned(o, bigrepo.CLUSTER)}
    return out


def assert_matches_render(api: ApiDouble, desired: list[dict[str, Any]], kept: dict[str, str]) -> None:
    want_owned = {obj_id(o) for o in desired if not is_patch_only(o)}
    have_owned = owned_in_store(api)
    assert sorted(want_owned - have_owned) == [], "missing objects"
    assert sorted(have_owned - want_owned) == [], "owned objects that the render does not have"
    for obj in desired:
        meta = obj["metadata"]
        live = api.store.find(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))
        assert live is not None, obj_id(obj)
        assert [str(c) for c in diff_object(obj, live)] == [], obj_id(obj)
    for key, rv in kept.items():
        _, kind, ns, name = key.split("/")
        res = RESOURCES[kind]
        live = api.store.find(res.api_version, kind, name, ns)
        assert live is not None, f"{key} was deleted"
        assert live["metadata"]["resourceVersion"] == rv, f"{key} was modified"
        assert all(m["manager"] != "virtnet" for m in live["metadata"].get("managedFields") or []), key


def check_outcome(outcome: Outcome) -> None:
    """A failed reconcile says where and why, in the Outcome, the ChangeSet and the status document."""
    if outcome.ok:
        return
    assert outcome.failed in ("ApplyFailed", "ObserveFailed", "PlanBlocked"), (outcome.failed, outcome.message)
    assert outcome.message
    if outcome.failed == "PlanBlocked":
        # only the plan-time server-side dry run can meet a fault, and then nothing was written
        assert outcome.changes is None
        refusals = outcome.message.split("; ")
        assert all(re.search(r": the API server refuses it: HTTP (409|429|5\d\d|0): ", m) for m in refusals), refusals
    if outcome.failed == "ApplyFailed":
        assert outcome.changes is not None and outcome.plan is not None
        bad = [r for r in outcome.changes.results if not r.ok]
        assert bad or outcome.changes.error
        # a 409 (never retried) or a transient that outlived its retries: nothing else may fail an object here
        assert all(re.match(r"HTTP (409|429|5\d\d|0): ", r.message) for r in bad), [r.message for r in bad]
        states = summary.object_states(outcome.plan, outcome.changes)
        doc = summary.status_document(bigrepo.CLUSTER, None, outcome.failed, outcome.message, states, [], [])
        assert json.loads(summary.status_files(doc)["status.json"])["result"] == "ApplyFailed"
        failed_states = {s["object"]: s for s in states if s["state"] in ("failed", "prune-failed")}
        for r in bad:
            assert failed_states[r.name]["message"] == r.message


def run_seed(root: Path, shape: bigrepo.Shape, seed: int, desired: list[dict[str, Any]]) -> SeedRun:
    run = SeedRun(seed)
    with ApiDouble(controllers=("nmstate",), nodes=bigrepo.nodes(shape), tick_interval=None) as api:
        seed_hyperconverged(api.store)
        kept = seed_others(api, desired)
        options = ApplyOptions(poll=0, timeout=30, wait_for_vms=False, sleep=lambda _s: api.tick())
        # plan-time dry runs are spared: a faulted one blocks the whole plan (tested on its own below), and
        # at this rate no run would get through its ~40 dry runs to the apply whose recovery is tested here
        api.faults = FaultPlan(rate=0.2, seed=seed, kinds=KINDS, retry_after=1, delay_seconds=0.002, dry_runs=False)
        kube = Kube(api.api_client())
        stale = False
        try:
            for _ in range(MAX_RECONCILES):
                outcome = reconcile(root, kube, apply_options=options)
                run.reconciles += 1
                run.results.append(outcome.failed or "ok")
                check_outcome(outcome)
                if outcome.changes is not None:
                    run.failed_objects += sum(1 for r in outcome.changes.results if not r.ok)
                if not stale and len(owned_in_store(api)) >= 25:
                    seed_stale(api)
                    stale = True
                    continue  # the converged run must include pruning them
                if outcome.ok:
                    break
            run.faults = Counter()
            for (kind, _verb, _res), n in api.fault_counts.items():
                run.faults[kind] += n
            run.writes = api.writes()
            assert run.results[-1] == "ok", f"seed {seed}: no convergence in {MAX_RECONCILES}: {run.results}"
            api.faults = None
            assert_matches_render(api, desired, kept)
            api.reset_counts()
            final = reconcile(root, kube, apply_options=options)  # fault-free: nothing left to do
            assert final.ok and final.plan is not None and not final.plan.has_changes
            assert api.writes() == 0
        finally:
            kube.api.close()
    return run


def report(runs: list[SeedRun]) -> str:
    total: Counter[str] = Counter()
    lines = []
    for r in runs:
        total.update(r.faults)
        faults = " ".join(f"{k}={r.faults[k]}" for k in KINDS)
        lines.append(
            f"seed {r.seed:3d}: reconciles={r.reconciles} writes={r.writes} failed-objects={r.failed_objects} "
            f"faults[{faults}] results={','.join(r.results)}"
        )
    lines.append("total faults: " + " ".join(f"{k}={total[k]}" for k in KINDS))
    lines.append(f"reconciles needed: {Counter(r.reconciles for r in runs)}")
    return "\n".join(lines)


def _run(tmp_path: Path, shape: bigrepo.Shape, seeds: range, waits: list[tuple[int, float]]) -> list[SeedRun]:
    root = bigrepo.write(tmp_path / "repo", shape)
    desired = render_path(root)
    assert len(desired) > (900 if shape == SOAK_SHAPE else 40)
    print(f"\n{len(desired)} objects, {len(seeds)} seeds", flush=True)
    runs = []
    for s in seeds:
        runs.append(run_seed(root, shape, s, desired))
        print(report(runs[-1:]).splitlines()[0], flush=True)
    print(report(runs))
    total: Counter[str] = Counter()
    for r in runs:
        total.update(r.faults)
    assert all(total[k] > 0 for k in KINDS), total  # every kind was actually injected
    assert any(r.reconciles > 1 for r in runs)  # some 409 or exhausted retry did fail a reconcile
    throttled = [w for status, w in waits if status in (429, 503)]
    assert throttled and min(throttled) >= 1.0  # Retry-After: 1 was honoured by the policy
    return runs


def test_big_repository_converges_under_api_faults(tmp_path: Path, waits: list[tuple[int, float]]) -> None:
    _run(tmp_path, CI_SHAPE, SEEDS, waits)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_bigger_repository_more_seeds(tmp_path: Path, waits: list[tuple[int, float]]) -> None:
    _run(tmp_path, SOAK_SHAPE, SEEDS, waits)


@pytest.mark.parametrize(
    ("verb", "dry_runs", "stage"),
    [("apply", True, "PlanBlocked"), ("apply", False, "ApplyFailed"), ("list", True, "ObserveFailed")],
)
def test_connection_that_never_answers_is_an_outcome_not_an_exception(
    verb: str, dry_runs: bool, stage: str, tmp_path: Path, waits: list[tuple[int, float]]
) -> None:
    """Every attempt dropped: once retries run out, the failure is the stage's reason, not a raised ProtocolError.

    Applies are first dry-run at plan time, so dropping every apply blocks the plan; dropping only the real
    writes reaches the apply stage."""
    root = bigrepo.write(tmp_path / "repo", bigrepo.Shape(vms=2, networks=2, namespaces=1))
    with ApiDouble() as api:
        seed_hyperconverged(api.store)
        api.faults = FaultPlan(rate=1.0, kinds=["drop"], verbs=[verb], dry_runs=dry_runs)
        kube = Kube(api.api_client())
        try:
            outcome = reconcile(root, kube, apply_options=ApplyOptions(wait_for_vms=False, timeout=1))
        finally:
            kube.api.close()
        assert outcome.failed == stage
        assert "no response from the API server" in (
            outcome.message if outcome.changes is None else outcome.changes.results[0].message
        )
        assert api.fault_counts[("drop", verb, "namespaces")] == kube.attempts  # retried, then given up
        assert api.writes() == 0
