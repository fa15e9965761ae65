"""``python -m bench.connectivity [SIZE]``: the connectivity diff timed beside the render, medians of 3 runs.

Why beside the render: the analysis runs on every plan, so its cost is read against what a plan already
pays. The proposed revision is the generated repository with ``net-003`` moved from VLAN 102 to VLAN 100 of
its bridge ``brg0``, where ``net-000`` is: two domains merge (flagged) and the VMs of both networks with a
gateway reach each other (pairs gained), so the diff has work to do; the current revision is the repository
as generated. Per run both are loaded afresh (loading is not timed) so nothing is memoised between runs.
Wall-clock and CPU seconds are both reported: on a busy machine the CPU time is the steadier figure.

* ``render``: ``render(repo)`` of the proposed revision (objects only, after load);
* ``compare``: ``compare(current, proposed)``: both data planes built, diffed and checked;
* ``same_revision``: ``compare(repo, repo)``: a reconcile of the revision it already reconciled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import DEFAULT_SEED, generate
from reconciler.model import load_repo
from reconciler.render import render
from reconciler.safety.connectivity import compare


def merged_twin(repo: Path, out: Path) -> Path:
    """A copy of ``repo`` whose ``net-003`` (the first network on VLAN 102) joins VLAN 100 of its bridge."""
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


def measure(current: Path, proposed: Path, repeats: int = 3) -> dict[str, Any]:
    """Medians of ``repeats`` runs (seconds), and what the diff found (so a run that found nothing shows)."""
    names = ("render", "compare", "same_revision")
    runs: dict[str, list[float]] = {n: [] for name in names for n in (name, f"{name}_cpu")}
    report = None
    for _ in range(repeats):
        base, repo = load_repo(current), load_repo(proposed)
        _timed("render", lambda: render(repo), runs)  # noqa: B023 - called at once
        report = _timed("compare", lambda: compare(base, repo), runs)  # noqa: B023
        _timed("same_revision", lambda: compare(repo, repo), runs)  # noqa: B023
    assert report is not None
    out: dict[str, Any] = {k: statistics.median(v) for k, v in runs.items()}
    out["runs"] = runs
    out["ratio_compare_to_render"] = out["compare"] / out["render"]
    out["found"] = {
        "pairs_lost": report.lost,
        "pairs_gained": report.gained,
        "changes": len(report.changes),
        "domains_merged": sum(1 for d in report.domain_changes if d.kind == "merged"),
        "findings": len(report.findings),
        "preexisting_findings": report.preexisting,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("size", nargs="?", default="L")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="virtnet-bench-conn-") as tmp:
        current = Path(tmp) / "current"
        generate(args.size, current, seed=args.seed)
        figures = measure(current, merged_twin(current, Path(tmp) / "proposed"), args.repeats)
    json.dump({"size": args.size, **figures}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
