"""Object lifecycle rules of the API double, as a real kube-apiserver applies them (verified against v1.37).

* A namespaced object can only be created in a Namespace that exists (404 ``namespaces "x" not found``) and
  is not being deleted (403 Forbidden, cause ``NamespaceTerminating``).
* A Namespace is created with ``spec.finalizers: [kubernetes]``, ``status.phase: Active`` and the label
  ``kubernetes.io/metadata.name``.
* Deleting an object that has ``metadata.finalizers`` only sets ``deletionTimestamp`` (and
  ``deletionGracePeriodSeconds: 0``); the object stays, may still be updated, may not gain finalizers (422), and
  is removed by the write that empties its finalizers. Deleting it again changes nothing.
* Deleting a Namespace makes it ``Terminating``. The namespace controller (kube-controller-manager on a real
  cluster) then deletes everything in it and, once it is empty, the namespace itself. The double runs that
  controller synchronously inside the write, so a namespace without finalizer-held content is gone when the
  DELETE returns (a real cluster takes a few seconds). The real-server test tier runs no controller manager:
  there a deleted namespace stays ``Terminating`` (a known, tested difference).
* ``generation`` exists on custom resources and on the built-in kinds whose strategy keeps one (apps, Pods);
  ConfigMaps, Secrets, Services, Namespaces... have none.
* Field selectors: custom resources support ``metadata.name`` and ``metadata.namespace`` only (400 ``field label
  not supported``); built-in kinds add their own few labels.
"""

from __future__ import annotations

from typing import Any

from reconciler.testing.errors import ApiError
from reconciler.testing.resources import ResourceType
from reconciler.testing.schemas import is_custom

Obj = dict[str, Any]
NAMESPACES = ("", "namespaces")
NAME_LABEL = "kubernetes.io/metadata.name"

#: built-in field selector labels beyond metadata.name/metadata.namespace (apiserver's GetAttrs per kind)
_FIELD_LABELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                    "reason", "reportingComponent", "source", "type"),
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
}


def has_generation(rt: ResourceType) -> bool:
    return is_custom(rt) or rt.group == "apps" or (rt.group, rt.kind) == ("", "Pod")


def namespace_defaults(obj: Obj) -> None:
    """What the apiserver sets on a new Namespace."""
    meta = obj["metadata"]
    meta.setdefault("labels", {})[NAME_LABEL] = meta["name"]
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    obj["status"] = {**(obj.get("status") or {}), "phase": "Active"}


def creation_gate(rt: ResourceType, obj: Obj, namespace: Obj | None) -> None:
    """Refuse to create ``obj`` in a namespace that does not exist (404) or is being deleted (403)."""
    if not rt.namespaced:
        return
    ns, name = obj["metadata"].get("namespace", ""), obj["metadata"].get("name", "")
    if namespace is None:
        raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
    if namespace["metadata"].get("deletionTimestamp"):
        raise ApiError(403, "Forbidden", f'{rt.plural} "{name}" is forbidden: unable to create new content in '
                       f"namespace {ns} because it is being terminated",
                       {"name": name, "kind": rt.plural, "causes": [
                           {"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                            "field": "metadata.namespace"}]})


def finalizer_guard(rt: ResourceType, old: Obj, new: Obj) -> None:
    """An object being deleted keeps its deletion stamp and may not gain finalizers (422)."""
    old_meta, meta = old["metadata"], new["metadata"]
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    if not old_meta.get("deletionTimestamp"):
        return
    added = [f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
    if added:
        from reconciler.testing.validation import invalid

        listed = ", ".join(f'"{f}"' for f in added)
        raise invalid(rt, meta.get("name", ""), [("metadata.finalizers", "Forbidden: no new finalizers can be "
                      f"added if the object is being deleted, found new finalizers []string{{{listed}}}")],
                      "FieldValueForbidden")


def deleted_status(rt: ResourceType, obj: Obj) -> Obj:
    """The ``Status`` a DELETE answers when the object is gone at once."""
    details = {"name": obj["metadata"]["name"], "kind": rt.plural, "uid": obj["metadata"].get("uid", "")}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def field_labels(rt: ResourceType) -> tuple[str, ...]:
    return ("metadata.name", "metadata.namespace", *_FIELD_LABELS.get((rt.group, rt.kind), ()))


def check_field_selector(rt: ResourceType, fields: list[str]) -> None:
    """400 for a field selector label the kind does not support, worded as the real server words it."""
    supported = field_labels(rt)
    for f in fields:
        if f in supported:
            continue
        if is_custom(rt) or len(supported) > 2:
            raise ApiError(400, "BadRequest", f"field label not supported: {f}")
        raise ApiError(400, "BadRequest", f'"{f}" is not a known field selector: only "metadata.name", '
                       '"metadata.namespace"')
