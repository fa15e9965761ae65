"""A render made from the last one (render.delta): the very list a full render gives, or a full render."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reconciler.model import ParseCache, load_repo
from reconciler.render import RenderCache, render
from reconciler.render.delta import Delta, merged
from tests.repos import edit, example_copy


def as_json(objects: list[dict[str, object]]) -> str:
    return json.dumps(objects, sort_keys=True)  # keys sorted, the objects' order kept


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "repo")


def cached_and_fresh(repo: Path, parses: ParseCache, renders: RenderCache, revision: str | None = None) -> None:
    cached = render(load_repo(repo, cache=parses), revision, renders)
    fresh = render(load_repo(repo), revision)
    assert as_json(cached.objects) == as_json(fresh.objects)
    assert cached.origins.keys() == fresh.origins.keys()
    assert all(cached.origins[k].doc.ref(()).file == fresh.origins[k].doc.ref(()).file for k in fresh.origins)


def test_one_vm_changed_is_rendered_from_the_last_render(repo: Path) -> None:
    parses, renders = ParseCache(), RenderCache()
    first = render(load_repo(repo, cache=parses), None, renders)
    assert renders.deltas == 0
    edit(repo / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    cached_and_fresh(repo, parses, renders)
    assert renders.deltas == 1
    second = render(load_repo(repo, cache=parses), None, renders)  # nothing changed: from the last one again
    assert renders.deltas == 2
    # the objects of the VMs that did not change are the very objects of the first render
    untouched = {id(o) for o in first.objects if o["kind"] == "VirtualMachine" and o["metadata"]["name"] != "db-1"}
    assert untouched and untouched <= {id(o) for o in second.objects}


def test_a_vm_added_renamed_and_removed_keeps_the_full_renders_order(repo: Path) -> None:
    parses, renders = ParseCache(), RenderCache()
    render(load_repo(repo, cache=parses), None, renders)
    extra = (repo / "vms" / "db.yaml").read_text()
    extra = extra.replace("name: db-1", "name: aa-db", 1).replace('"02:00:00:00:02:0', '"02:00:00:00:09:0')
    extra = extra.replace("192.168.100.21", "192.168.100.91").replace("10.30.0.21", "10.30.0.91")
    (repo / "vms" / "aa.yaml").write_text(extra)  # sorts before every other VM
    cached_and_fresh(repo, parses, renders)
    edit(repo / "vms" / "aa.yaml", "name: aa-db", "name: zz-db")  # now after every other
    cached_and_fresh(repo, parses, renders)
    (repo / "vms" / "aa.yaml").unlink()
    cached_and_fresh(repo, parses, renders)
    assert renders.deltas == 3


def test_anything_but_vms_changed_renders_in_full(repo: Path) -> None:
    parses, renders = ParseCache(), RenderCache()
    render(load_repo(repo, cache=parses), None, renders)
    storage = repo / "networks" / "storage.yaml"
    storage.write_text(storage.read_text())  # rewritten as it was: the same entries
    cached_and_fresh(repo, parses, renders)
    assert renders.deltas == 1
    storage.write_text("# one more line\n" + storage.read_text())
    cached_and_fresh(repo, parses, renders)  # the network document is a new entry: in full
    assert renders.deltas == 1
    cached_and_fresh(repo, parses, renders, revision="b" * 40)  # another stamp: in full
    assert renders.deltas == 1


def test_an_added_object_that_takes_a_name_or_an_order_already_taken_is_left_to_the_full_render(repo: Path) -> None:
    """The full render names the first producer by file order: the delta hands such a change back to it."""
    parses, renders = ParseCache(), RenderCache()
    loaded = load_repo(repo, cache=parses)
    render(loaded, None, renders)
    last = renders.last
    assert last is not None
    vm = next(e for e in loaded.entries if e.kind == "VM")
    change = Delta([vm], list(range(len(last.objects))), [])
    taken = copy.deepcopy(next(o for o in last.objects if o["kind"] == "Service"))
    assert merged(last, loaded, change, [(taken, vm)]) is None
    same_order = copy.deepcopy(taken)
    same_order["apiVersion"] = "example.com/v1"  # another object id, the same sort key
    assert merged(last, loaded, change, [(same_order, vm)]) is None
    fresh = copy.deepcopy(taken)
    fresh["metadata"]["name"] = "zzz-new"
    result = merged(last, loaded, change, [(fresh, vm)])
    assert result is not None and fresh in result.objects and len(result.objects) == len(last.objects) + 1
    assert result.keys == sorted(result.keys)
