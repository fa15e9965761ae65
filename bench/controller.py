"""``virtnet run``'s own figures: a no-op reconcile on an unchanged commit, and a one-VM commit from push to write.

Why apart from :func:`bench.cluster.virtnet_figures`: those run ``virtnet apply``'s path (load, render, one
LIST per kind, plan) every time. The controller keeps what did not change: the render of an unchanged commit,
the parse of every file whose git blob did not change, and the cluster in list-and-watch caches
(``reconciler.clients.informer``). So a no-op run on an unchanged commit is fetch + plan against the caches,
and a one-VM commit re-parses one file.

Protocol: the controller tracks a local bare git remote holding the size's repository, on the server the
virtnet figures just used (already converged, so the first reconcile is the warm-up). Timed: ``repeats``
no-op reconciles (``reason=poll``), then ``repeats`` commits that each change one VM (alternating between
the two generated repositories' version of that file) and the reconcile a push webhook starts, measured
from the trigger to the answer of the write (``push_to_write``) and to the end of the run. Requests are
counted per run by the server, as for the other figures.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.cluster import Counts, Server, _repeated, progress


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _changed_files(repo: Path, changed: Path) -> list[str]:
    """Files of ``changed`` whose bytes differ from ``repo``'s (the one VM the twin bumps)."""
    out = []
    for path in sorted(changed.rglob("*.yaml")):
        rel = path.relative_to(changed)
        if not (repo / rel).exists() or not filecmp.cmp(path, repo / rel, shallow=False):
            out.append(str(rel))
    return out


def _remote(repo: Path, workdir: Path) -> tuple[Path, Path]:
    """A bare remote with ``repo`` as its one commit on main, and a clone to push further commits from."""
    bare, work = workdir / "remote.git", workdir / "work"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    shutil.copytree(repo, work)
    _git(work, "init", "-q", "--initial-branch=main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "the repository")
    _git(work, "push", "-q", str(bare), "main")
    return bare, work


def controller_figures(repo: Path, changed: Path, server: Server, workdir: Path, repeats: int = 3) -> dict[str, Any]:
    from reconciler.clients.kube import Kube
    from reconciler.engine.apply import ApplyOptions
    from reconciler.server.controller import Controller, Settings
    from reconciler.server.metrics import Metrics

    files = _changed_files(repo, changed)
    bare, work = _remote(repo, workdir)
    settings = Settings(
        repo_url=bare.as_uri(),
        cache_root=workdir / "cache",
        status_branch=None,
        events=False,
        informers=True,
        apply=ApplyOptions(wait_for_vms=False, poll=0.05, timeout=300.0),
    )
    controller = Controller(settings, Kube.from_kubeconfig(str(server.kubeconfig)), Metrics())
    wrote: list[float] = []
    apply = controller.reader.apply

    def timed_apply(obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        result = apply(obj, **kw)
        if not kw.get("dry_run"):
            wrote.append(time.perf_counter())
        return result

    controller.reader.apply = timed_apply  # type: ignore[method-assign]
    try:
        first = controller.reconcile("warm-up")  # converges whatever the virtnet figures left
        if not first.ok:
            raise RuntimeError(f"controller warm-up failed on the {server.name}: {first.message}")
        controller.reconcile("warm-up")  # the caches now hold the cluster as the run left it
        out: dict[str, Any] = {"changed_files": files}
        noops: list[tuple[float, Counts]] = []
        for _ in range(repeats):
            server.reset()
            t = time.perf_counter()
            outcome = controller.reconcile("poll")
            noops.append((time.perf_counter() - t, server.counts()))
            if not outcome.ok or outcome.changes is not None:
                raise RuntimeError(f"controller no-op on the {server.name} was not a no-op: {outcome.message}")
        out["noop"] = _repeated(noops)
        progress(server, "controller", "no-op (unchanged commit)", out["noop"])

        pushes: list[tuple[float, Counts]] = []
        to_write: list[float] = []
        for i in range(repeats + 1):  # the first is the warm-up
            source = changed if i % 2 == 0 else repo
            for rel in files:
                shutil.copyfile(source / rel, work / rel)
            _git(work, "commit", "-q", "-am", f"one VM, change {i}")
            _git(work, "push", "-q", str(bare), "main")
            server.reset()
            wrote.clear()
            t = time.perf_counter()
            outcome = controller.reconcile("push")
            seconds = time.perf_counter() - t
            if not outcome.ok or not wrote:
                raise RuntimeError(f"one-VM commit on the {server.name} wrote nothing: {outcome.message}")
            if i:
                pushes.append((seconds, server.counts()))
                to_write.append(wrote[-1] - t)
        out["one_vm_commit"] = {
            **_repeated(pushes),
            "push_to_write": _repeated([(s, c) for s, (_, c) in zip(to_write, pushes, strict=True)]),
        }
        progress(server, "controller", "one-VM commit", out["one_vm_commit"])
        return out
    finally:
        controller.close()
        controller.kube.api.close()
