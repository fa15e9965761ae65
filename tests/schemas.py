"""Strict validation of rendered objects against the real upstream schemas.

CRD ``openAPIV3Schema`` documents (nmstate, NAD, SR-IOV, MetalLB, HyperConverged) and KubeVirt's
``swagger.json`` definitions come from ``$VIRTNET_CRDS_DIR`` (default: ``../shared/crds`` next to the
checkout); they are never copied into the project. Strict means what ``kubectl --validate=strict`` means:
a field the schema does not know is an error, so every object schema without
``x-kubernetes-preserve-unknown-fields`` gets ``additionalProperties: false``. Core kinds (Service,
Secret, ConfigMap, Namespace) go through ``kubernetes-validate`` in strict mode.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
CRDS_DIR = Path(os.environ.get("VIRTNET_CRDS_DIR", ROOT.parent / "shared" / "crds"))
KUBEVIRT_SWAGGER = "kubevirt.io_openapi-spec_swagger.json"
CORE_KINDS = {"Service", "Secret", "ConfigMap", "Namespace"}
K8S_VERSION = "1.33.0"
OBJECT_META = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def available() -> bool:
    return CRDS_DIR.is_dir() and (CRDS_DIR / KUBEVIRT_SWAGGER).is_file()


def skip_reason() -> str:
    return f"upstream schemas not found in {CRDS_DIR} (set VIRTNET_CRDS_DIR)"


def _strict(schema: Any) -> Any:
    """Deep copy with unknown fields forbidden wherever the schema lists properties."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → strict JSON schema, from every CRD file in the directory."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = _strict(version["schema"]["openAPIV3Schema"])
                # the API server always accepts the standard envelope; ObjectMeta is checked on its own
                schema.setdefault("properties", {}).update(
                    {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"$ref": "#/definitions/ObjectMeta"},
                    }
                )
                definitions = _kubevirt()["definitions"]
                schema["definitions"] = {**definitions, "ObjectMeta": definitions[OBJECT_META]}
                out[(f"{group}/{version['name']}", kind)] = schema
    return out


@cache
def _kubevirt() -> dict[str, Any]:
    swagger = json.loads((CRDS_DIR / KUBEVIRT_SWAGGER).read_text())
    return {"definitions": _strict(copy.deepcopy(swagger["definitions"]))}


def errors(obj: dict[str, Any]) -> list[str]:
    """Every schema violation of one object, as ``path: message`` strings (empty when valid)."""
    kind, api_version = obj["kind"], obj["apiVersion"]
    if kind in CORE_KINDS:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
        return []
    if api_version == "kubevirt.io/v1":
        definitions = _kubevirt()
        schema = {**definitions, "$ref": f"#/definitions/v1.{kind}"}
        validator: jsonschema.protocols.Validator = jsonschema.Draft4Validator(schema)
    else:
        found = _crd_schemas().get((api_version, kind))
        if found is None:
            return [f"no upstream schema for {api_version} {kind} in {CRDS_DIR}"]
        validator = jsonschema.Draft7Validator(found)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
