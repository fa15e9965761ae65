"""The ``virtnet`` command line.

Exit codes follow the plan convention users script against: 0 success / no change, 1 error (invalid
repository, failed apply), 2 a plan with changes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from reconciler import __version__
from reconciler.clients.kube import Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.plan import PlanOptions
from reconciler.errors import ModelError, VirtnetError
from reconciler.model import load_repo
from reconciler.output import text as report
from reconciler.pipeline import Outcome, reconcile
from reconciler.render import dump, render

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

repo_path = click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
cluster_option = click.option("--cluster", "-c", help="which Cluster of the repository (needed when it has several)")
accept_risk_option = click.option(  # safety checks (reconciler/safety/); the repo-level way is a Cluster annotation
    "--accept-risk",
    is_flag=True,
    help="let safety errors (disconnect, missing-nic, mtu, control-plane, in-use) through for this run",
)


def _fail(exc: VirtnetError) -> None:
    click.echo(str(exc), err=True)
    sys.exit(EXIT_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="virtnet")
def main() -> None:
    """GitOps reconciler for virtual-machine networking on OpenShift Virtualization / KubeVirt."""


@main.command()
@repo_path
@cluster_option
def validate(path: Path, cluster: str | None) -> None:
    """Check a config repository: schema, references, MAC/IP/VLAN/NIC conflicts, and that every object it
    renders serialises and would be accepted by the API server (nothing is contacted). Lists every problem."""
    try:
        repo = load_repo(path, cluster)
        objects = render(repo).objects
    except ModelError as exc:
        _fail(exc)
    kinds = sorted({o["kind"] for o in objects})
    click.echo(f"{path}: valid for cluster {repo.cluster.name}: {len(objects)} objects ({', '.join(kinds)})")


@main.command("render")
@repo_path
@cluster_option
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--revision", help="commit to record in the virtnet.io/revision annotation")
def render_command(path: Path, cluster: str | None, fmt: str, revision: str | None) -> None:
    """Print the Kubernetes objects the repository stands for, in apply order (deterministic)."""
    try:
        objects = render(load_repo(path, cluster), revision).objects
    except ModelError as exc:
        _fail(exc)
    click.echo(dump(objects, fmt), nl=False)


def cluster_options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option(
                "--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig file (default: $KUBECONFIG)"
            ),
            click.option("--context", help="kubeconfig context"),
            click.option(
                "--api-double",
                is_flag=True,
                help="start the built-in Kubernetes API double in-process (simulated nmstate/KubeVirt) instead",
            ),
            click.option("--allow-mass-prune", is_flag=True, help="let a plan delete more than the configured share"),
        ]
    ):
        f = option(f)
    return f


@contextlib.contextmanager
def connect(kubeconfig: str | None, context: str | None, api_double: bool) -> Iterator[Kube]:
    if not api_double:
        yield Kube.from_kubeconfig(kubeconfig, context)
        return
    from reconciler.demo import demo_cluster  # the test double is reached only through the demo entry point

    with demo_cluster() as api:
        yield Kube(api.api_client())


def _plan_options(allow_mass_prune: bool) -> PlanOptions | None:
    return PlanOptions(prune=PruneOptions(allow_mass_prune=True)) if allow_mass_prune else None


def _print_failure(outcome: Outcome) -> None:
    if outcome.problems:
        click.echo(str(ModelError(outcome.problems)), err=True)
    else:
        click.echo(f"{outcome.failed}: {outcome.message}", err=True)


@main.command("plan")
@repo_path
@cluster_option
@cluster_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("-v", "--verbose", is_flag=True, help="also list unchanged objects")
@accept_risk_option
def plan_command(
    path: Path,
    cluster: str | None,
    kubeconfig: str | None,
    context: str | None,
    api_double: bool,
    allow_mass_prune: bool,
    fmt: str,
    verbose: bool,
    accept_risk: bool,
) -> None:
    """Show what apply would change. Exit 0: no changes, 2: changes, 1: error."""
    with connect(kubeconfig, context, api_double) as kube:
        outcome = reconcile(
            path,
            kube,
            cluster=cluster,
            apply=False,
            plan_options=_plan_options(allow_mass_prune),
            accept_risk=accept_risk,
        )
    if outcome.plan is not None:
        if fmt == "json":
            click.echo(report.plan_json(outcome.plan, outcome.safety), nl=False)
        elif fmt == "markdown":
            click.echo(report.plan_markdown(outcome.plan), nl=False)
            click.echo(report.safety_markdown(outcome.safety, outcome.plan, outcome.desired), nl=False)
        else:
            click.echo(report.plan_text(outcome.plan, colour=sys.stdout.isatty(), verbose=verbose), nl=False)
            click.echo(report.safety_text(outcome.safety, colour=sys.stdout.isatty()), nl=False)
    if not outcome.ok:
        _print_failure(outcome)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if outcome.plan and outcome.plan.has_changes else EXIT_OK)


@main.command("apply")
@repo_path
@cluster_option
@cluster_options
@click.option("--force-conflicts", is_flag=True, help="take over fields another manager owns (server-side apply force)")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="seconds to wait for health")
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=ApplyOptions.parallel,
    show_default=True,
    help="writes in flight at once inside a wave (fewer while the API server answers 429)",
)
@accept_risk_option
def apply_command(
    path: Path,
    cluster: str | None,
    kubeconfig: str | None,
    context: str | None,
    api_double: bool,
    allow_mass_prune: bool,
    force_conflicts: bool,
    timeout: float,
    parallel: int,
    accept_risk: bool,
) -> None:
    """Apply the repository to the cluster: ordered waves, health waits, guarded prune."""
    options = ApplyOptions(
        timeout=timeout, force_conflicts=force_conflicts, poll=0.1 if api_double else 1.0, parallel=parallel
    )

    def progress(message: str) -> None:
        click.echo(click.style("· ", fg="cyan") + message, err=True)

    with connect(kubeconfig, context, api_double) as kube:
        outcome = reconcile(
            path,
            kube,
            cluster=cluster,
            plan_options=_plan_options(allow_mass_prune),
            apply_options=options,
            progress=progress,
            accept_risk=accept_risk,
        )
    if outcome.plan is not None:
        click.echo(report.plan_text(outcome.plan, colour=sys.stdout.isatty()), nl=False)
        click.echo(report.safety_text(outcome.safety, colour=sys.stdout.isatty()), nl=False)
    if outcome.changes is not None:
        click.echo(report.changes_text(outcome.changes), nl=False)
    if not outcome.ok:
        _print_failure(outcome)
        sys.exit(EXIT_ERROR)


def _register() -> None:
    """Commands that live next to their stage: the loop, the demo and the node agent."""
    from reconciler.agent.cli import agent_command
    from reconciler.demo import demo_command
    from reconciler.server.cli import run_command

    for command in (run_command, demo_command, agent_command):
        main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
