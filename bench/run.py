"""``python -m bench.run``: every benchmark figure in one command, as a table and as JSON.

Why one command: figures are only comparable when produced the same way. For each size the run
generates the repository (and its one-VM-change twin) with a fixed seed, measures validate+render in a
child process, then drives virtnet and kubectl against fresh API doubles; the webhook latency and the
node figures (root only) are measured once. See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cluster, node, webhook
from bench.generate import DEFAULT_SEED, SIZES, generate

Results = dict[str, Any]


def run_size(size: str, workdir: Path, seed: int, kubectl: bool) -> Results:
    """All per-size figures; the one-VM change bumps the vCPUs of the VM in the middle of the list."""
    repo, changed = workdir / "repo", workdir / "changed"
    summary = generate(size, repo, seed=seed)
    generate(size, changed, seed=seed, bump_cpu_of=SIZES[size].vms // 2)
    out: Results = {"repo": {k: v for k, v in summary.__dict__.items() if k != "uplinks"}}
    out["render"] = cluster.measure_render(repo)
    out.update(cluster.cluster_figures(size, repo, changed, workdir, kubectl=kubectl))
    return out


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f} s" if x >= 0.1 else f"{x * 1000:.0f} ms")


def _verbs(d: dict[str, int]) -> str:
    return " ".join(f"{v}={n}" for v, n in d.items()) or "-"


def table(results: Results) -> str:
    """The figures as a fixed-width text table: one column per size."""
    sizes = [s for s in results["sizes"]]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, get: Any) -> None:
        cells = []
        for s in sizes:
            try:
                cells.append(get(results["sizes"][s]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        rows.append((label, cells))

    row(
        "repo: VMs / networks / namespaces",
        lambda r: f"{r['repo']['vms']}/{r['repo']['networks']}/{r['repo']['namespaces']}",
    )
    row("rendered objects", lambda r: str(r["render"]["objects"]))
    row("1 validate+render time", lambda r: _fmt_s(r["render"]["seconds"]))
    row("1 validate+render peak RSS", lambda r: f"{r['render']['peak_rss_mib']:.0f} MiB")
    v = lambda r: r["virtnet"]  # noqa: E731
    k = lambda r: r["kubectl"]  # noqa: E731
    row("2 virtnet cold apply time", lambda r: _fmt_s(v(r)["cold"]["seconds"]))
    row("2   of which health-wait sleep", lambda r: _fmt_s(v(r)["cold"]["health_wait_sleep_seconds"]))
    row("2   requests", lambda r: _verbs(v(r)["cold"]["by_verb"]))
    row("3 virtnet no-op reconcile time", lambda r: _fmt_s(v(r)["noop"]["seconds"]))
    row("3   requests (writes)", lambda r: f"{_verbs(v(r)['noop']['by_verb'])} ({v(r)['noop']['writes']})")
    row("3 no-op observe+plan only", lambda r: _fmt_s(v(r)["noop_plan_only"]["seconds"]))
    row("4 one-VM change time", lambda r: _fmt_s(v(r)["one_vm_change"]["seconds"]))
    row("4   writes", lambda r: str(v(r)["one_vm_change"]["writes"]))
    row(
        "5 plan text: cold / one-VM",
        lambda r: f"{v(r)['cold']['plan_text_bytes']} / {v(r)['one_vm_change']['plan_text_bytes']} B",
    )
    row("7 kubectl apply cold time", lambda r: _fmt_s(k(r)["cold"]["seconds"]))
    row("7   requests", lambda r: _verbs(k(r)["cold"]["by_verb"]))
    row("7 kubectl apply again (no-op)", lambda r: _fmt_s(k(r)["noop"]["seconds"]))
    row("7   requests (writes)", lambda r: f"{_verbs(k(r)['noop']['by_verb'])} ({k(r)['noop']['writes']})")
    row("7 kubectl diff --server-side", lambda r: _fmt_s(k(r)["diff"]["seconds"]))
    row("7   requests", lambda r: _verbs(k(r)["diff"]["by_verb"]))
    row("7 kubectl apply one-VM change", lambda r: _fmt_s(k(r)["one_vm_change"]["seconds"]))
    row("7   writes", lambda r: str(k(r)["one_vm_change"]["writes"]))
    row("ratio cold: virtnet/kubectl", lambda r: f"{v(r)['cold']['seconds'] / k(r)['cold']['seconds']:.2f}x")
    row("ratio no-op: virtnet/kubectl apply", lambda r: f"{v(r)['noop']['seconds'] / k(r)['noop']['seconds']:.2f}x")
    row(
        "ratio plan/diff: virtnet/kubectl",
        lambda r: f"{v(r)['noop_plan_only']['seconds'] / k(r)['diff']['seconds']:.2f}x",
    )
    row(
        "ratio one-VM: virtnet/kubectl",
        lambda r: f"{v(r)['one_vm_change']['seconds'] / k(r)['one_vm_change']['seconds']:.2f}x",
    )

    width = max(len(label) for label, _ in rows)
    cols = [max(len(s), *(len(c[i]) for _, c in rows)) for i, s in enumerate(sizes)]
    lines = [" | ".join([" " * width, *(s.rjust(w) for s, w in zip(sizes, cols, strict=True))])]
    lines.append("-" * len(lines[0]))
    lines += [
        " | ".join([label.ljust(width), *(c.rjust(w) for c, w in zip(cells, cols, strict=True))])
        for label, cells in rows
    ]
    wh = results.get("webhook") or {}
    if "median_ms" in wh:
        lines.append(
            f"6 push webhook -> reconcile start ({wh['deliveries']} deliveries): median {wh['median_ms']:.1f} ms, "
            f"p95 {wh['p95_ms']:.1f} ms, max {wh['max_ms']:.1f} ms"
        )
    else:
        lines.append(f"6 push webhook latency: skipped ({wh.get('skipped', 'not run')})")
    nodes = results.get("node") or {}
    if "skipped" in nodes:
        lines.append(f"8 node: skipped ({nodes['skipped']})")
    for n, r in sorted((nodes.get("runs") or {}).items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"8 node N={n}: agent {_fmt_s(r['agent']['seconds'])} ({r['agent']['netlink_writes']} writes) vs "
            f"ip -batch {_fmt_s(r['ip_batch']['seconds'])} ({r['ip_batch']['commands']} commands) = "
            f"{r['ratio_agent_to_ip']:.2f}x; no-op pass {_fmt_s(r['noop']['seconds'])}, "
            f"{r['noop']['netlink_writes']} writes"
        )
    lines.append(
        "(API double in its own process with the simulated nmstate controller only; VM health waits off, "
        "so VM figures exclude KubeVirt simulation)"
    )
    return "\n".join(lines)


def _save(out: Path, results: Results) -> None:
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="virtnet benchmarks at scale, side by side with kubectl and ip")
    parser.add_argument("--sizes", default="S,M,L", help="comma-separated of " + ",".join(SIZES))
    parser.add_argument("--node-sizes", default="50,200", help="bridges per node run; empty to skip")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-kubectl", action="store_true", help="skip the kubectl comparison")
    parser.add_argument(
        "--kubectl-sizes",
        default="XS,S,M",
        help="sizes that get the kubectl comparison (L adds ~15 min: kubectl sends every object, 4 passes)",
    )
    parser.add_argument("--webhook-deliveries", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep generated repositories here (default: a temp dir)")
    opts = parser.parse_args(argv)
    sizes = [s.strip().upper() for s in opts.sizes.split(",") if s.strip()]
    if unknown := [s for s in sizes if s not in SIZES]:
        parser.error(f"unknown sizes {unknown}; known: {', '.join(SIZES)}")
    node_sizes = [int(n) for n in opts.node_sizes.split(",") if n.strip()]
    kubectl_sizes = set() if opts.no_kubectl else {s.strip().upper() for s in opts.kubectl_sizes.split(",")}

    started = time.perf_counter()
    results: Results = {"seed": opts.seed, "python": sys.version.split()[0], "machine": platform.machine(), "sizes": {}}
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
            results["node"] = {"runs": {str(n): node.node_figures(n) for n in node_sizes}}
        _save(opts.out, results)
        for size in sizes:
            t = time.perf_counter()
            print(f"size {size} ...", file=sys.stderr, flush=True)
            results["sizes"][size] = run_size(size, base / size, opts.seed, kubectl=size in kubectl_sizes)
            print(f"size {size} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            _save(opts.out, results)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    _save(opts.out, results)
    print(table(results))
    print(f"total {results['total_seconds']:.0f} s; JSON written to {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
