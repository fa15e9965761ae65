"""KubeMacPool as a real mutating admission webhook in front of the real apiserver.

Why a webhook and not a controller: KubeMacPool *is* one (``mutatevirtualmachines.kubemacpool.io``), and what
that means is what the engine must cope with: the MACs it writes appear in the object the client gets back
but are owned by no field manager (admission output is not attributed), a refusal is an admission denial
with the webhook's name in the message, and a dry run reaches it with ``dryRun: true`` (``sideEffects:
NoneOnDryRun``) and must reserve nothing.

The pool itself is the double's :class:`~reconciler.testing.kubemacpool.KubeMacPool` (same allocation, same
denial text), driven through its ``mutate``/``observe`` hooks: ``mutate`` on every admission, ``observe`` for
a non-dry-run admission and, from :meth:`KubeMacPoolWebhook.sync` (called periodically with the VM list),
for VMs that were deleted, so their MACs are released as KubeMacPool's VM controller releases them.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from reconciler.testing.controlplane.https import json_response
from reconciler.testing.controlplane.rest import Rest
from reconciler.testing.errors import ApiError
from reconciler.testing.kubemacpool import OPT_OUT_LABEL, WEBHOOK, KubeMacPool, interfaces
from reconciler.testing.resources import Registry
from reconciler.testing.store import Store

log = logging.getLogger("virtnet.simulate.kubemacpool")
CONFIG_NAME = "kubemacpool-mutator"
PATH = "/mutate-virtualmachines"
CONFIG_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
_IFACES = "/spec/template/spec/domain/devices/interfaces"
_DENIED = "denied the request: "
GRACE = 10.0  # seconds an admitted VM that was never listed keeps its MACs (its create may still be in flight)


def webhook_configuration(url: str, ca_bundle: bytes) -> dict[str, Any]:
    """The MutatingWebhookConfiguration KubeMacPool installs for VMs, pointing at ``url`` directly."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIG_NAME},
        "webhooks": [{
            "name": WEBHOOK,
            "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_bundle).decode()},
            "rules": [{"apiGroups": ["kubevirt.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["virtualmachines"], "scope": "Namespaced"}],
            "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "namespaceSelector": {"matchExpressions": [{"key": OPT_OUT_LABEL, "operator": "NotIn",
                                                        "values": ["ignore"]}]},
        }],
    }


def mac_patch(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON patch setting each interface's ``macAddress`` that the pool added (or normalised)."""
    ops = []
    for idx, (old, new) in enumerate(zip(interfaces(before), interfaces(after), strict=True)):
        if new.get("macAddress") and new.get("macAddress") != old.get("macAddress"):
            ops.append({"op": "add", "path": f"{_IFACES}/{idx}/macAddress", "value": new["macAddress"]})
    return ops


class KubeMacPoolWebhook:
    """The admission endpoint (a WSGI app) over one pool; thread-safe, the server is threaded."""

    def __init__(self, *, grace: float = GRACE) -> None:
        self.pool = KubeMacPool(Store())  # the private Store is never written: only its hooks list is used
        rt = Registry().by_kind("kubevirt.io/v1", "VirtualMachine")
        assert rt is not None
        self._rt, self._grace = rt, grace
        self._lock = threading.Lock()
        # VM -> (its object as last admitted or listed, when admitted; None once it has been listed)
        self._known: dict[tuple[str, str], tuple[dict[str, Any], float | None]] = {}

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        """An AdmissionReview v1 answer: the MAC patch, or a denial with KubeMacPool's message."""
        request = review.get("request") or {}
        answer: dict[str, Any] = {"uid": request.get("uid", "")}
        obj, old = request.get("object") or {}, request.get("oldObject")
        mutated = copy.deepcopy(obj)
        with self._lock:
            try:
                self.pool.mutate(self._rt, mutated, old)
            except ApiError as exc:
                message = exc.message.split(_DENIED, 1)[-1]  # the apiserver puts the webhook's name in front
                answer.update(allowed=False, status={"code": exc.code, "message": message, "status": "Failure"})
                return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
            if not request.get("dryRun"):
                self.pool.observe(self._rt, old, mutated)
                key = (request.get("namespace", ""), request.get("name", ""))
                seen = self._known.get(key)
                self._known[key] = (mutated, None if seen and seen[1] is None else time.monotonic())
        answer["allowed"] = True
        if ops := mac_patch(obj, mutated):
            answer.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(ops).encode()).decode())
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}

    def sync(self, vms: list[dict[str, Any]]) -> None:
        """Take in the VMs as listed; release the MACs of VMs gone from the list: at once for a VM listed before
        (deleted), after a grace period for one only admitted (its create may not be stored yet)."""
        listed = {(v["metadata"].get("namespace", ""), v["metadata"]["name"]): v for v in vms}
        now = time.monotonic()
        with self._lock:
            for key, vm in listed.items():
                known = self._known.get(key)
                if known is None or interfaces(known[0]) != interfaces(vm):
                    self.pool.observe(self._rt, known[0] if known else None, vm)
                self._known[key] = (vm, None)
            for key, (vm, admitted) in list(self._known.items()):
                if key not in listed and (admitted is None or now - admitted > self._grace):
                    self.pool.observe(self._rt, vm, None)
                    del self._known[key]
                    log.info("released the MACs of VirtualMachine %s/%s", *key)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method != "POST" or request.path != PATH:
            response = Response("not found", status=404)
        else:
            try:
                review = json.loads(request.get_data())
            except ValueError:
                response = Response("the body must be an AdmissionReview", status=400)
            else:
                response = json_response(self.review(review))
        return response(environ, start_response)


def register(rest: Rest, url: str, ca_bundle: bytes) -> None:
    rest.apply(f"{CONFIG_PATH}/{CONFIG_NAME}", webhook_configuration(url, ca_bundle))


def unregister(rest: Rest) -> None:
    rest.request("DELETE", f"{CONFIG_PATH}/{CONFIG_NAME}")
