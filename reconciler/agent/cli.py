"""``virtnet agent``: run the node agent once or in a loop.

Why: the same entry point serves the DaemonSet (policies and node labels from the API server) and a
standalone run on one machine (``--from-repo``: policies rendered from a virtnet config repo,
``--node-labels`` given on the command line; nothing is published).

Side effects: observe mode only reads the kernel (and the API); enforce mode changes the node's
network (in ``--netns`` when given) and publishes NNS/NNCE objects and slot Leases via the API.
Prints one JSON drift report per pass on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.agent import nodelock
from reconciler.agent.api import KubeAgentApi
from reconciler.agent.health import AgentHealth, serve
from reconciler.agent.netlink import Netlink
from reconciler.agent.probes import parse_target
from reconciler.agent.runner import AgentConfig, PassResult, run_loop, run_once
from reconciler.errors import AgentError, VirtnetError


def parse_labels(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` → dict."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise click.BadParameter(f"{part!r} is not key=value", param_hint="--node-labels")
        out[k.strip()] = v.strip()
    return out


def policies_from_repo(path: str, cluster: str | None) -> list[dict[str, Any]]:
    from reconciler.render import render_path  # written elsewhere; imported only when asked for

    objs = render_path(Path(path), cluster=cluster)
    return [dict(o) for o in objs if o.get("kind") == "NodeNetworkConfigurationPolicy"]


def pass_summary(res: PassResult | None) -> tuple[str, int, int]:
    """A pass for the agent's metrics: its result word, drift items and writes."""
    if res is None:
        return "error", 0, 0
    failed = res.error or any(not o.ok for o in res.outcomes.values())
    return ("failed" if failed else "ok"), len(res.drift), res.writes


def _emit(res: PassResult) -> None:
    out = dict(res.drift_report)
    out["writes"] = res.writes
    out["enactments"] = {
        n["metadata"]["name"]: next((c["type"] for c in n["status"]["conditions"] if c["status"] == "True"), None)
        for n in res.nnces
    }
    out["messages"] = {name: o.message for name, o in res.outcomes.items()}
    click.echo(json.dumps(out, sort_keys=True, default=str))


@click.command("agent")
@click.option("--node", required=True, help="Node name (NNS name, NNCE prefix, lease holder).")
@click.option("--mode", type=click.Choice(["observe", "enforce"]), default="observe", show_default=True)
@click.option("--netns", default=None, help="Work inside this named network namespace.")
@click.option("--from-repo", "repo", default=None, type=click.Path(exists=True, file_okay=False))
@click.option("--cluster", "cluster_name", default=None, help="Cluster to render for (with --from-repo).")
@click.option("--node-labels", default=None, help="k=v,... labels of this node (standalone).")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False))
@click.option("--interval", default=60.0, show_default=True, type=float, help="Seconds between passes.")
@click.option("--once", is_flag=True, help="Run one pass and exit (non-zero if a policy failed).")
@click.option("--probe", "probes", multiple=True, help="Extra TCP target host:port (repeatable).")
@click.option("--api-server", default=None, help="host:port probed after a change (default: from kubeconfig).")
@click.option("--lease-namespace", default="virtnet-system", show_default=True)
@click.option(
    "--lock-dir",
    default=lambda: nodelock.LOCK_DIR,
    show_default=nodelock.LOCK_DIR,
    help="Directory of the node's writer lock (enforce mode); every agent on the node must share it.",
)
@click.option("--lock-wait", default=30.0, show_default=True, type=float, help="Seconds to wait for that lock.")
@click.option("--http-port", type=int, default=0, help="serve /healthz, /readyz and /metrics on this port (0: off)")
@click.option("--http-host", default="0.0.0.0", show_default=True)
def agent_command(
    node: str,
    mode: str,
    netns: str | None,
    repo: str | None,
    cluster_name: str | None,
    node_labels: str | None,
    kubeconfig: str | None,
    interval: float,
    once: bool,
    probes: tuple[str, ...],
    api_server: str | None,
    lease_namespace: str,
    lock_dir: str,
    lock_wait: float,
    http_port: int,
    http_host: str,
) -> None:
    """Observe (or enforce) this node's network against the NNCPs that select it."""
    try:
        targets = [parse_target(p) for p in probes]
        api_target = parse_target(api_server) if api_server else None
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    labels = parse_labels(node_labels)
    kube_api = None
    if repo is None:
        from kubernetes import client, config

        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)
        else:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
        kube_api = KubeAgentApi(client.ApiClient(), lease_namespace=lease_namespace)
        if api_target is None:
            from urllib.parse import urlparse

            url = urlparse(client.Configuration.get_default_copy().host)
            if url.hostname:
                api_target = (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    cfg = AgentConfig(
        node=node,
        mode=mode,
        netns=netns,
        api_server=api_target,
        targets=targets,
        lock_dir=lock_dir,
        lock_wait=lock_wait,
    )

    def policies() -> list[dict[str, Any]] | None:
        return policies_from_repo(repo, cluster_name) if repo else None

    try:
        if once:
            with Netlink(netns) as nl:
                res = run_once(cfg, nl, policies=policies(), node_labels=labels if repo else None, api=kube_api)
            _emit(res)
            failed = res.error or any(not o.ok for o in res.outcomes.values())
            sys.exit(1 if failed else 0)
        health = AgentHealth(interval, lock_wait)
        if http_port:
            serve(health, http_host, http_port)
        run_loop(
            cfg,
            lambda: Netlink(netns),
            interval=interval,
            api=kube_api,
            policies=policies if repo else None,  # type: ignore[arg-type]
            node_labels=labels if repo else None,
            on_pass=_emit,
            on_done=lambda res, seconds: health.observe(*pass_summary(res), seconds=seconds),
        )
    except AgentError as e:
        raise click.ClickException(str(e)) from e
    except VirtnetError as e:
        raise click.ClickException(str(e)) from e
