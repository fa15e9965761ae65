"""``virtnet suspend`` / ``resume`` / ``pin``: the operator's switches on a cluster's ClusterSync object.

Why commands rather than a commit: during an incident the operator must freeze reconciling, or hold the
cluster at a known-good revision, at once and without a review (Flux's ``flux suspend``). The controller
reads the switches at the start of every run (``reconciler.server.controller``), so one takes effect at the
next run, and ``kubectl get clustersyncs`` shows them (columns Suspended and Pinned).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import click

from reconciler import labels
from reconciler.clients.kube import Kube
from reconciler.clients.syncstatus import SyncObject
from reconciler.errors import VirtnetError


def _options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.argument("cluster"),
            click.option(
                "--namespace",
                "-n",
                default=lambda: os.environ.get("POD_NAMESPACE", "virtnet-system"),
                show_default="virtnet-system",
                help="the controller's namespace, where its ClusterSync objects are",
            ),
            click.option("--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig file"),
            click.option("--context", help="kubeconfig context"),
        ]
    ):
        f = option(f)
    return f


def _set(
    cluster: str, namespace: str, kubeconfig: str | None, context: str | None, **changes: object
) -> dict[str, Any]:
    sync = SyncObject(Kube.from_kubeconfig(kubeconfig, context), namespace, cluster, labels.OPERATOR_FIELD_MANAGER)
    try:
        return sync.set_spec(**changes).get("spec") or {}
    except VirtnetError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


@click.command("suspend")
@_options
@click.option("--reason", default="", help="why (shown in the ClusterSync status and the controller's log)")
def suspend_command(cluster: str, namespace: str, kubeconfig: str | None, context: str | None, reason: str) -> None:
    """Stop reconciling CLUSTER from its next run on: nothing is fetched, applied or pruned until resume."""
    _set(cluster, namespace, kubeconfig, context, suspend=True, suspendReason=reason)
    click.echo(f"{labels.SYNC_KIND} {namespace}/{cluster}: suspended (from the next run)")


@click.command("resume")
@_options
def resume_command(cluster: str, namespace: str, kubeconfig: str | None, context: str | None) -> None:
    """Reconcile CLUSTER again from its next run (a pinned revision stays pinned)."""
    spec = _set(cluster, namespace, kubeconfig, context, suspend=False, suspendReason="")
    pinned = f"; still pinned at {spec['pinnedRevision']}" if spec.get("pinnedRevision") else ""
    click.echo(f"{labels.SYNC_KIND} {namespace}/{cluster}: resumed{pinned}")


@click.command("pin")
@_options
@click.argument("revision", required=False)
@click.option("--clear", is_flag=True, help="follow the tracked branch again")
def pin_command(
    cluster: str, namespace: str, kubeconfig: str | None, context: str | None, revision: str | None, clear: bool
) -> None:
    """Hold CLUSTER at REVISION (a commit of its repository) instead of the branch head; --clear to follow it."""
    if clear == bool(revision):
        raise click.UsageError("give a REVISION to pin, or --clear")
    if revision and not re.fullmatch(r"[0-9a-fA-F]{7,64}", revision):
        raise click.UsageError(f"REVISION {revision!r} is not a commit id (7 to 64 hex digits)")
    _set(cluster, namespace, kubeconfig, context, pinnedRevision=(revision or "").lower())
    what = f"pinned at {revision}" if revision else "following the tracked branch"
    click.echo(f"{labels.SYNC_KIND} {namespace}/{cluster}: {what} (from the next run)")
