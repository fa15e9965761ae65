"""GitSource against real bare repositories, a local smart-HTTP(S) server and real SSH signing keys."""

from __future__ import annotations

import io
import logging
import os
import shlex
import shutil
import stat
import threading
from pathlib import Path

import pytest

from reconciler.clients.gitenv import url_host
from reconciler.clients.source import GitSource, SignaturePolicy, SSHAuth, TokenAuth, auth_env, ssh_command
from reconciler.errors import SourceError
from reconciler.logs import setup_logging
from tests.gitutil import (
    copy_gpg_public_key,
    git,
    gpg_key,
    isolate_git,
    make_remote,
    make_tls_cert,
    preserved_logging,
    push_commit,
    serve_git_http,
    ssh_keypair,
    stop_gpg_agent,
    write_allowed_signers,
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_git(monkeypatch, tmp_path / "home")


@pytest.mark.parametrize("form", ["file-url", "path"])
def test_branch_fetch_unchanged_then_new_commit(tmp_path: Path, form: str) -> None:
    remote = make_remote(tmp_path, {"net.yaml": "v: 1\n", "sub/dir.yaml": "x\n"})
    url = remote.as_uri() if form == "file-url" else str(remote)
    src = GitSource(url, tmp_path / "cache", branch="main")

    first = src.fetch()
    assert first.sha == git("rev-parse", "main", cwd=remote)
    assert first.ref == "refs/heads/main"
    assert first.changed is True and first.rewritten is False
    assert (first.path / "net.yaml").read_text() == "v: 1\n"
    assert (first.path / "sub/dir.yaml").read_text() == "x\n"
    assert first.message.strip() == "initial commit"
    assert first.author == "Test Author <author@example.test>"
    assert first.signed_by is None

    again = src.fetch()
    assert again.sha == first.sha and again.changed is False

    new = push_commit(remote, {"net.yaml": "v: 2\n"}, "second")
    third = src.fetch()
    assert third.sha == new and third.changed is True and third.rewritten is False
    assert (third.path / "net.yaml").read_text() == "v: 2\n"
    assert (first.path / "net.yaml").read_text() == "v: 1\n"  # the old tree is untouched

    # a fresh instance on the same cache remembers the previous fetch
    assert GitSource(url, tmp_path / "cache", branch="main").fetch().changed is False


def test_tag_and_commit_pins(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a": "1"})
    c1 = git("rev-parse", "main", cwd=remote)
    git("tag", "-a", "v1", "-m", "release 1", c1, cwd=remote)
    c2 = push_commit(remote, {"a": "2"}, "two")
    url = remote.as_uri()

    tagged = GitSource(url, tmp_path / "cache", tag="v1").fetch()
    assert tagged.sha == c1 and tagged.ref == "refs/tags/v1"  # annotated tag peeled to its commit
    assert (tagged.path / "a").read_text() == "1"

    pinned = GitSource(url, tmp_path / "cache2", commit=c1).fetch()
    assert pinned.sha == c1 and (pinned.path / "a").read_text() == "1"
    assert GitSource(url, tmp_path / "cache2", commit=c1).fetch().changed is False
    assert GitSource(url, tmp_path / "cache3", commit=c2[:10]).fetch().sha == c2  # abbreviated

    with pytest.raises(SourceError, match="not found"):
        GitSource(url, tmp_path / "cache4", commit="0" * 40).fetch()
    with pytest.raises(SourceError, match="ref not found"):
        GitSource(url, tmp_path / "cache5", branch="nope").fetch()
    with pytest.raises(SourceError, match="not several"):
        GitSource(url, tmp_path / "c", branch="main", tag="v1")


def test_unreachable_remote_and_credentials_in_url(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="remote unreachable"):
        GitSource((tmp_path / "missing.git").as_uri(), tmp_path / "cache").fetch()
    with pytest.raises(SourceError, match="remote unreachable"):
        GitSource("http://127.0.0.1:9/repo.git", tmp_path / "cache").fetch()  # discard port: refused
    with pytest.raises(SourceError) as err:
        GitSource("https://bob:hunter2secret@example.test/r.git", tmp_path / "cache")
    assert "hunter2secret" not in str(err.value) and "embeds credentials" in str(err.value)


def _scan_for(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


@pytest.mark.parametrize(("tls", "scheme"), [(False, "basic"), (True, "basic"), (False, "bearer")])
def test_token_auth_over_smart_http(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tls: bool, scheme: str
) -> None:
    token = "tok-CANARY-7f3a9c2e1b"
    root = tmp_path / "srv"
    root.mkdir()
    remote = make_remote(root, {"net.yaml": "ok\n"}, name="cfg.git")
    cert = make_tls_cert(tmp_path / "tls") if tls else None
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "wrong").write_text("not-the-token\n")
    out = io.StringIO()
    with preserved_logging():
        setup_logging("DEBUG", json=False, stream=out)
        caplog.set_level(logging.DEBUG)
        with serve_git_http(root, token, tls=cert) as srv:
            url = f"{srv.url}/cfg.git"
            ca = cert[0] if cert else None
            auth = TokenAuth(token_file=tmp_path / "token", scheme=scheme)  # type: ignore[arg-type]
            rev = GitSource(url, tmp_path / "cache", auth=auth, ca_file=ca).fetch()
            assert rev.sha == git("rev-parse", "main", cwd=remote)
            assert (rev.path / "net.yaml").read_text() == "ok\n"

            with pytest.raises(SourceError) as bad:
                wrong = TokenAuth(token_file=tmp_path / "wrong", scheme=scheme)  # type: ignore[arg-type]
                GitSource(url, tmp_path / "cache-wrong", auth=wrong, ca_file=ca).fetch()
            assert "authentication failed" in str(bad.value)
            with pytest.raises(SourceError, match="authentication failed"):
                GitSource(url, tmp_path / "cache-none", ca_file=ca).fetch()
            assert srv.rejected >= 2
            assert not any(token in r for r in srv.requests)  # never in a URL

    assert token not in str(bad.value) and "not-the-token" not in str(bad.value)
    assert "Popen(['git', 'fetch'" in caplog.text  # GitPython logged every argv: none holds the token
    assert token not in caplog.text and token not in out.getvalue()
    assert "fetched" in out.getvalue()  # the log did capture the fetch
    cache = tmp_path / "cache" / "source"
    (config,) = cache.glob("*/repo.git/config")
    assert token not in config.read_text() and "extraHeader" not in config.read_text()
    assert _scan_for(tmp_path / "cache", token.encode()) == []


def test_token_from_env_and_plumbing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIRTNET_TEST_TOKEN", "envtoken-abcdef")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.pager")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "cat")
    env = auth_env("https://git.example.test/r.git", TokenAuth(token_env="VIRTNET_TEST_TOKEN", scheme="bearer"))
    assert env["GIT_CONFIG_COUNT"] == "3"  # appended after the caller's own entries
    assert env["GIT_CONFIG_KEY_1"] == "credential.helper" and env["GIT_CONFIG_VALUE_1"] == ""
    assert env["GIT_CONFIG_KEY_2"] == "http.https://git.example.test/r.git.extraHeader"
    assert env["GIT_CONFIG_VALUE_2"] == "Authorization: Bearer envtoken-abcdef"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    with pytest.raises(SourceError, match="empty or missing"):
        auth_env("https://h/r.git", TokenAuth(token_env="VIRTNET_NO_SUCH_VAR"))
    with pytest.raises(SourceError, match="cannot read token file"):
        auth_env("https://h/r.git", TokenAuth(token_file=tmp_path / "absent"))
    with pytest.raises(SourceError, match="needs an https"):
        auth_env("ssh://h/r.git", TokenAuth(token_env="VIRTNET_TEST_TOKEN"))


def test_ssh_command_and_missing_files(tmp_path: Path) -> None:
    key, _ = ssh_keypair(tmp_path / "keys", "deploy")
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    cmd = shlex.split(ssh_command(SSHAuth(key_file=key, known_hosts=kh)))
    assert cmd[0] == "ssh" and cmd[cmd.index("-i") + 1] == str(key)
    opts = {cmd[i + 1] for i, a in enumerate(cmd) if a == "-o"}
    assert {"IdentitiesOnly=yes", f"UserKnownHostsFile={kh}", "StrictHostKeyChecking=yes", "BatchMode=yes"} <= opts

    with pytest.raises(SourceError, match=r"ssh private key .* does not exist"):
        GitSource("ssh://git@example.test/r.git", tmp_path / "c",
                  auth=SSHAuth(key_file=tmp_path / "nokey", known_hosts=kh)).fetch()  # fmt: skip
    with pytest.raises(SourceError, match=r"known_hosts file .* does not exist"):
        GitSource("git@example.test:r.git", tmp_path / "c",
                  auth=SSHAuth(key_file=key, known_hosts=tmp_path / "nokh")).fetch()  # fmt: skip


def test_ssh_transport_uses_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No sshd here: a fake ``ssh`` on PATH records its argv and runs the remote git command locally."""
    remote = make_remote(tmp_path, {"a": "1"})
    key, _ = ssh_keypair(tmp_path / "keys", "deploy")
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    bindir, argv_log = tmp_path / "bin", tmp_path / "ssh-argv"
    bindir.mkdir()
    fake = bindir / "ssh"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv_log}\nfor last; do :; done\nexec sh -c "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    rev = GitSource(f"ssh://git@example.test{remote}", tmp_path / "cache",
                    auth=SSHAuth(key_file=key, known_hosts=kh)).fetch()  # fmt: skip
    assert rev.sha == git("rev-parse", "main", cwd=remote)
    argv = argv_log.read_text().splitlines()
    assert argv[argv.index("-i") + 1] == str(key)
    assert "StrictHostKeyChecking=yes" in argv and f"UserKnownHostsFile={kh}" in argv
    assert "IdentitiesOnly=yes" in argv and "git@example.test" in argv


def test_signature_verification_with_ssh_keys(tmp_path: Path) -> None:
    good_key, good_pub = ssh_keypair(tmp_path / "keys", "alice")
    bad_key, _ = ssh_keypair(tmp_path / "keys", "mallory")
    signers = write_allowed_signers(tmp_path / "allowed_signers", {"alice@example.test": good_pub})
    remote = make_remote(tmp_path, {"a": "0"})
    policy = SignaturePolicy(allowed_signers=signers)
    src = GitSource(remote.as_uri(), tmp_path / "cache", verify=policy)

    signed = push_commit(remote, {"a": "1"}, "signed by alice", sign_key=good_key)
    rev = src.fetch()
    assert rev.sha == signed and rev.signed_by == "alice@example.test"

    unsigned = push_commit(remote, {"a": "2"}, "unsigned")
    with pytest.raises(SourceError, match=f"commit {unsigned} is not signed by an allowed key: it is not signed"):
        src.fetch()

    other = push_commit(remote, {"a": "3"}, "signed by mallory", sign_key=bad_key)
    with pytest.raises(SourceError, match=f"commit {other} is not signed by an allowed key: key SHA256:"):
        src.fetch()

    # a GnuPG-only policy does not accept an SSH signature
    with pytest.raises(SourceError, match="not signed by an allowed key"):
        GitSource(remote.as_uri(), tmp_path / "c2", commit=signed,
                  verify=SignaturePolicy(gnupg_home=tmp_path / "gnupg")).fetch()  # fmt: skip
    ok = GitSource(remote.as_uri(), tmp_path / "c3", commit=signed, verify=policy).fetch()
    assert ok.signed_by == "alice@example.test"


def test_signature_verification_with_gpg_keyring(tmp_path: Path) -> None:
    alice_home, mallory_home, allowed = tmp_path / "ga", tmp_path / "gm", tmp_path / "allowed"
    try:
        alice = gpg_key(alice_home, "Alice <alice@example.test>")
        mallory = gpg_key(mallory_home, "Mallory <mallory@example.test>")
        copy_gpg_public_key(alice_home, allowed, alice)
        remote = make_remote(tmp_path, {"a": "0"})
        src = GitSource(remote.as_uri(), tmp_path / "cache", verify=SignaturePolicy(gnupg_home=allowed))

        good = push_commit(remote, {"a": "1"}, "gpg signed", gpg_sign=(alice_home, alice))
        rev = src.fetch()
        assert rev.sha == good and rev.signed_by is not None
        assert "alice@example.test" in rev.signed_by and alice[-16:] in rev.signed_by

        bad = push_commit(remote, {"a": "2"}, "other key", gpg_sign=(mallory_home, mallory))
        with pytest.raises(SourceError, match=f"commit {bad} is not signed by an allowed key: the signature cannot"):
            src.fetch()
        with pytest.raises(SourceError, match="not signed by an allowed key"):  # ssh-only policy, gpg signature
            signers = write_allowed_signers(tmp_path / "as", {"x@y": ssh_keypair(tmp_path / "k", "x")[1]})
            GitSource(remote.as_uri(), tmp_path / "c2", commit=good,
                      verify=SignaturePolicy(allowed_signers=signers)).fetch()  # fmt: skip
    finally:
        for home in (alice_home, mallory_home, allowed):
            stop_gpg_agent(home)


@pytest.mark.parametrize("damage", ["objects", "head", "packed"])
def test_corrupted_cache_is_recloned(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    remote = make_remote(tmp_path, {"a": "1"})
    src = GitSource(remote.as_uri(), tmp_path / "cache")
    src.fetch()
    repo = src.repo_dir
    if damage == "objects":
        for d in (repo / "objects").iterdir():
            if d.name not in ("info", "pack"):
                shutil.rmtree(d)
        for p in (repo / "objects" / "pack").iterdir():
            p.unlink()
    elif damage == "head":
        (repo / "HEAD").write_text("garbage\x00\n")
    else:
        git("gc", "--quiet", cwd=repo)
        for p in (repo / "objects" / "pack").glob("*.pack"):
            p.write_bytes(b"PACK garbled")
    new = push_commit(remote, {"a": "2"}, "two")
    with caplog.at_level(logging.WARNING):
        rev = src.fetch()
    assert rev.sha == new and (rev.path / "a").read_text() == "2"
    assert "re-cloning" in caplog.text
    git("fsck", "--connectivity-only", cwd=repo)


def test_force_push_is_followed_and_reported(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a": "1", "b": "1"})
    push_commit(remote, {"a": "2"}, "two")
    src = GitSource(remote.as_uri(), tmp_path / "cache")
    before = src.fetch()
    rewritten = push_commit(remote, {"c": "new"}, "rewritten history", rewrite=True)
    after = src.fetch()
    assert after.sha == rewritten != before.sha
    assert after.rewritten is True and after.changed is True
    assert sorted(p.name for p in after.path.iterdir()) == ["c"]
    nxt = src.fetch()
    assert nxt.changed is False and nxt.rewritten is False
    push_commit(remote, {"d": "x"}, "ordinary")
    assert src.fetch().rewritten is False


def test_old_trees_are_pruned(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a": "0"})
    src = GitSource(remote.as_uri(), tmp_path / "cache")
    paths = []
    for i in range(1, 6):
        push_commit(remote, {"a": str(i)}, f"c{i}")
        paths.append(src.fetch().path)
    alive = [p for p in paths if p.exists()]
    assert paths[-1] in alive and len(alive) <= 3 and not paths[0].exists()
    assert not os.access(paths[-1] / "a", os.W_OK) or os.geteuid() == 0  # root ignores modes
    assert (paths[-1] / "a").stat().st_mode & 0o222 == 0


def test_parallel_fetches_share_one_cache(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a": "1"})
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(3):
                results.append(GitSource(remote.as_uri(), tmp_path / "cache").fetch().sha)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and set(results) == {git("rev-parse", "main", cwd=remote)} and len(results) == 12


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://GitHub.com/o/r.git", "github.com"),
        ("https://github.com:8443/o/r.git", "github.com"),
        ("ssh://git@github.com:22/o/r.git", "github.com"),
        ("git@github.com:o/r.git", "github.com"),
        ("github.com:o/r.git", "github.com"),
        ("http://127.0.0.1:9/o.git", "127.0.0.1"),
        ("file:///srv/r.git", ""),
        ("/srv/r.git", ""),
        ("./r.git", ""),
    ],
)
def test_url_host(url: str, host: str) -> None:
    """Pull-request heads are fetched only when their repository is on the configured one's host."""
    assert url_host(url) == host


def test_fetch_refs_are_checked_and_need_a_commit(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="need commit"):
        GitSource("https://forge.test/o/r.git", tmp_path, fetch_refs=("refs/pull/1/head",))
    for bad in ("refs/pull/1/../../heads/x", "HEAD", "refs/pull/1/head\n", "--upload-pack=x"):
        with pytest.raises(SourceError, match="not a ref"):
            GitSource("https://forge.test/o/r.git", tmp_path, commit="a" * 40, fetch_refs=(bad,))
