"""The last validation step: every rendered object is one the engine can send and the API server accepts (pure).

A repository that validates must render, serialise and be accepted, so nothing is written before that is
known: an apply that dies half way (a date in a ConfigMap, a Service named after a VM whose name starts with
a digit, a VLAN interface name of 16 characters) leaves the cluster between two revisions. These checks run
on the *rendered* objects, virtnet's and plain manifests alike, and hold what the API server, the CRDs'
schemas and the kernel would refuse later (``reconciler.render.syntax`` spells the syntax rules,
``reconciler.render.kinds`` the per-kind constraints, ``reconciler.render.shapes`` the mappings and lists they
read, so that a manifest of another shape is a finding, never a crash):

* kind and apiVersion are ones the engine sends (``reconciler.objects.API_RESOURCES``), in the right scope;
* names as Kubernetes validates them per kind (DNS-1123 label, DNS-1035 label or subdomain), namespaces;
* label keys and values, annotation keys and their total size, node selectors and Service selectors;
* plain JSON data only in plain manifests (no dates, bytes, non-string keys, NaN), strings where the API
  wants strings (ConfigMap and Secret data), base64 in Secret ``data``;
* per kind, the cheap constraints of the upstream schemas: Service ports, VM memory and disk sizes above
  zero, NNCP interface names the kernel takes (at most 15 characters), SR-IOV ranges and enums.

Each problem is reported at the document that produced the object (``Rendered.origins``): for a plain
manifest at the field itself, for a virtnet document at the field holding the offending value (or its
``metadata.name``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from reconciler import labels
from reconciler.errors import Problem, SourceRef
from reconciler.model import Entry, Raw
from reconciler.model.loader import Path_
from reconciler.objects import API_RESOURCES, MANAGED_KINDS, PATCH_ONLY_KINDS, Obj, display, is_patch_only, obj_id
from reconciler.render import syntax
from reconciler.render.kinds import GOOD_KEYS, KIND_CHECKS, Finding, label_map, remember
from reconciler.render.shapes import must_be_mapping, utf8_size

MAX_ANNOTATIONS_BYTES = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB (keys and values, in bytes)
#: the annotations the engine adds at the write, and their longest values: the revision stamp
#: (``engine.plan.with_revision``: a commit id, 64 hex digits in a SHA-256 repository) and the adoption mark
#: (``engine.plan``: "true"). Room is kept for them, so an object that passes here is not refused then.
ENGINE_ANNOTATIONS = {labels.REVISION: 64, labels.ADOPTED: len("true")}
ENGINE_ANNOTATION_BYTES = sum(len(key) + size for key, size in ENGINE_ANNOTATIONS.items())
ANNOTATIONS_ROOM = MAX_ANNOTATIONS_BYTES - ENGINE_ANNOTATION_BYTES
_INT64 = 2**63
#: kinds whose owned objects the engine creates, updates and prunes (patch-only kinds are checked apart)
_WRITABLE = {kind: API_RESOURCES[kind] for kind in MANAGED_KINDS}


def check_objects(
    objects: list[Obj],
    origins: dict[str, Entry[Any] | Raw],
    skip: Callable[[Entry[Any] | Raw], bool] | None = None,
) -> list[Problem]:
    """Every problem of every rendered object, located in the document behind it; ``skip`` says which
    documents' objects are known to pass (the render cache's, checked when they were rendered)."""
    problems: list[Problem] = []
    for obj in objects:
        origin = origins.get(obj_id(obj))
        if skip is not None and origin is not None and skip(origin):
            continue
        for finding in check_object(obj, plain=not isinstance(origin, Entry)):
            where = _locate(origin, obj, finding) if origin is not None else SourceRef(".")
            problems.append(Problem(where, f"{display(obj)}: {finding.message}"))
    return problems


def check_object(obj: Obj, plain: bool = True) -> Iterator[Finding]:
    """``plain``: the object is a manifest from the repository (its whole content is the user's, so every
    value's type is checked); objects rendered from virtnet documents are built from typed fields."""
    seen: set[Path_] = set()  # one finding per field: the first says it best (a date in data is not a string)
    for finding in _findings(obj, plain):
        if finding.path not in seen:
            seen.add(finding.path)
            yield finding


def _findings(obj: Obj, plain: bool) -> Iterator[Finding]:
    if plain:
        yield from _plain_data(obj, ())
    yield from _identity(obj)
    meta = obj["metadata"]
    yield from label_map(meta.get("labels"), ("metadata", "labels"))
    yield from _annotations(meta.get("annotations"))
    spec = obj.get("spec")
    if spec is not None and type(spec) is not dict:  # the per-kind checks read a spec only as a mapping
        yield from must_be_mapping(spec, ("spec",))
        return
    check = KIND_CHECKS.get(obj["kind"])
    if check is not None:
        yield from check(obj)


# ---- every object ------------------------------------------------------------------------------------


def _plain_data(value: Any, path: Path_) -> Iterator[Finding]:
    """Only what JSON and YAML both carry unchanged: strings, int64 numbers, finite floats, booleans, null,
    lists and string-keyed mappings. A YAML date, ``!!binary`` or ``!!set`` would crash the apply (or be sent
    as something else than written)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                yield Finding(path, f"key {key!r} is a {type(key).__name__}, not a string: quote it", key)
            else:
                yield from _plain_data(item, (*path, key))
    elif kind is list:
        for i, item in enumerate(value):
            yield from _plain_data(item, (*path, i))
    elif kind is int:
        if not -_INT64 <= value < _INT64:
            yield Finding(path, f"number {value} does not fit in 64 bits", value)
    elif kind is float:
        if not math.isfinite(value):
            yield Finding(path, f"{value} is not a number JSON can carry", value)
    elif not (kind is str or kind is bool or value is None):
        yield Finding(
            path,
            f"value {value!r} is a {kind.__name__} (YAML made it one from an unquoted or tagged value); "
            "only strings, numbers, booleans, lists and mappings can be sent: quote it",
        )


def _identity(obj: Obj) -> Iterable[Finding]:
    kind, meta = obj["kind"], obj["metadata"]
    res = _WRITABLE.get(kind)
    if res is not None and obj["apiVersion"] == res.api_version:  # the common case, without a generator
        name, ns = meta.get("name"), meta.get("namespace")
        good_ns = (type(ns) is str and not syntax.dns_label(ns)) if res.namespaced else ns is None
        if good_ns and type(name) is str and not syntax.NAME_RULES.get(kind, syntax.dns_subdomain)(name):
            return ()
    return list(_identity_findings(obj))


def _identity_findings(obj: Obj) -> Iterator[Finding]:
    kind, api_version, meta = obj["kind"], obj["apiVersion"], obj["metadata"]
    res = API_RESOURCES.get(kind)
    writable = kind in MANAGED_KINDS or (kind in PATCH_ONLY_KINDS and is_patch_only(obj))
    if res is None or not writable:
        known = ", ".join(sorted(MANAGED_KINDS))
        yield Finding(("kind",), f"virtnet cannot apply kind {kind!r} (it applies: {known})", kind)
        return
    if api_version != res.api_version:
        yield Finding(
            ("apiVersion",),
            f"apiVersion {api_version!r} is not the one virtnet sends {kind} as: use {res.api_version}",
            api_version,
        )
    name = meta.get("name")
    if not isinstance(name, str):
        yield Finding(("metadata", "name"), "metadata.name must be a string", name)
        return
    error = syntax.NAME_RULES.get(kind, syntax.dns_subdomain)(name)
    if error:
        yield Finding(("metadata", "name"), f"name {error}", name)
    ns = meta.get("namespace")
    if res.namespaced and ns is None:
        yield Finding(("metadata", "namespace"), f"{kind} needs metadata.namespace")
    elif not res.namespaced and ns is not None:
        yield Finding(("metadata", "namespace"), f"{kind} is cluster-scoped: drop metadata.namespace", ns)
    elif ns is not None:
        error = syntax.dns_label(ns) if isinstance(ns, str) else "must be a string"
        if error:
            yield Finding(("metadata", "namespace"), f"namespace {error}", ns)


def _annotations(annotations: Any) -> Iterable[Finding]:
    if not annotations:
        return ()
    if type(annotations) is dict and GOOD_KEYS.issuperset(annotations):
        try:
            chars = sum(map(len, annotations)) + sum(map(len, annotations.values()))
        except TypeError:  # a value that is not a string: the slow path says which
            chars = MAX_ANNOTATIONS_BYTES
        # at most 4 bytes a character in UTF-8: most objects' few short annotations need no encoding to measure
        if chars * 4 <= ANNOTATIONS_ROOM and all(type(v) is str for v in annotations.values()):
            return ()
    return list(_annotation_findings(annotations))


def _annotation_findings(annotations: Any) -> Iterator[Finding]:
    path: Path_ = ("metadata", "annotations")
    if not isinstance(annotations, dict):
        yield Finding(path, "annotations must map strings to strings")
        return
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            yield Finding((*path, str(key)), f"annotation {key!r}: keys and values must be strings", key)
            continue
        if key not in ENGINE_ANNOTATIONS:  # the engine's own value replaces it: counted in the room kept
            size += utf8_size(key) + utf8_size(value)
        error = syntax.qualified_name(key.lower())
        if error:
            yield Finding((*path, key), f"annotation key {error}", key)
        elif key == key.lower():
            remember(GOOD_KEYS, key)
    if size > ANNOTATIONS_ROOM:
        yield Finding(
            path,
            f"annotations total {size} bytes; at most {ANNOTATIONS_ROOM} fit (the API server takes "
            f"{MAX_ANNOTATIONS_BYTES}, virtnet adds up to {ENGINE_ANNOTATION_BYTES}: {', '.join(ENGINE_ANNOTATIONS)})",
        )


# ---- where to point ----------------------------------------------------------------------------------


def _locate(origin: Entry[Any] | Raw, obj: Obj, finding: Finding) -> SourceRef:
    """A plain manifest is the object: the finding's path is a path in the document. A virtnet document is
    not: point at the field that holds the offending value (or the part a generated value was made from),
    else at its name."""
    if isinstance(origin, Raw):
        return origin.ref(*finding.path)
    value = finding.value
    candidates = [value] if isinstance(value, str) and value else []
    if isinstance(value, str) and "." in value:  # a generated VLAN name: base.id
        candidates.append(value.rsplit(".", 1)[0])
    for candidate in candidates:
        found = _find(origin.doc.data, candidate, ())
        if found is not None:
            return origin.ref(*found)
    return origin.ref("metadata", "name")


def _find(data: Any, value: str, path: Path_) -> Path_ | None:
    if isinstance(data, dict):
        for key, item in data.items():
            if key == value or item == value:
                return (*path, key)
            found = _find(item, value, (*path, key))
            if found is not None:
                return found
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if item == value:
                return (*path, i)
            found = _find(item, value, (*path, i))
            if found is not None:
                return found
    return None
