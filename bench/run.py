"""``python -m bench.run``: every benchmark figure in one command, as a table and as JSON.

Why one command: figures are only comparable when produced the same way. For each size the run
generates the repository (and its one-VM-change twin) with a fixed seed, measures validate+render in a
child process, then drives virtnet and kubectl against a fresh server per client on each backend: the API
double and, where it can run, the real kube-apiserver + etcd (:mod:`bench.real`). Ratios (real/double,
virtnet/kubectl) are computed within the run. The webhook latency and the node figures (root only) are
measured once. See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cluster, connectivity, node, webhook
from bench.generate import DEFAULT_SEED, SIZES, generate

Results = dict[str, Any]
BACKENDS = ("double", "real")


def run_size(
    size: str,
    workdir: Path,
    seed: int,
    *,
    backends: dict[str, str | None],
    kubectl: bool,
    repeats: int = 3,
    sim_interval: float | None = None,
) -> Results:
    """All per-size figures; the one-VM change bumps the vCPUs of the VM in the middle of the list.

    ``backends`` maps a backend to None (run it) or the reason it is skipped.
    """
    repo, changed = workdir / "repo", workdir / "changed"
    summary = generate(size, repo, seed=seed)
    generate(size, changed, seed=seed, bump_cpu_of=SIZES[size].vms // 2)
    out: Results = {"repo": {k: v for k, v in summary.__dict__.items() if k != "uplinks"}}
    out["render"], anchor = cluster.measure_renders(repo, repeats)
    out["connectivity"] = connectivity.measure(repo, connectivity.merged_twin(repo, workdir / "merged"), repeats)
    out["render"]["anchor_safe_load"] = anchor
    out["render"]["ratio_to_safe_load"] = out["render"]["seconds"] / anchor["seconds"]
    out["render"]["cpu_ratio_to_safe_load"] = out["render"]["cpu_seconds"] / anchor["cpu_seconds"]
    out["backends"] = {}
    for backend, skipped in backends.items():
        if skipped:
            out["backends"][backend] = {"skipped": skipped}
            continue
        t = time.perf_counter()
        print(f"  {size} on the {backend} ...", file=sys.stderr, flush=True)
        figures = cluster.cluster_figures(
            size,
            repo,
            changed,
            workdir / backend,
            backend=backend,
            kubectl=kubectl,
            repeats=repeats,
            sim_interval=sim_interval,
        )
        figures["bench_seconds"] = time.perf_counter() - t
        out["backends"][backend] = figures
    out["ratios"] = ratios(out["backends"])
    return out


def _ratio(a: Any, b: Any) -> float | None:
    try:
        return float(a["seconds"]) / float(b["seconds"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def ratios(backends: dict[str, Any]) -> dict[str, Any]:
    """Time ratios within this run: real/double per figure, and virtnet/kubectl on each backend."""
    out: dict[str, Any] = {}
    double, real = backends.get("double") or {}, backends.get("real") or {}
    if "virtnet" in double and "virtnet" in real:
        out["real_to_double"] = {
            f"virtnet {k}": _ratio(real["virtnet"].get(k), double["virtnet"].get(k))
            for k in ("cold", "noop", "noop_plan_only", "one_vm_change")
        }
        cold = real["virtnet"]["cold"], double["virtnet"]["cold"]
        if all("seconds_without_health_wait" in c for c in cold):
            out["real_to_double"]["virtnet cold without health-wait sleep"] = _ratio(
                {"seconds": cold[0]["seconds_without_health_wait"]}, {"seconds": cold[1]["seconds_without_health_wait"]}
            )
        if "kubectl" in double and "kubectl" in real:
            for k in ("cold", "noop"):
                out["real_to_double"][f"kubectl {k}"] = _ratio(real["kubectl"].get(k), double["kubectl"].get(k))
    for name, b in backends.items():
        if "virtnet" not in b or "kubectl" not in b:
            continue
        v, k = b["virtnet"], b["kubectl"]
        mine = {"cold": _ratio(v["cold"], k["cold"]), "noop": _ratio(v["noop"], k["noop"])}
        if "diff" in k:
            mine["plan_vs_diff"] = _ratio(v["noop_plan_only"], k["diff"])
        if "one_vm_change" in k:
            mine["one_vm_change"] = _ratio(v["one_vm_change"], k["one_vm_change"])
        out[f"virtnet_to_kubectl_{name}"] = mine
    return out


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f} s" if x >= 0.1 else f"{x * 1000:.0f} ms")


def _fmt_spread(fig: dict[str, Any]) -> str:
    """A single run's time, or the median of repeated runs with their min-max."""
    if "seconds_min" not in fig or fig.get("repeats", 1) < 2:
        return _fmt_s(fig["seconds"])
    return f"{_fmt_s(fig['seconds'])} ({_fmt_s(fig['seconds_min'])}-{_fmt_s(fig['seconds_max'])})"


def _fmt_x(x: float | None) -> str:
    if x is None:
        raise KeyError("no ratio")
    return f"{x:.2f}x"


def _cpu(fig: dict[str, Any]) -> str:
    return f"{_fmt_s(fig['client_cpu_seconds'])} / {_fmt_s(fig['server_cpu_seconds'])}"


def _floor(results: Results, fig: dict[str, Any]) -> str:
    """The server's CPU time spread over every CPU: the wall time of a client that cost nothing, with the
    server perfectly parallel. On a machine whose CPUs the server shares with the client, no client can
    finish the same writes sooner."""
    return _fmt_s(float(fig["server_cpu_seconds"]) / int(results["cpus"]))


def _per_write(fig: dict[str, Any]) -> str:
    cpu = float(fig["server_cpu_seconds"]) * 1000
    return f"{cpu / int(fig['writes']):.2f} ms; {cpu / float(fig['objects_kib']):.2f} ms"


def _verbs(d: dict[str, int]) -> str:
    return " ".join(f"{v}={n}" for v, n in d.items()) or "-"


def table(results: Results) -> str:
    """The figures as a fixed-width text table: one column per size and backend."""
    columns = [
        (s, b)
        for s, r in results["sizes"].items()
        for b, fig in (r.get("backends") or {}).items()
        if "skipped" not in fig
    ]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, get: Callable[[Results, Results], str]) -> None:
        cells = []
        for s, b in columns:
            sized = results["sizes"][s]
            try:
                cells.append(get(sized, sized["backends"][b] | {"name": b}))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        rows.append((label, cells))

    row("repo: VMs / networks / namespaces", lambda r, b: "{vms}/{networks}/{namespaces}".format(**r["repo"]))
    row("rendered objects", lambda r, b: str(r["render"]["objects"]))
    row("1 validate+render time", lambda r, b: _fmt_spread(r["render"]))
    row("1   CSafeLoader load of the same files", lambda r, b: _fmt_spread(r["render"]["anchor_safe_load"]))
    row(
        "1   ratio (time; CPU time)",
        lambda r, b: f"{_fmt_x(r['render']['ratio_to_safe_load'])}; {_fmt_x(r['render']['cpu_ratio_to_safe_load'])}",
    )
    row("1 validate+render peak RSS", lambda r, b: f"{r['render']['peak_rss_mib']:.0f} MiB")
    row("1b render (in-process, median)", lambda r, b: _fmt_spread(r["connectivity"]["spread"]["render"]))
    row("1b connectivity diff (median)", lambda r, b: _fmt_spread(r["connectivity"]["spread"]["compare"]))
    row("1b   same revision again", lambda r, b: _fmt_spread(r["connectivity"]["spread"]["same_revision"]))
    row("server start (in no figure)", lambda r, b: _fmt_s(b["server"]["start_seconds"]))
    row("  simulator start (in no figure)", lambda r, b: _fmt_s(b["server"]["simulator_start_seconds"]))
    row("  simulated nmstate polls every", lambda r, b: _fmt_s(b["server"]["simulator_interval_seconds"]))
    v = lambda b: b["virtnet"]  # noqa: E731
    k = lambda b: b["kubectl"]  # noqa: E731
    row("2 virtnet cold apply time", lambda r, b: _fmt_s(v(b)["cold"]["seconds"]))
    row("2   of which health-wait sleep", lambda r, b: _fmt_s(v(b)["cold"]["health_wait_sleep_seconds"]))
    row("2   without the health-wait sleep", lambda r, b: _fmt_s(v(b)["cold"]["seconds_without_health_wait"]))
    row("2   requests", lambda r, b: _verbs(v(b)["cold"]["by_verb"]))
    row("2   CPU: client / server", lambda r, b: _cpu(v(b)["cold"]))
    row("2   server CPU / CPUs (no client is faster)", lambda r, b: _floor(results, v(b)["cold"]))
    row("2   server CPU per write; per KiB of objects", lambda r, b: _per_write(v(b)["cold"]))
    row("3 virtnet no-op reconcile time", lambda r, b: _fmt_spread(v(b)["noop"]))
    row("3   requests (writes)", lambda r, b: f"{_verbs(v(b)['noop']['by_verb'])} ({v(b)['noop']['writes']})")
    row("3 no-op observe+plan only", lambda r, b: _fmt_spread(v(b)["noop_plan_only"]))
    row("4 one-VM change time", lambda r, b: _fmt_spread(v(b)["one_vm_change"]))
    row("4   writes", lambda r, b: str(v(b)["one_vm_change"]["writes"]))
    c = lambda b: b["controller"]  # noqa: E731
    row("9 virtnet run no-op, unchanged commit", lambda r, b: _fmt_spread(c(b)["noop"]))
    row("9   requests (writes)", lambda r, b: f"{_verbs(c(b)['noop']['by_verb'])} ({c(b)['noop']['writes']})")
    row("9 virtnet run one-VM commit: push to write", lambda r, b: _fmt_spread(c(b)["one_vm_commit"]["push_to_write"]))
    row("9   whole run", lambda r, b: _fmt_spread(c(b)["one_vm_commit"]))
    row("9   writes", lambda r, b: str(c(b)["one_vm_commit"]["writes"]))
    row(
        "5 plan text: cold / one-VM",
        lambda r, b: f"{v(b)['cold']['plan_text_bytes']} / {v(b)['one_vm_change']['plan_text_bytes']} B",
    )
    row("7 kubectl server start (in no figure)", lambda r, b: _fmt_s(b["kubectl_server"]["start_seconds"]))
    row("7 kubectl apply cold time", lambda r, b: _fmt_s(k(b)["cold"]["seconds"]))
    row("7   requests", lambda r, b: _verbs(k(b)["cold"]["by_verb"]))
    row("7   CPU: client / server", lambda r, b: _cpu(k(b)["cold"]))
    row("7   server CPU / CPUs (no client is faster)", lambda r, b: _floor(results, k(b)["cold"]))
    row("7 kubectl apply again (no-op)", lambda r, b: _fmt_spread(k(b)["noop"]))
    row("7   requests (writes)", lambda r, b: f"{_verbs(k(b)['noop']['by_verb'])} ({k(b)['noop']['writes']})")
    row("7 kubectl diff --server-side", lambda r, b: _fmt_spread(k(b)["diff"]))
    row("7   requests", lambda r, b: _verbs(k(b)["diff"]["by_verb"]))
    row("7 kubectl apply one-VM change", lambda r, b: _fmt_spread(k(b)["one_vm_change"]))
    row("7   writes", lambda r, b: str(k(b)["one_vm_change"]["writes"]))

    def mine(r: Results, b: Results) -> dict[str, Any]:
        return dict(r["ratios"][f"virtnet_to_kubectl_{b['name']}"])

    row("ratio cold: virtnet/kubectl", lambda r, b: _fmt_x(mine(r, b)["cold"]))
    row("ratio no-op: virtnet/kubectl apply", lambda r, b: _fmt_x(mine(r, b)["noop"]))
    row("ratio plan/diff: virtnet/kubectl", lambda r, b: _fmt_x(mine(r, b)["plan_vs_diff"]))
    row("ratio one-VM: virtnet/kubectl", lambda r, b: _fmt_x(mine(r, b)["one_vm_change"]))

    def vs_double(key: str) -> Callable[[Results, Results], str]:
        return lambda r, b: _fmt_x(r["ratios"]["real_to_double"][key]) if b["name"] == "real" else "-"

    for key in (
        "virtnet cold",
        "virtnet cold without health-wait sleep",
        "virtnet noop",
        "virtnet noop_plan_only",
        "virtnet one_vm_change",
    ):
        row(f"ratio real/double: {key.replace('_', ' ')}", vs_double(key))
    row("ratio real/double: kubectl cold", vs_double("kubectl cold"))
    row("ratio real/double: kubectl no-op", vs_double("kubectl noop"))
    row("bench time (servers included)", lambda r, b: _fmt_s(b["bench_seconds"]))

    width = max(len(label) for label, _ in rows)
    heads = [f"{s} {b}" for s, b in columns]
    cols = [max(len(h), *(len(c[i]) for _, c in rows)) for i, h in enumerate(heads)]
    lines = [" | ".join([" " * width, *(h.rjust(w) for h, w in zip(heads, cols, strict=True))])]
    lines.append("-" * len(lines[0]))
    lines += [
        " | ".join([label.ljust(width), *(c.rjust(w) for c, w in zip(cells, cols, strict=True))])
        for label, cells in rows
    ]
    for s, r in results["sizes"].items():
        for b, fig in (r.get("backends") or {}).items():
            if "skipped" in fig:
                lines.append(f"{s} on the {b}: skipped ({fig['skipped']})")
    wh = results.get("webhook") or {}
    if "median_ms" in wh:
        lines.append(
            f"6 push webhook -> reconcile start ({wh['deliveries']} deliveries): median {wh['median_ms']:.1f} ms, "
            f"p95 {wh['p95_ms']:.1f} ms, max {wh['max_ms']:.1f} ms"
        )
    else:
        lines.append(f"6 push webhook latency: skipped ({wh.get('skipped', 'not run')})")
    lines += node.summary_lines(results.get("node") or {}, _fmt_spread)
    lines.append(
        f"(repeated figures: median (min-max) of {results.get('repeats', '?')} runs after a warm-up; double: the "
        "API double in its own process; real: kube-apiserver + etcd, a fresh one per size and client, simulated "
        "nmstate in its own process; VM health waits off, so VM figures exclude KubeVirt simulation)"
    )
    if "loadavg_start" in results:
        start, end = results["loadavg_start"][0], (results.get("loadavg_end") or [None])[0]
        # only the start says what else ran: by the end the load average is mostly this run's own servers
        lines.append(
            f"load average (1 min) at start {start:.1f}, at end {'-' if end is None else f'{end:.1f}'} (this "
            f"run's own servers included), on {results.get('cpus')} CPUs"
            + (": a loaded machine, these figures are not final" if start > 0.5 * (results.get("cpus") or 1) else "")
        )
    return "\n".join(lines)


def _save(out: Path, results: Results) -> None:
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def _csv(value: str) -> list[str]:
    return [s.strip().upper() for s in value.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="virtnet benchmarks at scale, side by side with kubectl and ip")
    parser.add_argument("--sizes", default="S,M,L", help="comma-separated of " + ",".join(SIZES))
    parser.add_argument(
        "--backends",
        default="double,real",
        help="comma-separated of double,real (real: kube-apiserver + etcd; skipped with the reason where it "
        "cannot run, e.g. no Go)",
    )
    parser.add_argument(
        "--real-sizes",
        default="XS,S,M",
        help="sizes that also run on the real server (L there takes long: measure it on a quiet machine)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each repeated figure (after a warm-up)")
    parser.add_argument(
        "--sim-interval", type=float, default=None, help="seconds between the real server's nmstate simulator passes"
    )
    parser.add_argument("--node-sizes", default="50,200", help="bridges per node run; empty to skip")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-kubectl", action="store_true", help="skip the kubectl comparison")
    parser.add_argument(
        "--kubectl-sizes",
        default="XS,S,M",
        help="sizes that get the kubectl comparison (L adds ~15 min: kubectl sends every object on every pass)",
    )
    parser.add_argument("--webhook-deliveries", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep generated repositories here (default: a temp dir)")
    opts = parser.parse_args(argv)
    sizes = _csv(opts.sizes)
    if unknown := [s for s in sizes if s not in SIZES]:
        parser.error(f"unknown sizes {unknown}; known: {', '.join(SIZES)}")
    backends = [b.lower() for b in _csv(opts.backends)]
    if not backends or any(b not in BACKENDS for b in backends):
        parser.error(f"--backends {opts.backends!r}: choose from {', '.join(BACKENDS)}")
    if opts.repeats < 1:
        parser.error("--repeats must be at least 1")
    node_sizes = [int(n) for n in opts.node_sizes.split(",") if n.strip()]
    kubectl_sizes = set() if opts.no_kubectl else set(_csv(opts.kubectl_sizes))
    real_sizes = set(_csv(opts.real_sizes))

    # a plain kill stops the servers too: SIGTERM unwinds like Ctrl-C (the control planes are detached
    # processes; without this they would outlive the run)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run(opts, sizes, backends, node_sizes, kubectl_sizes, real_sizes)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(
    opts: argparse.Namespace,
    sizes: list[str],
    backends: list[str],
    node_sizes: list[int],
    kubectl_sizes: set[str],
    real_sizes: set[str],
) -> int:
    started = time.perf_counter()
    results: Results = {
        "seed": opts.seed,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "repeats": opts.repeats,
        "backends": backends,
        "cpus": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "sizes": {},
    }
    real_reason: str | None = None
    if "real" in backends:
        from bench import real

        t = time.perf_counter()
        print("real server: checking kube-apiserver/etcd (built once if missing) ...", file=sys.stderr, flush=True)
        real_reason = real.available()
        results["real_server"] = {"skipped": real_reason} if real_reason else {}
        results["real_server"]["check_seconds"] = time.perf_counter() - t
    tmp = None if opts.workdir else tempfile.mkdtemp(prefix="virtnet-bench-")
    base = opts.workdir or Path(tmp or ".")
    try:
        # the quick figures first, and the JSON rewritten after each step, so a long run is useful early
        reason = webhook.available()
        results["webhook"] = {"skipped": reason} if reason else webhook.webhook_latency(opts.webhook_deliveries)
        reason = node.skip_reason()
        if not node_sizes:
            results["node"] = {"skipped": "no --node-sizes"}
        elif reason:
            results["node"] = {"skipped": reason}
        else:
            results["node"] = node.node_figures(node_sizes, repeats=opts.repeats)
        _save(opts.out, results)
        for size in sizes:
            t = time.perf_counter()
            print(f"size {size} ...", file=sys.stderr, flush=True)
            skip: dict[str, str | None] = {b: None for b in backends}
            if "real" in skip:
                skip["real"] = real_reason or (None if size in real_sizes else f"{size} is not in --real-sizes")
            results["sizes"][size] = run_size(
                size,
                base / size,
                opts.seed,
                backends=skip,
                kubectl=size in kubectl_sizes,
                repeats=opts.repeats,
                sim_interval=opts.sim_interval,
            )
            results["sizes"][size]["bench_seconds"] = time.perf_counter() - t
            print(f"size {size} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            _save(opts.out, results)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    results["loadavg_end"] = list(os.getloadavg())
    _save(opts.out, results)
    print(table(results))
    print(f"total {results['total_seconds']:.0f} s; JSON written to {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
