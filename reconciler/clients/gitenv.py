"""How virtnet runs git against a remote: credentials through the environment, caches, locks, errors.

Shared by ``source`` (fetching) and ``status`` (pushing status commits). A token reaches git only as an
``http.<url>.extraHeader`` set through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``,
so it is never in a URL, ``.git/config``, a process argument list, a log line or an exception; SSH uses
``GIT_SSH_COMMAND`` with a fixed key and a strict known_hosts file. Error texts pass through
:func:`reconciler.logs.redact`.

Side effects: reads credential files; creates cache and lock directories.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import git

from reconciler.errors import SourceError
from reconciler.logs import redact, register_secret

# --------------------------------------------------------------------------------------------- auth


@dataclass(frozen=True)
class TokenAuth:
    """HTTPS token auth. Exactly one of ``token_file`` / ``token_env`` names where the token is.

    ``scheme="basic"`` sends ``Authorization: Basic base64(username:token)`` (GitHub, GitLab, Gitea);
    ``"bearer"`` sends ``Authorization: Bearer <token>`` (Azure DevOps, Bitbucket access tokens).
    """

    token_file: Path | None = None
    token_env: str | None = None
    username: str = "x-access-token"
    scheme: Literal["basic", "bearer"] = "basic"

    def token(self) -> str:
        if (self.token_file is None) == (self.token_env is None):
            raise SourceError("token auth needs exactly one of token_file or token_env")
        if self.token_file is not None:
            try:
                value = Path(self.token_file).read_text().strip()
            except OSError as e:
                raise SourceError(f"cannot read token file {self.token_file}: {e.strerror}") from None
            where = f"token file {self.token_file}"
        else:
            value = os.environ.get(self.token_env or "", "").strip()
            where = f"environment variable {self.token_env}"
        if not value:
            raise SourceError(f"{where} is empty or missing")
        register_secret(value)
        return value

    def header(self) -> str:
        token = self.token()
        if self.scheme == "bearer":
            return f"Authorization: Bearer {token}"
        basic = base64.b64encode(f"{self.username}:{token}".encode()).decode()
        register_secret(basic)
        return f"Authorization: Basic {basic}"


@dataclass(frozen=True)
class SSHAuth:
    """SSH auth with one private key and a known_hosts file; host keys are checked strictly."""

    key_file: Path
    known_hosts: Path


Auth = TokenAuth | SSHAuth | None


@dataclass(frozen=True)
class SignaturePolicy:
    """Which keys may sign the tracked commit. At least one of the two must be set.

    ``allowed_signers``: an OpenSSH allowed-signers file (``principal key-type key`` per line).
    ``gnupg_home``: a GnuPG home directory whose keyring holds exactly the allowed public keys.
    """

    allowed_signers: Path | None = None
    gnupg_home: Path | None = None


def ssh_command(auth: SSHAuth) -> str:
    """The ``GIT_SSH_COMMAND`` for ``auth``; raises :class:`SourceError` if a file is missing."""
    for what, path in (("ssh private key", auth.key_file), ("ssh known_hosts file", auth.known_hosts)):
        if not Path(path).is_file():
            raise SourceError(f"{what} {path} does not exist or is not a file")
        if not os.access(path, os.R_OK):
            raise SourceError(f"{what} {path} is not readable")
    return shlex.join(
        [
            "ssh",
            "-F", "/dev/null",
            "-i", str(auth.key_file),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={auth.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
        ]
    )  # fmt: skip


def config_env(pairs: list[tuple[str, str]], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n`` entries adding ``pairs`` after any already in ``base``."""
    base = os.environ if base is None else base
    try:
        start = int(base.get("GIT_CONFIG_COUNT", "0") or 0)
    except ValueError:
        start = 0
    env = {"GIT_CONFIG_COUNT": str(start + len(pairs))}
    for i, (key, value) in enumerate(pairs, start):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def auth_env(url: str, auth: Auth, *, ca_file: Path | None = None) -> dict[str, str]:
    """Environment for a git command that talks to ``url`` with ``auth``. Never put it in a log."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    pairs: list[tuple[str, str]] = []
    if isinstance(auth, TokenAuth):
        if not url.lower().startswith(("https://", "http://")):
            raise SourceError(f"token auth needs an https:// URL, got {redact(url)}")
        pairs += [("credential.helper", ""), (f"http.{url}.extraHeader", auth.header())]
    elif isinstance(auth, SSHAuth):
        env["GIT_SSH_COMMAND"] = ssh_command(auth)
    if ca_file is not None:  # the env var, because an inherited GIT_SSL_CAINFO would beat http.sslCAInfo
        env["GIT_SSL_CAINFO"] = str(ca_file)
    if pairs:
        env.update(config_env(pairs))
    return env


def check_url(url: str) -> str:
    """Refuse URLs that carry credentials; return the URL unchanged otherwise."""
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*://[^/@]*@", url) and not url.lower().startswith("ssh://"):
        raise SourceError(
            f"remote URL {redact(url)} embeds credentials; put the token in a file and use TokenAuth"
        )
    return url


def url_host(url: str) -> str:
    """The lower-cased host name a git URL talks to (``https://``, ``ssh://``, ``user@host:path``);
    ``""`` for local paths and ``file://`` URLs. Scheme, port and user are not part of it."""
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*://", url):
        return (urlsplit(url).hostname or "").lower()
    scp = re.match(r"^(?:[^@/:]+@)?([^@/:]+):(?!//)", url)  # user@host:path; not C:\ or a local path
    if scp and len(scp.group(1)) > 1:
        return scp.group(1).lower()
    return ""


def cache_dir(cache_root: Path | None, kind: str, url: str) -> Path:
    """``<cache_root>/<kind>/<sha256(url)[:16]>``; the default root is ``$VIRTNET_CACHE_DIR``."""
    if cache_root is None:
        default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "virtnet"
        cache_root = Path(os.environ.get("VIRTNET_CACHE_DIR", default))
    return Path(cache_root) / kind / hashlib.sha256(url.encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory/lock`` (threads and processes sharing a cache dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stderr_text(err: git.GitCommandError) -> str:
    """The stderr of a failed git command, without GitPython's ``stderr: '...'`` wrapper."""
    text = str(err.stderr or "").strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    return text.strip()


def git_error(action: str, url: str, err: git.GitCommandError) -> SourceError:
    """A :class:`SourceError` with a clear, redacted reason for a failed git command."""
    stderr = stderr_text(err)
    low = stderr.lower()
    if any(
        s in low
        for s in (
            "authentication failed", "could not read username", "could not read password",
            "permission denied", "http 401", "http 403", "401 unauthorized", "403 forbidden",
            "returned error: 401", "returned error: 403",
        )
    ):  # fmt: skip
        reason = "authentication failed"
    elif "host key verification failed" in low:
        reason = "ssh host key verification failed (host not in known_hosts)"
    elif "couldn't find remote ref" in low:
        reason = "ref not found on the remote"
    elif any(
        s in low
        for s in (
            "could not resolve host", "connection refused", "failed to connect", "timed out",
            "does not appear to be a git repository", "not found", "unable to access",
            "could not read from remote repository", "no such file or directory",
        )
    ):  # fmt: skip
        reason = "remote unreachable"
    elif err.status in (-9, -15) or "timeout" in low:
        reason = "git timed out"
    else:
        reason = "git failed"
    detail = "; ".join(line.strip() for line in stderr.splitlines() if line.strip())[-600:]
    return SourceError(redact(f"{action} {url}: {reason}" + (f" ({detail})" if detail else "")))
