"""``virtnet demo``: the whole loop on this machine, with nothing installed but virtnet.

It starts the Kubernetes API double (simulated nmstate and KubeVirt on three workers and three control
plane nodes), turns ``examples/repo`` into a real bare git remote, runs one reconcile (plan, ordered
apply, health waits, status commit), runs a second one to show that nothing changes, and says where to
look. Everything lives under one folder (default ``./.demo``), recreated on every run.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from reconciler.clients.kube import Kube
from reconciler.output import text as report
from reconciler.pipeline import Outcome
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "repo"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "demo",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "demo",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def make_remote(source: Path, workdir: Path) -> Path:
    """A bare repository with ``source`` committed on ``main``: what a forge would host."""
    remote, work = workdir / "config.git", workdir / "work"
    _git("init", "--bare", "-b", "main", str(remote))
    shutil.copytree(source, work)
    _git("init", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("commit", "-m", "Network and VM definitions", cwd=work)
    _git("push", str(remote), "main", cwd=work)
    return remote


@contextlib.contextmanager
def demo_cluster(**options: Any) -> Iterator[ApiDouble]:
    """The built-in API double with simulated nmstate and KubeVirt, seeded like an OpenShift Virtualization
    cluster (demo nodes, a HyperConverged CR): what ``--api-double`` and ``virtnet demo`` run against."""
    with ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(), **options) as api:
        seed_hyperconverged(api.store)
        yield api


def _show(title: str, outcome: Outcome) -> None:
    click.echo(click.style(f"\n== {title}", bold=True))
    if outcome.plan is not None:
        click.echo(report.plan_text(outcome.plan), nl=False)
    if outcome.changes is not None:
        click.echo(report.changes_text(outcome.changes), nl=False)
    if outcome.failed:
        click.echo(click.style(f"{outcome.failed}: {outcome.message}", fg="red"))


@click.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".demo"))
@click.option("--repo", "source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=EXAMPLE)
def demo_command(workdir: Path, source: Path) -> None:
    """Run the full loop against the built-in API double and a local git remote, twice."""
    workdir = workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    remote = make_remote(source, workdir)
    click.echo(f"config repository: {remote} (from {source})")
    with demo_cluster(tick_interval=0.02) as api:
        api.kubeconfig(workdir / "kubeconfig")
        kube = Kube(api.api_client())
        settings = Settings(repo_url=remote.as_uri(), cache_root=workdir / "cache")
        settings.apply = settings.apply.__class__(poll=0.05, timeout=60)
        controller = Controller(settings, kube, Metrics())
        first = controller.reconcile("demo: first run")
        _show("first run: plan and apply", first)
        click.echo(f"status commit: {controller.last_status_commit or 'none'}")
        api.reset_counts()
        commit_before = controller.last_status_commit
        second = controller.reconcile("demo: second run")
        _show("second run: the cluster already matches", second)
        writes = api.writes()
        requests = sum(api.counts.values())
        new_commit = controller.last_status_commit != commit_before
        click.echo(
            f"second run: {requests} API requests, {writes} writes; "
            + ("a new status commit" if new_commit else "no new status commit (nothing changed)")
        )
    click.echo(click.style("\nWhere to look:", bold=True))
    click.echo(f"  git --git-dir {remote} log --oneline virtnet-status")
    click.echo(f"  git --git-dir {remote} show virtnet-status:clusters/prod/README.md")
    click.echo(f"  git --git-dir {remote} show virtnet-status:clusters/prod/status.json")
    click.echo(f"  virtnet render {source}        # every object, deterministic")
    if first.failed or second.failed or second.changes is not None:
        raise SystemExit(1)
