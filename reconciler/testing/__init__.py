"""Test doubles for virtnet: a Kubernetes API server double (:class:`ApiDouble`) and a forge API double.

The Kubernetes double is a real HTTP server on loopback that the unmodified ``kubernetes`` client and
``kubectl`` talk to; see :mod:`reconciler.testing.apiserver`.
"""

from reconciler.testing.apiserver import ApiDouble

__all__ = ["ApiDouble"]
