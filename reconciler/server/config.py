"""The controller's configuration file (``virtnet run --config``), as the Helm chart's ConfigMap writes it.

Secrets are never values here, only paths of mounted files (``credentialsDir``, ``tokenFile``,
``secretFile``, ``keysDir``), read when used and registered with the log redactor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from reconciler.clients.source import Auth, SignaturePolicy, SSHAuth, TokenAuth
from reconciler.engine.window import MAX_PARALLEL
from reconciler.errors import VirtnetError
from reconciler.model.types import Model


class RepoConfig(Model):
    url: str = Field(min_length=1)
    branch: str = "main"
    path: str = Field(default=".", description="folder of the config repository inside the git repository")
    credentials_dir: str = ""
    cache_dir: str = ""


class StatusConfig(Model):
    branch: str = "virtnet-status"
    enabled: bool = True


class PruneConfig(Model):
    enabled: bool = True
    max_deletions: int = Field(default=0, ge=0, description="0: only the share guard of the Cluster document")


class ForgeConfig(Model):
    provider: Literal["none", "github", "gitea", "gitlab"] = "none"
    url: str = Field(default="", description="API base URL; empty: the provider's public service (not for gitea)")
    token_file: str = ""
    login: str = Field(default="", description="who the token acts as (a GitHub App: name[bot]); empty: ask")


class WebhookConfig(Model):
    path: str = "/webhooks"
    secret_file: str = ""


class SigningConfig(Model):
    require_signed_commits: bool = False
    keys_dir: str = ""


class SshKeysConfig(Model):
    manage_secrets: bool = True


class DecryptionConfig(Model):
    """SOPS: the age key file, mounted from a Kubernetes Secret (the chart's ``sops.ageKeySecret``)."""

    age_key_file: str = Field(default="", description="read at every render, so a rotated Secret is picked up")


class NotificationProvider(Model):
    """One provider; its address (and the generic webhook's HMAC key) are files mounted from a Secret."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    type: Literal["generic", "slack", "msteams"]
    address_file: str = Field(min_length=1)
    secret_file: str = ""


class NotificationsConfig(Model):
    """Flux-style alerts after each run; each provider gets ``burst`` events at once, then one per period."""

    providers: list[NotificationProvider] = Field(default_factory=list)
    burst: int = Field(default=5, ge=1)
    per_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _unique(self) -> NotificationsConfig:
        """A name keys each provider's rate limit and, in the chart, its mounted Secret's volume."""
        names = [p.name for p in self.providers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"notification provider names must be unique: {', '.join(twice)} given twice")
        return self


class LeaderConfig(Model):
    """Lease timings, related as client-go's leader election requires: a leader gives up (renew deadline)
    before its lease can expire for the others (duration), and retries several times within the deadline."""

    lease_name: str = "virtnet-controller"
    lease_duration_seconds: int = Field(default=15, gt=0)
    renew_deadline_seconds: int = Field(default=10, gt=0)
    retry_period_seconds: int = Field(default=2, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LeaderConfig:
        if self.renew_deadline_seconds >= self.lease_duration_seconds:
            raise ValueError(
                f"renewDeadlineSeconds ({self.renew_deadline_seconds}) must be less than leaseDurationSeconds "
                f"({self.lease_duration_seconds}): a leader must give up before the others may take over"
            )
        if self.retry_period_seconds * 6 >= self.renew_deadline_seconds * 5:  # client-go: deadline > 1.2 x retry
            raise ValueError(
                f"renewDeadlineSeconds ({self.renew_deadline_seconds}) must be more than 1.2 x retryPeriodSeconds "
                f"({self.retry_period_seconds}), as client-go's leader election requires (its jitter factor)"
            )
        return self


class HttpConfig(Model):
    port: int = Field(default=8080, ge=0, le=65535)


class LoggingConfig(Model):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


class ApplyConfig(Model):
    parallel: int = Field(default=12, ge=1, le=MAX_PARALLEL, description="writes in flight at once inside a wave")


class Config(Model):
    cluster: str = ""
    repo: RepoConfig
    namespaces: list[str] = Field(
        default_factory=list, description="confine the controller to these namespaces; empty = all"
    )
    interval_seconds: float = Field(default=180, gt=0)
    status: StatusConfig = StatusConfig()
    prune: PruneConfig = PruneConfig()
    apply: ApplyConfig = ApplyConfig()
    forge: ForgeConfig = ForgeConfig()
    webhook: WebhookConfig = WebhookConfig()
    signing: SigningConfig = SigningConfig()
    ssh_keys: SshKeysConfig = SshKeysConfig()
    decryption: DecryptionConfig = DecryptionConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    leader_election: LeaderConfig = LeaderConfig()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()

    def auth(self) -> Auth:
        """Git credentials from the mounted Secret: an SSH key + known_hosts, or a username + password/token."""
        if not self.repo.credentials_dir:
            return None
        folder = Path(self.repo.credentials_dir)
        if (folder / "ssh-privatekey").exists():
            return SSHAuth(key_file=folder / "ssh-privatekey", known_hosts=folder / "known_hosts")
        username = (folder / "username").read_text().strip() if (folder / "username").exists() else "x-access-token"
        return TokenAuth(token_file=folder / "password", username=username)

    def signature_policy(self) -> SignaturePolicy | None:
        if not self.signing.require_signed_commits:
            return None
        folder = Path(self.signing.keys_dir)
        signers = folder / "allowed_signers"
        gnupg = folder / "gnupg"
        return SignaturePolicy(
            allowed_signers=signers if signers.exists() else None, gnupg_home=gnupg if gnupg.is_dir() else None
        )


def load_config(path: Path) -> Config:
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return Config.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise VirtnetError(f"{path}: cannot read the configuration: {exc}") from exc
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise VirtnetError("invalid configuration:\n  " + "\n  ".join(lines)) from exc
