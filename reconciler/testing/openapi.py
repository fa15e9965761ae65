"""``/openapi/v3`` of the API double: the discovery document and one OpenAPI 3 document per group/version.

Why: ``kubectl apply``/``create`` (validation on, the default) first reads ``/openapi/v3``, then the document of
the object's group/version, and looks there for a PATCH operation of the object's kind
(``x-kubernetes-group-version-kind``) that declares the ``fieldValidation`` query parameter. Found, kubectl
leaves validation to the server (``?fieldValidation=Strict``, see :mod:`.validation`); not found, it would
validate client-side from the schemas. Client-side apply also reads strategic-merge metadata of built-in kinds
from ``components.schemas``. So each document carries, per served kind, its item path with ``get`` and
``patch`` operations and the kind's schema with everything it refers to (:mod:`.schemas`: the CRDs and the
Kubernetes v1.37 definitions), under ``#/components/schemas/``. Documents are built once per registry and
addressed with a ``hash`` query parameter, as the real server does, so clients can cache them. A kind whose schema
is not at hand (no ``shared/crds`` beside the checkout) is published open, ``x-kubernetes-preserve-unknown-fields``,
so kubectl can still apply it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from reconciler.testing.resources import Registry, ResourceType
from reconciler.testing.schemas import K8S_VERSION, core_definitions, schema_for

Doc = dict[str, Any]
_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")
OPEN: Doc = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _gv_path(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "core"
    return f"{group}.{rt.version}.{rt.kind}"


def _rewrite(node: Any) -> Any:
    """``#/$defs/X`` references as OpenAPI's ``#/components/schemas/X``."""
    if isinstance(node, dict):
        out = {k: _rewrite(v) for k, v in node.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace("#/$defs/", "#/components/schemas/")
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def _closure(roots: list[Any]) -> dict[str, Any]:
    """Every built-in definition the ``roots`` refer to, transitively."""
    defs, todo, seen = core_definitions(), set[str](), set[str]()
    for root in roots:
        _refs(root, todo)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        _refs(defs[name], todo)
    return {name: defs[name] for name in sorted(seen)}


def _operations(rt: ResourceType, schema_ref: str) -> dict[str, Any]:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for p in _PARAMS]
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}}
    return {verb: {"operationId": f"{verb}{rt.kind}", "x-kubernetes-action": verb,
                   "x-kubernetes-group-version-kind": gvk, "responses": ok,
                   **({"parameters": params} if verb == "patch" else {})} for verb in ("get", "patch")}


def group_version_doc(registry: Registry, gv_path: str) -> Doc | None:
    """The OpenAPI 3 document of one group/version (``api/v1``, ``apis/nmstate.io/v1``), or None."""
    types = [t for t in registry.types if _gv_path(t) == gv_path]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    roots: list[Any] = []
    for rt in types:
        schema = schema_for(rt.group, rt.version, rt.kind)
        gvk = {"x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": rt.kind}]}
        if schema is None or schema.crd:
            # no schema known (no ``shared/crds``): published open, as a CRD that preserves unknown fields is, so
            # kubectl still finds the kind's PATCH with ``fieldValidation`` and leaves validation to the server
            name = _schema_name(rt)
            schemas[name] = {**(schema.root if schema else OPEN), **gvk}
        else:
            name = schema.root["$ref"].rsplit("/", 1)[-1]
        roots.append({"$ref": f"#/$defs/{name}"})
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        paths[f"/{gv_path}{scope}/{rt.plural}/{{name}}"] = _operations(rt, f"#/components/schemas/{name}")
    schemas.update(_closure([*schemas.values(), *roots]))
    return _rewrite({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": K8S_VERSION},
                     "paths": paths, "components": {"schemas": schemas}})


class OpenApi:
    """The ``/openapi/v3`` documents of a registry, built lazily and cached."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @functools.cached_property
    def _docs(self) -> dict[str, tuple[Doc, str]]:
        out: dict[str, tuple[Doc, str]] = {}
        for gv in dict.fromkeys(_gv_path(t) for t in self.registry.types):
            doc = group_version_doc(self.registry, gv)
            if doc is not None:
                digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:128]
                out[gv] = (doc, digest)
        return out

    def discovery(self) -> Doc:
        return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
                          for gv, (_, digest) in self._docs.items()}}

    def document(self, gv_path: str) -> Doc | None:
        entry = self._docs.get(gv_path)
        return entry[0] if entry else None
