"""A revision's data plane built from the last one (dataplane.build lends an unchanged VM's endpoints), and the
comparison of two equivalent planes: the same results as planes built from scratch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.model import ParseCache, Repo, load_repo
from reconciler.safety import dataplane
from reconciler.safety.connectivity import ConnectivityReport, compare, findings
from reconciler.safety.dataplane import DataPlane, build, equivalent
from tests.repos import edit, example_copy


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "repo")


@pytest.fixture(autouse=True)
def empty_memo() -> None:
    dataplane._MEMO.clear()


def scratch(repo: Repo) -> DataPlane:
    return dataplane._build(repo)


def same_plane(a: DataPlane, b: DataPlane) -> None:
    assert list(a.endpoints.items()) == list(b.endpoints.items())  # the order too: reports follow it
    assert list(a.exposures.items()) == list(b.exposures.items())
    assert a.domains == b.domains and list(a.vms) == list(b.vms)


def fresh_report(base: Path, path: Path) -> ConnectivityReport:
    """The comparison with nothing lent: both revisions loaded and built from scratch."""
    dataplane._MEMO.clear()
    return compare(load_repo(base), load_repo(path))


def test_a_plane_built_from_the_last_one_is_the_plane_built_from_scratch(repo: Path, tmp_path: Path) -> None:
    cache = ParseCache()
    first = load_repo(repo, cache=cache)
    prior = build(first)
    edit(repo / "vms" / "db.yaml", "cpu: 4", "cpu: 6")  # nothing about networking
    second = load_repo(repo, cache=cache)
    lent = build(second, prior)
    same_plane(lent, scratch(second))
    assert lent.by_vm["apps/web-1"] is prior.by_vm["apps/web-1"]  # lent, not worked out again
    edit(repo / "vms" / "db.yaml", "ipv4: 10.30.0.21/24", "ipv4: 10.30.0.22/24")  # db-1 moves address
    third = load_repo(repo, cache=cache)
    same_plane(build(third, lent), scratch(third))
    storage = repo / "networks" / "storage.yaml"
    storage.write_text("# a new line: a new network entry\n" + storage.read_text())
    fourth = load_repo(repo, cache=cache)
    same_plane(build(fourth, build(third)), scratch(fourth))


def test_the_plane_lends_from_the_base_it_is_compared_with_not_the_last_built(repo: Path, tmp_path: Path) -> None:
    """Pull-request plans build planes on other threads: the push's comparison lends from its own base."""
    cache = ParseCache()
    current = load_repo(repo, cache=cache)
    compare(None, current)
    base = build(current)
    other = load_repo(Path(shutil.copytree(repo, tmp_path / "pull-request")))
    compare(current, other)  # the last plane built is now another repository's
    edit(repo / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    proposed = load_repo(repo, cache=cache)
    compare(current, proposed)
    assert build(proposed).by_vm["apps/web-1"] is base.by_vm["apps/web-1"]


def test_equivalent_revisions_compare_as_planes_built_from_scratch(repo: Path, tmp_path: Path) -> None:
    base = Path(shutil.copytree(repo, tmp_path / "base"))
    cache = ParseCache()
    current = load_repo(repo, cache=cache)
    compare(None, current)
    edit(repo / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    proposed = load_repo(repo, cache=cache)
    assert equivalent(build(current), build(proposed))
    report = compare(current, proposed)
    assert report == fresh_report(base, repo)
    assert report.empty and report.preexisting == len(findings(scratch(proposed)))


def test_a_networking_change_is_compared_in_full(repo: Path, tmp_path: Path) -> None:
    base = Path(shutil.copytree(repo, tmp_path / "base"))
    cache = ParseCache()
    current = load_repo(repo, cache=cache)
    compare(None, current)
    edit(repo / "vms" / "web.yaml", "- network: vlan100", "- network: vlan200")  # web-1 leaves vlan100
    proposed = load_repo(repo, cache=cache)
    assert not equivalent(build(current), build(proposed))
    report = compare(current, proposed)
    assert report == fresh_report(base, repo)
    assert report.lost == 1 and [f.check for f in report.findings] == ["gateway-absent"]  # as test_connectivity
