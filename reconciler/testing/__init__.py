"""Test doubles for virtnet: a Kubernetes API server double (:class:`ApiDouble`) and a forge API double.

The Kubernetes double is a real HTTP server on loopback that the unmodified ``kubernetes`` client and
``kubectl`` talk to; see :mod:`reconciler.testing.apiserver`. ``ApiDouble`` is imported lazily so that
``python -m reconciler.testing.apiserver`` does not import its own module twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.testing.apiserver import ApiDouble

__all__ = ["ApiDouble"]


def __getattr__(name: str) -> Any:
    if name == "ApiDouble":
        from reconciler.testing.apiserver import ApiDouble

        return ApiDouble
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
