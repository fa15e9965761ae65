"""The WSGI application of the Kubernetes API double: routing, dispatch to the store, accounting, faults.

Routing follows the apiserver URL scheme::

    /api/v1[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]
    /apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]

plus discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<g>[/<v>]``, always the plain, non-aggregated form
whatever the Accept header asks, which clients fall back to), ``/version`` and ``/healthz|readyz|livez``.
``/openapi/v3`` serves the documents ``kubectl`` reads before it writes (:mod:`.openapi`); ``/openapi/v2``
answers 404 (kubectl uses v3). ``kubectl get`` asks for a ``Table``; a minimal one (name, creation time) is
served, paged like a list (``continue``). Bodies are JSON or YAML, or protobuf for the kinds ``kubectl create
<kind>`` sends that way (:mod:`.protobuf`; any other protobuf body is 415); a strategic merge patch of a custom
resource is 415 too, as on a real server. ``fieldValidation`` (Strict, Warn by default,
Ignore) is honoured (:mod:`.validation`); warnings go out as ``Warning: 299`` headers.

Accounting: every resource request is counted in ``counts`` under ``(verb, resource)`` where verb is one of
get/list/watch/create/update/patch/apply/delete (a DELETE of a collection counts as delete) and resource is
``group/plural`` (``plural`` for the core group) with ``/subresource`` appended, e.g.
``("apply", "nmstate.io/nodenetworkconfigurationpolicies")`` or ``("update", "kubevirt.io/virtualmachines/status")``.
Discovery/health requests are counted in ``nonresource_counts`` by path. A request that a fault hook failed
is counted only in ``fault_counts`` (``(kind, verb, resource)``) and never reaches the store.
The user of a request comes from ``Impersonate-User`` or its bearer token (``user:<name>`` is user ``<name>``),
see :func:`user_of`. There is no authorization.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from werkzeug.wrappers import Request, Response

from reconciler.testing import protobuf
from reconciler.testing.errors import ApiError
from reconciler.testing.faults import WRITE_VERBS, Fault, FaultHook, RequestInfo
from reconciler.testing.openapi import OpenApi
from reconciler.testing.resources import ResourceType
from reconciler.testing.responses import json_response, render, status_body, unsupported_media, user_of
from reconciler.testing.schemas import is_custom
from reconciler.testing.store import Store
from reconciler.testing.validation import MODES
from reconciler.testing.watch import watch_stream
from reconciler.testing.yamlload import load_yaml

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
CR_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
BODY_TYPES = ("application/json", "application/yaml")
PROTOBUF = "application/vnd.kubernetes.protobuf"
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-virtnet-double", "gitCommit": "double",
                  "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
                  "compiler": "gc", "platform": "linux/amd64"}


@dataclass(frozen=True)
class RequestRecord:
    """One served request as kept in ``ApiDouble.requests``."""

    method: str
    path: str
    query: dict[str, str]
    verb: str  # the resource verb, or "" for discovery/health
    resource: str
    status: int
    user: str
    dry_run: bool = False
    fault: str = ""


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str
    name: str
    subresource: str


class Handler:
    """The WSGI application: routes, dispatches to the :class:`Store`, counts and injects faults."""

    def __init__(self, store: Store, *, bookmark_interval: float = 1.0) -> None:
        self.store = store
        self.registry = store.registry
        self.openapi = OpenApi(store.registry)
        self.bookmark_interval = bookmark_interval
        self.faults: FaultHook | None = None
        self.lock = threading.Lock()
        #: the simulated controllers' tick lock (set by ApiDouble), so subresource actions never interleave a tick
        self.controller_lock: threading.Lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.nonresource_counts: Counter[str] = Counter()
        self.fault_counts: Counter[tuple[str, str, str]] = Counter()
        self.requests: list[RequestRecord] = []
        self.write_count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    # ---- top level -----------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        user = user_of(request)
        if parts[:3] == ["apis", "subresources.kubevirt.io", "v1"]:
            return self.kubevirt_action(request, parts, user)
        nonresource = self.nonresource(request, parts)
        if nonresource is not None:
            self.record(request, "", "", nonresource.status_code, user)
            with self.lock:
                self.nonresource_counts[request.path] += 1
            return nonresource
        try:
            route = self.route(parts)
            verb = self.verb(request, route)
        except ApiError as e:
            self.record(request, "", "", e.code, user)
            return json_response(status_body(e.code, e.reason, e.message, e.details), e.code)
        resource = route.rt.resource_name + (f"/{route.subresource}" if route.subresource else "")
        info = RequestInfo(request.method, request.path, verb, resource, route.namespace, route.name, user,
                           dry_run=request.args.get("dryRun") == "All")
        fault = self.faults(info) if self.faults else None
        if fault is not None and fault.kind not in ("delay", "watch_end"):
            return self.faulted(request, info, fault)
        if fault is not None:
            with self.lock:
                self.fault_counts[(fault.kind, verb, resource)] += 1
            if fault.kind == "delay":
                time.sleep(fault.delay)
        dry_run = request.args.get("dryRun") == "All"
        try:
            response = self.dispatch(request, route, verb, user, watch_end=fault is not None)
        except ApiError as e:
            response = json_response(status_body(e.code, e.reason, e.message, e.details), e.code)
        dry_run = dry_run or getattr(response, "dry_run", False)
        with self.lock:
            self.counts[(verb, resource)] += 1
            if verb in WRITE_VERBS and not dry_run:
                self.write_count += 1
        self.record(request, verb, resource, response.status_code, user, dry_run=dry_run)
        return response

    def kubevirt_action(self, request: Request, parts: list[str], user: str) -> Response:
        """``PUT .../virtualmachines/<name>/{restart,start,stop}`` of KubeVirt's aggregated API.

        A restart deletes the VMI; the simulated KubeVirt controller starts a fresh one from the VM's
        current template (which clears ``RestartRequired``). Counted as an ``update`` write.
        """
        rest = parts[3:]
        resource = "subresources.kubevirt.io/virtualmachines/" + (rest[-1] if rest else "")
        ok = (request.method == "PUT" and len(rest) == 5 and rest[0] == "namespaces"
              and rest[2] == "virtualmachines" and rest[4] in ("restart", "start", "stop"))
        with self.controller_lock:  # atomic with respect to the simulated controllers' ticks
            vm = self.store.find("kubevirt.io/v1", "VirtualMachine", rest[3], rest[1]) if ok else None
            code = 202 if vm is not None else 404
            if vm is not None and rest[4] in ("restart", "stop"):
                vmi = self.registry.by_kind("kubevirt.io/v1", "VirtualMachineInstance")
                if vmi is not None and self.store.find("kubevirt.io/v1", "VirtualMachineInstance", rest[3], rest[1]):
                    self.store.delete(vmi, rest[1], rest[3])
        with self.lock:
            self.counts[("update", resource)] += 1
            self.write_count += 1
        self.record(request, "update", resource, code, user)
        if vm is None:
            return json_response(status_body(404, "NotFound", "virtualmachine not found"), 404)
        return Response(b"", status=202)

    def faulted(self, request: Request, info: RequestInfo, fault: Fault) -> Response:
        with self.lock:
            self.fault_counts[(fault.kind, info.verb, info.resource)] += 1
        self.record(request, info.verb, info.resource, 0 if fault.kind == "drop" else int(fault.kind),
                    info.user, fault=fault.kind)
        if fault.kind == "drop":
            sock = request.environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            return Response(b"", status=500)
        code = int(fault.kind)
        reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests", 409: "Conflict"}[code]
        headers = {"Retry-After": str(fault.retry_after)} if code in (429, 503) else None
        return json_response(status_body(code, reason, f"injected fault: {reason}"), code, headers)

    def record(self, request: Request, verb: str, resource: str, status: int, user: str, *,
               dry_run: bool = False, fault: str = "") -> None:
        rec = RequestRecord(request.method, request.path, dict(request.args.items()), verb, resource, status,
                            user, dry_run, fault)
        with self.lock:
            self.requests.append(rec)

    # ---- non-resource endpoints ----------------------------------------------------------------------------

    def nonresource(self, request: Request, parts: list[str]) -> Response | None:
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return Response("ok", mimetype="text/plain")
        if parts == ["version"]:
            return json_response(SERVER_VERSION)
        if parts == ["openapi", "v3"]:
            return json_response(self.openapi.discovery())
        if parts[:2] == ["openapi", "v3"] and (doc := self.openapi.document("/".join(parts[2:]))) is not None:
            return json_response(doc)
        if parts and parts[0] == "openapi":
            return json_response(status_body(404, "NotFound", "the double serves no such OpenAPI document"), 404)
        if parts == ["api"]:
            return json_response(self.registry.core_versions())
        if parts == ["apis"]:
            return json_response(self.registry.group_list())
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            doc = self.registry.resource_list(group, version)
            if doc is None:
                return json_response(status_body(404, "NotFound", "the server could not find the requested "
                                                 "resource"), 404)
            return json_response(doc)
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in self.registry.groups():
                return json_response(status_body(404, "NotFound", "not found"), 404)
            return json_response(self.registry.group(parts[1]))
        if not parts or parts[0] not in ("api", "apis"):
            return json_response(status_body(404, "NotFound", "the server could not find the requested "
                                             "resource"), 404)
        return None

    def route(self, parts: list[str]) -> Route:
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        if rest and rest[0] == "watch":  # legacy /watch/ paths
            rest = rest[1:]
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.registry.by_path(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt = self.registry.by_path(group, version, rest[0])
        if rt is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({rest[0]})")
        sub = rest[2] if len(rest) == 3 else ""
        if sub and sub not in rt.subresources:
            raise ApiError(404, "NotFound", f"{rt.plural}/{sub} is not a served subresource")
        return Route(rt, ns, rest[1] if len(rest) >= 2 else "", sub)

    def verb(self, request: Request, route: Route) -> str:
        method, collection = request.method, not route.name
        if method == "GET":
            if collection:
                return "watch" if request.args.get("watch") in ("1", "true", "True") else "list"
            return "get"
        if method == "POST" and collection:
            return "create"
        if method == "PUT" and not collection:
            return "update"
        if method == "PATCH" and not collection:
            ctype = request.mimetype
            if is_custom(route.rt) and ctype not in CR_PATCH_TYPES:
                raise unsupported_media(CR_PATCH_TYPES)
            if ctype not in PATCH_TYPES:
                raise unsupported_media(PATCH_TYPES)
            return "apply" if PATCH_TYPES[ctype] == "apply" else "patch"
        if method == "DELETE":
            return "delete"
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                       f"resource ({method})")

    # ---- resource endpoints --------------------------------------------------------------------------------

    def dispatch(self, request: Request, route: Route, verb: str, user: str, *, watch_end: bool) -> Response:
        rt, ns, name, sub = route.rt, route.namespace, route.name, route.subresource
        args = request.args
        dry_run = args.get("dryRun") == "All"
        manager = args.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0]
        if verb == "get":
            return render(request, self.store.get(rt, ns, name))
        if verb in ("list", "watch"):
            list_ns = ns if rt.namespaced and ns else None
            if verb == "watch":
                timeout = float(args.get("timeoutSeconds", 1800))
                gen = watch_stream(self.store, rt, list_ns, rv=args.get("resourceVersion", ""),
                                   label_selector=args.get("labelSelector", ""),
                                   field_selector=args.get("fieldSelector", ""),
                                   timeout=0.0 if watch_end else timeout,
                                   bookmarks=args.get("allowWatchBookmarks") in ("1", "true"),
                                   bookmark_interval=self.bookmark_interval)
                return Response(gen, mimetype="application/json", direct_passthrough=True)
            doc = self.store.list(rt, list_ns, label_selector=args.get("labelSelector", ""),
                                  field_selector=args.get("fieldSelector", ""),
                                  limit=int(args.get("limit", 0) or 0), cont=args.get("continue", ""))
            return render(request, doc)
        body = self.body(request, verb)
        validation = args.get("fieldValidation") or "Warn"
        if validation not in MODES:
            raise ApiError(400, "BadRequest", f"fieldValidation must be one of {', '.join(MODES)}")
        warnings: list[str] = []
        if verb == "create":
            return json_response(self.store.create(rt, ns, body, manager=manager, dry_run=dry_run,
                                                   validation=validation, warnings=warnings), 201,
                                 warnings=warnings)
        if verb == "update":
            return json_response(self.store.update(rt, ns, name, body, manager=manager, subresource=sub,
                                                   dry_run=dry_run, validation=validation, warnings=warnings,
                                                   require_rv=is_custom(rt)), warnings=warnings)
        if verb == "apply":
            if not args.get("fieldManager"):
                raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                               "value: is required for apply patch", {"group": "meta.k8s.io", "kind": "PatchOptions",
                               "causes": [{"reason": "FieldValueRequired", "field": "fieldManager",
                                           "message": "Required value: is required for apply patch"}]})
            existed = self.exists(rt, ns, name)
            obj = self.store.apply(rt, ns, name, body, manager=manager, subresource=sub, dry_run=dry_run,
                                   force=args.get("force") in ("true", "1", "True"))
            return json_response(obj, 200 if existed else 201)
        if verb == "patch":
            return json_response(self.store.patch(rt, ns, name, PATCH_TYPES[request.mimetype], body,
                                                  manager=manager, subresource=sub, dry_run=dry_run,
                                                  validation=validation, warnings=warnings), warnings=warnings)
        opts = body if isinstance(body, dict) else {}
        dry_run = dry_run or "All" in (opts.get("dryRun") or [])
        if not name:
            items = self.store.list(rt, ns if rt.namespaced and ns else None,
                                    label_selector=args.get("labelSelector", ""),
                                    field_selector=args.get("fieldSelector", ""))
            for item in items["items"]:
                self.store.delete(rt, item["metadata"].get("namespace", ""), item["metadata"]["name"],
                                  dry_run=dry_run)
            response = json_response(items)
        else:
            response = json_response(self.store.delete(rt, ns, name, dry_run=dry_run,
                                                       preconditions=opts.get("preconditions")))
        response.dry_run = dry_run  # type: ignore[attr-defined]
        return response

    def exists(self, rt: ResourceType, ns: str, name: str) -> bool:
        try:
            self.store.get(rt, ns, name)
        except ApiError:
            return False
        return True

    @staticmethod
    def body(request: Request, verb: str) -> Any:
        raw = request.get_data()
        if not raw.strip():
            return {}
        yaml_ok = verb == "apply" or request.mimetype == "application/yaml"
        if verb in ("create", "update") and request.mimetype == PROTOBUF:
            try:
                return protobuf.decode(raw)
            except protobuf.ProtobufError as e:
                raise ApiError(415, "UnsupportedMediaType", f"{e}; send application/json") from e
        if verb in ("create", "update") and request.mimetype not in ("", *BODY_TYPES):
            raise unsupported_media(BODY_TYPES)
        try:
            return _yaml_or_json(raw) if yaml_ok else json.loads(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(400, "BadRequest", f"the request body does not parse: {e}") from e


def _yaml_or_json(raw: bytes) -> Any:
    """A YAML body (apply, application/yaml): JSON first, as the clients send it (parsed in C), else YAML
    (``reconciler.testing.yamlload``). JSON first also reads a JSON body as kube-apiserver does, whose YAML
    reader is YAML 1.2: PyYAML (YAML 1.1) takes ``1e-05`` for a string. PyYAML's pure-Python parser was
    most of the double's time per apply at 10,000 VMs, growing with the store (``bench``: CPU per write)."""
    try:
        return json.loads(raw)
    except ValueError:
        return load_yaml(raw)
