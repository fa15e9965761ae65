"""The controller's configuration file (``virtnet run --config``), as the Helm chart's ConfigMap writes it.

Secrets are never values here, only paths of mounted files (``credentialsDir``, ``tokenFile``,
``secretFile``, ``keysDir``), read when used and registered with the log redactor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from reconciler.clients.source import Auth, SignaturePolicy, SSHAuth, TokenAuth
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
    url: str = ""
    token_file: str = ""


class WebhookConfig(Model):
    path: str = "/webhooks"
    secret_file: str = ""


class SigningConfig(Model):
    require_signed_commits: bool = False
    keys_dir: str = ""


class SshKeysConfig(Model):
    manage_secrets: bool = True


class LeaderConfig(Model):
    lease_name: str = "virtnet-controller"
    lease_duration_seconds: int = 15
    renew_deadline_seconds: int = 10
    retry_period_seconds: int = 2


class HttpConfig(Model):
    port: int = Field(default=8080, ge=0, le=65535)


class LoggingConfig(Model):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


class ApplyConfig(Model):
    parallel: int = Field(default=12, ge=1, le=64, description="writes in flight at once inside a wave")


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
