"""Responses of the API double: ``Status`` errors, JSON with ``Warning`` headers, kubectl's ``Table``, the user.

Why apart from routing (:mod:`.handler`): these are the wire shapes clients parse (``Status`` reasons, the
``Warning: 299`` header of a pruned unknown field, the ``Table`` with its ``continue`` token that ``kubectl get``
pages through), kept in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from reconciler.testing.errors import ApiError


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def json_response(body: Any, code: int = 200, headers: dict[str, str] | None = None,
                  warnings: Iterable[str] = ()) -> Response:
    response = Response(json.dumps(body), status=code, mimetype="application/json", headers=headers)
    for w in warnings:
        response.headers.add("Warning", "299 - " + json.dumps(w))
    return response


def unsupported_media(accepted: Iterable[str]) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                    f"media types include: {', '.join(accepted)}")


def user_of(request: Request) -> str:
    """Who made a request: ``Impersonate-User`` if sent, else ``Authorization: Bearer user:<name>``.

    kubectl does not send bearer tokens to a plain-HTTP server, so kubeconfigs written by the double also
    carry ``as: <name>``, which kubectl sends as ``Impersonate-User``. Any other token is user ``token``;
    no credentials at all is ``system:anonymous``.
    """
    if impersonated := request.headers.get("Impersonate-User"):
        return impersonated
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return "system:anonymous"
    token = auth[len("Bearer "):].strip()
    return token[len("user:"):] if token.startswith("user:") else "token"


class QuietRequestHandler(WSGIRequestHandler):
    """No per-request access log on stderr: ``ApiDouble.requests`` is the log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def render(request: Request, doc: dict[str, Any]) -> Response:
    """JSON, or a minimal ``meta.k8s.io/v1`` Table when kubectl asks for one."""
    if "as=Table" not in request.headers.get("Accept", ""):
        return json_response(doc)
    items = doc.get("items", [doc])
    rows = [{"cells": [i["metadata"]["name"], i["metadata"].get("creationTimestamp", "")],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": i["metadata"]}} for i in items]
    meta = {k: v for k, v in doc["metadata"].items()
            if k in ("resourceVersion", "continue", "remainingItemCount")} if "items" in doc else {}
    table = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
             "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": ""},
                                   {"name": "Created At", "type": "date", "format": "", "description": ""}],
             "rows": rows}
    return json_response(table)
