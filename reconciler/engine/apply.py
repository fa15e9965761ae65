"""Apply a plan to the cluster in waves, wait for health, then prune.

Side effects: writes through ``reconciler.clients.kube``. Order is what keeps VMs safe: node network first (and
wait until kubernetes-nmstate reports every NNCP Available; a Degraded one stops the run before any VM
is touched), then networks and cluster settings, then VMs and Services, then health, then prune in
reverse order. A node network that leaves the repository is first applied with its interfaces
``state: absent`` (nmstate does not revert nodes when a policy is deleted), and deleted only once that
succeeded. On failure the ChangeSet still lists everything done before it.

Inside a stage the writes go out in parallel, at most ``ApplyOptions.parallel`` at once and fewer while the
API server answers 429 (``reconciler.engine.window``); kinds still follow each other in ``KIND_ORDER``
(a stage's Services only after its VMs), and a stage ends only when all its writes have answered, so
the order between waves and the health waits are what they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from reconciler import nmstate
from reconciler.engine import sriov
from reconciler.engine.changes import ChangeSet
from reconciler.engine.health import Status, health_of
from reconciler.engine.kubevirt import migration, migration_phase, reported_interfaces, spec_interfaces
from reconciler.engine.plan import Action, Item, Plan, VMChange
from reconciler.engine.ports import ClusterWriter, ReportsThrottling
from reconciler.engine.window import Window, bounded
from reconciler.errors import ApplyError, HealthError
from reconciler.objects import LAST_WAVE, Obj, display


@dataclass(frozen=True)
class ApplyOptions:
    timeout: float = 300.0  # per health wait
    poll: float = 1.0
    force_conflicts: bool = False
    wait_for_vms: bool = True
    parallel: int = 12  # writes in flight at once inside a stage (fewer while the server answers 429)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: progress for people watching a long apply: (what, done, of); after each write, and each health poll
    on_step: Callable[[str, int, int], None] | None = None


def _noop_step(what: str, done: int, total: int) -> None:
    return None


def apply_plan(
    plan: Plan, kube: ClusterWriter, options: ApplyOptions | None = None, progress: Callable[[str], None] | None = None
) -> ChangeSet:
    """Carry out ``plan``; never raises for cluster errors, they end up in the ChangeSet."""
    options = options or ApplyOptions()
    say = progress or (lambda _msg: None)
    changes = ChangeSet()
    if plan.errors:
        changes.error = "plan has errors; nothing applied: " + "; ".join(plan.errors)
        return changes
    writes = sum(1 for i in plan.items if i.action in (Action.CREATE, Action.UPDATE, Action.DELETE))
    step = options.on_step or _noop_step

    def tick() -> None:
        step("applying", len(changes.results), writes)

    window = Window(options.parallel)
    unlisten = kube.listen_for_throttling(window.throttled) if isinstance(kube, ReportsThrottling) else None
    try:
        for wave in range(LAST_WAVE + 1):
            items = [i for i in plan.items if i.wave == wave and i.action in (Action.CREATE, Action.UPDATE)]
            if not items:
                continue
            for stage in node_stages(items):
                _wait_sriov(stage, plan, kube, options, say)
                say(f"wave {wave}: applying {len(stage)} object(s)")
                _apply_items(stage, kube, options, changes, window, tick)
                if not changes.ok:
                    changes.error = f"wave {wave} failed; later waves were not applied"
                    return changes
                migrations = _migrate([i for i in stage if i.migrate], kube, options, say)
                _wait_healthy(stage, kube, options, changes, say, migrations)
        deletes = [i for i in plan.items if i.action == Action.DELETE]
        if deletes:
            say(f"prune: deleting {len(deletes)} object(s)")
            _prune(deletes, kube, options, changes, say, tick)
    except ApplyError as exc:
        changes.error = str(exc)
    finally:
        if unlisten is not None:
            unlisten()
    return changes


def node_stages(items: list[Item]) -> list[list[Item]]:
    """Split a wave so a policy runs only after the policies that create the interfaces it builds on
    (``reconciler.nmstate.dependencies``: nmstate would take a bridge over a not-yet-made VLAN Degraded).

    Objects that are not policies, and policies without such dependencies, stay in the first stage. A cycle
    is left to nmstate to report.
    """
    policies = {i.id: i.desired for i in items if i.desired and i.desired["kind"] == nmstate.NNCP}
    needs = nmstate.dependencies(policies)
    depth: dict[str, int] = {}

    def level(key: str, seen: frozenset[str] = frozenset()) -> int:
        if key not in depth:
            depth[key] = 1 + max((level(p, seen | {key}) for p in needs[key] - seen), default=-1)
        return depth[key]

    stages: list[list[Item]] = []
    for item in items:
        n = level(item.id) if item.id in policies else 0
        while len(stages) <= n:
            stages.append([])
        stages[n].append(item)
    return [s for s in stages if s]


def _apply_items(
    items: list[Item],
    kube: ClusterWriter,
    options: ApplyOptions,
    changes: ChangeSet,
    window: Window,
    tick: Callable[[], None],
) -> None:
    """Write ``items``, one kind after the other, each kind's objects in parallel through ``window``; the
    results join ``changes`` in the items' order, whatever order the answers came in."""

    def one(item: Item) -> tuple[bool, str]:
        return _apply_one(item, kube, options)

    for _kind, group in groupby(items, key=lambda i: i.desired["kind"] if i.desired else ""):
        batch = list(group)
        results: dict[int, tuple[bool, str]] = {}
        for stage in _stages(batch):
            for item, result in zip(stage, bounded(window, stage, one), strict=True):
                results[id(item)] = result
        for item in batch:
            changes.add(item, *results[id(item)])
            tick()  # progress counts the results in ``changes``


def _names_node_port(item: Item) -> bool:
    ports = ((item.desired or {}).get("spec") or {}).get("ports") or []
    return any(isinstance(p, dict) and p.get("nodePort") for p in ports)


def _stages(batch: list[Item]) -> list[list[Item]]:
    """One kind's writes, in the stages that must not overlap: Services that name their nodePort before the
    Services the server picks ports for. Otherwise a LoadBalancer written in parallel may be given, at random,
    the port a later Service of the same apply names, and that Service is refused half way through (seen at
    10,000 VMs on kube-apiserver: "provided port is already allocated"). The dry run cannot see this: it
    allocates nothing."""
    named = [i for i in batch if i.desired is not None and i.desired["kind"] == "Service" and _names_node_port(i)]
    if not named:
        return [batch]
    first = {id(i) for i in named}
    rest = [i for i in batch if id(i) not in first]
    return [named, rest] if rest else [named]


def _apply_one(item: Item, kube: ClusterWriter, options: ApplyOptions) -> tuple[bool, str]:
    assert item.desired is not None
    try:
        if item.waits_for is not None:
            _wait_gone(kube, item.waits_for, options)
        # take_back: virt-controller rewrote the interface lists when it finished an unplug (plan.Item)
        kube.apply(item.desired, force=options.force_conflicts or bool(item.take_back))
        if item.vm_change == VMChange.RESTART:
            meta = item.desired["metadata"]
            kube.restart_vm(meta["namespace"], meta["name"])
        return True, item.vm_change.value or item.reason
    except ApplyError as exc:
        return False, exc.message


def _wait_sriov(
    items: list[Item], plan: Plan, kube: ClusterWriter, options: ApplyOptions, say: Callable[[str], None]
) -> None:
    """Hold back VMs on SR-IOV networks until the SR-IOV operator reports the nodes their policies select
    synced (``reconciler.engine.sriov``); a failed sync stops the run before such a VM is written. A halted VM
    asks for no VF, so it does not wait."""
    vms = [
        i
        for i in items
        if i.desired is not None
        and i.desired["kind"] == "VirtualMachine"
        and i.desired["spec"].get("runStrategy") != "Halted"
    ]
    if not vms:
        return
    objects = [i.desired for i in plan.items if i.desired is not None]
    resources = sriov.network_resources(objects)  # once per stage, not once per VM
    all_policies = [o for o in objects if o["kind"] == sriov.POLICY]
    needed: list[tuple[Item, list[Obj]]] = []
    for item in vms:
        assert item.desired is not None
        policies = sriov.policies_for(item.desired, resources, all_policies)
        if policies:
            needed.append((item, policies))
    if not needed:
        return
    deadline = options.clock() + options.timeout
    namespaces = sorted({p["metadata"].get("namespace", "") for _, ps in needed for p in ps})
    while True:
        nodes = kube.list("Node")
        states = [s for ns in namespaces for s in kube.list(sriov.STATE, namespace=ns or None)]
        waiting, failed = sriov.unsynced([p for _, ps in needed for p in ps], nodes, states)
        if failed:
            names = ", ".join(i.name for i, _ in needed)
            raise HealthError(names, f"the SR-IOV operator failed to configure {'; '.join(failed)}")
        if not waiting:
            return
        if options.clock() >= deadline:
            raise HealthError(", ".join(i.name for i, _ in needed), f"SR-IOV nodes not synced: {'; '.join(waiting)}")
        say(f"waiting for the SR-IOV operator before {len(needed)} VM(s): {'; '.join(waiting)}")
        options.sleep(options.poll)


def _migrate(
    items: list[Item], kube: ClusterWriter, options: ApplyOptions, say: Callable[[str], None]
) -> dict[str, Obj]:
    """Live-migrate each VM whose plugged interfaces reach the guest only in a new launcher pod (a cluster
    without LiveUpdate, ``reconciler.engine.kubevirt``). Waits until virt-controller has carried the plug into
    the VMI spec first: a migration started before would build its target pod without the new attachment.
    Returns the migrations by item name, for the health wait to follow. A migration refused, or a plug that
    never reaches the VMI spec, raises: the item's write already has its one result in ``changes``."""
    started: dict[str, Obj] = {}
    for item in items:
        assert item.desired is not None
        meta = item.desired["metadata"]
        deadline = options.clock() + options.timeout
        vmi_key = ("VirtualMachineInstance", meta["name"], meta.get("namespace"))
        while not set(item.plugs) <= spec_interfaces(kube.get(*vmi_key)):
            if options.clock() >= deadline:
                raise HealthError(item.name, f"KubeVirt did not add {', '.join(item.plugs)} to the VMI spec")
            options.sleep(options.poll)
        vm = kube.get("VirtualMachine", meta["name"], meta["namespace"]) or item.desired
        obj = migration(item.desired, vm["metadata"].get("generation"), item.plugs)
        say(f"{item.name}: live migration {obj['metadata']['name']} so the guest gets {', '.join(item.plugs)}")
        try:
            kube.apply(obj)
        except ApplyError as exc:  # the VM's write already has its result: the run's error says this one
            raise ApplyError(item.name, f"migration not created: {exc.message}") from exc
        started[item.name] = obj
    return started


def _wait_gone(kube: ClusterWriter, obj: Obj, options: ApplyOptions) -> None:
    """Wait until ``obj`` (being deleted: it has a deletionTimestamp) is gone, so that what follows is
    created anew instead of written into an object, or a namespace, that its finalizers are removing."""
    meta = obj["metadata"]
    deadline = options.clock() + options.timeout
    while True:
        live = kube.get(obj["kind"], meta["name"], meta.get("namespace"))
        if live is None or live["metadata"].get("uid") != meta.get("uid"):
            return
        if options.clock() >= deadline:
            raise ApplyError(
                display(obj),
                f"still being deleted after {options.timeout:g}s (finalizers: "
                f"{', '.join(live['metadata'].get('finalizers') or []) or 'none'})",
            )
        options.sleep(options.poll)


def _wait_healthy(
    items: list[Item],
    kube: ClusterWriter,
    options: ApplyOptions,
    changes: ChangeSet,
    say: Callable[[str], None],
    migrations: dict[str, Obj] | None = None,
) -> None:
    watched = [i for i in items if i.desired and i.desired["kind"] == "NodeNetworkConfigurationPolicy"]
    if options.wait_for_vms:
        watched += [
            i
            for i in items
            if i.desired and i.desired["kind"] == "VirtualMachine" and i.desired["spec"].get("runStrategy") != "Halted"
        ]
    if not watched:
        return
    say(f"waiting for {len(watched)} object(s) to become healthy")
    deadline = options.clock() + options.timeout
    pending = {i.name: i for i in watched}
    waiting_for: dict[str, str] = {}  # why a Ready item is still pending (a hot-plug the guest lacks)
    step = options.on_step or _noop_step
    while pending:
        step("waiting for health", len(watched) - len(pending), len(watched))
        for name, item in list(pending.items()):
            assert item.desired is not None
            obj = item.desired
            live = kube.get(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
            if live is not None and live["kind"] == "NodeNetworkConfigurationPolicy" and not _enacted(kube, live):
                continue  # its conditions still describe the previous generation
            health = health_of(live)
            if health.status == Status.DEGRADED:
                detail = _enactment_failures(kube, obj) if obj["kind"] == "NodeNetworkConfigurationPolicy" else ""
                raise HealthError(name, f"Degraded: {health.message}{detail}")
            if health.status in (Status.HEALTHY, Status.SUSPENDED):
                waiting_for[name] = _guest_missing(kube, item, (migrations or {}).get(name))
                if not waiting_for[name]:
                    del pending[name]
        if pending and options.clock() >= deadline:
            details = [(n, waiting_for[n]) for n in sorted(pending) if waiting_for.get(n)]
            if len(pending) == 1:
                detail = f" ({details[0][1]})" if details else ""
            else:
                detail = f" ({'; '.join(f'{n}: {why}' for n, why in details)})" if details else ""
            raise HealthError(", ".join(sorted(pending)), f"not healthy after {options.timeout:.0f}s{detail}")
        if pending:
            options.sleep(options.poll)
    step("waiting for health", len(watched), len(watched))


def _guest_missing(kube: ClusterWriter, item: Item, started: Obj | None) -> str:
    """Why a hot-plugged VM is not done yet although Ready: the VMI does not report the plugged interfaces
    (empty when it does, or when nothing was plugged). A failed migration is an error: the guest will not
    get the interface without another one."""
    if not item.plugs or item.desired is None:
        return ""
    meta = item.desired["metadata"]
    if started is not None:
        mig = kube.get(started["kind"], started["metadata"]["name"], meta["namespace"])
        if migration_phase(mig) == "Failed":
            raise HealthError(item.name, f"live migration {started['metadata']['name']} failed")
    vmi = kube.get("VirtualMachineInstance", meta["name"], meta["namespace"])
    missing = sorted(set(item.plugs) - reported_interfaces(vmi))
    return f"the VMI does not report {', '.join(missing)} yet" if missing else ""


def _enacted(kube: ClusterWriter, policy: Obj) -> bool:
    """Whether every enactment of ``policy`` reports its current generation.

    Right after an update the policy still carries the conditions of the generation before it: an
    ``Available`` there would let the run go on (or delete a policy whose ``state: absent`` never reached
    the nodes) before kubernetes-nmstate even started. A policy without enactments (no matching node, or
    an nmstate that does not record ``policyGeneration``) is judged by its conditions alone.
    """
    generation = policy["metadata"].get("generation")
    selector = f"nmstate.io/policy={policy['metadata']['name']}"
    for nnce in kube.list("NodeNetworkConfigurationEnactment", selector):
        seen = (nnce.get("status") or {}).get("policyGeneration")
        if seen is not None and generation is not None and seen != generation:
            return False
    return True


def _enactment_failures(kube: ClusterWriter, policy: Obj) -> str:
    """The per-node messages of a failed policy, from its NodeNetworkConfigurationEnactments."""
    suffix = "." + policy["metadata"]["name"]
    lines = []
    for nnce in kube.list("NodeNetworkConfigurationEnactment"):
        if not nnce["metadata"]["name"].endswith(suffix):
            continue
        for cond in (nnce.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("Failing", "Aborted") and cond.get("status") == "True":
                node = nnce["metadata"]["name"][: -len(suffix)]
                lines.append(f"{node}: {cond.get('message', cond.get('reason', ''))}")
    return (" — " + "; ".join(sorted(lines))) if lines else ""


def _prune(
    items: list[Item],
    kube: ClusterWriter,
    options: ApplyOptions,
    changes: ChangeSet,
    say: Callable[[str], None],
    tick: Callable[[], None],
) -> None:
    for item in items:  # already in reverse wave order
        live = item.live
        assert live is not None
        try:
            if live["kind"] == nmstate.NNCP:
                say(f"{display(live)}: setting its interfaces absent before deleting it")
                absent = nmstate.absent_policy(live)
                kube.apply(absent, force=options.force_conflicts)
                absent_item = Item(Action.UPDATE, item.id, item.name, item.wave, "state: absent", absent)
                _wait_healthy([absent_item], kube, options, changes, say)
            kube.delete(live)
            changes.add(item, True, item.reason)
        except HealthError as exc:
            changes.add(item, False, f"not deleted: taking its interfaces down failed: {exc.message}")
        except ApplyError as exc:
            changes.add(item, False, exc.message)
        tick()
