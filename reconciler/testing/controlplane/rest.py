"""A minimal HTTPS JSON client for bringing the control plane up (readiness, CRDs, seed objects).

Why not the ``kubernetes`` client: setup needs only a handful of verbs (GET, server-side apply) and must also
poll ``/readyz`` before any kubeconfig exists; stdlib ``http.client`` with the admin certificate keeps this
package free of client-configuration quirks and of the client's import time. Tests use the real client.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from reconciler.testing.controlplane.errors import ControlPlaneError

T = TypeVar("T")
FIELD_MANAGER = "virtnet-controlplane"


class Rest:
    """Admin-authenticated requests to ``https://host:port``."""

    def __init__(self, host: str, port: int, ca: str, cert: str, key: str) -> None:
        self.host, self.port = host, port
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                query: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, Any]:
        """One request; returns ``(status, decoded JSON or text)``. Connection errors propagate (OSError)."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        try:
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw

    def apply(self, path: str, obj: dict[str, Any], *, manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply ``obj`` at ``path`` (idempotent, so a re-run of setup is harmless)."""
        status, out = self.request("PATCH", path, obj, content_type="application/apply-patch+yaml",
                                   query={"fieldManager": manager, "force": "true"})
        if status >= 300:
            raise ControlPlaneError(f"apply {path} -> {status}: {_message(out)}")
        return out

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)


def _message(out: Any) -> str:
    return out.get("message", str(out))[:2000] if isinstance(out, dict) else str(out)[:2000]


def poll(what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.1,
         alive: Callable[[], str | None] | None = None) -> T:
    """Call ``probe`` until it returns non-None; ``alive`` returns a reason to give up early (a dead process)."""
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while True:
        try:
            result = probe()
        except (OSError, http.client.HTTPException) as exc:
            result, last = None, f"{type(exc).__name__}: {exc}"
        if result is not None:
            return result
        if alive is not None and (why := alive()):
            raise ControlPlaneError(f"waiting for {what}: {why}")
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what} ({last})")
        time.sleep(interval)
