"""``virtnet run``'s flags over the config file: --repo, --branch and --cluster override, nothing else moves."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from reconciler.clients.forge import GitHubForge
from reconciler.server.cli import _config, _forge
from reconciler.server.config import Config, ForgeConfig, RepoConfig


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("cluster: lab\nrepo:\n  url: https://git.example/net.git\n  branch: prod\n  path: envs\n")
    return path


def test_flags_override_the_file_and_keep_the_rest(tmp_path: Path) -> None:
    cfg = _config(_file(tmp_path), "https://git.example/other.git", "staging", "edge")
    assert (cfg.repo.url, cfg.repo.branch, cfg.repo.path, cfg.cluster) == (
        "https://git.example/other.git",
        "staging",
        "envs",
        "edge",
    )


def test_branch_alone_overrides_only_the_branch(tmp_path: Path) -> None:
    cfg = _config(_file(tmp_path), None, "staging", None)
    assert (cfg.repo.url, cfg.repo.branch, cfg.cluster) == ("https://git.example/net.git", "staging", "lab")


def test_repo_flag_without_a_file_uses_the_defaults() -> None:
    cfg = _config(None, "https://git.example/net.git", None, None)
    assert (cfg.repo.branch, cfg.repo.path, cfg.namespaces, cfg.interval_seconds) == ("main", ".", [], 180)


def test_neither_file_nor_repo_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError):
        _config(None, None, "main", None)


def _forge_config(tmp_path: Path, provider: str, url: str) -> Config:
    token = tmp_path / "token"
    token.write_text("canary-forge-token-1f2e\n")
    forge = ForgeConfig(provider=provider, url=url, token_file=str(token))  # type: ignore[arg-type]
    return Config(repo=RepoConfig(url="https://git.example/net.git"), forge=forge)


def test_an_empty_forge_url_is_the_public_service(tmp_path: Path) -> None:
    """The chart's default (``forge.url: ""``) used to stop ``virtnet run`` with a ValueError."""
    forge = _forge(_forge_config(tmp_path, "github", ""))
    assert isinstance(forge, GitHubForge) and forge.base_url == "https://api.github.com"
    with pytest.raises(click.ClickException, match=r"^forge: gitea has no public default"):
        _forge(_forge_config(tmp_path, "gitea", ""))
