"""A render made from the last one (render.delta): the very list a full render gives, or a full render."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reconciler.errors import ModelError
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
    change = vms = [e for e in loaded.entries if e.kind == "VM"]
    change = Delta([vm], list(range(len(last.objects))), [], vms, last.others)
    taken = copy.deepcopy(next(o for o in last.objects if o["kind"] == "Service"))
    assert merged(last, change, [(taken, vm)]) is None
    same_order = copy.deepcopy(taken)
    same_order["apiVersion"] = "example.com/v1"  # another object id, the same sort key
    assert merged(last, change, [(same_order, vm)]) is None
    fresh = copy.deepcopy(taken)
    fresh["metadata"]["name"] = "zzz-new"
    result = merged(last, change, [(fresh, vm)])
    assert result is not None and fresh in result.objects and len(result.objects) == len(last.objects) + 1
    assert result.keys == sorted(result.keys)


def rendered(repo: Path, parses: ParseCache | None, renders: RenderCache | None, revision: str | None) -> str:
    """The render's objects, or the text of its problems."""
    try:
        return as_json(render(load_repo(repo, cache=parses), revision, renders).objects)
    except ModelError as exc:
        return str(exc)


def test_a_changed_vm_that_takes_a_name_and_fails_a_check_fails_as_the_full_render(repo: Path) -> None:
    """The full render names the first producer of a name and leaves the second one's objects unchecked: the
    render from the last one hands such a commit to it rather than word the problems its own way."""
    db = repo / "vms" / "db.yaml"
    edit(db, "    - name: postgres\n      port: 5432", "    - name: postgres\n      port: 5432\n      service: shared")
    parses, renders = ParseCache(), RenderCache()
    render(load_repo(repo, cache=parses), None, renders)
    new = db.read_text().replace("name: db-1", "name: 2db", 1).replace('"02:00:00:00:02:0', '"02:00:00:00:09:0')
    new = new.replace("192.168.100.21", "192.168.100.91").replace("10.30.0.21", "10.30.0.91")
    (repo / "vms" / "zz.yaml").write_text(new.replace("      service: shared", "      service: shared\n    - port: 80"))
    cached, fresh = rendered(repo, parses, renders, None), rendered(repo, None, None, None)
    assert cached == fresh and "is also produced by" in fresh
    (repo / "vms" / "zz.yaml").unlink()  # and the next commit, back to the last good one, is rendered from it
    assert rendered(repo, parses, renders, None) == rendered(repo, None, None, None)
    assert renders.deltas == 1


def test_objects_a_failed_render_stamped_otherwise_are_never_handed_back_as_they_are(repo: Path) -> None:
    db, good = repo / "vms" / "db.yaml", (repo / "vms" / "db.yaml").read_text()
    parses, renders = ParseCache(), RenderCache()
    a, b = "a" * 40, "b" * 40
    render(load_repo(repo, cache=parses), a, renders)
    db.write_text(
        good.replace("name: postgres\n      port: 5432", "name: postgres\n      port: 5432\n      service: 9bad")
    )
    with pytest.raises(ModelError):  # another stamp, and a Service name the API server refuses
        render(load_repo(repo, cache=parses), b, renders)
    db.write_text(good.replace("cpu: 4", "cpu: 6"))
    assert rendered(repo, parses, renders, a) == rendered(repo, None, None, a)  # from the first render
    assert renders.deltas == 1
    config = repo / "manifests" / "web-config.yaml"
    edit(config, '"8080"', '"8081"')  # a plain manifest: in full, every VM from the cache
    assert rendered(repo, parses, renders, a) == rendered(repo, None, None, a)


def test_a_render_hands_out_lists_of_its_own(repo: Path) -> None:
    """The controller keeps the last render's objects: changing its lists must not change the cache's."""
    parses, renders = ParseCache(), RenderCache()
    first = render(load_repo(repo, cache=parses), None, renders)
    first.objects.clear()
    first.origins.clear()
    edit(repo / "vms" / "db.yaml", "cpu: 4", "cpu: 6")
    cached_and_fresh(repo, parses, renders)
    assert renders.deltas == 1
