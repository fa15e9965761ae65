"""Helpers for tests that need real git repositories, remotes and a git smart-HTTP server.

Everything runs the real ``git`` CLI against bare repositories under ``tmp_path``; nothing touches
the network except a server bound to 127.0.0.1. Call :func:`isolate_git` (e.g. from an autouse
fixture) so that the machine's git configuration and identity do not leak into a test.

Reusable API: ``isolate_git``, ``git``, ``make_remote``, ``push_commit``, ``ssh_keypair``,
``write_allowed_signers``, ``gpg_key``, ``make_tls_cert``, ``serve_git_http``, and
``preserved_logging`` (undo what ``setup_logging`` did to the root logger after a test).
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

AUTHOR = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.test",
}


def isolate_git(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Make git ignore the machine's global/system config and use a fixed identity and HOME."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("VIRTNET_CACHE_DIR", str(home / "cache"))
    for var in ("GIT_CONFIG_COUNT", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_SSH_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    for k, v in AUTHOR.items():
        monkeypatch.setenv(k, v)


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, input: bytes | None = None) -> str:
    """Run ``git`` and return stripped stdout; raise with stderr on failure."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **AUTHOR, **(env or {})}, input=input, capture_output=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode().strip()


def make_remote(tmp_path: Path, files: dict[str, str], *, name: str = "remote.git", branch: str = "main") -> Path:
    """A bare repository at ``tmp_path/name`` with one commit holding ``files`` on ``branch``."""
    remote = tmp_path / name
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote))
    push_commit(remote, files, "initial commit", branch=branch)
    return remote


def push_commit(
    remote: Path,
    files: Mapping[str, str | bytes | None],
    message: str,
    *,
    branch: str = "main",
    sign_key: Path | None = None,
    gpg_sign: tuple[Path, str] | None = None,
    rewrite: bool = False,
) -> str:
    """Add a commit on ``branch`` of the bare repo ``remote`` and return its sha.

    ``files`` are added/overwritten on top of the branch tip (``None`` deletes a file). ``rewrite=True``
    replaces history instead: the new commit has no parent and only ``files`` (a force-push).
    ``sign_key`` signs the commit with that SSH private key; ``gpg_sign=(gnupg_home, fingerprint)`` with
    that GnuPG key.
    """
    ref = f"refs/heads/{branch}"
    try:
        parent: str | None = git("rev-parse", "--verify", "--quiet", ref, cwd=remote)
    except RuntimeError:
        parent = None
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent and not rewrite:
            git("read-tree", parent, cwd=remote, env=env)
        else:
            git("read-tree", "--empty", cwd=remote, env=env)
        for path, content in files.items():
            if content is None:
                git("rm", "--cached", "-q", "--ignore-unmatch", "--", path, cwd=remote, env=env)
                continue
            data = content.encode() if isinstance(content, str) else content
            blob = git("hash-object", "-w", "--stdin", cwd=remote, input=data)
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=remote, env=env)
        tree = git("write-tree", cwd=remote, env=env)
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_key}"] if sign_key else []
    env = {}
    if gpg_sign:
        sign = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={gpg_sign[1]}"]
        env["GNUPGHOME"] = str(gpg_sign[0])
    args = [*sign, "commit-tree", tree, "-m", message]
    if parent and not rewrite:
        args += ["-p", parent]
    if sign:
        args.append("-S")
    sha = git(*args, cwd=remote, env=env)
    git("update-ref", ref, sha, cwd=remote)
    return sha


def ssh_keypair(directory: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key without passphrase: (private key path, public key line)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True, capture_output=True
    )
    return key, (directory / f"{name}.pub").read_text().strip()


def write_allowed_signers(path: Path, signers: Mapping[str, str]) -> Path:
    """An OpenSSH allowed-signers file: ``principal namespaces="git" <public key>`` per line."""
    path.write_text("".join(f'{principal} namespaces="git" {pub}\n' for principal, pub in signers.items()))
    return path


def gpg_key(home: Path, uid: str) -> str:
    """A fresh ed25519 GnuPG signing key without passphrase in ``home``; returns its fingerprint.

    Signing starts a gpg-agent for ``home``: stop it with :func:`stop_gpg_agent`.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid,
         "ed25519", "sign", "never"], env=env, check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def copy_gpg_public_key(src_home: Path, dst_home: Path, fingerprint: str) -> None:
    """Import the public half of ``fingerprint`` from one GnuPG home into another (an allowed keyring)."""
    dst_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    pub = subprocess.run(["gpg", "--batch", "--export", fingerprint], env={**os.environ, "GNUPGHOME": str(src_home)},
                         check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["gpg", "--batch", "--import"], input=pub, env={**os.environ, "GNUPGHOME": str(dst_home)},
                   check=True, capture_output=True)  # fmt: skip


def stop_gpg_agent(home: Path) -> None:
    """Stop the gpg-agent (if any) that GnuPG started for ``home``."""
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def preserved_logging(*names: str) -> Iterator[None]:
    """Restore the root logger's handlers and level, and the levels of ``names``, on exit."""
    import logging

    root = logging.getLogger()
    loggers = [logging.getLogger(n) for n in ("git.cmd", "urllib3", "kubernetes", *names)]
    saved = (list(root.handlers), root.level, [lg.level for lg in loggers])
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for lg, level in zip(loggers, saved[2], strict=True):
            lg.setLevel(level)


@dataclass
class GitHttpServer:
    """What a running :func:`serve_git_http` saw: every request line and Authorization outcome."""

    url: str
    requests: list[str] = field(default_factory=list)
    rejected: int = 0


def _git_http_app(root: Path, token: str, seen: GitHttpServer) -> Any:
    basic_ok = {"Basic " + base64.b64encode(f"{u}:{token}".encode()).decode() for u in ("x-access-token", "git")}
    bearer_ok = f"Bearer {token}"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        seen.requests.append(f"{environ['REQUEST_METHOD']} {path}?{query}")
        authz = environ.get("HTTP_AUTHORIZATION", "")
        if authz not in basic_ok and authz != bearer_ok:
            seen.rejected += 1
            challenge = [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")]
            start_response("401 Unauthorized", challenge)
            return [b"unauthorized\n"]
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        cgi = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }
        proc = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [payload]

    return app


@contextlib.contextmanager
def serve_git_http(root: Path, token: str, *, tls: tuple[Path, Path] | None = None) -> Iterator[GitHttpServer]:
    """Serve the bare repos under ``root`` over git smart-HTTP(S) on 127.0.0.1, requiring ``token``.

    Accepts ``Authorization: Basic base64(x-access-token|git:<token>)`` or ``Bearer <token>``;
    anything else gets 401. Pushes are allowed. Yields the server record; its ``url`` is the base URL.
    """
    seen = GitHttpServer(url="")
    server = make_server(
        "127.0.0.1", 0, _git_http_app(root, token, seen), threaded=True,
        ssl_context=(str(tls[0]), str(tls[1])) if tls else None,
    )  # fmt: skip
    seen.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        thread.join(timeout=10)
