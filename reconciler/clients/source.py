"""Fetching the config repository: a cached clone that follows a branch, or pins a tag or a commit.

Why: every reconcile starts from "exactly which commit are we applying", so :meth:`GitSource.fetch`
returns a :class:`Revision` naming one commit, an exported tree of that commit, who signed it and
whether it differs from the previous fetch. The cache must survive crashes (a corrupted cache is
detected and re-cloned), force-pushes (followed, and reported) and never leak credentials.

Credentials: a token is read from a file or an environment variable and handed to git only through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (an ``http.<url>.extraHeader``), so it
is never in a URL, ``.git/config``, a process argument list, a log line or an exception (errors pass
through :func:`reconciler.logs.redact`, and the token is registered with ``register_secret``). SSH uses
``GIT_SSH_COMMAND`` with a fixed key and a strict known_hosts file (see ``reconciler.clients.gitenv``).

Side effects: creates and deletes directories under ``cache_root`` (``<cache_root>/source/<urlhash>/``
holding ``repo.git``, ``trees/<sha>``, ``state.json`` and ``lock``); runs ``git`` (and through it
``ssh``/``ssh-keygen``/``gpg``) subprocesses; talks to the remote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from reconciler.clients.gitenv import (
    Auth,
    SignaturePolicy,
    SSHAuth,
    TokenAuth,
    auth_env,
    cache_dir,
    check_url,
    config_env,
    git_error,
    locked,
    ssh_command,
    stderr_text,
)
from reconciler.clients.treelimits import TreeLimits, check_documents, check_tree, list_tree
from reconciler.errors import SourceError
from reconciler.logs import redact

__all__ = ["Auth", "GitSource", "Revision", "SSHAuth", "SignaturePolicy", "TokenAuth", "auth_env", "ssh_command"]

log = logging.getLogger(__name__)

KEEP_TREES = 3  # exported trees kept per remote: the current one and the two before it


# ------------------------------------------------------------------------------------------- source


@dataclass(frozen=True)
class Revision:
    """One fetched commit. ``path`` is an exported tree of exactly ``sha`` -- read it, never write it.

    ``changed`` compares with the previous fetch through the same cache dir (True on the first one);
    ``rewritten`` is True when the ref moved to a commit that does not descend from the previous one
    (a force-push, or a moved tag).
    """

    sha: str
    ref: str
    path: Path
    message: str
    author: str
    signed_by: str | None
    changed: bool
    rewritten: bool = False


class _Corrupt(Exception):
    pass


def _make_read_only(root: Path) -> None:
    """Drop write permission on exported files so that a consumer writing into a tree fails loudly."""
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode & ~0o222)


class GitSource:
    """A remote config repository, cached under ``cache_root``. Track ``branch``, or pin ``tag``/``commit``.

    ``url`` may be ``https://``, ``http://`` (tests), ``ssh://``, ``user@host:path``, ``file://`` or a
    local path. Not thread-safe per instance beyond the cache-dir lock; one instance per remote.
    A pinned ``commit`` is looked for first under ``fetch_refs`` of the same remote (a pull request's
    ``refs/pull/N/head``), then by its id, then in every branch and tag. Credentials only ever go to ``url``.
    A commit over ``limits`` (``reconciler.clients.treelimits``) is refused before it is exported.
    """

    def __init__(
        self,
        url: str,
        cache_root: Path | None = None,
        *,
        branch: str | None = None,
        tag: str | None = None,
        commit: str | None = None,
        fetch_refs: tuple[str, ...] = (),
        auth: Auth = None,
        verify: SignaturePolicy | None = None,
        ca_file: Path | None = None,
        timeout: float = 120.0,
        limits: TreeLimits | None = None,
    ) -> None:
        if sum(x is not None for x in (branch, tag, commit)) > 1:
            raise SourceError("track a branch, or pin a tag, or pin a commit -- not several")
        if branch is None and tag is None and commit is None:
            branch = "main"
        if commit is not None and not re.fullmatch(r"[0-9a-fA-F]{4,64}", commit):
            raise SourceError(f"commit {commit!r} is not a hex object name")
        if fetch_refs and commit is None:
            raise SourceError("fetch_refs name where a pinned commit is; they need commit=")
        for ref in fetch_refs:
            if not re.fullmatch(r"refs/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)+", ref) or ".." in ref:
                raise SourceError(f"{ref!r} is not a ref virtnet fetches")
        if verify is not None and verify.allowed_signers is None and verify.gnupg_home is None:
            raise SourceError("signature verification needs allowed_signers and/or gnupg_home")
        self.url = check_url(url)
        self.branch, self.tag, self.commit = branch, tag, commit.lower() if commit else None
        self.fetch_refs = fetch_refs
        self.limits = limits or TreeLimits()
        self.auth, self.verify, self.ca_file, self.timeout = auth, verify, ca_file, timeout
        self.dir = cache_dir(cache_root, "source", url)
        self.repo_dir = self.dir / "repo.git"
        self.trees_dir = self.dir / "trees"
        self.state_file = self.dir / "state.json"

    @property
    def ref(self) -> str:
        if self.branch is not None:
            return f"refs/heads/{self.branch}"
        if self.tag is not None:
            return f"refs/tags/{self.tag}"
        return self.commit or ""

    def fetch(self) -> Revision:
        """Fetch the remote and return the tracked/pinned commit. Raises :class:`SourceError`."""
        with locked(self.dir):
            try:
                return self._fetch()
            except _Corrupt as e:
                log.warning("git cache %s is corrupt (%s); re-cloning", self.repo_dir, redact(str(e)))
                shutil.rmtree(self.repo_dir, ignore_errors=True)
                try:
                    return self._fetch()
                except _Corrupt as e2:
                    raise SourceError(redact(f"git cache for {self.url} is unusable: {e2}")) from None

    # ------------------------------------------------------------------------------------ internals

    def _git(self, repo: git.Repo, *args: str, remote: bool = False) -> str:
        env = {"GIT_TERMINAL_PROMPT": "0"}
        if remote:
            env.update(auth_env(self.url, self.auth, ca_file=self.ca_file))
        return repo.git.execute(["git", *args], env=env, kill_after_timeout=self.timeout if remote else None)

    def _open(self) -> git.Repo:
        """Open (or create) the bare cache repo and check it is intact; raise _Corrupt otherwise."""
        if not self.repo_dir.exists():
            self.repo_dir.mkdir(parents=True)
            repo = git.Repo.init(self.repo_dir, bare=True)
            with repo.config_writer() as cw:
                cw.set_value('remote "origin"', "url", self.url)
                cw.set_value("gc", "auto", "0")
            return repo
        try:
            repo = git.Repo(self.repo_dir)
            self._git(repo, "rev-parse", "--git-dir")
            if self._git(repo, "for-each-ref", "--count=1"):
                self._git(repo, "fsck", "--connectivity-only", "--no-dangling", "--no-progress")
        except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError) as e:
            detail = stderr_text(e) if isinstance(e, git.GitCommandError) else f"not a git repository: {e}"
            raise _Corrupt(detail) from None
        return repo

    def _fetch_remote(self, repo: git.Repo, *refspecs: str) -> None:
        try:
            self._git(repo, "fetch", "--no-tags", "--prune", "--no-write-fetch-head", "--quiet",
                      "origin", *refspecs, remote=True)  # fmt: skip
        except git.GitCommandError as e:
            if self._healthy(repo):
                raise git_error("cannot fetch", self.url, e) from None
            raise _Corrupt(stderr_text(e)) from None

    def _healthy(self, repo: git.Repo) -> bool:
        try:
            self._git(repo, "fsck", "--connectivity-only", "--no-dangling", "--no-progress")
        except git.GitCommandError:
            return False
        return True

    def _resolve(self, repo: git.Repo) -> str:
        if self.branch is not None:
            local = f"refs/remotes/origin/{self.branch}"
            self._fetch_remote(repo, f"+refs/heads/{self.branch}:{local}")
        elif self.tag is not None:
            local = f"refs/tags/{self.tag}"
            self._fetch_remote(repo, f"+refs/tags/{self.tag}:{local}")
        else:
            local = str(self.commit)
            if self.fetch_refs and not self._has_commit(repo, local):
                for ref in self.fetch_refs:  # where the remote keeps it, e.g. a pull request's head
                    with contextlib.suppress(SourceError):
                        self._fetch_remote(repo, f"+{ref}:refs/virtnet/{ref[len('refs/') :]}")
            if not self._has_commit(repo, local):
                if len(local) == 40 or len(local) == 64:
                    with contextlib.suppress(SourceError):
                        self._fetch_remote(repo, local)
                if not self._has_commit(repo, local):
                    everything = ("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
                    self._fetch_remote(repo, *everything)
                if not self._has_commit(repo, local):
                    raise SourceError(f"commit {local} not found on {redact(self.url)}")
        try:
            return self._git(repo, "rev-parse", "--verify", "--end-of-options", f"{local}^{{commit}}")
        except git.GitCommandError:
            raise SourceError(f"{self.ref} on {redact(self.url)} does not name a commit") from None

    def _has_commit(self, repo: git.Repo, name: str) -> bool:
        try:
            self._git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
        except git.GitCommandError:
            return False
        return True

    def _fetch(self) -> Revision:
        repo = self._open()
        sha = self._resolve(repo)
        state = self._load_state()
        prev = state.get("sha") if state.get("ref") == self.ref else None
        rewritten = False
        if prev and prev != sha:
            try:
                self._git(repo, "merge-base", "--is-ancestor", prev, sha)
            except git.GitCommandError:
                rewritten = True
                log.warning("history of %s on %s was rewritten: %s is not an ancestor of %s",
                            self.ref, redact(self.url), prev[:12], sha[:12])  # fmt: skip
        signed_by = self._verify(repo, sha) if self.verify is not None else None
        commit = repo.commit(sha)
        path = self._export(repo, sha)
        self._save_state({"sha": sha, "ref": self.ref})
        log.info("fetched %s %s at %s", redact(self.url), self.ref, sha[:12])
        return Revision(
            sha=sha,
            ref=self.ref,
            path=path,
            message=str(commit.message),
            author=f"{commit.author.name} <{commit.author.email}>",
            signed_by=signed_by,
            changed=prev != sha,
            rewritten=rewritten,
        )

    def _verify(self, repo: git.Repo, sha: str) -> str:
        """The signer of ``sha`` if it is signed by an allowed key; raise :class:`SourceError` otherwise."""
        assert self.verify is not None
        pairs: list[tuple[str, str]] = []
        env: dict[str, str] = {}
        if self.verify.allowed_signers is not None:
            pairs.append(("gpg.ssh.allowedSignersFile", str(self.verify.allowed_signers)))
        if self.verify.gnupg_home is not None:
            env["GNUPGHOME"] = str(self.verify.gnupg_home)
        else:  # an empty keyring: the caller's own GnuPG keys must not count as allowed
            env["GNUPGHOME"] = tempfile.mkdtemp(prefix="virtnet-gnupg-")
        env.update(config_env(pairs))
        try:
            out = repo.git.execute(["git", "log", "-1", "--format=%G?%x00%GK%x00%GS%x00%GF", sha], env=env)
        except git.GitCommandError as e:
            raise SourceError(redact(f"cannot verify signature of {sha}: {stderr_text(e)}")) from None
        finally:
            if self.verify.gnupg_home is None:
                shutil.rmtree(env["GNUPGHOME"], ignore_errors=True)
        status, key, signer, fingerprint = [*str(out).split("\0"), "", "", ""][:4]
        ssh_sig = key.startswith("SHA256:") or (fingerprint or "").startswith("SHA256:")
        reasons = {
            "N": "it is not signed", "B": "bad signature", "X": "signature expired",
            "Y": "signing key expired", "R": "signing key revoked",
            "E": "the signature cannot be checked (unknown key or missing tool)",
        }  # fmt: skip
        if status in ("G", "U") and ssh_sig and signer and self.verify.allowed_signers is not None:
            return signer  # a principal from the allowed-signers file
        if status in ("G", "U") and not ssh_sig and key and self.verify.gnupg_home is not None:
            return f"{signer} ({key})" if signer else key
        reason = reasons.get(status, f"status {status!r}")
        if status in ("G", "U"):
            where = "allowed signers file" if ssh_sig else "allowed keyring"
            reason = f"key {key or fingerprint} is not in the {where}"
        raise SourceError(f"commit {sha} is not signed by an allowed key: {reason}")

    def _export(self, repo: git.Repo, sha: str) -> Path:
        """Materialise the tree of ``sha`` at ``trees/<sha>`` (atomically) and prune old trees."""
        dest = self.trees_dir / sha
        if not dest.is_dir():
            try:
                entries = list_tree(repo, sha)
            except git.GitCommandError as e:
                raise _Corrupt(f"cannot list {sha}: {stderr_text(e)}") from None
            check_tree(entries, sha, self.limits)  # sizes from git: nothing is written for a refused commit
            self.trees_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=self.trees_dir))
            index = tmp.with_suffix(".index")
            env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(tmp)}
            try:
                repo.git.execute(["git", "read-tree", sha], env=env)
                repo.git.execute(["git", "checkout-index", "-a", "-f"], env=env)
                check_documents(tmp, entries, sha, self.limits)
                _make_read_only(tmp)
                tmp.rename(dest)
            except git.GitCommandError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise _Corrupt(f"cannot check out {sha}: {stderr_text(e)}") from None
            except SourceError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            finally:
                index.unlink(missing_ok=True)
        os.utime(dest)
        trees = sorted(
            (p for p in self.trees_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in trees[KEEP_TREES:]:
            if old != dest:
                shutil.rmtree(old, ignore_errors=True)
        return dest

    def _load_state(self) -> dict[str, str]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, state: dict[str, str]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)
