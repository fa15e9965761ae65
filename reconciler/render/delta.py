"""A render made from the last one: the commit changed a few VM documents and nothing else (pure).

Why: ``virtnet run`` renders every commit, and at 10,000 VMs most commits change one VM. Going through all
15,000 objects again (stamping, checking, sorting, one id each) costs about 0.3 s, for a result that differs
in a handful of objects. When every document but some VMs is the very same entry as in the last successful
render (the parse cache gives back the same entry for an unchanged file), the result is the last one with
those VMs' objects taken out and their new ones put in at their sorted place: the same list, in the same
order, a full render would give. Anything else (a network, the Cluster, a plain manifest, many VMs changed,
two objects of one name, an order that is not unique, an object that fails a check) goes through the full
render, which also words the errors.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from reconciler.model import Entry, Raw, Repo
from reconciler.objects import Obj, obj_id, sort_key

#: a change to more VMs than this share of them is rendered in full: as quick, and simpler to trust
MAX_SHARE = 0.05


@dataclass(frozen=True)
class Snapshot:
    """The inputs and result of the last successful render, and each object's document (by id) and sort key,
    aligned with ``objects``."""

    stamp: tuple[str, str | None]
    cluster: Entry[Any]
    others: tuple[Entry[Any] | Raw, ...]  # every document but the VMs, in repository order
    vms: dict[int, Entry[Any]]
    objects: list[Obj]
    origins: dict[str, Entry[Any] | Raw]
    owners: list[int]
    keys: list[tuple[int, int, str, str, str]]


def snapshot(repo: Repo, stamp: tuple[str, str | None], objects: list[Obj], origins: dict[str, Any]) -> Snapshot:
    """What the next render needs of this one (``objects`` sorted, as render returns them)."""
    vms, others = _split(repo)
    return Snapshot(
        stamp,
        repo.cluster,
        others,
        {id(e): e for e in vms},
        objects,
        origins,
        [id(origins[obj_id(o)]) for o in objects],
        [sort_key(o) for o in objects],
    )


def _split(repo: Repo) -> tuple[list[Entry[Any]], tuple[Entry[Any] | Raw, ...]]:
    """The VM entries, and every other document (entries, then plain manifests) in repository order."""
    vms: list[Entry[Any]] = []
    others: list[Entry[Any] | Raw] = []
    for e in repo.entries:
        (vms if e.kind == "VM" else others).append(e)
    return vms, (*others, *repo.raw)


@dataclass(frozen=True)
class Delta:
    """What changed since the snapshot: the new VM entries, the positions of the objects kept and dropped, and
    the repository's documents split as the snapshot keeps them (for the next snapshot, not split again)."""

    new: list[Entry[Any]]
    kept: list[int]
    dropped: list[int]
    vms: list[Entry[Any]]
    others: tuple[Entry[Any] | Raw, ...]


def delta(last: Snapshot | None, repo: Repo, stamp: tuple[str, str | None]) -> Delta | None:
    """The VM documents that changed since ``last``, or None when the render must be made in full."""
    if last is None or last.stamp != stamp:
        return None
    cluster = repo.cluster
    if cluster.doc is not last.cluster.doc or cluster.spec != last.cluster.spec:
        return None
    vms, others = _split(repo)
    if len(others) != len(last.others) or any(a is not b for a, b in zip(others, last.others, strict=True)):
        return None
    new = [e for e in vms if last.vms.get(id(e)) is not e]
    gone = last.vms.keys() - {id(e) for e in vms}  # entries the last render had: alive, so ids are unique
    if len(new) + len(gone) > 2 * max(1, int(len(vms) * MAX_SHARE)):  # a changed VM is one out, one in
        return None
    kept: list[int] = []
    dropped: list[int] = []
    for i, owner in enumerate(last.owners):
        (dropped if owner in gone else kept).append(i)
    return Delta(new, kept, dropped, vms, others)


def merged(last: Snapshot, change: Delta, added: list[tuple[Obj, Entry[Any]]]) -> Snapshot | None:
    """``last`` without the changed VMs' objects, with ``added`` (stamped, checked) at their sorted places;
    None when an added object takes a name already produced, or an order a full render would decide by file
    order (an equal sort key)."""
    objects = [last.objects[i] for i in change.kept]
    keys = [last.keys[i] for i in change.kept]
    owners = [last.owners[i] for i in change.kept]
    origins = dict(last.origins)
    for i in change.dropped:
        del origins[obj_id(last.objects[i])]
    for obj, origin in added:
        key = obj_id(obj)
        if key in origins:
            return None
        origins[key] = origin
        order = sort_key(obj)
        at = bisect_left(keys, order)
        if at < len(keys) and keys[at] == order:
            return None
        keys.insert(at, order)
        objects.insert(at, obj)
        owners.insert(at, id(origin))
    vms = {id(e): e for e in change.vms}
    return Snapshot(last.stamp, last.cluster, change.others, vms, objects, origins, owners, keys)
