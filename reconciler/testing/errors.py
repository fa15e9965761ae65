"""The API double's errors, worded as kube-apiserver words them.

Why the exact wording and ``details``: clients and ``kubectl`` read the ``reason`` and ``details`` of a
``Status`` (a 409 ``Conflict`` is retried, a 409 ``AlreadyExists`` is not), and tests compare messages with
what a real apiserver sends. The HTTP layer turns an :class:`ApiError` into a ``Status`` object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.testing.resources import ResourceType


class ApiError(Exception):
    """A failed API call: HTTP ``code``, Kubernetes ``reason``, message and optional ``details``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    return {"name": name, "group": rt.group, "kind": rt.plural} if rt.group else {"name": name, "kind": rt.plural}


def qualified(rt: ResourceType) -> str:
    """``virtualmachines.kubevirt.io``, ``deployments.apps``, ``configmaps``: how the real server names a resource."""
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(rt)} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str) -> ApiError:
    """The write was based on an outdated resourceVersion (or failed a uid/resourceVersion precondition)."""
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(rt)} "{name}": the '
                    "object has been modified; please apply your changes to the latest version and try "
                    "again", _details(rt, name))


def apply_conflict(rt: ResourceType, name: str, conflicts: Sequence[tuple[str, str]]) -> ApiError:
    """Server-side apply would take fields other managers own: ``conflicts`` are (manager, field path)."""
    n = len(conflicts)
    if n == 1:
        lines = f'conflict with "{conflicts[0][0]}": {conflicts[0][1]}'
    else:  # structured-merge-diff's wording: grouped by manager
        by_manager: dict[str, list[str]] = {}
        for m, p in conflicts:
            by_manager.setdefault(m, []).append(p)
        lines = "\n".join(f'conflicts with "{m}": {ps[0]}' if len(ps) == 1 else
                          f'conflicts with "{m}":' + "".join(f"\n- {p}" for p in ps) for m, ps in by_manager.items())
    causes = [{"reason": "FieldManagerConflict", "field": p, "message": f'conflict with "{m}"'} for m, p in conflicts]
    return ApiError(409, "Conflict", f"Apply failed with {n} conflict{'s' if n > 1 else ''}: {lines}",
                    {**_details(rt, name), "causes": causes})
