"""The ClusterSync object: the operator's switches (suspend, a pinned revision) and the controller's report.

Why an object of our own (the CRD in ``charts/virtnet/crds``): an operator must be able to freeze
reconciling or hold a revision during an incident without a commit (Flux's ``suspend``, Argo CD's disabled
auto-sync), and everyone must be able to see the sync state with ``kubectl get`` / ``oc get`` rather than
only in Git. ``spec`` belongs to the operator (field manager ``virtnet-operator``); ``status`` to the
controller, written through the status subresource with server-side apply, so neither overwrites the other.

Side effects: the Kubernetes API (one GET per run for the switches, one status apply per run).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from reconciler import labels
from reconciler.clients.kube import Kube, segment
from reconciler.errors import VirtnetError

log = logging.getLogger(__name__)


class SyncObjectError(VirtnetError):
    """The ClusterSync object could not be read or written (message names the object and the reason)."""


@dataclass(frozen=True)
class Switches:
    """What the operator set on the object's spec."""

    suspend: bool = False
    reason: str = ""
    pinned: str = ""
    generation: int = 0


_OPERATOR_FIELDS = ("suspend", "suspendReason", "pinnedRevision")


def _path(namespace: str, name: str = "", sub: str = "") -> str:
    path = f"/apis/{labels.SYNC_API_VERSION}/namespaces/{segment(namespace)}/{labels.SYNC_PLURAL}"
    return path + (f"/{segment(name)}" if name else "") + (f"/{sub}" if sub else "")


def _object(namespace: str, name: str, **body: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "labels": {labels.MANAGED_BY: labels.MANAGER}}
    return {"apiVersion": labels.SYNC_API_VERSION, "kind": labels.SYNC_KIND, "metadata": meta, **body}


class SyncObject:
    """One cluster's ClusterSync. ``available`` turns False when the CRD is not installed: the controller
    then runs without switches or status object (and says so once) instead of failing every run."""

    def __init__(self, kube: Kube, namespace: str, name: str, field_manager: str = labels.FIELD_MANAGER):
        self.kube, self.namespace, self.name = kube, namespace, name
        self.field_manager = field_manager
        self.available = True
        self._last: dict[str, Any] | None = None  # the object as the last read (or write) left it
        self._read = False

    def read(self) -> dict[str, Any] | None:
        """The object, or None when it does not exist yet. Raises :class:`SyncObjectError`."""
        try:
            found = self.kube.request("GET", _path(self.namespace, self.name))
        except ApiException as exc:
            if exc.status == 404 and _crd_missing(exc):
                self._unavailable()
                found = None
            elif exc.status == 404:
                found = None
            else:
                raise SyncObjectError(f"{self} could not be read: {exc.status} {exc.reason}") from None
        self._last, self._read = found, True
        return found

    def known(self) -> dict[str, Any] | None:
        """The object as this run's read of the switches found it (read now if nothing read it yet): only this
        controller writes the status, so the report needs no second GET for the previous one."""
        return self._last if self._read else self.read()

    def switches(self) -> Switches:
        """The operator's switches (all off when the object or its CRD does not exist)."""
        obj = self.read() or {}
        spec = obj.get("spec") or {}
        return Switches(
            suspend=bool(spec.get("suspend")),
            reason=str(spec.get("suspendReason") or ""),
            pinned=str(spec.get("pinnedRevision") or ""),
            generation=int((obj.get("metadata") or {}).get("generation") or 0),
        )

    def set_spec(self, **changes: Any) -> dict[str, Any]:
        """Change some of the operator's fields, keeping the others (creates the object when it is missing).

        The whole spec is applied: under server-side apply, a field this manager set before and now leaves
        out would be removed (``resume`` must not drop a pin)."""
        current = self.read()
        if not self.available:
            raise SyncObjectError(
                f"the {labels.SYNC_KIND} CRD is not installed in this cluster: install the chart (charts/virtnet)"
            )
        spec = {k: v for k, v in ((current or {}).get("spec") or {}).items() if k in _OPERATOR_FIELDS}
        spec.update(changes)
        spec = {k: v for k, v in spec.items() if v not in ("", None)}
        return self._apply(_object(self.namespace, self.name, spec=spec), "")

    def report(self, status: dict[str, Any]) -> None:
        """Write the controller's report (creating the object with an empty spec first if needed)."""
        if not self.available:
            return
        if self.known() is None:
            if not self.available:
                return
            self._apply(_object(self.namespace, self.name, spec={}), "")
        self._last = self._apply(_object(self.namespace, self.name, status=status), "status") or self._last

    def _apply(self, obj: dict[str, Any], sub: str) -> dict[str, Any]:
        query = {"fieldManager": self.field_manager, "force": "true", "fieldValidation": "Strict"}
        try:
            return self.kube.request(
                "PATCH",
                _path(self.namespace, self.name, sub),
                query,
                json.dumps(obj),
                content_type="application/apply-patch+yaml",
            )
        except ApiException as exc:
            if exc.status == 404 and _crd_missing(exc):
                self._unavailable()
                return {}
            detail = _message(exc)
            raise SyncObjectError(f"{self} could not be written: {exc.status} {detail}") from None

    def _unavailable(self) -> None:
        if self.available:
            log.warning(
                "the ClusterSync CRD (%s) is not installed: no suspend/pin switches and no status object; "
                "install it from charts/virtnet/crds",
                f"{labels.SYNC_PLURAL}.{labels.SYNC_API_VERSION.split('/')[0]}",
            )
        self.available = False

    def __str__(self) -> str:
        return f"{labels.SYNC_KIND} {self.namespace}/{self.name}"


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def _crd_missing(exc: ApiException) -> bool:
    """A 404 for the resource type itself (no CRD), not for one object: the API answers the former with a
    plain "404 page not found" rather than a Status naming the object."""
    try:
        details = json.loads(exc.body or "{}").get("details") or {}
    except (ValueError, AttributeError):
        return True
    return details.get("name") is None
