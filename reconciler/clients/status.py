"""Writing reconcile status back to the config repository as commits on a dedicated branch.

Why: status in git is visible where people already look (the repo, PRs), and is history-preserving.
Several clusters may share one repository, so each cluster only ever writes ``clusters/<cluster>/`` and a
push that loses a race is re-applied on the new tip -- never forced -- so no cluster's status is lost.
The status branch is never the tracked branch: a status commit must not trigger a reconcile or mix with
the desired state.

What: :func:`publish_status` builds the new tree with plumbing (``read-tree``/``update-index``/
``write-tree``/``commit-tree`` on a private index, no working tree), skips the commit when the tree is
unchanged, and pushes with bounded, jittered retries. :func:`read_status` returns a cluster's files.

Side effects: a bare cache clone under ``<cache_root>/status/<urlhash>/`` (separate from the source
cache), ``git`` subprocesses, pushes to the remote. File contents and the message pass through
:func:`reconciler.logs.redact` before they are committed.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import git

from reconciler.clients.gitenv import Auth, auth_env, cache_dir, check_url, git_error, locked, stderr_text
from reconciler.errors import SourceError
from reconciler.logs import redact, redact_bytes

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "virtnet-status"
DEFAULT_AUTHOR = ("virtnet", "virtnet@localhost")

_CLUSTER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_RACE_MARKERS = (
    "non-fast-forward", "fetch first", "[rejected]", "stale info", "failed to update ref",
    "cannot lock ref", "incorrect old value", "[remote rejected]",
)  # fmt: skip


class _Damaged(Exception):
    """The cache clone is corrupt: re-clone it once."""


class _Lost(Exception):
    """The push lost a race with another publisher: refetch and re-apply."""


def _check_cluster(cluster: str) -> str:
    if not _CLUSTER_RE.fullmatch(cluster) or cluster in (".", ".."):
        raise SourceError(f"cluster name {cluster!r} is not a safe directory name")
    return cluster


def _check_branch(branch: str, tracked_branch: str | None) -> str:
    name = branch.removeprefix("refs/heads/")
    if not name or name.startswith("-") or ".." in name or " " in name:
        raise SourceError(f"status branch {branch!r} is not a valid branch name")
    if tracked_branch is not None and name == tracked_branch.removeprefix("refs/heads/"):
        raise SourceError(f"refusing to write status to the tracked branch {name!r}")
    return name


def _rel_path(name: str) -> str:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or not p.parts or any(part in ("..", ".", ".git", "") for part in p.parts):
        raise SourceError(f"status file name {name!r} must be a relative path inside the cluster folder")
    return p.as_posix()


class _Repo:
    """The status cache clone of one remote."""

    def __init__(self, url: str, auth: Auth, cache_root: Path | None, timeout: float, fresh: bool = False) -> None:
        self.url, self.auth, self.timeout = check_url(url), auth, timeout
        self.dir = cache_dir(cache_root, "status", url)
        path = self.dir / "repo.git"
        try:
            self.repo = git.Repo(path) if path.exists() and not fresh else None
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            self.repo = None
        if self.repo is None or not self._ok():
            if path.exists() and not fresh:
                log.warning("status cache %s is not a usable git repository; re-cloning", path)
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            self.repo = git.Repo.init(path, bare=True)
            with self.repo.config_writer() as cw:
                cw.set_value('remote "origin"', "url", url)
                cw.set_value("gc", "auto", "0")

    def _ok(self) -> bool:
        try:
            self.git("rev-parse", "--git-dir")
        except git.GitCommandError:
            return False
        return True

    def git(self, *args: str, remote: bool = False, env: Mapping[str, str] | None = None) -> str:
        full = {"GIT_TERMINAL_PROMPT": "0", **(env or {})}
        if remote:
            full.update(auth_env(self.url, self.auth))
        assert self.repo is not None
        return self.repo.git.execute(["git", *args], env=full, kill_after_timeout=self.timeout if remote else None)

    def fetch(self, branch: str) -> str | None:
        """Fetch ``branch`` from the remote; its tip sha, or None when the branch does not exist."""
        local = f"refs/remotes/origin/{branch}"
        try:
            self.git("fetch", "--no-tags", "--quiet", "--no-write-fetch-head", "origin",
                     f"+refs/heads/{branch}:{local}", remote=True)  # fmt: skip
        except git.GitCommandError as e:
            if "couldn't find remote ref" in stderr_text(e).lower():
                with contextlib.suppress(git.GitCommandError):
                    self.git("update-ref", "-d", local)
                return None
            if not self._intact() or self._remote_answers():
                raise _Damaged(stderr_text(e)) from None
            raise git_error("cannot fetch status branch from", self.url, e) from None
        return self.git("rev-parse", "--verify", local)

    def _intact(self) -> bool:
        try:
            self.git("fsck", "--connectivity-only", "--no-dangling", "--no-progress")
        except git.GitCommandError:
            return False
        return True

    def _remote_answers(self) -> bool:
        """True when the remote lists its refs: a fetch that failed anyway failed on our side.

        ``fsck --connectivity-only`` alone misses a cache whose objects are corrupt but unreferenced (pushes
        do not update ``refs/remotes/``), and such a cache would fail every later fetch.
        """
        try:
            self.git("ls-remote", "--heads", "origin", remote=True)
        except git.GitCommandError:
            return False
        return True

    def blobs(self, contents: Sequence[bytes], scratch: Path) -> list[str]:
        """Write ``contents`` as blobs (byte for byte, no filters) with one ``git hash-object``; their shas.

        ``scratch`` is a private folder for the files git reads them from.
        """
        files = []
        for number, data in enumerate(contents):
            file = scratch / f"blob-{number}"
            file.write_bytes(data)
            files.append(str(file))
        return self.git("hash-object", "-w", "--no-filters", "--", *files).split() if files else []


def _encode(content: bytes | str) -> bytes:
    return redact_bytes(content) if isinstance(content, bytes) else redact(content).encode("utf-8")


def publish_status(
    remote_url: str,
    cluster: str,
    files: Mapping[str, bytes | str],
    message: str,
    *,
    branch: str = DEFAULT_BRANCH,
    tracked_branch: str | None = None,
    auth: Auth = None,
    author: tuple[str, str] = DEFAULT_AUTHOR,
    cache_root: Path | None = None,
    replace: bool = True,
    attempts: int = 40,
    timeout: float = 120.0,
    folder: str | None = None,
) -> str | None:
    """Commit ``files`` under ``clusters/<cluster>/`` (or ``folder``, a relative path of ours such as a pull
    request's plan folder) on ``branch`` and push; the new sha or None.

    ``replace=True`` makes the cluster folder exactly ``files`` (stale files are removed); ``False``
    only adds/overwrites. Returns None (and pushes nothing) when the tree would not change. The branch
    is created as an orphan branch if absent. A push that loses a race is retried up to ``attempts``
    times on the new tip with jittered exponential backoff. Raises :class:`SourceError`.
    """
    _check_cluster(cluster)
    branch = _check_branch(branch, tracked_branch)
    prefix = _rel_path(folder) if folder else f"clusters/{cluster}"
    auth_env(check_url(remote_url), auth)  # loads (and registers) the token before anything is redacted
    blobs_in = {f"{prefix}/{_rel_path(k)}": _encode(v) for k, v in files.items()}
    message = redact(message).strip() or f"status of {cluster}"
    env = {
        "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1],
    }  # fmt: skip
    dest = cache_dir(cache_root, "status", remote_url)
    with locked(dest):
        r = _Repo(remote_url, auth, cache_root, timeout)
        recovered = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                base = r.fetch(branch)
                sha = _commit_on(r, base, prefix, blobs_in, replace, message, env)
                if sha is None:
                    log.debug("status of %s unchanged on %s; no commit", cluster, branch)
                    return None
                _push(r, sha, branch)
            except _Lost as lost:
                if attempt == attempts:
                    raise SourceError(
                        f"cannot publish status of {cluster} to {redact(remote_url)}: "
                        f"still losing push races after {attempts} attempts ({lost})"
                    ) from None
                delay = random.uniform(0, min(2.0, 0.05 * 2**attempt))
                log.debug("status push of %s lost a race (attempt %d: %s); retrying in %.2fs",
                          cluster, attempt, lost, delay)  # fmt: skip
                time.sleep(delay)
                continue
            except (_Damaged, git.GitCommandError, ValueError) as e:
                detail = stderr_text(e) if isinstance(e, git.GitCommandError) else str(e)
                if recovered:
                    raise SourceError(redact(f"status cache for {remote_url} is unusable: {detail}")) from None
                log.warning("status cache %s is damaged (%s); re-cloning", r.dir, redact(detail))
                r, recovered, attempt = _Repo(remote_url, auth, cache_root, timeout, fresh=True), True, attempt - 1
                continue
            log.info("published status of %s to %s as %s", cluster, branch, sha[:12])
            return sha
    raise AssertionError("unreachable")  # pragma: no cover


def _commit_on(
    r: _Repo, base: str | None, prefix: str, blobs: Mapping[str, bytes], replace: bool, message: str,
    env: Mapping[str, str],
) -> str | None:  # fmt: skip
    """A new commit on ``base`` with the cluster folder updated, or None if the tree would not change."""
    with tempfile.TemporaryDirectory(prefix="virtnet-status-") as tmp:
        ienv = {**env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        r.git("read-tree", *([base] if base else ["--empty"]), env=ienv)
        if replace:
            r.git("rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", prefix, env=ienv)
        paths = sorted(blobs)
        for path, sha in zip(paths, r.blobs([blobs[p] for p in paths], Path(tmp)), strict=True):
            r.git("update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", env=ienv)
        tree = r.git("write-tree", env=ienv)
    if base and tree == r.git("rev-parse", f"{base}^{{tree}}"):
        return None
    return r.git("commit-tree", tree, *(["-p", base] if base else []), "-m", message, env=env)


def _push(r: _Repo, sha: str, branch: str) -> None:
    try:
        r.git("push", "--quiet", "--porcelain", "origin", f"{sha}:refs/heads/{branch}", remote=True)
    except git.GitCommandError as e:
        lines = f"{e.stdout or ''}\n{stderr_text(e)}".splitlines()
        hits = [ln.strip() for ln in lines if any(m in ln.lower() for m in _RACE_MARKERS)]
        if hits:
            raise _Lost(redact(hits[0])) from None
        raise git_error("cannot push status to", r.url, e) from None


def read_status(
    remote_url: str,
    cluster: str,
    branch: str = DEFAULT_BRANCH,
    *,
    auth: Auth = None,
    cache_root: Path | None = None,
    timeout: float = 120.0,
) -> dict[str, bytes]:
    """The files under ``clusters/<cluster>/`` on ``branch`` (paths relative to that folder); {} if none."""
    _check_cluster(cluster)
    branch = _check_branch(branch, None)
    prefix = f"clusters/{cluster}/"
    with locked(cache_dir(cache_root, "status", remote_url)):
        for fresh in (False, True):
            r = _Repo(remote_url, auth, cache_root, timeout, fresh=fresh)
            try:
                return _read(r, branch, prefix)
            except (_Damaged, git.GitCommandError, ValueError) as e:
                detail = stderr_text(e) if isinstance(e, git.GitCommandError) else str(e)
                if fresh:
                    raise SourceError(redact(f"status cache for {remote_url} is unusable: {detail}")) from None
                log.warning("status cache %s is damaged (%s); re-cloning", r.dir, redact(detail))
    raise AssertionError("unreachable")  # pragma: no cover


def _read(r: _Repo, branch: str, prefix: str) -> dict[str, bytes]:
    tip = r.fetch(branch)
    if tip is None:
        return {}
    assert r.repo is not None
    out: dict[str, bytes] = {}
    for line in r.git("ls-tree", "-r", "-z", "--full-tree", tip, "--", prefix).split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        _mode, kind, obj = meta.split()
        if kind == "blob":
            out[path[len(prefix) :]] = r.repo.odb.stream(bytes.fromhex(obj)).read()
    return out
