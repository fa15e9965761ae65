"""A local checkout's repository folder as it was at another git revision (``virtnet plan --base-rev``).

Why: the connectivity diff compares the proposed revision with the current one; on a workstation the
current one is usually a branch of the same checkout (``main``). ``git archive`` writes that revision's
files to a scratch folder without touching the checkout's index, working tree or worktree list.

Side effects: runs ``git`` in the checkout; writes under ``dest``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import git

from reconciler.clients.gitenv import stderr_text
from reconciler.errors import SourceError


def export_revision(path: Path, revision: str, dest: Path) -> Path:
    """The files of ``path`` (a folder inside a git checkout) at ``revision``, extracted under ``dest``;
    returns the folder that stands for ``path`` there. Raises :class:`SourceError`."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
        prefix = repo.git.execute(["git", "-C", str(path), "rev-parse", "--show-prefix"]).strip()
        sha = repo.git.rev_parse("--verify", "--end-of-options", f"{revision}^{{commit}}")
        data = repo.git.archive(sha, "--", prefix or ".", stdout_as_string=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SourceError(f"{path} is not inside a git checkout: --base-rev needs one") from None
    except git.GitCommandError as exc:
        raise SourceError(f"cannot read revision {revision!r} of {path}: {stderr_text(exc)}") from None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")  # no links out of dest, no absolute paths, no devices
    return dest / prefix
