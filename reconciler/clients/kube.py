"""The Kubernetes side: list, get, server-side apply and delete through the official ``kubernetes`` client.

Side effects: HTTP requests to the API server. This is the only module that sends them.

Paths come from a static table of the kinds virtnet renders instead of API discovery
(``reconciler.objects.API_RESOURCES``, shared with validation): a reconcile then costs exactly one LIST
per kind (plus pages), never a round of discovery requests. Every path segment is escaped, so no name
(validated or not) can leave its own path or add to the query. Transient failures
(429 with ``Retry-After``, 5xx, resets, timeouts) are retried with exponential backoff and jitter;
409 conflicts and 4xx are not retried, they are answers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from reconciler import labels
from reconciler.engine.window import MAX_PARALLEL
from reconciler.errors import ApplyError, VirtnetError
from reconciler.objects import API_RESOURCES, MANAGED_KINDS, ApiResource, Obj, display

__all__ = ["MANAGED_KINDS", "RESOURCES", "Kube", "Resource", "resource_of", "segment"]

log = logging.getLogger(__name__)

Objects = list[Obj]
#: connections kept per host: the most writes ``reconciler.engine.apply`` may keep in flight
POOL_SIZE = MAX_PARALLEL


def segment(value: str) -> str:
    """One URL path segment: every reserved character escaped, so a name like ``x/../../kube-system/..``
    or ``x?dryRun=All`` stays one segment of its own path (``.`` and ``..`` escaped too: a client would
    otherwise resolve them as dot segments)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


@dataclass(frozen=True)
class Resource(ApiResource):
    """An entry of ``reconciler.objects.API_RESOURCES`` that knows its URL paths."""

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{segment(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{segment(name)}"
        return base + (f"/{segment(sub)}" if sub else "")


#: the static table (no discovery): every kind virtnet reaches, from the shared vocabulary
RESOURCES: dict[str, Resource] = {
    kind: Resource(r.api_version, r.kind, r.plural, r.namespaced) for kind, r in API_RESOURCES.items()
}


def resource_of(obj: Obj) -> Resource:
    found = RESOURCES.get(obj["kind"])
    if found is None or found.api_version != obj["apiVersion"]:
        raise ApplyError(display(obj), f"virtnet does not know how to reach {obj['apiVersion']} {obj['kind']}")
    if not obj["metadata"].get("name"):  # an empty name would address the whole collection
        raise ApplyError(display(obj), "metadata.name is empty")
    return found


# kube-apiserver's wording when a webhook answered allowed=false (a webhook it could not reach is "failed calling")
_ADMISSION_DENIED = '" denied the request'


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
        if exc.status == 500 and _ADMISSION_DENIED in body:
            return False  # a webhook's answer (KubeMacPool says no with a 500): asking again changes nothing
        return exc.status in (429, 500, 502, 503, 504) or exc.status == 0
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def _retry_after(headers: Any, default: float) -> float:
    """The server's ``Retry-After`` in seconds, at most 10 (a broken or hostile value must not stall a run)."""
    try:
        return min(float((headers or {}).get("Retry-After", default)), 10.0)
    except (TypeError, ValueError):
        return default


def _wait(state: RetryCallState) -> float:
    """Backoff with jitter, but never shorter than the server's ``Retry-After``."""
    base = wait_exponential_jitter(multiplier=0.05, max=2.0)(state)
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, ApiException) and exc.headers:
        return max(base, _retry_after(exc.headers, 0.0))
    return base


class KubeconfigError(VirtnetError):
    """No usable cluster configuration: the file, the context or the in-cluster account (one line)."""


class Kube:
    """A thin, typed layer over ``kubernetes.client.ApiClient`` that speaks plain dicts."""

    def __init__(self, api_client: client.ApiClient, field_manager: str = labels.FIELD_MANAGER, attempts: int = 6):
        self.api = api_client
        pool = getattr(getattr(api_client, "rest_client", None), "pool_manager", None)
        if pool is not None:  # urllib3 would retry 429/503 GETs itself (3 times, full Retry-After) under ours
            pool.connection_pool_kw["retries"] = urllib3.Retry(total=False)
            # a wave writes in parallel (``ApplyOptions.parallel``): keep that many connections open for reuse
            pool.connection_pool_kw["maxsize"] = max(pool.connection_pool_kw.get("maxsize") or 1, POOL_SIZE)
            pool.clear()
        self.field_manager = field_manager
        self.attempts = attempts
        self.timeout = (5.0, 30.0)
        self._throttle_listeners: list[Callable[[float], None]] = []

    def listen_for_throttling(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(retry_after)`` on every 429 (before the retry waits), until the returned function
        is called: the parallel apply's window (``reconciler.engine.window``) backs off on it."""
        self._throttle_listeners.append(listener)
        return lambda: self._throttle_listeners.remove(listener)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Kube:
        """The user's kubeconfig (or the in-cluster service account when running as a pod).

        Raises :class:`KubeconfigError`, one line naming the file and what is wrong with it: the client's
        own errors are a ``TypeError`` for a file that is not a kubeconfig, or, when no kubeconfig is
        found, the in-cluster loader's "Service host/port is not set" -- the real problem hidden behind a
        second one."""
        default = Path(os.path.expanduser("~/.kube/config"))
        named = path or os.environ.get("KUBECONFIG") or None
        if named is None and context is None and not default.exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                config.load_incluster_config()
            except config.ConfigException as exc:
                raise KubeconfigError(f"in-cluster configuration: {exc}") from None
            return cls(client.ApiClient())
        where = f"kubeconfig {named or default}"
        first = Path((named or str(default)).split(os.pathsep)[0])
        if not first.is_file():
            raise KubeconfigError(
                f"{where}: no such file (give --kubeconfig FILE or set KUBECONFIG)"
                if named
                else f"no kubeconfig: {default} does not exist (give --kubeconfig FILE or set KUBECONFIG)"
            )
        try:
            return cls(config.new_client_from_config(config_file=named or str(default), context=context))
        except config.ConfigException as exc:
            if context and f"name {context} in" in str(exc):
                raise KubeconfigError(f"{where}: no context {context!r}") from None
            raise KubeconfigError(f"{where}: {str(exc).removeprefix('Invalid kube-config file. ')}") from None
        except (OSError, ValueError, TypeError, AttributeError, KeyError, yaml.YAMLError) as exc:
            raise KubeconfigError(f"{where}: not a kubeconfig file ({type(exc).__name__})") from None

    # ---- transport -------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One API call with retries; returns the decoded JSON body.

        ``body`` is a dict for JSON requests (the client serialises it) and a ready string for
        ``application/apply-patch+yaml``, which the client sends as it is.
        """
        query = {k: v for k, v in (query or {}).items() if v is not None}
        url_path = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        retrying = Retrying(
            retry=retry_if_exception(_transient), stop=stop_after_attempt(self.attempts), wait=_wait, reraise=True
        )
        try:
            for attempt in retrying:
                with attempt:
                    method_, url, header_params, body_, _ = self.api.param_serialize(
                        method, url_path, header_params=headers, body=body, auth_settings=["BearerToken"]
                    )
                    response = self.api.call_api(method_, url, header_params, body_, _request_timeout=self.timeout)
                    response.read()
                    if not 200 <= response.status <= 299:
                        if response.status == 429:
                            self._throttled(response.headers)
                        raise ApiException(http_resp=response)
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            # out of retries without any response: an ApiException (status 0, as the client reports it) so every
            # caller's handling applies; a bare urllib3 error used to escape reconcile() uncaught
            raise ApiException(status=0, reason=f"no response from the API server: {exc}") from exc
        return json.loads(response.data) if response.data else None

    def _throttled(self, headers: Any) -> None:
        retry_after = _retry_after(headers, 1.0)
        for listener in list(self._throttle_listeners):
            listener(retry_after)

    # ---- verbs -----------------------------------------------------------------------------------------

    def list(
        self, kind: str, label_selector: str | None = None, page_size: int = 500, namespace: str | None = None
    ) -> list[Obj]:
        """Objects of ``kind`` matching the selector, across namespaces or in one, following ``continue``."""
        return self.list_at(kind, label_selector, page_size, namespace)[0]

    def list_at(
        self, kind: str, label_selector: str | None = None, page_size: int = 500, namespace: str | None = None
    ) -> tuple[Objects, str]:
        """:meth:`list`, and the resourceVersion the list is at (where a watch of the same objects starts)."""
        res = RESOURCES[kind]
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = self.request(
                "GET", res.path(namespace), {"labelSelector": label_selector, "limit": page_size, "continue": token}
            )
            for item in page.get("items") or []:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def watch(
        self, kind: str, label_selector: str | None, namespace: str | None, resource_version: str, timeout: int
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch from ``resource_version`` (with bookmarks), for at most ``timeout`` seconds.

        Not retried here: the caller (``reconciler.clients.informer``) decides between resuming and
        listing again. A 410 Gone comes as an ``ERROR`` event or as an ApiException with status 410."""
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "labelSelector": label_selector,
            "resourceVersion": resource_version or None,
            "timeoutSeconds": timeout,
        }
        url_path = RESOURCES[kind].path(namespace) + "?" + urlencode({k: v for k, v in query.items() if v is not None})
        method, url, headers, body, _ = self.api.param_serialize(
            "GET", url_path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(method, url, headers, body, _request_timeout=(5.0, timeout + 30.0))
        try:
            if not 200 <= response.status <= 299:
                response.read()
                raise ApiException(http_resp=response)
            for line in iter_resp_lines(response.response):
                if line:
                    yield json.loads(line)
        finally:  # closed first: a consumer that stopped early leaves a half-read stream, not one to reuse
            response.response.close()
            response.response.release_conn()

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.request("GET", RESOURCES[kind].path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: Obj, *, force: bool = False, dry_run: bool = False, subresource: str = "") -> Obj:
        """Server-side apply ``obj`` as this client's field manager (to ``subresource``, e.g. ``status``, when
        given); a 409 names the conflicting fields."""
        res = resource_of(obj)
        meta = obj["metadata"]
        query = {
            "fieldManager": self.field_manager,
            "force": "true" if force else None,
            "dryRun": "All" if dry_run else None,
            # an unknown or duplicated field is an error, as with kubectl (the server would drop it silently)
            "fieldValidation": "Strict",
        }
        try:
            return self.request(
                "PATCH",
                res.path(meta.get("namespace"), meta["name"], subresource),
                query,
                json.dumps(obj),
                content_type="application/apply-patch+yaml",
            )
        except ApiException as exc:
            raise ApplyError(display(obj), _reason(exc)) from exc

    def delete(self, obj: Obj) -> None:
        res = resource_of(obj)
        meta = obj["metadata"]
        try:
            self.request("DELETE", res.path(meta.get("namespace"), meta["name"]), {"propagationPolicy": "Foreground"})
        except ApiException as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise ApplyError(display(obj), _reason(exc)) from exc

    def create_event(self, obj: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        """A core/v1 Event on ``obj`` so ``kubectl describe`` shows what virtnet did to it."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.field_manager},
            "reportingComponent": self.field_manager,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.request("POST", f"/api/v1/namespaces/{segment(namespace)}/events", body=event)
        except ApiException as exc:
            raise ApplyError(display(obj), f"event not recorded: {_reason(exc)}") from exc

    def restart_vm(self, namespace: str, name: str) -> None:
        vm = f"namespaces/{segment(namespace)}/virtualmachines/{segment(name)}"
        path = f"/apis/subresources.kubevirt.io/v1/{vm}/restart"
        try:
            self.request("PUT", path, body={})
        except ApiException as exc:
            raise ApplyError(f"VirtualMachine/{namespace}/{name}", f"restart failed: {_reason(exc)}") from exc


def _reason(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    return f"HTTP {exc.status}: {message}"
