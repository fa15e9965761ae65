"""publish_status / read_status against real bare repositories (file:// and a token-protected smart-HTTP)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from reconciler.clients.source import TokenAuth
from reconciler.clients.status import publish_status, read_status
from reconciler.errors import SourceError
from tests.gitutil import git, isolate_git, make_remote, push_commit, serve_git_http


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_git(monkeypatch, tmp_path / "home")


def _tree(remote: Path, ref: str) -> list[str]:
    return git("ls-tree", "-r", "--name-only", ref, cwd=remote).splitlines()


def test_orphan_branch_then_no_empty_commit(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"net.yaml": "desired\n"})
    main_before = git("rev-parse", "main", cwd=remote)
    url = remote.as_uri()

    sha = publish_status(url, "east", {"summary.json": '{"ok": true}\n', "objects/a.txt": b"bytes"}, "status 1",
                         tracked_branch="main", cache_root=tmp_path / "c")  # fmt: skip
    assert sha == git("rev-parse", "virtnet-status", cwd=remote)
    assert git("rev-list", "--parents", "-n1", sha, cwd=remote) == sha  # orphan: no parent
    assert _tree(remote, sha) == ["clusters/east/objects/a.txt", "clusters/east/summary.json"]
    assert git("log", "-1", "--format=%an <%ae>%n%s", sha, cwd=remote) == "virtnet <virtnet@localhost>\nstatus 1"
    assert git("rev-parse", "main", cwd=remote) == main_before  # the tracked branch is untouched

    same = publish_status(url, "east", {"summary.json": '{"ok": true}\n', "objects/a.txt": "bytes"}, "status 2",
                          cache_root=tmp_path / "c")  # fmt: skip
    assert same is None
    assert git("rev-list", "--count", "virtnet-status", cwd=remote) == "1"

    newer = publish_status(url, "east", {"summary.json": '{"ok": false}\n'}, "status 3",
                           cache_root=tmp_path / "other-cache", author=("bot", "bot@example.test"))  # fmt: skip
    assert newer is not None and git("rev-parse", f"{newer}^", cwd=remote) == sha
    assert _tree(remote, newer) == ["clusters/east/summary.json"]  # replace=True drops stale files
    assert read_status(url, "east", cache_root=tmp_path / "c") == {"summary.json": b'{"ok": false}\n'}
    assert read_status(url, "west", cache_root=tmp_path / "c") == {}
    assert read_status(url, "east", "no-such-branch", cache_root=tmp_path / "c") == {}


def test_only_own_folder_is_touched(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"x": "y"})
    push_commit(remote, {"README.md": "status\n", "clusters/west/s.json": "west\n",
                         "clusters/eastern/s.json": "prefix-neighbour\n", "clusters/east/old.json": "old\n"},
                "seed", branch="virtnet-status")  # fmt: skip
    url = remote.as_uri()
    sha = publish_status(url, "east", {"s.json": "east\n"}, "east status", cache_root=tmp_path / "c")
    assert sha is not None
    assert _tree(remote, sha) == ["README.md", "clusters/east/s.json", "clusters/eastern/s.json",
                                  "clusters/west/s.json"]  # fmt: skip
    merged = publish_status(url, "east", {"more.json": "m\n"}, "add", cache_root=tmp_path / "c", replace=False)
    assert merged is not None
    assert read_status(url, "east", cache_root=tmp_path / "c") == {"s.json": b"east\n", "more.json": b"m\n"}
    assert read_status(url, "west", cache_root=tmp_path / "c") == {"s.json": b"west\n"}


def test_refusals(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"x": "y"})
    url = remote.as_uri()
    with pytest.raises(SourceError, match="tracked branch"):
        publish_status(url, "east", {"a": "b"}, "m", branch="main", tracked_branch="main", cache_root=tmp_path / "c")
    with pytest.raises(SourceError, match="tracked branch"):
        publish_status(url, "east", {"a": "b"}, "m", branch="refs/heads/prod", tracked_branch="prod",
                       cache_root=tmp_path / "c")  # fmt: skip
    for bad_cluster in ("../west", "a/b", "", ".."):
        with pytest.raises(SourceError, match="cluster name"):
            publish_status(url, bad_cluster, {"a": "b"}, "m", cache_root=tmp_path / "c")
    for bad_file in ("../west/x", "/etc/passwd", "a/../../b", ".git/config"):
        with pytest.raises(SourceError, match="status file name"):
            publish_status(url, "east", {bad_file: "b"}, "m", cache_root=tmp_path / "c")
    assert git("for-each-ref", "--format=%(refname)", cwd=remote) == "refs/heads/main"
    with pytest.raises(SourceError, match="remote unreachable"):
        publish_status((tmp_path / "absent.git").as_uri(), "east", {"a": "b"}, "m", cache_root=tmp_path / "c")


def test_damaged_status_cache_is_recloned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = make_remote(tmp_path, {"x": "y"})
    url = remote.as_uri()
    first = publish_status(url, "east", {"s": "1"}, "one", cache_root=tmp_path / "c")
    (repo,) = (tmp_path / "c" / "status").glob("*/repo.git")
    for d in (repo / "objects").iterdir():
        if d.name not in ("info", "pack"):
            shutil.rmtree(d)
    for p in (repo / "objects" / "pack").iterdir():
        p.unlink()
    second = publish_status(url, "east", {"s": "2"}, "two", cache_root=tmp_path / "c")
    assert second is not None and git("rev-parse", f"{second}^", cwd=remote) == first
    (repo / "HEAD").write_text("garbage")
    assert read_status(url, "east", cache_root=tmp_path / "c") == {"s": b"2"}
    assert "re-cloning" in caplog.text


def test_concurrent_publishers_lose_nothing(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"x": "y"})
    url = remote.as_uri()
    clusters, cycles = ["east", "west", "north"], 10
    errors: list[BaseException] = []
    start = threading.Barrier(len(clusters))

    def run(cluster: str) -> None:
        try:
            start.wait()
            for i in range(cycles):
                sha = publish_status(url, cluster, {"status.json": f'{{"cycle": {i}}}\n', f"c{i}.txt": str(i)},
                                     f"{cluster} cycle {i}", cache_root=tmp_path / f"cache-{cluster}",
                                     attempts=40)  # fmt: skip
                assert sha is not None
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in clusters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    messages = git("log", "--format=%s", "virtnet-status", cwd=remote).splitlines()
    assert sorted(messages) == sorted(f"{c} cycle {i}" for c in clusters for i in range(cycles))
    assert git("rev-list", "--merges", "--count", "virtnet-status", cwd=remote) == "0"
    for c in clusters:
        assert read_status(url, c, cache_root=tmp_path / "reader") == {
            "status.json": b'{"cycle": 9}\n', "c9.txt": b"9",
        }  # fmt: skip
        # each cluster's own commits appear in order
        own = [m for m in reversed(messages) if m.startswith(f"{c} ")]
        assert own == [f"{c} cycle {i}" for i in range(cycles)]


def test_publish_over_token_http_redacts_the_token(tmp_path: Path) -> None:
    token = "status-CANARY-91b2c3d4"
    root = tmp_path / "srv"
    root.mkdir()
    remote = make_remote(root, {"x": "y"}, name="cfg.git")
    (tmp_path / "token").write_text(token)
    auth = TokenAuth(token_file=tmp_path / "token")
    with serve_git_http(root, token) as srv:
        url = f"{srv.url}/cfg.git"
        sha = publish_status(url, "east", {"error.txt": f"fetch failed: Authorization: Bearer {token}\n",
                                           "url.txt": f"https://x-access-token:{token}@git.example.test/r.git"},
                             f"status with {token}", auth=auth, cache_root=tmp_path / "c")  # fmt: skip
        assert sha is not None
        files = read_status(url, "east", auth=auth, cache_root=tmp_path / "c")
        with pytest.raises(SourceError, match="authentication failed") as err:
            publish_status(url, "east", {"a": "b"}, "m", cache_root=tmp_path / "c2")
        assert token not in str(err.value)
    assert set(files) == {"error.txt", "url.txt"}
    blob = git("cat-file", "-p", f"{sha}:clusters/east/error.txt", cwd=remote)
    assert token not in blob and "***" in blob
    assert token not in git("cat-file", "-p", f"{sha}:clusters/east/url.txt", cwd=remote)
    assert token not in git("log", "-1", "--format=%B", sha, cwd=remote)
    assert all(token.encode() not in v for v in files.values())
    for config in (tmp_path / "c").rglob("config"):
        assert token not in config.read_text()
