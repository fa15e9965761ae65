"""KubeVirt's VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceMigration and KubeVirt CRDs, from swagger.

Why generated: KubeVirt installs these CRDs from its operator at run time, so there is no CRD YAML to copy;
its published OpenAPI v2 document (``kubevirt.io_openapi-spec_swagger.json`` in ``shared/crds``) has the full
type tree. The apiserver's server-side apply, pruning and ``fieldValidation=Strict`` follow the CRD's
*structural* schema, so the conversion keeps exactly what changes those semantics and drops what a CRD may
not carry:

* ``$ref`` is resolved recursively (a cycle, which none of these types has today, becomes free-form);
* ``x-kubernetes-list-type``/``-list-map-keys``/``-map-type`` are kept where the swagger has them; a list
  without them stays atomic, as in the real CRD (``spec.template.spec.domain.devices.interfaces`` is atomic);
* ``format: int-or-string`` and ``type: [string, number(, integer)]`` (IntOrString, Quantity) become
  ``x-kubernetes-int-or-string`` with ``anyOf`` integer/string; ``type: [string, "null"]`` becomes a
  nullable string; ``additionalProperties`` schemas are kept (labels, resource maps);
* the root ``metadata`` is ``type: object`` only (the apiserver owns ObjectMeta); an embedded ObjectMeta
  (``spec.template.metadata``, ``dataVolumeTemplates[].metadata``) gets the fields controller-gen's
  ``generateEmbeddedObjectMeta`` emits (name, namespace, labels, annotations, finalizers), so template labels
  are not pruned;
* empty Go structs (``bridge: {}``, ``masquerade: {}``) stay ``type: object`` with no properties: unknown keys
  in them are pruned/rejected, as by KubeVirt's real CRDs. ``x-kubernetes-preserve-unknown-fields`` is only
  for the genuinely free-form types (FieldsV1, RawExtension);
* ``default`` (openapi-gen's zero-value hints, not API defaults) and ``x-kubernetes-patch-*`` (strategic
  merge only, not a CRD field) are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SWAGGER_FILE = "kubevirt.io_openapi-spec_swagger.json"
GROUP = "kubevirt.io"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_FREE_FORM = {"k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1", "k8s.io.apimachinery.pkg.runtime.RawExtension"}
_EMBEDDED_META_FIELDS = ("name", "namespace", "labels", "annotations", "finalizers")
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
                     r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_COPIED = ("description", "format", "enum", "required", "nullable", "pattern", "minimum", "maximum",
           "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "x-kubernetes-list-type",
           "x-kubernetes-list-map-keys", "x-kubernetes-map-type")

# (kind, plural, short names, printer columns): what KubeVirt's own CRDs declare for these kinds.
KINDS: tuple[tuple[str, str, list[str], list[dict[str, str]]], ...] = (
    ("VirtualMachine", "virtualmachines", ["vm", "vms"], [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Status", "type": "string", "jsonPath": ".status.printableStatus"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}]),
    ("VirtualMachineInstance", "virtualmachineinstances", ["vmi", "vmis"], [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "IP", "type": "string", "jsonPath": ".status.interfaces[0].ipAddress"},
        {"name": "NodeName", "type": "string", "jsonPath": ".status.nodeName"}]),
    ("VirtualMachineInstanceMigration", "virtualmachineinstancemigrations", ["vmim", "vmims"], [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "VMI", "type": "string", "jsonPath": ".spec.vmiName"}]),
    # the operator's own CR: its spec.configuration.vmRolloutStrategy says whether VM changes roll out live
    ("KubeVirt", "kubevirts", ["kv", "kvs"], [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}]),
)


class _Converter:
    """Turns swagger definitions into structural schema nodes (see the module docstring for the rules)."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.defs = definitions

    def root(self, name: str) -> dict[str, Any]:
        schema = self.node(self.defs[name], (name,))
        schema["properties"]["metadata"] = {"type": "object"}
        return schema

    def node(self, schema: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
        if "$ref" in schema:
            out = self.ref(schema["$ref"].rsplit("/", 1)[-1], stack)
            if "description" in schema:
                out["description"] = schema["description"]
            return out
        out = {k: schema[k] for k in _COPIED if k in schema}
        if out.get("format") == "int-or-string":
            return _int_or_string(out)
        kind = schema.get("type")
        if isinstance(kind, list):
            concrete = [t for t in kind if t != "null"]
            if "null" in kind:
                out["nullable"] = True
            if len(concrete) > 1:
                return _int_or_string(out)
            kind = concrete[0]
        if kind is None:  # no type and no $ref: nothing structural to say about it
            return {**out, "x-kubernetes-preserve-unknown-fields": True}
        out["type"] = kind
        if "properties" in schema:
            out["properties"] = {k: self.node(v, stack) for k, v in schema["properties"].items()}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self.node(extra, stack)
        elif extra is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if "items" in schema:
            out["items"] = self.node(schema["items"], stack)
        return out

    def ref(self, name: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if name in _FREE_FORM or name in stack:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if name == _META:
            meta = self.defs[_META]["properties"]
            return {"type": "object", "nullable": True,
                    "properties": {f: self.node(meta[f], (*stack, name)) for f in _EMBEDDED_META_FIELDS}}
        out = self.node(self.defs[name], (*stack, name))
        if name == _QUANTITY:
            out["pattern"] = _QUANTITY_PATTERN
        return out


def _int_or_string(out: dict[str, Any]) -> dict[str, Any]:
    out.pop("format", None)
    out.pop("type", None)
    return {**out, "anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}


def crds(shared: Path) -> list[dict[str, Any]]:
    """The KubeVirt CRDs (``kubevirt.io/v1``, namespaced, status subresource) from ``shared``'s swagger."""
    definitions = json.loads((shared / SWAGGER_FILE).read_text())["definitions"]
    conv = _Converter(definitions)
    out = []
    for kind, plural, short, columns in KINDS:
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/generated-by": "virtnet"}},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                          "shortNames": short, "categories": ["all"]},
                "versions": [{
                    "name": "v1", "served": True, "storage": True,
                    "schema": {"openAPIV3Schema": conv.root(f"v1.{kind}")},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }],
            },
        })
    return out
