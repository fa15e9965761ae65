"""What a real kube-apiserver refuses before it stores an object: names per kind, unknown fields, schema errors.

Names: most kinds need a DNS-1123 subdomain; Namespaces and Services a DNS-1123 label (no dots; Services
relaxed from DNS-1035 in v1.34), RBAC kinds a path segment (anything without ``/`` and ``%``, not ``.``/``..``).

Fields (``fieldValidation``): the object is checked with ``jsonschema`` against its schema (:mod:`.schemas`;
CRD schemas made into JSON Schema: ``nullable``, ``x-kubernetes-int-or-string``, and an object that declares
its fields, or none, without ``x-kubernetes-preserve-unknown-fields`` closes them). Unknown fields are

* ``Strict``: refused, 400 BadRequest ``strict decoding error: unknown field "spec.bogus"`` (422 on a patch);
* ``Warn`` (the default, as on a real server) and ``Ignore``: dropped from the object (pruned); ``Warn`` sends
  one ``Warning: 299 - "unknown field \\"spec.bogus\\""`` header each.

A server-side apply whose configuration names an unknown field, or a value of the wrong type, fails whatever
the mode with a 500 "failed to create typed patch object", as the real server does. Other schema errors (types,
enums, required fields, patterns) are 422 Invalid (400 for a wrongly typed built-in field, which the real
server cannot even decode).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from reconciler.testing.errors import ApiError
from reconciler.testing.resources import ResourceType
from reconciler.testing.schemas import core_definitions, schema_for

Obj = dict[str, Any]
MODES = ("Strict", "Warn", "Ignore")

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_LABEL_RE = re.compile(rf"^{_LABEL}$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  f"validation is '{_LABEL}(\\.{_LABEL})*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              f"validation is '{_LABEL}')")
_RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]], reason: str = "FieldValueInvalid") -> ApiError:
    """422 Invalid naming each ``(field, message)``, worded as the real server words it."""
    qualified = f"{rt.kind}.{rt.group}" if "." in rt.group else rt.kind
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    msg = f'{qualified} "{name}" is invalid: {text}' if len(causes) == 1 else \
        f'{qualified} "{name}" is invalid: [{text}]'
    return ApiError(422, "Invalid", msg, {"name": name, "group": rt.group, "kind": rt.kind, "causes": [
        {"reason": reason, "message": m, "field": f} for f, m in causes]})


def name_problem(rt: ResourceType, name: str) -> str | None:
    """Why ``name`` is not a valid name for ``rt``, or None."""
    if rt.kind in _RBAC_KINDS and rt.group == "rbac.authorization.k8s.io":
        if name in (".", ".."):
            return f"may not be '{name}'"
        return next((f"may not contain '{c}'" for c in "/%" if c in name), None)
    if rt.group == "" and rt.kind in ("Namespace", "Service"):  # Services: RFC 1123 labels since v1.34
        if "." in name:
            return "must not contain dots"
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if _LABEL_RE.match(name) else _LABEL_MSG
    if len(name) > 253:
        return "must be no more than 253 characters"
    return None if _SUBDOMAIN_RE.match(name) else _SUBDOMAIN_MSG


def request_body(rt: ResourceType, ns: str, body: Any, name: str = "") -> Obj:
    """A copy of a request body scoped to the URL's namespace and name (400 when they disagree)."""
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON or YAML object")
    body = copy.deepcopy(body)
    meta = body.setdefault("metadata", {})
    if rt.namespaced:
        if meta.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                           "namespace sent on the request")
        meta["namespace"] = ns
    else:
        meta.pop("namespace", None)
    if name and meta.get("name") not in (None, name):
        raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
    if name:
        meta["name"] = name
    body.pop("apiVersion", None)
    body.pop("kind", None)
    return body


def check_name(rt: ResourceType, name: str) -> None:
    if not name:
        raise invalid(rt, name, [("metadata.name", "Required value: name or generateName is required")],
                      "FieldValueRequired")
    if problem := name_problem(rt, name):
        raise invalid(rt, name, [("metadata.name", f'Invalid value: "{name}": {problem}')])


# ---- JSON Schema -------------------------------------------------------------------------------------------------

_COPIED = ("required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
           "minItems", "maxItems", "uniqueItems", "multipleOf", "minProperties", "maxProperties")


def _pattern(value: Any) -> dict[str, str]:
    try:
        re.compile(value)
    except (re.error, TypeError):  # a Go (RE2) pattern Python cannot read is not checked
        return {}
    return {"pattern": value}


def json_schema(node: Obj) -> Obj:
    """A CRD's structural schema node as JSON Schema (see the module docstring)."""
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    nullable = bool(node.get("nullable"))
    out: Obj = {k: node[k] for k in _COPIED if k in node}
    out.update(_pattern(node["pattern"]) if "pattern" in node else {})
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}] + ([{"type": "null"}] if nullable else [])
    elif "type" in node:
        out["type"] = [node["type"], "null"] if nullable else node["type"]
    if "enum" in node:
        out["enum"] = list(node["enum"]) + ([None] if nullable else [])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node and "anyOf" not in out:
            out[key] = [json_schema(n) for n in node[key]]
    if "not" in node:
        out["not"] = json_schema(node["not"])
    if "properties" in node:
        out["properties"] = {k: json_schema(v) for k, v in node["properties"].items()}
    if "items" in node and isinstance(node["items"], dict):
        out["items"] = json_schema(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = json_schema(extra)
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields") and extra is None:
        out["additionalProperties"] = False
        if node.get("x-kubernetes-embedded-resource"):
            out.setdefault("properties", {}).update({k: {} for k in ("apiVersion", "kind", "metadata")})
    return out


@functools.cache
def _validator(group: str, version: str, kind: str) -> Any:
    """A cached ``jsonschema`` validator for the kind, or None without a schema or without ``jsonschema``."""
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:  # a test dependency: without it the double validates nothing
        return None
    schema = schema_for(group, version, kind)
    if schema is None:
        return None
    root = json_schema(schema.root) if schema.crd else dict(schema.root)
    return jsonschema.Draft202012Validator({"$defs": core_definitions(), **root})


def dotted(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_errors(rt: ResourceType, obj: Obj) -> tuple[list[list[Any]], list[tuple[str, str, str]]]:
    """(unknown field paths, [(field, validator, message)]) of ``obj`` against ``rt``'s schema."""
    validator = _validator(rt.group, rt.version, rt.kind)
    if validator is None:
        return [], []
    unknown: list[list[Any]] = []
    errors: list[tuple[str, str, str]] = []
    instance = {**obj, "apiVersion": rt.api_version, "kind": rt.kind}
    for err in validator.iter_errors(instance):
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and err.validator_value is False:
            known = set((err.schema or {}).get("properties") or {})
            unknown += [[*path, k] for k in err.instance if k not in known]
        elif err.validator == "type":
            got = _json_type(err.instance)
            field = dotted(path)
            errors.append((field, "type", f'Invalid value: "{got}": {field} in body must be of type '
                                          f'{_expected(err.validator_value)}: "{got}"'))
        elif err.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", err.message) or ["?"]
            errors.append((dotted([*path, missing[0]]), "required", "Required value"))
        elif err.validator == "enum":
            values = ", ".join(json.dumps(v) for v in err.validator_value if v is not None)
            errors.append((dotted(path), "enum", f"Unsupported value: {json.dumps(err.instance)}: "
                                                 f"supported values: {values}"))
        else:
            errors.append((dotted(path), str(err.validator), f"Invalid value: {json.dumps(err.instance)[:200]}: "
                                                             f"{err.message[:200]}"))
    return unknown, errors


def _json_type(value: Any) -> str:
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
             (dict, "object"))
    return next((name for t, name in kinds if isinstance(value, t)), "null")


def _expected(value: Any) -> str:
    types = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
    return "/".join(types)


def _remove(obj: Any, path: list[Any]) -> None:
    for p in path[:-1]:
        obj = obj[p]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)


MAX_ANNOTATIONS_BYTES = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB


def check_annotations(rt: ResourceType, obj: Obj) -> None:
    """At most 256 KiB of annotation keys and values, counted in UTF-8 bytes (ValidateAnnotationsSize)."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict):
        return
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        cause = ("metadata.annotations", f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes")
        raise invalid(rt, obj["metadata"].get("name", ""), [cause], "FieldValueTooLong")


def check_fields(rt: ResourceType, obj: Obj, mode: str, *, patch: bool = False) -> tuple[Obj, list[str]]:
    """``obj`` with unknown fields pruned, and the warnings to send; raises 400/422 as the real server does
    (its annotations' total size included)."""
    check_annotations(rt, obj)
    unknown, errors = schema_errors(rt, obj)
    fields = [dotted(p) for p in unknown]
    if unknown and mode == "Strict":
        text = ", ".join(f'unknown field "{f}"' for f in fields)
        if patch:
            raise invalid(rt, obj.get("metadata", {}).get("name", ""), [("patch", f"strict decoding error: {text}")])
        raise ApiError(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                       f"strict decoding error: {text}")
    if errors:
        name = obj.get("metadata", {}).get("name", "")
        schema = schema_for(rt.group, rt.version, rt.kind)
        if schema is not None and not schema.crd and any(v == "type" for _, v, _ in errors):
            raise ApiError(400, "BadRequest", f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                           f"{rt.kind}: " + "; ".join(f"{f}: {m}" for f, _, m in errors))
        raise invalid(rt, name, [(f, m) for f, _, m in errors])
    if not unknown:
        return obj, []
    pruned = copy.deepcopy(obj)
    for p in sorted(unknown, key=len, reverse=True):
        _remove(pruned, p)
    return pruned, ([f'unknown field "{f}"' for f in fields] if mode == "Warn" else [])


def check_applied(rt: ResourceType, applied: Obj, name: str) -> None:
    """A server-side apply configuration must fit the schema exactly (500, like the real typed conversion)."""
    unknown, errors = schema_errors(rt, applied)
    problems = sorted(f".{dotted(p)}: field not declared in schema" for p in unknown)
    problems += [f".{f}: {m}" for f, v, m in errors if v == "type"]
    if problems:
        raise ApiError(500, "", f"failed to create typed patch object (/{name}; {rt.group}/{rt.version}, "
                       f"Kind={rt.kind}): {problems[0]}")
