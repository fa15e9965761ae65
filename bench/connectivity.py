"""``python -m bench.connectivity [SIZE]``: the connectivity diff timed beside the render, medians of 3 runs.

Why beside the render: the analysis runs on every plan, so its cost is read against what a plan already
pays. The proposed revision is the generated repository with ``net-003`` moved from VLAN 102 to VLAN 100 of
its bridge ``brg0``, where ``net-000`` is: two domains merge (flagged) and the VMs of both networks with a
gateway reach each other (pairs gained), so the diff has work to do; the current revision is the repository
as generated. Each run is a fresh child process that loads both (loading is not timed): the render, the model
and the safety checks keep process-wide caches (``lru_cache``s, the data plane's memo), so runs in one process
would time a warm second run, not a plan. Wall-clock and CPU seconds are both reported, each the median of
the runs with its min-max: on a busy machine the CPU time is the steadier figure.

* ``render``: ``render(repo)`` of the proposed revision (objects only, after load);
* ``compare``: ``compare(current, proposed)``: both data planes built, diffed and checked;
* ``same_revision``: ``compare(repo, repo)``: a reconcile of the revision it already reconciled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster import PY, spread
from bench.generate import DEFAULT_SEED, generate
from reconciler.model import load_repo
from reconciler.render import render
from reconciler.safety.connectivity import compare


def merged_twin(repo: Path, out: Path) -> Path:
    """A copy of ``repo`` whose ``net-003`` (the first network on VLAN 102) joins VLAN 100 of its bridge;
    an ``out`` left by an earlier run (``--workdir`` reused) is replaced."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(repo, out)
    bridges = out / "networks" / "bridges.yaml"
    text = bridges.read_text()
    if "  vlan: 102\n" not in text:
        raise RuntimeError(f"{bridges} has no VLAN 102 to move")
    bridges.write_text(text.replace("  vlan: 102\n", "  vlan: 100\n", 1))
    return out


def _timed(name: str, fn: Any, runs: dict[str, list[float]]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    runs[name].append(time.perf_counter() - wall)
    runs[f"{name}_cpu"].append(time.process_time() - cpu)
    return result


NAMES = ("render", "compare", "same_revision")
ROOT = Path(__file__).resolve().parent.parent


def one_run(current: Path, proposed: Path) -> dict[str, Any]:
    """One run in this process (meant to be a fresh one): the timed figures and what the diff found."""
    runs: dict[str, list[float]] = {n: [] for name in NAMES for n in (name, f"{name}_cpu")}
    base, repo = load_repo(current), load_repo(proposed)
    _timed("render", lambda: render(repo), runs)
    report = _timed("compare", lambda: compare(base, repo), runs)
    _timed("same_revision", lambda: compare(repo, repo), runs)
    found = {
        "pairs_lost": report.lost,
        "pairs_gained": report.gained,
        "changes": len(report.changes),
        "domains_merged": sum(1 for d in report.domain_changes if d.kind == "merged"),
        "findings": len(report.findings),
        "preexisting_findings": report.preexisting,
    }
    return {"seconds": {k: v[0] for k, v in runs.items()}, "found": found}


def _child_run(current: Path, proposed: Path) -> dict[str, Any]:
    argv = [PY, "-m", "bench.connectivity", "--one-run", str(current), str(proposed)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"connectivity run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def measure(current: Path, proposed: Path, repeats: int = 3) -> dict[str, Any]:
    """Medians of ``repeats`` runs (seconds), each in a fresh child, with their spread (``spread``: min-max and
    every run), and what the diff found (so a run that found nothing shows)."""
    done = [_child_run(current, proposed) for _ in range(max(1, repeats))]
    runs = {k: [d["seconds"][k] for d in done] for k in done[0]["seconds"]}
    out: dict[str, Any] = {k: statistics.median(v) for k, v in runs.items()}
    out["runs"] = runs
    out["spread"] = {k: spread(v) for k, v in runs.items()}
    out["ratio_compare_to_render"] = out["compare"] / out["render"]
    out["found"] = done[-1]["found"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("size", nargs="?", default="L")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--one-run", nargs=2, type=Path, metavar=("CURRENT", "PROPOSED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_run:  # a child of measure(): one line of JSON
        print(json.dumps(one_run(*args.one_run)))
        return 0
    with tempfile.TemporaryDirectory(prefix="virtnet-bench-conn-") as tmp:
        current = Path(tmp) / "current"
        generate(args.size, current, seed=args.seed)
        figures = measure(current, merged_twin(current, Path(tmp) / "proposed"), args.repeats)
    json.dump({"size": args.size, **figures}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
