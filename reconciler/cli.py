"""The ``virtnet`` command line.

Exit codes follow the plan convention users script against: 0 success / no change, 1 error (invalid
repository, failed apply, no cluster configuration, a cluster that does not answer), 2 a plan with changes,
64 a usage error (EX_USAGE: click's own 2 would read as "changes"). An error is one line on stderr, never
a traceback. Colour only on a terminal, and never with ``NO_COLOR`` set or ``--no-color``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from reconciler import __version__
from reconciler.clients.kube import Kube
from reconciler.clients.revision import export_revision
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.engine.plan import PlanOptions
from reconciler.engine.window import MAX_PARALLEL
from reconciler.errors import ModelError, SourceError, VirtnetError
from reconciler.model import Repo, load_repo
from reconciler.output import text as report
from reconciler.output.comment import listed_with_the_plan, markdown_plan
from reconciler.pipeline import Outcome, reconcile
from reconciler.render import dump, render
from reconciler.safety.report import ACCEPT_ANNOTATION

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_USAGE = 0, 1, 2, 64

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


class UsageError(click.UsageError):
    """A usage error as click shows it, with exit code 64."""

    exit_code = EXIT_USAGE


class _Group(click.Group):
    """click's group with virtnet's exit codes: a usage error exits 64, and a VirtnetError escaping a
    command (no kubeconfig, a wrong context, a configuration file) is its one line, exit 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise UsageError(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise UsageError(exc.format_message(), exc.ctx) from None
        except VirtnetError as exc:
            raise click.ClickException(" ".join(str(exc).split())) from None


def colour(ctx: click.Context | None = None) -> bool:
    """Whether to colour stdout: a terminal, no ``NO_COLOR`` (https://no-color.org), no ``--no-color``."""
    ctx = ctx or click.get_current_context(silent=True)
    off = bool(ctx and ctx.find_root().meta.get("virtnet.no_color"))
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and not off


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="virtnet")
@click.option("--no-color", is_flag=True, help="no colour in the output (also: the NO_COLOR environment variable)")
@click.pass_context
def main(ctx: click.Context, no_color: bool) -> None:
    """GitOps reconciler for virtual-machine networking on OpenShift Virtualization / KubeVirt."""
    ctx.meta["virtnet.no_color"] = no_color
    if no_color or os.environ.get("NO_COLOR"):
        ctx.color = False  # click.style output is stripped too (progress, the node agent)


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
    elif listed_with_the_plan(outcome):  # every error was printed with the plan: not twice
        blocking = outcome.safety.blocking if outcome.safety else []
        if not blocking:
            click.echo("PlanBlocked: the plan's errors above block apply; nothing was changed", err=True)
            return
        checks = ",".join(sorted({f.check for f in blocking}))
        click.echo(
            f"PlanBlocked: {len(blocking)} safety error(s) above block apply; nothing was changed (fix them, or "
            f'accept with --accept-risk or the Cluster annotation {ACCEPT_ANNOTATION}: "{checks}")',
            err=True,
        )
    else:  # one line: the API client's messages come in several ("(0)\nReason: ...")
        click.echo(f"{outcome.failed}: {' '.join(outcome.message.split())}", err=True)


def _current_revision(path: Path, base: Path | None, base_rev: str | None, cluster: str | None) -> Repo | None:
    """The revision the plan's connectivity diff compares with: a folder, or a git revision of PATH's checkout.
    One that does not validate is reported and left out: the proposed revision may be its fix."""
    if base is not None and base_rev is not None:
        raise click.UsageError("give --base or --base-rev, not both")
    if base is None and base_rev is None:
        return None
    with tempfile.TemporaryDirectory(prefix="virtnet-base-") as tmp:
        try:
            where = base if base is not None else export_revision(path, str(base_rev), Path(tmp))
            return load_repo(where, cluster)
        except SourceError as exc:
            _fail(exc)
        except ModelError as exc:
            shown = base if base is not None else base_rev
            click.echo(f"warning: {shown} (current revision) does not validate, no connectivity diff:\n{exc}", err=True)
    return None


@main.command("plan")
@repo_path
@cluster_option
@cluster_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("-v", "--verbose", is_flag=True, help="also list unchanged objects")
@click.option(
    "--base",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="a checkout of the current revision (e.g. a git worktree of main): the plan then says which VMs "
    "gain or lose reachability",
)
@click.option("--base-rev", help="the current revision as a git revision of PATH's checkout (e.g. main), like --base")
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
    base: Path | None,
    base_rev: str | None,
    accept_risk: bool,
) -> None:
    """Show what apply would change. Exit 0: no changes, 2: changes, 1: error."""
    current = _current_revision(path, base, base_rev, cluster)
    with connect(kubeconfig, context, api_double) as kube:
        outcome = reconcile(
            path,
            kube,
            cluster=cluster,
            apply=False,
            plan_options=_plan_options(allow_mass_prune),
            accept_risk=accept_risk,
            base=current,
        )
    if outcome.plan is not None:
        if fmt == "json":
            click.echo(report.plan_json(outcome.plan, outcome.safety), nl=False)
        elif fmt == "markdown":  # what the PR comment says: within a forge's limit, whatever the change
            click.echo(markdown_plan(outcome, outcome.plan.cluster), nl=False)
        else:
            click.echo(report.plan_text(outcome.plan, colour=colour(), verbose=verbose), nl=False)
            click.echo(report.safety_text(outcome.safety, colour=colour()), nl=False)
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
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--parallel",
    type=click.IntRange(1, MAX_PARALLEL),
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
    fmt: str,
    parallel: int,
    accept_risk: bool,
) -> None:
    """Apply the repository to the cluster: ordered waves, health waits, guarded prune. Progress goes to
    stderr (a bar on a terminal, a line every few seconds otherwise); ``-o json`` prints the plan and
    what was done as one JSON document on stdout."""
    shown = Progress(sys.stderr)
    options = ApplyOptions(
        timeout=timeout,
        force_conflicts=force_conflicts,
        poll=0.1 if api_double else 1.0,
        on_step=shown.step,
        parallel=parallel,
    )
    with connect(kubeconfig, context, api_double) as kube:
        outcome = reconcile(
            path,
            kube,
            cluster=cluster,
            plan_options=_plan_options(allow_mass_prune),
            apply_options=options,
            progress=shown.say,
            accept_risk=accept_risk,
        )
    shown.done()
    if fmt == "json":
        click.echo(report.apply_json(outcome.plan, outcome.safety, outcome.changes, outcome.failed, outcome.message))
    else:
        if outcome.plan is not None:
            click.echo(report.plan_text(outcome.plan, colour=colour()), nl=False)
            click.echo(report.safety_text(outcome.safety, colour=colour()), nl=False)
        if outcome.changes is not None:
            click.echo(report.changes_text(outcome.changes), nl=False)
    if not outcome.ok:
        _print_failure(outcome)
        sys.exit(EXIT_ERROR)


class Progress:
    """Progress of a long apply, on ``stream``: on a terminal a bar redrawn in place, otherwise (CI logs,
    a pipe) one line at most every ``interval`` seconds, and the last one of each phase."""

    def __init__(self, stream: TextIO, interval: float = 5.0, clock: Any = time.monotonic) -> None:
        self.stream, self.interval, self.clock = stream, interval, clock
        self.tty = stream.isatty()
        self._last = -interval
        self._open = False  # a bar is drawn and the cursor is still on its line

    def say(self, message: str) -> None:
        self.done()
        click.echo(click.style("· ", fg="cyan") + message, file=self.stream)

    def step(self, what: str, done: int, total: int) -> None:
        if self.tty:
            click.echo("\r" + report.progress_line(what, done, total), file=self.stream, nl=False)
            self._open = True
            return
        now = self.clock()
        if now - self._last >= self.interval or done == total:
            self._last = now
            click.echo(f"  {what}: {done}/{total}", file=self.stream)

    def done(self) -> None:
        if self._open:
            click.echo("", file=self.stream)
            self._open = False


def _register() -> None:
    """Commands that live next to their stage: the loop, the demo and the node agent."""
    from reconciler.agent.cli import agent_command
    from reconciler.demo import demo_command
    from reconciler.server.cli import run_command
    from reconciler.server.switches import pin_command, resume_command, suspend_command

    for command in (run_command, demo_command, agent_command, suspend_command, resume_command, pin_command):
        main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
