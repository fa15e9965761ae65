"""KubeVirt's ``subresources.kubevirt.io`` served the way virt-api serves it: an aggregated API.

Why the aggregator and not a shortcut: ``virtnet apply`` restarts a VM with ``PUT
/apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachines/NAME/restart`` on the apiserver, which
authorizes it (RBAC on ``virtualmachines/restart``) and proxies it to the APIService's Service. So this
registers what KubeVirt registers -- APIService ``v1.subresources.kubevirt.io`` over Service ``virt-api`` --
and serves the restart from a loopback HTTPS server that trusts only the front-proxy CA.

How the aggregator reaches loopback (kube-apiserver 1.37, ``--enable-aggregator-routing``):
``k8s.io/apiserver/pkg/util/proxy.ResolveEndpoint`` takes the Service, then the EndpointSlices labelled
``kubernetes.io/service-name`` (not Endpoints any more) and dials ``Addresses[0]`` of a ready endpoint whose
port name matches. Endpoints and IPv4/IPv6 EndpointSlices refuse loopback and link-local addresses
(``ValidateEndpointIP``), but an ``addressType: FQDN`` slice is only checked to be a DNS subdomain with two or
more labels, which ``127.0.0.1`` is, and ``RandomEndpoint`` does not look at the address type. So the slice
here is FQDN ``127.0.0.1`` (the server warns: FQDN endpoints are deprecated). The TLS name checked is
``virt-api.<namespace>.svc``, which the serving certificate carries. Nothing leaves the machine.

The restart itself is virt-api's: a VM with runStrategy Halted/Once is refused (409, KubeVirt's wording), a VM
without VMI is "not running", otherwise a JSON patch of the VM's ``status.stateChangeRequests`` (Stop with the
VMI's uid, then Start) as field manager ``virt-api``; the simulated virt-controller then replaces the VMI.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from werkzeug.wrappers import Request, Response

from reconciler.testing.controlplane.https import json_response, status_response
from reconciler.testing.controlplane.rest import Rest, message

GROUP, VERSION = "subresources.kubevirt.io", "v1"
APISERVICE = f"{VERSION}.{GROUP}"
SERVICE, PORT_NAME, SERVICE_PORT = "virt-api", "https", 443
MANAGER = "virt-api"
_VM = "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}"
_VMI = "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{name}"
_NO_RESTART = ("Halted", "Once")


def resource_list() -> dict[str, Any]:
    """Discovery of the group version (what the aggregator's availability check and kubectl read)."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
            "resources": [{"name": "virtualmachines/restart", "singularName": "", "namespaced": True,
                           "kind": "", "verbs": ["update"]}]}


def registration(namespace: str, port: int, ca_bundle: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(path, object) to apply: the Service, its FQDN EndpointSlice on loopback, and the APIService."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": namespace},
           "spec": {"ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": port}]}}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": f"{SERVICE}-loopback", "namespace": namespace,
                        "labels": {"kubernetes.io/service-name": SERVICE,
                                   "endpointslice.kubernetes.io/managed-by": "virtnet-simulate"}},
           "addressType": "FQDN", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
           "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}
    api = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
           "spec": {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1000, "versionPriority": 15,
                    "caBundle": base64.b64encode(ca_bundle).decode(),
                    "service": {"name": SERVICE, "namespace": namespace, "port": SERVICE_PORT}}}
    return [(f"/api/v1/namespaces/{namespace}/services/{SERVICE}", svc),
            (f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{SERVICE}-loopback", eps),
            (f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}", api)]


def available(rest: Rest) -> bool | None:
    """True once the aggregator reports the APIService Available (it probed our discovery through the proxy)."""
    status, out = rest.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}")
    conditions = {c["type"]: c["status"] for c in ((out.get("status") or {}).get("conditions") or [])} \
        if status == 200 else {}
    return True if conditions.get("Available") == "True" else None


def _conflict(name: str, why: str) -> Response:
    return status_response(409, "Conflict", f'Operation cannot be fulfilled on virtualmachine.kubevirt.io "{name}": '
                           f"{why}", {"name": name, "group": "kubevirt.io", "kind": "virtualmachine"})


class VirtApi:
    """The WSGI app; ``rest`` acts on the cluster as virt-api's service account would."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def restart(self, ns: str, name: str, body: dict[str, Any]) -> Response:
        status, vm = self.rest.get(_VM.format(ns=ns, name=name))
        if status == 404:
            return status_response(404, "NotFound", f'virtualmachines.kubevirt.io "{name}" not found',
                                   {"name": name, "group": "kubevirt.io", "kind": "virtualmachines"})
        if status != 200:
            return status_response(500, "InternalError", message(vm))
        spec = vm.get("spec") or {}
        strategy = spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")
        if strategy in _NO_RESTART:
            return _conflict(name, f"RunStategy {strategy} does not support manual restart requests")
        status, vmi = self.rest.get(_VMI.format(ns=ns, name=name))
        if status == 404:
            return _conflict(name, "VM is not running: Halted")
        if status != 200:
            return status_response(500, "InternalError", message(vmi))
        requests = [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}]
        current = (vm.get("status") or {}).get("stateChangeRequests")
        patch = [{"op": "test", "path": "/status/stateChangeRequests", "value": current},
                 {"op": "add" if current is None else "replace", "path": "/status/stateChangeRequests",
                  "value": requests}]
        if "status" not in vm:
            patch = [{"op": "add", "path": "/status", "value": {"stateChangeRequests": requests}}]
        query = {"fieldManager": MANAGER, **({"dryRun": "All"} if body.get("dryRun") else {})}
        status, out = self.rest.request("PATCH", _VM.format(ns=ns, name=name) + "/status", patch,
                                        content_type="application/json-patch+json", query=query)
        if status == 422 or status == 409:  # the test op failed: someone else changed the requests meanwhile
            return _conflict(name, message(out))
        if status >= 300:
            return status_response(500, "InternalError", message(out))
        return Response(b"", status=202)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        parts = request.path.strip("/").split("/")
        prefix = ["apis", GROUP, VERSION]
        if parts == prefix and request.method == "GET":
            response = json_response(resource_list())
        elif (parts[:3] == prefix and len(parts) == 8 and parts[3] == "namespaces"
              and parts[5] == "virtualmachines" and parts[7] == "restart"):
            if request.method != "PUT":
                response = status_response(405, "MethodNotAllowed", f"{request.method} is not supported")
            else:
                try:
                    body = json.loads(request.get_data() or b"{}") or {}
                except ValueError:
                    body = None
                response = (self.restart(parts[4], parts[6], body) if isinstance(body, dict)
                            else status_response(400, "BadRequest", "the body must be RestartOptions JSON"))
        else:
            response = status_response(404, "NotFound", "the server could not find the requested resource")
        return response(environ, start_response)


def register(rest: Rest, namespace: str, port: int, ca_bundle: bytes) -> None:
    for path, obj in registration(namespace, port, ca_bundle):
        rest.apply(path, obj, manager=MANAGER)


def unregister(rest: Rest, namespace: str) -> None:
    """APIService first: without it nothing is proxied to the Service any more."""
    for path, _ in reversed(registration(namespace, 0, b"")):
        rest.request("DELETE", path)
