"""Commits too big for the controller are refused before export, with every offending path named (#14, class 14).

Before: a 1 GB blob was exported as 963 MB per tree (three trees kept; the chart's cache is 1 Gi) and 8
files of 20,000 ConfigMaps took 716 MB to validate (the chart's memory limit is 512 Mi). Now the sizes come
from ``git ls-tree -l`` and nothing is written for a refused commit; the document count is checked on the
export before anything parses it. The real limits are used where the data is cheap to make (a blob one
byte over the per-file limit, the 8 x 20,000 ConfigMaps of the report); the others are scaled down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.clients.source import GitSource
from reconciler.clients.treelimits import MAX_FILE_BYTES, TreeLimits, documents
from reconciler.errors import SourceError
from tests.gitutil import git, isolate_git, make_remote, push_commit

CM = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: apps\ndata:\n  k: v{i}\n"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_git(monkeypatch, tmp_path / "home")


def exported(src: GitSource) -> list[str]:
    """Everything under the trees folder, finished or not (a refused commit must leave nothing)."""
    return sorted(p.name for p in src.trees_dir.iterdir()) if src.trees_dir.exists() else []


def refused(src: GitSource, *fragments: str) -> str:
    before = exported(src)
    with pytest.raises(SourceError) as err:
        src.fetch()
    message = str(err.value)
    assert all(f in message for f in fragments), message
    assert exported(src) == before
    return message


def test_a_blob_over_the_per_file_limit_is_refused_before_export_and_the_next_commit_is_fine(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.yaml": "x: 1\n"})
    src = GitSource(remote.as_uri(), tmp_path / "cache")
    first = src.fetch()
    blob = b"\0" * (MAX_FILE_BYTES + 1)  # what the issue did with 1 GB, one byte over the limit
    push_commit(remote, {"docs/big.bin": blob, "b.yaml": "y: 2\n"}, "a big blob")
    message = refused(src, "refused before export", f"docs/big.bin ({MAX_FILE_BYTES + 1} bytes)")
    assert f"at most {MAX_FILE_BYTES} bytes" in message
    assert first.path.is_dir()  # the tree in use stays
    fixed = push_commit(remote, {"docs/big.bin": None}, "drop it")
    assert src.fetch().sha == fixed


def test_the_reported_repository_of_160000_configmaps_is_refused_before_export(tmp_path: Path) -> None:
    files = {f"manifests/cm{f}.yaml": "".join(CM.format(i=f"{f}-{i}") for i in range(20_000)) for f in range(8)}
    remote = make_remote(tmp_path, files)
    git("config", "pack.window", "0", cwd=remote)  # serve 16 MB of near-identical text without a delta search
    refused(GitSource(remote.as_uri(), tmp_path / "cache"), "YAML files have", "bytes together")


@pytest.mark.parametrize(
    ("limits", "files", "fragments"),
    [
        (TreeLimits(tree_files=10), {f"f{i}.txt": "x" for i in range(11)}, ("11 files", "at most 10")),
        (TreeLimits(tree_bytes=1000), {"a.txt": "x" * 600, "b.txt": "y" * 600}, ("1200 bytes", "at most 1000")),
        (TreeLimits(yaml_bytes=100), {"a.yaml": "a: 1\n" * 15, "b.yml": "b: 2\n" * 15}, ("YAML files have 150",)),
        (TreeLimits(documents=5), {"a.yaml": "".join(CM.format(i=i) for i in range(6))}, ("more than 5 documents",)),
        (TreeLimits(documents=5), {"a.yaml": CM * 3, "sub/b.yml": "x: 1\n---\ny: 2\n---\nz: 3\n"}, ("documents",)),
    ],
    ids=["files", "bytes", "yaml-bytes", "documents", "documents-across-files"],
)
def test_scaled_limits(tmp_path: Path, limits: TreeLimits, files: dict[str, str], fragments: tuple[str, ...]) -> None:
    remote = make_remote(tmp_path, files)
    refused(GitSource(remote.as_uri(), tmp_path / "cache", limits=limits), *fragments)


def test_within_the_limits_is_accepted(tmp_path: Path) -> None:
    files = {"a.yaml": CM * 5, "big.txt": "x" * 5000, "c.yml": "a: 1\n" * 10}
    remote = make_remote(tmp_path, files)
    limits = TreeLimits(tree_files=3, tree_bytes=6000, yaml_bytes=600, documents=6)
    rev = GitSource(remote.as_uri(), tmp_path / "cache", limits=limits).fetch()
    assert sorted(p.name for p in rev.path.iterdir()) == ["a.yaml", "big.txt", "c.yml"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (b"", 0),
        (b"  \n", 0),
        (b"a: 1\n", 1),
        (b"---\na: 1\n", 1),
        (b"# a comment\n\n--- \na: 1\n---\nb: 2\n", 2),
        (b"%YAML 1.2\n---\na: 1\n", 1),
        (b"a: 1\n---\nb: 2\n--- # third\nc: 3\n", 3),
        (b"a: |\n  ---\n  not a separator\n", 1),
        (b"a: 1\n----\n", 1),
    ],
)
def test_documents_are_counted_from_separators(text: bytes, count: int) -> None:
    assert documents(text) == count
