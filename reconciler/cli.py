"""The ``virtnet`` command line.

Exit codes follow the plan convention users script against: 0 success / no change, 1 error (invalid
repository, failed apply), 2 a plan with changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import ModelError, VirtnetError
from .model import load_repo
from .render import dump, render

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

repo_path = click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
cluster_option = click.option("--cluster", "-c", help="which Cluster of the repository (needed when it has several)")


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
    """Check a config repository: schema, references, MAC/IP/VLAN/NIC conflicts. Lists every problem."""
    try:
        repo = load_repo(path, cluster)
        objects = render(repo)
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
        objects = render(load_repo(path, cluster), revision)
    except ModelError as exc:
        _fail(exc)
    click.echo(dump(objects, fmt), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
