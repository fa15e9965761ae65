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

Why in a child process (:func:`controller_figures_in_child`): ``virtnet run`` is a process of its own, holding
only its caches. In the bench's process the controller also carried what the earlier figures left (some 2.7
million objects at L), and every stage of a one-VM commit ran about a third slower (0.8-1.0 s there against
0.67 s in a fresh process, the same code on the same converged double): the figure timed the bench's heap.
The child asks the parent, which owns the server, to reset and count over a pipe of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import filecmp
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from bench.cluster import PY, Counts, Server, _repeated, _root, progress
from bench.real import Tally, counting_requests


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


# ---- in a child process -------------------------------------------------------------------------------------


def controller_figures_in_child(
    repo: Path, changed: Path, server: Server, workdir: Path, repeats: int = 3
) -> dict[str, Any]:
    """:func:`controller_figures` in a fresh interpreter, against ``server``, which stays in this process: the
    child's ``reset`` and ``counts`` come here over a pipe (stdout is left to whatever the child logs)."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    args = [PY, "-m", "bench.controller", "--server-name", server.name, "--kubeconfig", str(server.kubeconfig),
            "--repo", str(repo), "--changed", str(changed), "--workdir", str(workdir), "--repeats", str(repeats),
            "--fds", f"{to_child_r},{from_child_w}"]  # fmt: skip
    if server.name == "real":  # it counts requests on the client (bench.real): the child counts its own
        args.append("--count-requests")
    proc = subprocess.Popen(args, pass_fds=(to_child_r, from_child_w), cwd=_root())
    os.close(to_child_r)
    os.close(from_child_w)
    result: dict[str, Any] | None = None
    with os.fdopen(from_child_r) as requests, os.fdopen(to_child_w, "w") as replies:
        for line in requests:
            command, _, rest = line.rstrip("\n").partition(" ")
            if command == "reset":
                server.reset()
                replies.write("ok\n")
            elif command == "counts":
                replies.write(json.dumps(dataclasses.asdict(server.counts())) + "\n")
            elif command == "result":
                result = json.loads(rest)
                break
            replies.flush()
    code = proc.wait()
    if code or result is None:
        raise RuntimeError(f"the controller figures' child process failed (exit code {code}; see its stderr)")
    return result


class _ServerOfParent:
    """The server as the child sees it: its name and kubeconfig, reset and counts asked of the parent; with a
    ``tally``, the requests are this process's own, counted on the client as :class:`bench.real.RealServer`
    counts them (the parent's then says only the server's CPU time)."""

    kubectl_log_counts = False

    def __init__(self, name: str, kubeconfig: Path, replies: IO[str], requests: IO[str], tally: Tally | None) -> None:
        self.name, self.kubeconfig, self.tally = name, kubeconfig, tally
        self.info: dict[str, Any] = {}
        self._replies, self._requests = replies, requests

    def _ask(self, command: str) -> str:
        self._requests.write(command + "\n")
        self._requests.flush()
        return self._replies.readline()

    def reset(self) -> None:
        self._ask("reset")
        if self.tally is not None:
            self.tally.reset()

    def counts(self) -> Counts:
        counts = Counts(**json.loads(self._ask("counts")))
        if self.tally is None:
            return counts
        own = self.tally.snapshot()
        own.server_cpu_seconds = counts.server_cpu_seconds
        return own

    def __enter__(self) -> _ServerOfParent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    """The child of :func:`controller_figures_in_child`: the figures, sent back as one ``result`` line."""
    parser = argparse.ArgumentParser(description="virtnet run's figures against a server the parent owns")
    for flag in ("--server-name", "--kubeconfig", "--repo", "--changed", "--workdir", "--fds"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--count-requests", action="store_true", help="count this process's requests itself")
    opts = parser.parse_args(argv)
    replies_fd, requests_fd = (int(fd) for fd in opts.fds.split(","))
    tally = Tally() if opts.count_requests else None
    with (
        os.fdopen(replies_fd) as replies,
        os.fdopen(requests_fd, "w") as requests,
        counting_requests(tally) if tally is not None else contextlib.nullcontext(),
    ):
        server = _ServerOfParent(opts.server_name, Path(opts.kubeconfig), replies, requests, tally)
        result = controller_figures(Path(opts.repo), Path(opts.changed), server, Path(opts.workdir), opts.repeats)
        requests.write("result " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
