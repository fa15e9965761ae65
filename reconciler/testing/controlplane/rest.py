"""A minimal HTTPS JSON client for the control plane: bring-up (readiness, CRDs, seed) and the simulators.

Why not the ``kubernetes`` client: setup needs only a handful of verbs (GET, server-side apply) and must also
poll ``/readyz`` before any kubeconfig exists; stdlib ``http.client`` with the admin certificate keeps this
package free of client-configuration quirks and of the client's import time. Tests use the real client.

Connections are kept alive per thread: the simulated controllers poll the apiserver several times a second,
and a TLS handshake per request would cost more CPU than the requests themselves.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reconciler.testing.controlplane.errors import ControlPlaneError

T = TypeVar("T")
FIELD_MANAGER = "virtnet-controlplane"
_RETRIED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.CannotSendRequest)


class Rest:
    """Client-certificate-authenticated requests to ``https://host:port``."""

    def __init__(self, host: str, port: int, ca: str, cert: str, key: str) -> None:
        self.host, self.port = host, port
        self.context = ssl.create_default_context(cafile=ca)
        self.context.load_cert_chain(cert, key)
        self._local = threading.local()

    @classmethod
    def from_kubeconfig(cls, path: Path | str) -> Rest:
        """The current context's server and client certificate (as ``scripts/kube-up`` writes them)."""
        config = yaml.safe_load(Path(path).read_text())
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        url = urllib.parse.urlsplit(cluster["server"])
        if url.scheme != "https" or not url.hostname or "client-certificate-data" not in user:
            raise ControlPlaneError(f"{path}: need an https server and an embedded client certificate")
        with tempfile.TemporaryDirectory() as tmp:  # ssl loads key pairs from files only; gone once loaded
            files = {}
            for name, field in (("ca", "certificate-authority-data"), ("crt", "client-certificate-data"),
                                ("key", "client-key-data")):
                files[name] = Path(tmp) / name
                files[name].write_bytes(base64.b64decode(cluster.get(field) or user[field]))
            return cls(url.hostname, url.port or 443, str(files["ca"]), str(files["crt"]), str(files["key"]))

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                query: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, Any]:
        """One request; returns ``(status, decoded JSON or text)``. Connection errors propagate (OSError).

        A kept-alive connection the server closed meanwhile is reopened once (the request never reached it).
        """
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._connection(timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read().decode()
                break
            except _RETRIED:
                self._drop()
                if attempt == 2:
                    raise
            except BaseException:
                self._drop()
                raise
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._drop()

    def apply(self, path: str, obj: dict[str, Any], *, manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply ``obj`` at ``path`` (idempotent, so a re-run of setup is harmless)."""
        status, out = self.request("PATCH", path, obj, content_type="application/apply-patch+yaml",
                                   query={"fieldManager": manager, "force": "true"})
        if status >= 300:
            raise ControlPlaneError(f"apply {path} -> {status}: {message(out)}")
        return out

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)


def message(out: Any) -> str:
    """The ``message`` of a ``Status`` answer (or the raw answer), short enough for an exception."""
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
