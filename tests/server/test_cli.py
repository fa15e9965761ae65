"""``virtnet run``'s flags over the config file: --repo, --branch and --cluster override, nothing else moves."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from reconciler.server.cli import _config


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
