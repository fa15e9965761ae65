"""The render cache (render.RenderCache) with the parse cache: the same objects as a fresh render, byte for byte,
and a changed VM document rendered again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import labels
from reconciler.errors import ModelError
from reconciler.model import ParseCache, load_repo
from reconciler.model.basedomain import ClusterDomain
from reconciler.render import RenderCache, render
from reconciler.render.kinds import Finding


def as_json(objects: list[dict[str, object]]) -> str:
    return json.dumps(objects, sort_keys=True)


def test_cached_renders_are_the_fresh_renders(tmp_path: Path) -> None:
    repo = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "repo", tmp_path / "repo"))
    parses, renders = ParseCache(), RenderCache()
    first = render(load_repo(repo, cache=parses), "a" * 40, renders)
    assert renders.hits == 0 and as_json(first.objects) == as_json(render(load_repo(repo), "a" * 40).objects)
    vms = len(renders.vms)
    assert vms >= 3
    # a new commit (another revision) that changes one VM document: the others come from the cache
    text = (repo / "vms" / "db.yaml").read_text()
    (repo / "vms" / "db.yaml").write_text(text.replace("cpu: 4", "cpu: 6", 1))
    second = render(load_repo(repo, cache=parses), "b" * 40, renders)
    fresh = render(load_repo(repo), "b" * 40)
    assert as_json(second.objects) == as_json(fresh.objects)
    assert 0 < renders.hits < vms  # every VM but the changed one
    db = next(o for o in second.objects if o["kind"] == "VirtualMachine" and o["metadata"]["name"] == "db-1")
    assert db["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] == 6  # type: ignore[index]
    # and without a revision, no object keeps the old one
    third = render(load_repo(repo, cache=parses), None, renders)
    assert as_json(third.objects) == as_json(render(load_repo(repo), None).objects)


def test_a_cache_hit_leaves_the_objects_of_an_earlier_render_alone(tmp_path: Path) -> None:
    """The controller keeps the last good revision's objects; a later render (even one that then fails its
    checks) must not restamp them through the cache."""
    repo = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "repo", tmp_path / "repo"))
    parses, renders = ParseCache(), RenderCache()
    first = render(load_repo(repo, cache=parses), "a" * 40, renders)
    before = as_json(first.objects)
    second = render(load_repo(repo, cache=parses), "b" * 40, renders)
    assert renders.hits >= 3
    vms = [o for o in first.objects if o["kind"] == "VirtualMachine"]
    assert vms and {o["metadata"]["annotations"][labels.REVISION] for o in vms} == {"a" * 40}  # type: ignore[index]
    assert as_json(first.objects) == before
    assert {o["metadata"]["annotations"][labels.REVISION] for o in second.objects} == {"b" * 40}  # type: ignore[index]


def test_a_base_domain_from_the_cluster_still_hits_the_cache(tmp_path: Path) -> None:
    """Each load derives a new (equal) Cluster spec carrying the cluster's base domain."""
    repo = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "repo", tmp_path / "repo"))
    cluster = repo / "clusters" / "prod.yaml"
    cluster.write_text(cluster.read_text().replace("  baseDomain: prod.example.com\n", "", 1))
    parses, renders = ParseCache(), RenderCache()

    def domains() -> ClusterDomain:
        return ClusterDomain("prod.example.com", openshift=True)

    first = load_repo(repo, domains=domains, cache=parses)
    assert first.cluster.spec.base_domain == "prod.example.com"
    render(first, "a" * 40, renders)
    assert renders.hits == 0
    second = load_repo(repo, domains=domains, cache=parses)
    assert second.cluster.spec is not first.cluster.spec
    render(second, "b" * 40, renders)
    assert renders.hits == len(renders.vms) >= 3


def test_cached_objects_that_passed_their_checks_are_not_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-VM commit checks the changed VM's objects (and the non-VM ones), not every cached VM's; objects of
    a render that failed its checks are checked again however often they come from the cache."""
    from reconciler.render import checks

    repo = Path(shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "repo", tmp_path / "repo"))
    parses, renders = ParseCache(), RenderCache()
    checked: list[str] = []
    real, refuse = checks.check_object, {"db-1"}

    def counting(obj: dict[str, Any], plain: bool = True) -> Iterator[Finding]:
        checked.append(f"{obj['kind']}/{obj['metadata']['name']}")
        if obj["kind"] == "VirtualMachine" and obj["metadata"]["name"] in refuse:
            yield Finding(("spec",), "refused for the test")
        yield from real(obj, plain)

    monkeypatch.setattr(checks, "check_object", counting)
    for _ in range(2):  # the second render takes every VM from the cache: db-1 is still refused
        with pytest.raises(ModelError, match="refused for the test"):
            render(load_repo(repo, cache=parses), "a" * 40, renders)
    refuse.clear()
    checked.clear()
    first = render(load_repo(repo, cache=parses), "a" * 40, renders)
    assert len(checked) == len(first.objects)  # never passed before: all checked
    checked.clear()
    text = (repo / "vms" / "db.yaml").read_text()
    (repo / "vms" / "db.yaml").write_text(text.replace("cpu: 4", "cpu: 6", 1))
    second = render(load_repo(repo, cache=parses), "b" * 40, renders)
    vms = {f"VirtualMachine/{o['metadata']['name']}" for o in second.objects if o["kind"] == "VirtualMachine"}
    assert "VirtualMachine/db-1" in checked  # the changed VM
    assert vms - {"VirtualMachine/db-1"} and not (vms - {"VirtualMachine/db-1"}) & set(checked)  # not the cached
    assert len(checked) < len(second.objects)
