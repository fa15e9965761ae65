"""``virtnet run``: the controller process (config file from the Helm chart, or flags for a quick start)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from reconciler.clients.forge import Forge, GiteaForge, GitHubForge, GitLabForge, RestForge, read_token
from reconciler.clients.kube import Kube
from reconciler.clients.notify import Notifier, RateLimit, provider_from_files
from reconciler.engine.apply import ApplyOptions
from reconciler.engine.inventory import PruneOptions
from reconciler.errors import VirtnetError
from reconciler.logs import register_secret, setup_logging
from reconciler.model.sops import Keyring, KeySource, keys_from_env
from reconciler.server.config import Config, RepoConfig, load_config
from reconciler.server.controller import Controller, Settings
from reconciler.server.leader import LeaderElector
from reconciler.server.metrics import Metrics
from reconciler.server.run import start

FORGES: dict[str, type[RestForge]] = {
    "github": GitHubForge,
    "gitea": GiteaForge,
    "gitlab": GitLabForge,
}


def _config(config_file: Path | None, repo: str | None, branch: str | None, cluster: str | None) -> Config:
    if config_file is not None:
        cfg = load_config(config_file)
    elif repo:
        cfg = Config(repo=RepoConfig(url=repo))
    else:
        raise click.UsageError("give --config FILE or --repo URL")
    repo_updates = {key: value for key, value in (("url", repo), ("branch", branch)) if value}
    updates: dict[str, object] = {}
    if repo_updates:
        updates["repo"] = cfg.repo.model_copy(update=repo_updates)
    if cluster:
        updates["cluster"] = cluster
    return cfg.model_copy(update=updates)


def _forge(cfg: Config) -> Forge | None:
    if cfg.forge.provider == "none":
        return None
    try:
        token = read_token(file=cfg.forge.token_file or None, env="VIRTNET_FORGE_TOKEN")
        register_secret(token)
        return FORGES[cfg.forge.provider](cfg.forge.url, token, login=cfg.forge.login)
    except (OSError, ValueError) as exc:  # a usage problem of the configuration, said in one line
        raise click.ClickException(f"forge: {exc}") from None


def _notifier(cfg: Config, counted: Callable[[str, str], None] | None = None) -> Notifier:
    """The configured providers, their addresses read (and registered as secrets) from the mounted files."""
    n = cfg.notifications
    providers = [
        provider_from_files(p.type, p.name, Path(p.address_file), Path(p.secret_file) if p.secret_file else None)
        for p in n.providers
    ]
    return Notifier(providers, limit=lambda: RateLimit(burst=n.burst, per_seconds=n.per_seconds), counted=counted)


def _keys(cfg: Config) -> KeySource:
    """The age key file from the mounted Secret, read at each render (a rotated key needs no restart)."""
    if not cfg.decryption.age_key_file:
        return keys_from_env
    path = Path(cfg.decryption.age_key_file)
    return lambda: Keyring.from_file(path)


def _settings(cfg: Config, allow_mass_prune: bool, namespace: str, metrics: Metrics | None = None) -> Settings:
    """The controller's settings from the config file (and the flags that override it)."""
    return Settings(
        repo_url=cfg.repo.url,
        branch=cfg.repo.branch,
        subdir=cfg.repo.path,
        cluster=cfg.cluster or None,
        auth=cfg.auth(),
        signatures=cfg.signature_policy(),
        cache_root=Path(cfg.repo.cache_dir) if cfg.repo.cache_dir else None,
        status_branch=cfg.status.branch if cfg.status.enabled else None,
        prune=PruneOptions(
            enabled=cfg.prune.enabled, allow_mass_prune=allow_mass_prune, max_deletions=cfg.prune.max_deletions
        ),
        apply=ApplyOptions(parallel=cfg.apply.parallel),
        informers=True,
        manage_secrets=cfg.ssh_keys.manage_secrets,
        namespaces=tuple(cfg.namespaces),
        keys=_keys(cfg),
        sync_namespace=namespace,  # the ClusterSync object lives beside the controller
        notifier=_notifier(cfg, metrics.notification if metrics is not None else None),
    )


@click.command("run")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--repo", help="git URL of the config repository (https://, ssh://, file:// or a path)")
@click.option("--branch", help="branch to track (default main)")
@click.option("--cluster", "-c", help="which Cluster of the repository")
@click.option("--kubeconfig", type=click.Path(dir_okay=False))
@click.option("--context")
@click.option(
    "--once", is_flag=True, help="run one reconcile and exit with the plan's code (0 in sync, 2 applied, 1 error)"
)
@click.option("--http-host", default="0.0.0.0", show_default=True)
@click.option("--http-port", type=int, default=None, help="webhooks, /healthz, /readyz, /metrics (config: http.port)")
@click.option("--leader-elect", is_flag=True, help="only the Lease holder reconciles (for replicas > 1)")
@click.option("--leader-namespace", default=lambda: os.environ.get("POD_NAMESPACE", "virtnet-system"))
@click.option("--allow-mass-prune", is_flag=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="overrides logging.format of the config")
def run_command(
    config_file: Path | None,
    repo: str | None,
    branch: str | None,
    cluster: str | None,
    kubeconfig: str | None,
    context: str | None,
    once: bool,
    http_host: str,
    http_port: int | None,
    leader_elect: bool,
    leader_namespace: str,
    allow_mass_prune: bool,
    log_format: str | None,
) -> None:
    """Run the GitOps loop: poll + push webhooks → reconcile → status commits; PR webhooks → plan comments."""
    cfg = _config(config_file, repo, branch, cluster)
    setup_logging(cfg.logging.level, json=(log_format or cfg.logging.format) == "json")
    secret = None
    if cfg.webhook.secret_file:
        secret = Path(cfg.webhook.secret_file).read_text().strip()
        register_secret(secret)
    metrics = Metrics()
    settings = _settings(cfg, allow_mass_prune, leader_namespace, metrics)
    kube = Kube.from_kubeconfig(kubeconfig, context)
    if once:  # one run lists once anyway: watches would only be opened to be closed
        settings = dataclasses.replace(settings, informers=False)
    controller = Controller(settings, kube, metrics, _forge(cfg))
    if once:
        try:
            outcome = controller.reconcile("once")
        finally:
            controller.close()  # its informers' watches: nothing follows a single run
        click.echo(f"{controller.last_result}: {outcome.message}".rstrip(": "))
        sys.exit(1 if outcome.failed else 2 if outcome.changes else 0)
    elector_factory = None
    if leader_elect:
        identity = os.environ.get("POD_NAME") or socket.gethostname()
        lease = cfg.leader_election

        def elector_factory(started, stopped):  # type: ignore[no-untyped-def]
            return LeaderElector(
                kube.api,
                lease.lease_name,
                leader_namespace,
                identity,
                lease_duration=lease.lease_duration_seconds,
                renew_deadline=lease.renew_deadline_seconds,
                retry_period=lease.retry_period_seconds,
                on_started_leading=started,
                on_stopped_leading=stopped,
            )

    try:
        runtime = start(
            controller,
            interval=cfg.interval_seconds,
            http_host=http_host,
            http_port=http_port if http_port is not None else cfg.http.port,
            webhook_secret=secret,
            elector_factory=elector_factory,
        )
    except VirtnetError as exc:
        raise click.ClickException(str(exc)) from exc
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    runtime.stop()
