"""The VM rules (model.vmrules) through their memo: a later load takes over an unchanged VM's findings only while
its context (Cluster, networks) is the same; whatever changed, the problems are those of a fresh load."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ModelError
from reconciler.model import ParseCache, load_repo
from reconciler.model.vmrules import VmMemo
from tests.repos import edit, example_copy


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "repo")


def problems(repo: Path, cache: ParseCache | None = None) -> list[str]:
    try:
        load_repo(repo, cache=cache)
    except ModelError as exc:
        return [str(p) for p in exc.problems]
    return []


def same_as_fresh(repo: Path, cache: ParseCache) -> list[str]:
    found = problems(repo, cache)
    assert found == problems(repo)
    return found


def memo(cache: ParseCache) -> VmMemo:
    assert isinstance(cache.rules, VmMemo)
    return cache.rules


def test_an_unchanged_vm_is_not_checked_again_and_a_changed_one_is(repo: Path) -> None:
    cache = ParseCache()
    assert same_as_fresh(repo, cache) == []
    vms = len(memo(cache).found)
    assert vms >= 3 and memo(cache).hits == 0
    edit(repo / "vms" / "db.yaml", "    - network: tenant-l2\n", "    - network: nosuch\n")
    found = problems(repo, cache)
    assert memo(cache).hits == vms - 1  # every VM but db-1 taken over
    assert found == problems(repo)
    assert len(found) == 1 and "network 'nosuch' is not defined" in found[0] and "vms/db.yaml" in found[0]


@pytest.mark.parametrize(
    ("path", "old", "new", "expected"),
    [
        # db-1 is on the storage network: offering it elsewhere makes db-1 wrong without touching db-1's file
        (
            "networks/storage.yaml",
            "namespaces: [db]",
            "namespaces: [apps]",
            "'storage' is not offered in namespace 'db'",
        ),
        (
            "clusters/prod.yaml",
            "allowedNamespaces: [apps, db, nfv]",
            "allowedNamespaces: [apps, nfv]",
            "'db' is not allowed",
        ),
    ],
)
def test_a_problem_of_an_unchanged_vm_follows_its_context(
    repo: Path, path: str, old: str, new: str, expected: str
) -> None:
    cache = ParseCache()
    assert same_as_fresh(repo, cache) == []
    edit(repo / path, old, new)
    found = same_as_fresh(repo, cache)
    assert any(expected in p and "vms/db.yaml" in p for p in found), found
    edit(repo / path, new, old)
    assert same_as_fresh(repo, cache) == []


def test_the_same_vm_problem_is_reported_again_from_the_memo(repo: Path) -> None:
    """A VM that stays wrong across loads (another file changes) keeps its problem, taken from the memo."""
    cache = ParseCache()
    edit(repo / "vms" / "db.yaml", "    - network: tenant-l2\n", "    - network: nosuch\n")
    first = same_as_fresh(repo, cache)
    assert len(first) == 1 and "network 'nosuch' is not defined" in first[0]
    hits = memo(cache).hits
    manifest = repo / "manifests" / "web-config.yaml"
    manifest.write_text(manifest.read_text() + "  EXTRA: x\n")  # a plain manifest: the VMs' context is the same
    assert same_as_fresh(repo, cache) == first
    assert memo(cache).hits == hits + len(memo(cache).found)
