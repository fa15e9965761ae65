"""HTTPS servers on loopback for what the apiserver calls out to: admission webhooks and aggregated APIs.

Why its own module: the KubeMacPool webhook and the simulated virt-api are both small WSGI apps the apiserver
reaches over TLS with a certificate signed by the cluster CA (:func:`~.pki.issue`); the aggregated API also
authenticates the apiserver by its front-proxy client certificate, as virt-api does with the requestheader CA.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Quiet(WSGIRequestHandler):
    """No access log: the apiserver probes discovery several times a second."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class HttpsServer:
    """``app`` on ``https://127.0.0.1:<free port>`` in a daemon thread; ``client_ca`` requires client certs."""

    def __init__(self, name: str, app: WsgiApp, cert: Path, key: Path, *, client_ca: Path | None = None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(client_ca))
        self.name = name
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context,
                                                   request_handler=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def status_response(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> Response:
    """A ``Status`` failure, as Kubernetes API servers (virt-api included) answer errors."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return json_response(body, code)
