"""The OpenAPI schemas of the kinds the API double serves, and what server-side apply reads from them.

Why schemas: a real kube-apiserver decides from a type's schema how a list merges under server-side apply
(``x-kubernetes-list-type: map`` keyed by ``x-kubernetes-list-map-keys``, ``set``, or ``atomic``, which is also
what a list *without* a list type is), which maps are atomic (``x-kubernetes-map-type: atomic``), which fields
exist (unknown ones are pruned, warned about or refused) and what their types are. Guessing that from the data,
as the double did, keyed KubeVirt's interfaces by ``name`` where the real server owns the whole list.

Where they come from (nothing is typed in by hand):

* custom resources: the CRDs the real-server tier installs, :func:`reconciler.testing.controlplane.crds.load`
  (the YAML CRDs in ``../shared/crds`` plus KubeVirt's generated from its swagger);
* built-in kinds: the OpenAPI definitions of Kubernetes v1.37 that the ``kubernetes-validate`` package ships
  (``_definitions.json``, which keeps the ``x-kubernetes-*`` extensions). A built-in list with no list type but
  ``x-kubernetes-patch-strategy: merge`` is keyed by its ``x-kubernetes-patch-merge-key``, as the apiserver's
  own schema conversion does.

Where a source is missing (no ``shared/`` folder, no ``kubernetes-validate``) the kind has no schema: every list
is atomic (the real default) and nothing is validated.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.testing.resources import ResourceType

log = logging.getLogger(__name__)

Node = dict[str, Any]
PathT = tuple[str, ...]
K8S_VERSION = "v1.37.0"
ATOMIC: tuple[str, tuple[str, ...]] = ("atomic", ())


@functools.cache
def core_definitions() -> dict[str, Node]:
    """The built-in types' definitions (strict variant: objects say ``additionalProperties: false``)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        log.warning("kubernetes-validate is not installed: built-in kinds have no schema in the API double")
        return {}
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    doc = json.loads((base / f"{K8S_VERSION}-local-strict" / "_definitions.json").read_text())
    defs: dict[str, Node] = doc["$defs"]
    return defs


@functools.cache
def crd_documents() -> tuple[Node, ...]:
    """Every CRD the real-server tier installs; empty (with a warning) where ``shared/crds`` is missing."""
    from reconciler.testing.controlplane import crds  # lazily: the control plane package imports the store

    try:
        return tuple(crds.load())
    except Exception as exc:  # a missing folder or an unreadable file: the double runs without CRD schemas
        log.warning("no CRD schemas for the API double: %s", exc)
        return ()


@functools.cache
def _core_by_gvk() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, node in core_definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind") or []:
            out.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return out


@dataclass
class KindSchema:
    """The schema of one served kind: ``root`` is its object schema; ``$ref`` resolves into ``defs``."""

    root: Node
    defs: dict[str, Node]
    crd: bool
    _cache: dict[PathT, Node | None] = field(default_factory=dict, repr=False)

    def resolve(self, node: Node | None) -> Node | None:
        while node is not None and "$ref" in node:
            node = self.defs.get(node["$ref"].rsplit("/", 1)[-1])
        return node

    def at(self, path: PathT) -> Node | None:
        """The schema node at a field path (``f:`` map keys, ``k:``/``v:``/``i:`` list items); None if unknown."""
        generic = tuple(pe if pe.startswith("f:") else "[]" for pe in path)
        if generic in self._cache:
            return self._cache[generic]
        node = self.resolve(self.root) if not generic else self._child(self.at(path[:-1]), generic[-1])
        self._cache[generic] = node
        return node

    def _child(self, parent: Node | None, pe: str) -> Node | None:
        if parent is None:
            return None
        if pe == "[]":
            return self.resolve(parent.get("items"))
        props = parent.get("properties") or {}
        if pe[2:] in props:
            return self.resolve(props[pe[2:]])
        extra = parent.get("additionalProperties")
        return self.resolve(extra) if isinstance(extra, dict) else None

    def list_type(self, path: PathT) -> tuple[str, tuple[str, ...]]:
        """``("map", keys)``, ``("set", ())`` or ``("atomic", ())`` for the list at ``path``."""
        node = self.at(path)
        if node is None:
            return ATOMIC
        kind = node.get("x-kubernetes-list-type")
        if kind == "map":
            return ("map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
        if kind == "set":
            return ("set", ())
        if kind is None and not self.crd and "merge" in str(node.get("x-kubernetes-patch-strategy", "")):
            key = node.get("x-kubernetes-patch-merge-key")
            return ("map", (key,)) if key else ("set", ())
        return ATOMIC

    def atomic_map(self, path: PathT) -> bool:
        node = self.at(path)
        return node is not None and node.get("x-kubernetes-map-type") == "atomic"

    def patch_merge_key(self, path: PathT) -> str | None:
        """The strategic-merge-patch key of the list at ``path`` (built-in kinds only); None: replace it."""
        node = self.at(path)
        if node is None or "merge" not in str(node.get("x-kubernetes-patch-strategy", "")):
            return None
        key = node.get("x-kubernetes-patch-merge-key")
        return str(key) if key else None


class NoSchema:
    """A kind without a schema: every list atomic, every map granular (what the real server deduces)."""

    crd = False

    def list_type(self, path: PathT) -> tuple[str, tuple[str, ...]]:
        return ATOMIC

    def atomic_map(self, path: PathT) -> bool:
        return False

    def patch_merge_key(self, path: PathT) -> str | None:
        return None


NO_SCHEMA = NoSchema()


def _crd_root(version: Node, defs: dict[str, Node]) -> Node:
    root = json.loads(json.dumps((version.get("schema") or {}).get("openAPIV3Schema") or {}))
    props = root.setdefault("properties", {})
    if defs:  # the apiserver owns metadata: it is ObjectMeta whatever the CRD says
        props["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    for k in ("apiVersion", "kind"):
        props.setdefault(k, {"type": "string"})
    return root


@functools.cache
def _crd_roots() -> dict[tuple[str, str, str], Node]:
    defs = core_definitions()
    out: dict[tuple[str, str, str], Node] = {}
    for crd in crd_documents():
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            out[(spec["group"], version["name"], spec["names"]["kind"])] = _crd_root(version, defs)
    return out


@functools.cache
def schema_for(group: str, version: str, kind: str) -> KindSchema | None:
    """The schema of ``group/version kind``, from its CRD or the built-in definitions; None when neither has it."""
    crd_root = _crd_roots().get((group, version, kind))
    if crd_root is not None:
        return KindSchema(crd_root, core_definitions(), crd=True)
    name = _core_by_gvk().get((group, version, kind))
    if name is None:
        return None
    return KindSchema({"$ref": f"#/$defs/{name}"}, core_definitions(), crd=False)


def shape_of(rt: ResourceType) -> KindSchema | NoSchema:
    """What server-side apply needs to know about ``rt``'s lists and maps."""
    return schema_for(rt.group, rt.version, rt.kind) or NO_SCHEMA


def is_custom(rt: ResourceType) -> bool:
    """Served through a CRD on a real cluster (no protobuf, no strategic merge patch, few field selectors)."""
    return "." in rt.group and not rt.group.endswith(".k8s.io")
